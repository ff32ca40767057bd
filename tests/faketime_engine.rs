//! Clocks under the test's control (`eslock_test_support::engine`, libfaketime): a
//! node whose wall clock is stepped while it runs, and a child process with a
//! skewed wall clock.

use std::time::{SystemTime, UNIX_EPOCH};

use elasticsearch::{Elasticsearch, GetParts, UpdateParts};
use eslock_test_support::engine::{SteppedClockNode, faketime_command};
use eslock_test_support::client_for;
use serde_json::{Value, json};

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// How far the engine's clock, as painless scripts read it, is ahead of ours
/// (ms): a scripted upsert stores `System.currentTimeMillis()`.
async fn engine_clock_offset(client: &Elasticsearch, index: &str) -> i64 {
    let before = now_millis();
    let upsert = client
        .update(UpdateParts::IndexId(index, "clock"))
        .body(json!({
            "scripted_upsert": true,
            "script": { "lang": "painless", "source": "ctx._source.stamp = System.currentTimeMillis()" },
            "upsert": {}
        }))
        .send()
        .await
        .unwrap();
    assert!(upsert.status_code().is_success(), "{upsert:?}");
    let after = now_millis();
    let got: Value = client.get(GetParts::IndexId(index, "clock")).send().await.unwrap().json().await.unwrap();
    got["_source"]["stamp"].as_i64().expect("the script stored the time") - (before + after) / 2
}

#[tokio::test]
async fn a_stepped_node_runs_scripts_on_its_stepped_clock() {
    let node = SteppedClockNode::start();
    let client = client_for(node.url());
    let index = eslock_test_support::create_scratch_index(&client, "stepped-clock").await;

    let offset = engine_clock_offset(&client, &index).await;
    assert!(offset.abs() < 5_000, "unstepped, the node is {offset} ms off");

    node.step(-600);
    let offset = engine_clock_offset(&client, &index).await;
    assert!((-700_000..=-500_000).contains(&offset), "stepped back 600 s, the node is {offset} ms off");

    node.reset();
    let offset = engine_clock_offset(&client, &index).await;
    assert!(offset.abs() < 5_000, "reset, the node is {offset} ms off");
}

/// Set in the child process that `a_child_process_runs_with_a_skewed_wall_clock` starts.
const CHILD: &str = "ESLOCK_FAKETIME_CHILD";

#[test]
fn a_child_process_runs_with_a_skewed_wall_clock() {
    if std::env::var_os(CHILD).is_some() {
        println!("child wall clock: {}", now_millis());
        return;
    }
    let before = now_millis();
    let output = faketime_command("+3600", std::env::current_exe().unwrap())
        .args(["--exact", "a_child_process_runs_with_a_skewed_wall_clock", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let child: i64 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("child wall clock: "))
        .unwrap_or_else(|| panic!("the child printed no time:\n{stdout}"))
        .parse()
        .unwrap();
    let ahead = child - before;
    assert!((3_595_000..3_660_000).contains(&ahead), "the child's clock is {ahead} ms ahead, not 1 h");
}
