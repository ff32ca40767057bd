//! The `eslock` binary against the real engine (`ELASTICSEARCH_URL`).

use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use eslock::{LockManager, LockOptions};
use serde_json::{Value, json};

fn engine_url() -> String {
    std::env::var("ELASTICSEARCH_URL").expect("ELASTICSEARCH_URL is set by scripts/test (engine tests are never skipped)")
}

fn eslock(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eslock")).args(args).output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn list_get_and_release_locks() {
    let url = engine_url();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let index = format!("cli-{}-{nanos}", std::process::id());
    let base = ["--url", url.as_str(), "--index", index.as_str()];
    let run = |extra: &[&str]| eslock(&[&base[..], extra].concat());

    let setup = run(&["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    assert!(text(&setup.stdout).contains(&format!("{index}-000001")));
    let empty = run(&["list"]);
    assert!(text(&empty.stdout).contains("no locks are held"));

    let client = eslock::store::elasticsearch::client(&url).unwrap();
    let manager = LockManager::builder().elasticsearch(client).index_name(&index).build();
    let lease = manager
        .acquire("reindex/logs:2024", LockOptions::default().metadata(json!({ "host": "worker-1" })))
        .await
        .unwrap();

    let table = run(&["list"]);
    assert!(table.status.success());
    let table = text(&table.stdout);
    assert!(table.starts_with("LOCK ID"), "{table}");
    assert!(table.contains("reindex/logs:2024") && table.contains(r#"{"host":"worker-1"}"#), "{table}");

    let got = run(&["--json", "get", "reindex/logs:2024"]);
    assert!(got.status.success());
    let got: Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(got["fencing_token"], json!(lease.fencing_token()));
    assert_eq!(got["metadata"], json!({ "host": "worker-1" }));

    let released = run(&["release", "reindex/logs:2024"]);
    assert!(released.status.success(), "{}", text(&released.stderr));
    assert!(lease.is_lost() || manager.get("reindex/logs:2024").await.unwrap().is_none());
    let absent = run(&["get", "reindex/logs:2024"]);
    assert_eq!(absent.status.code(), Some(1));
    assert!(text(&absent.stderr).contains("is not held"));
    assert_eq!(run(&["release", "reindex/logs:2024"]).status.code(), Some(1));
}

#[test]
fn usage_and_input_errors_are_reported() {
    let usage = eslock(&["frobnicate"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(text(&usage.stderr).contains("unknown command `frobnicate`"));
    assert!(text(&usage.stderr).contains("usage: eslock"));

    let bad_id = eslock(&["--url", &engine_url(), "get", "bad id"]);
    assert_eq!(bad_id.status.code(), Some(3));
    assert!(text(&bad_id.stderr).contains("invalid lock id"), "{}", text(&bad_id.stderr));

    let help = eslock(&["--help"]);
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("release <LOCK_ID>"));
}

/// In Kibana mode, locks that Kibana wrote under free-form ids (spaces and
/// all) can be read and force-released from the command line.
#[tokio::test]
async fn kibana_locks_with_free_form_ids() {
    use elasticsearch::http::Method;
    use elasticsearch::http::headers::HeaderMap;
    use elasticsearch::http::request::JsonBody;

    let url = engine_url();
    let base = ["--url", url.as_str(), "--kibana"];
    let run = |extra: &[&str]| eslock(&[&base[..], extra].concat());
    assert!(run(&["setup"]).status.success());
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let id = format!("Kibana task {nanos}: re-index (ü)");
    let encoded: String = id.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
    let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let later = humantime::format_rfc3339_millis(SystemTime::now() + std::time::Duration::from_secs(300)).to_string();
    let document = json!({ "token": "kibana-token", "createdAt": now, "expiresAt": later, "metadata": { "by": "kibana" } });
    let client = eslock::store::elasticsearch::client(&url).unwrap();
    let path = format!("/.kibana_locks-000001/_doc/{encoded}?refresh=true");
    let written = client.send(Method::Put, &path, HeaderMap::new(), None::<&()>, Some(JsonBody::new(document)), None).await.unwrap();
    assert!(written.status_code().is_success());

    let got = run(&["--json", "get", &id]);
    assert!(got.status.success(), "{}", text(&got.stderr));
    let got: Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(got["lock_id"], json!(id));
    assert_eq!(got["fencing_token"], Value::Null, "Kibana's holder wrote no fencing token");
    assert!(text(&run(&["list"]).stdout).contains(&id));
    let released = run(&["release", &id]);
    assert!(released.status.success(), "{}", text(&released.stderr));
    assert_eq!(run(&["get", &id]).status.code(), Some(1));
}
