//! Proves the test engine is a real search engine with the features eslock
//! relies on: painless scripted upserts that read the cluster clock, real-time
//! GET, and optimistic concurrency on `if_seq_no`/`if_primary_term`.

use elasticsearch::http::StatusCode;
use elasticsearch::indices::IndicesDeleteParts;
use elasticsearch::{GetParts, IndexParts, UpdateParts};
use eslock_test_support::engine_client;
use serde_json::{Value, json};

#[tokio::test]
async fn engine_runs_painless_real_time_get_and_seq_no_concurrency() {
    let client = engine_client();
    let index = eslock_test_support::create_scratch_index(&client, "smoke").await;

    let info: Value = client.info().send().await.unwrap().json().await.unwrap();
    let version = info["version"]["number"].as_str().unwrap_or("unknown");
    println!("engine: {} {version}", info["version"]["distribution"].as_str().unwrap_or("elasticsearch"));

    // A scripted upsert whose script reads the server's clock.
    let before = now_millis();
    let upsert = client
        .update(UpdateParts::IndexId(&index, "doc/1:a"))
        .body(json!({
            "scripted_upsert": true,
            "script": {
                "lang": "painless",
                "source": "ctx._source.stamp = System.currentTimeMillis(); ctx._source.owner = params.owner;",
                "params": { "owner": "smoke" }
            },
            "upsert": {}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(upsert.status_code(), StatusCode::CREATED);
    let after = now_millis();

    // Real-time GET sees the write without a refresh; the id with `/` and `:` round-trips.
    let got: Value = client
        .get(GetParts::IndexId(&index, "doc/1:a"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["found"], json!(true));
    assert_eq!(got["_id"], json!("doc/1:a"));
    assert_eq!(got["_source"]["owner"], json!("smoke"));
    let stamp = got["_source"]["stamp"].as_i64().expect("the script stored the server time");
    // Same machine: the server clock lies between our two readings (with slack).
    assert!(stamp >= before - 5_000 && stamp <= after + 5_000, "stamp {stamp} not in [{before}, {after}]");

    // Optimistic concurrency: a write with the current seq_no wins, a stale one conflicts.
    let seq_no = got["_seq_no"].as_i64().unwrap();
    let term = got["_primary_term"].as_i64().unwrap();
    let write = |owner: &'static str| {
        client
            .index(IndexParts::IndexId(&index, "doc/1:a"))
            .if_seq_no(seq_no)
            .if_primary_term(term)
            .body(json!({ "owner": owner }))
            .send()
    };
    assert_eq!(write("first").await.unwrap().status_code(), StatusCode::OK);
    let stale = write("second").await.unwrap();
    assert_eq!(stale.status_code(), StatusCode::CONFLICT);
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["error"]["type"], json!("version_conflict_engine_exception"));

    client.indices().delete(IndicesDeleteParts::Index(&[&index])).send().await.unwrap();
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
