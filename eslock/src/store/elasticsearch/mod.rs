//! The Elasticsearch/OpenSearch store: one document per lock id in a hidden,
//! single-shard index. Acquire, extend and release are single scripted
//! updates (atomic, real-time, deciding expiry on the cluster clock); `get` is
//! a real-time GET. No request asks for a refresh.

use std::time::{Duration, SystemTime};

use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use serde_json::{Value, json};

use super::{AcquireOutcome, AcquireRequest, LockStore, StoreFuture};
use crate::error::{Operation, Result};
use crate::{LockId, LockInfo};

mod document;
mod layout;
mod scripts;
mod setup;
mod transport;

pub use layout::IndexLayout;
use transport::{Context, Reply, encode_segment, send};

/// How often the engine re-runs an update script that lost a race.
const RETRY_ON_CONFLICT: u32 = 10;

/// The default time limit of one request to the engine.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for the cluster at `url` (one node, no sniffing), for callers
/// that have a URL rather than a configured client.
///
/// ```
/// let client = eslock::store::elasticsearch::client("http://127.0.0.1:9200").unwrap();
/// let manager = eslock::LockManager::elasticsearch(client);
/// assert!(eslock::store::elasticsearch::client("not a url").is_err());
/// ```
pub fn client(url: &str) -> Result<Elasticsearch> {
    let parsed = url
        .parse()
        .map_err(|err| crate::Error::invalid_option("url", format!("{url:?} is not a URL: {err}")))?;
    let transport = TransportBuilder::new(SingleNodeConnectionPool::new(parsed))
        .build()
        .map_err(|err| crate::Error::invalid_option("url", format!("no HTTP client for {url}: {err}")))?;
    Ok(Elasticsearch::new(transport))
}

/// Locks stored in an Elasticsearch or OpenSearch cluster.
///
/// ```no_run
/// use elasticsearch::Elasticsearch;
/// use eslock::LockManager;
///
/// let client = Elasticsearch::default(); // http://localhost:9200
/// let manager = LockManager::elasticsearch(client);
/// ```
#[derive(Debug, Clone)]
pub struct ElasticsearchStore {
    client: Elasticsearch,
    layout: IndexLayout,
    request_timeout: Duration,
}

impl ElasticsearchStore {
    /// A store in the default index layout (`.eslock-locks`).
    pub fn new(client: Elasticsearch) -> Self {
        Self::with_layout(client, IndexLayout::default())
    }

    /// A store in the given index layout.
    pub fn with_layout(client: Elasticsearch, layout: IndexLayout) -> Self {
        ElasticsearchStore {
            client,
            layout,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Sets the time limit of each request (30 s by default).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The index layout.
    pub fn layout(&self) -> &IndexLayout {
        &self.layout
    }

    async fn request(&self, context: Context<'_>, method: Method, path: &str, body: Option<&Value>) -> Result<Reply> {
        send(&self.client, context, method, path, body, Some(self.request_timeout)).await
    }

    fn doc_path(&self, endpoint: &str, lock_id: &LockId) -> String {
        format!("/{}/{endpoint}/{}", encode_segment(self.layout.concrete_index()), encode_segment(lock_id.as_str()))
    }

    /// Runs a scripted update on one lock document and returns the result
    /// (`created`, `updated`, `noop`, `deleted`) and the document after it;
    /// `None` when the document (or index) does not exist.
    async fn scripted_update(&self, context: Context<'_>, lock_id: &LockId, body: Value) -> Result<Option<(String, Reply)>> {
        // Two upserts racing to create the same document conflict; the engine
        // re-runs the script against the winner's document.
        let path = format!("{}?retry_on_conflict={RETRY_ON_CONFLICT}", self.doc_path("_update", lock_id));
        let reply = self.request(context, Method::Post, &path, Some(&body)).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        if !reply.is_success() {
            return Err(context.unexpected(&reply).into());
        }
        let result = reply.body["result"]
            .as_str()
            .ok_or_else(|| context.malformed("no result", &reply))?
            .to_string();
        Ok(Some((result, reply)))
    }

    /// Every lock document (at most 10,000); `None` when the index is missing.
    /// Search only sees refreshed documents; listing is an operator action,
    /// so it pays for one explicit refresh to be exact.
    async fn search_all(&self, context: Context<'_>) -> Result<Option<Reply>> {
        let index = encode_segment(self.layout.concrete_index());
        let refresh = self.request(context, Method::Post, &format!("/{index}/_refresh"), None).await?;
        if refresh.status == 404 {
            return Ok(None);
        }
        if !refresh.is_success() {
            return Err(context.unexpected(&refresh).into());
        }
        let query = json!({ "size": 10_000, "query": { "match_all": {} } });
        let reply = self.request(context, Method::Post, &format!("/{index}/_search"), Some(&query)).await?;
        if !reply.is_success() {
            return Err(context.unexpected(&reply).into());
        }
        Ok(Some(reply))
    }

    fn info_from_update(context: Context<'_>, lock_id: &LockId, reply: &Reply) -> Result<LockInfo> {
        let source = reply.body.pointer("/get/_source").ok_or_else(|| context.malformed("no get._source", reply))?;
        Ok(document::lock_info(lock_id.as_str(), source).ok_or_else(|| context.malformed("lock fields", reply))?)
    }
}

impl LockStore for ElasticsearchStore {
    fn setup(&self) -> StoreFuture<'_, ()> {
        Box::pin(setup::run(self))
    }

    fn acquire<'a>(&'a self, request: &'a AcquireRequest) -> StoreFuture<'a, AcquireOutcome> {
        Box::pin(async move {
            let context = Context { operation: Operation::Acquire, lock_id: Some(&request.lock_id) };
            let body = json!({
                "scripted_upsert": true,
                "_source": true,
                "script": {
                    "lang": "painless",
                    "source": &*scripts::ACQUIRE,
                    "params": {
                        "token": request.token,
                        "ttl": request.ttl.as_millis() as u64,
                        "metadata": request.metadata,
                    }
                },
                "upsert": {}
            });
            let Some((_, reply)) = self.scripted_update(context, &request.lock_id, body).await? else {
                return Err(context.error("lock index is missing and could not be created").into());
            };
            let info = Self::info_from_update(context, &request.lock_id, &reply)?;
            // A noop can be our own retried request: the token says who holds it.
            Ok(if info.token == request.token {
                AcquireOutcome::Acquired(info)
            } else {
                AcquireOutcome::Held(Some(info))
            })
        })
    }

    fn extend<'a>(&'a self, lock_id: &'a LockId, token: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockInfo>> {
        Box::pin(async move {
            let context = Context { operation: Operation::Extend, lock_id: Some(lock_id) };
            let body = json!({
                "_source": true,
                "script": {
                    "lang": "painless",
                    "source": &*scripts::EXTEND,
                    "params": { "token": token, "ttl": ttl.as_millis() as u64 }
                }
            });
            match self.scripted_update(context, lock_id, body).await? {
                Some((result, reply)) if result == "updated" => Ok(Some(Self::info_from_update(context, lock_id, &reply)?)),
                _ => Ok(None),
            }
        })
    }

    fn release<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let context = Context { operation: Operation::Release, lock_id: Some(lock_id) };
            let body = json!({
                "script": { "lang": "painless", "source": scripts::RELEASE, "params": { "token": token } }
            });
            let outcome = self.scripted_update(context, lock_id, body).await?;
            Ok(matches!(outcome, Some((result, _)) if result == "deleted"))
        })
    }

    fn get<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, Option<LockInfo>> {
        Box::pin(async move {
            let context = Context { operation: Operation::Get, lock_id: Some(lock_id) };
            // GET is real-time: it sees every write acknowledged before it.
            let reply = self.request(context, Method::Get, &self.doc_path("_doc", lock_id), None).await?;
            if reply.status == 404 {
                return Ok(None);
            }
            if !reply.is_success() {
                return Err(context.unexpected(&reply).into());
            }
            let source = reply.body.get("_source").ok_or_else(|| context.malformed("no _source", &reply))?;
            let info = document::lock_info(lock_id.as_str(), source).ok_or_else(|| context.malformed("lock fields", &reply))?;
            Ok((!info.is_expired_at(SystemTime::now())).then_some(info))
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<LockInfo>> {
        Box::pin(async move {
            let context = Context { operation: Operation::List, lock_id: None };
            let Some(reply) = self.search_all(context).await? else {
                return Ok(Vec::new());
            };
            let hits = reply.body.pointer("/hits/hits").and_then(Value::as_array).ok_or_else(|| context.malformed("no hits", &reply))?;
            let now = SystemTime::now();
            let mut locks = Vec::with_capacity(hits.len());
            for hit in hits {
                let lock = document::lock_info_from_hit(hit).ok_or_else(|| context.malformed("lock fields in a hit", &reply))?;
                if !lock.is_expired_at(now) {
                    locks.push(lock);
                }
            }
            locks.sort_by(|a, b| a.lock_id.cmp(&b.lock_id));
            Ok(locks)
        })
    }

    fn force_release<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let context = Context { operation: Operation::ForceRelease, lock_id: Some(lock_id) };
            let reply = self.request(context, Method::Delete, &self.doc_path("_doc", lock_id), None).await?;
            match reply.status {
                404 => Ok(false),
                _ if reply.is_success() => Ok(reply.body["result"] == "deleted"),
                _ => Err(context.unexpected(&reply).into()),
            }
        })
    }

    fn index(&self) -> Option<&str> {
        Some(self.layout.concrete_index())
    }
}
