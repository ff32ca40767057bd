//! Raw requests to the engine for the baselines and the fixtures, sent with
//! the same `elasticsearch` client (and connection pool) eslock uses, and
//! read the way eslock reads its replies (the whole body parsed as JSON).

use std::time::Duration;

use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::{ACCEPT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::request::JsonBody;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(120);

/// The headers of every request of the baselines and fixtures: those
/// eslock's own requests carry (uncompressed replies), so that every
/// pattern runs on the same HTTP settings.
fn headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    headers
}

/// Sends one JSON request; returns the status and body (`Null` when empty).
pub(crate) async fn send(client: &Elasticsearch, method: Method, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
    let response = client
        .send(method, path, headers(), None::<&()>, body.map(JsonBody::new), Some(TIMEOUT))
        .await
        .map_err(|err| format!("{method:?} {path}: {err}"))?;
    let status = response.status_code().as_u16();
    let bytes = response.bytes().await.map_err(|err| format!("{method:?} {path}: {err}"))?;
    let body = if bytes.trim_ascii().is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|err| format!("{method:?} {path}: reply is not JSON: {err}"))?
    };
    Ok((status, body))
}

/// Like [`send`], but a non-2xx status is an error.
pub(crate) async fn expect_ok(client: &Elasticsearch, method: Method, path: &str, body: Option<&Value>) -> Value {
    match send(client, method, path, body).await {
        Ok((status, body)) if (200..300).contains(&status) => body,
        Ok((status, body)) => panic!("{method:?} {path}: HTTP {status}: {body}"),
        Err(err) => panic!("{err}"),
    }
}

/// Engine name and version from `GET /`.
pub(crate) async fn describe(client: &Elasticsearch) -> String {
    let root = expect_ok(client, Method::Get, "/", None).await;
    let name = root.pointer("/version/distribution").and_then(Value::as_str).unwrap_or("elasticsearch");
    let version = root.pointer("/version/number").and_then(Value::as_str).unwrap_or("?");
    let product = if name == "opensearch" { "OpenSearch" } else { "Elasticsearch" };
    format!("{product} {version}")
}

/// Creates a one-shard, no-replica index (as the lock index is on one node)
/// with the given field mappings and `dynamic: false`.
pub(crate) async fn create_index(client: &Elasticsearch, index: &str, properties: Value) {
    let _ = send(client, Method::Delete, &format!("/{index}"), None).await;
    let body = json!({
        "settings": { "number_of_shards": 1, "number_of_replicas": 0 },
        "mappings": { "dynamic": false, "properties": properties }
    });
    expect_ok(client, Method::Put, &format!("/{index}"), Some(&body)).await;
}

pub(crate) async fn delete_index(client: &Elasticsearch, index: &str) {
    let _ = send(client, Method::Delete, &format!("/{index}"), None).await;
}

/// Bulk-indexes `(id, source)` documents, `batch` per request, without refresh.
pub(crate) async fn bulk_index(client: &Elasticsearch, index: &str, docs: impl Iterator<Item = (String, Value)>, batch: usize) {
    let mut docs = docs.peekable();
    while docs.peek().is_some() {
        let mut body = String::new();
        for (id, source) in docs.by_ref().take(batch) {
            body.push_str(&json!({ "index": { "_index": index, "_id": id } }).to_string());
            body.push('\n');
            body.push_str(&source.to_string());
            body.push('\n');
        }
        let mut headers = headers();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
        let response = client
            .send(Method::Post, "/_bulk", headers, None::<&()>, Some(body), Some(TIMEOUT))
            .await
            .unwrap_or_else(|err| panic!("_bulk: {err}"));
        let status = response.status_code().as_u16();
        let reply: Value = response.json().await.unwrap_or_else(|err| panic!("_bulk reply: {err}"));
        assert!(status == 200 && reply["errors"] == json!(false), "_bulk failed: HTTP {status}: {:.500}", reply.to_string());
    }
}

/// Document count of an index, after a refresh.
pub(crate) async fn count(client: &Elasticsearch, index: &str) -> u64 {
    expect_ok(client, Method::Post, &format!("/{index}/_refresh"), None).await;
    let reply = expect_ok(client, Method::Get, &format!("/{index}/_count"), None).await;
    reply["count"].as_u64().unwrap_or(0)
}
