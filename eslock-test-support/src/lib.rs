//! Support shared by eslock's integration tests (the root package's and
//! the CLI's), the benchmarks and the fault suite: where the search engine
//! is and a client for it, unique names, raw requests, and the store
//! conformance cases ([`conformance`]) every store must pass.
//!
//! Tests never skip the engine: when `ELASTICSEARCH_URL` is not set they fail
//! and say how to run them (`scripts/test` starts a node and sets it).
//!
//! Fault injection: [`proxy::FaultProxy`] delays, withholds or cuts the
//! traffic to the engine; [`engine`] runs a node whose clock a test steps,
//! and child processes with a skewed clock.

pub mod conformance;
pub mod engine;
pub mod fake;
pub mod proxy;
pub mod recorder;

use elasticsearch::Elasticsearch;

/// The variable that names the engine the tests use.
pub const ENGINE_URL_VAR: &str = eslock::store::elasticsearch::URL_VAR;

/// The engine's URL, if one is configured.
pub fn engine_url() -> Option<String> {
    std::env::var(ENGINE_URL_VAR).ok().filter(|url| !url.trim().is_empty())
}

/// A client for the configured engine.
pub fn client_for(url: &str) -> Elasticsearch {
    eslock::store::elasticsearch::client(url).unwrap_or_else(|err| panic!("{ENGINE_URL_VAR}={url}: {err}"))
}

/// The URL of the engine the tests must run against; panics with
/// instructions when none is configured, so an engine test can never pass
/// without an engine.
pub fn required_engine_url() -> String {
    engine_url().unwrap_or_else(|| {
        panic!(
            "{ENGINE_URL_VAR} is not set: engine tests need a real search engine. \
             Run `scripts/test` (it starts an OpenSearch node), or set {ENGINE_URL_VAR}."
        )
    })
}

/// A client for the engine the tests must run against (see
/// [`required_engine_url`]).
pub fn engine_client() -> Elasticsearch {
    client_for(&required_engine_url())
}

/// A manager on the lock index `alias` of the cluster behind `client`.
pub fn manager_on(client: Elasticsearch, alias: &str) -> eslock::LockManager {
    eslock::LockManager::builder().store(store_on(client, alias)).build()
}

/// The store on the lock index `alias` of the cluster behind `client`.
pub fn store_on(client: Elasticsearch, alias: &str) -> eslock::ElasticsearchStore {
    eslock::ElasticsearchStore::builder(client).index_name(alias).build()
}

/// A name no other test uses, for indices and lock ids.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Sends a raw request to the engine, as another program (or Kibana) would,
/// and returns the status and the JSON body (`Null` when it is not JSON).
///
/// # Panics
/// When the engine cannot be reached.
pub async fn raw_request(
    client: &Elasticsearch,
    method: elasticsearch::http::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    use elasticsearch::http::headers::HeaderMap;
    use elasticsearch::http::request::JsonBody;
    let response = client
        .send(method, path, HeaderMap::new(), None::<&()>, body.map(JsonBody::new), None)
        .await
        .expect("request reaches the engine");
    let status = response.status_code().as_u16();
    let text = response.text().await.expect("the reply can be read");
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

/// Creates an empty single-shard index with no replica, named from
/// `prefix` and unique, for tests that need an index of their own.
///
/// # Panics
/// When the engine does not create it.
pub async fn create_scratch_index(client: &Elasticsearch, prefix: &str) -> String {
    let index = unique_name(prefix);
    let settings = serde_json::json!({ "settings": { "number_of_shards": 1, "number_of_replicas": 0 } });
    let (status, reply) = raw_request(client, elasticsearch::http::Method::Put, &format!("/{index}"), Some(settings)).await;
    assert_eq!(status, 200, "creating index {index}: {reply}");
    index
}
