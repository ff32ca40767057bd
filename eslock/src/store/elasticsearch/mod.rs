//! The Elasticsearch/OpenSearch store: one document per lock id in a hidden,
//! single-shard index. Acquire, extend and release are single scripted
//! updates (atomic, real-time, deciding expiry on the cluster clock); `get` is
//! a real-time GET. No request asks for a refresh.

use std::time::{Duration, SystemTime};

use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::Url;
use elasticsearch::http::transport::{MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder};
use serde_json::{Value, json};

use super::{AcquireOutcome, AcquireRequest, HandOver, LockStore, Renewal, StoreFuture};
use crate::error::{Operation, Result};
use crate::{LockId, LockInfo};

mod bulk;
mod document;
mod layout;
mod scripts;
mod setup;
mod transport;

use document::Document;
pub use layout::IndexLayout;
use transport::{Context, Reply, encode_segment, send, send_body};

/// How often the engine re-runs an update script that lost a race.
const RETRY_ON_CONFLICT: u32 = 10;

/// The shortest time limit of one attempt of an acquire or extend request.
const MIN_LEASE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// How many holders in a row force-release tries before it gives up on a
/// lock changing hands faster than it can read it.
const FORCE_RELEASE_ATTEMPTS: usize = 3;

/// Documents per page when searching the whole lock index.
const SEARCH_PAGE_SIZE: usize = 1_000;

/// How long the engine keeps a scroll between two pages.
const SCROLL_KEEP_ALIVE: &str = "1m";

/// The default time limit of one request to the engine.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for the cluster at `urls`: one URL, or several separated by
/// commas (requests then go round-robin over the nodes, and a request that
/// cannot reach one node is retried on the next). No sniffing. For callers
/// that have URLs rather than a configured client.
///
/// ```
/// use eslock::store::elasticsearch::client;
///
/// let manager = eslock::LockManager::elasticsearch(client("http://127.0.0.1:9200").unwrap());
/// assert!(client("http://10.0.0.1:9200,http://10.0.0.2:9200").is_ok());
/// assert!(client("not a url").is_err());
/// assert!(client("").is_err());
/// ```
pub fn client(urls: &str) -> Result<Elasticsearch> {
    let parsed = urls
        .split(',')
        .map(|url| {
            url.trim()
                .parse::<Url>()
                .map_err(|err| crate::Error::invalid_option("url", format!("{url:?} is not a URL: {err}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let transport = match <[Url; 1]>::try_from(parsed) {
        Ok([url]) => TransportBuilder::new(SingleNodeConnectionPool::new(url)).build(),
        Err(several) => TransportBuilder::new(MultiNodeConnectionPool::round_robin(several, None)).build(),
    };
    let transport = transport.map_err(|err| crate::Error::invalid_option("url", format!("no HTTP client for {urls}: {err}")))?;
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
    /// Sent with every request: Kibana's product origin in the Kibana
    /// preset, as Kibana itself sends to reach its system indices.
    headers: HeaderMap,
}

impl ElasticsearchStore {
    /// A store in the default index layout (`.eslock-locks`).
    pub fn new(client: Elasticsearch) -> Self {
        Self::with_layout(client, IndexLayout::default())
    }

    /// A store in the given index layout.
    pub fn with_layout(client: Elasticsearch, layout: IndexLayout) -> Self {
        let mut headers = HeaderMap::new();
        if layout.is_kibana() {
            headers.insert("x-elastic-product-origin", HeaderValue::from_static("kibana"));
        }
        ElasticsearchStore {
            client,
            layout,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            headers,
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
        send(&self.client, context, method, path, body, &self.headers, Some(self.request_timeout)).await
    }

    /// The time limit of one attempt of a request made for a lease of `ttl`:
    /// a third of the TTL (at least a second, at most the request timeout),
    /// so that a node that swallows requests leaves time to try the next one
    /// before the lease's trust deadline.
    fn lease_attempt_timeout(&self, ttl: Duration) -> Duration {
        (ttl / 3).max(MIN_LEASE_ATTEMPT_TIMEOUT).min(self.request_timeout)
    }

    fn doc_path(&self, endpoint: &str, lock_id: &LockId) -> String {
        format!("/{}/{endpoint}/{}", encode_segment(self.layout.concrete_index()), encode_segment(lock_id.as_str()))
    }

    /// Runs a scripted update on one lock document and returns the result
    /// (`created`, `updated`, `noop`) and the reply; `None` when the
    /// document (or index) does not exist.
    async fn scripted_update(&self, context: Context<'_>, lock_id: &LockId, body: Value, timeout: Duration) -> Result<Option<(String, Reply)>> {
        // Two upserts racing to create the same document conflict; the engine
        // re-runs the script against the winner's document.
        let path = format!("{}?retry_on_conflict={RETRY_ON_CONFLICT}", self.doc_path("_update", lock_id));
        let reply = send(&self.client, context, Method::Post, &path, Some(&body), &self.headers, Some(timeout)).await?;
        if reply.is_not_found() {
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

    /// Releases `lock_id` if `token` holds it; with `abandon`, also records
    /// `token` as never to be granted when it does not. `token` is JSON: a
    /// document written by another program may hold any value there.
    /// Each call has its own id, recorded in the document, so that when a
    /// retry of the call finds the lock already released it can tell whether
    /// its own first attempt did it.
    async fn release_document(&self, context: Context<'_>, lock_id: &LockId, token: &Value, abandon: bool) -> Result<bool> {
        let release_id = uuid::Uuid::new_v4().to_string();
        let mut body = json!({
            "_source": ["releasedBy"],
            "script": {
                "lang": "painless",
                "source": &*scripts::RELEASE,
                "params": { "token": token, "release_id": release_id, "abandon": abandon }
            }
        });
        if abandon {
            // The token is recorded even before any document exists.
            body["scripted_upsert"] = json!(true);
            body["upsert"] = json!({});
        }
        // Ours when the document lists this call (or a retry of it) among its releasers.
        Ok(match self.scripted_update(context, lock_id, body, self.request_timeout).await? {
            Some((_, reply)) => {
                let source = reply.body.pointer("/get/_source").ok_or_else(|| context.malformed("no get._source", &reply))?;
                match source.get("releasedBy") {
                    Some(Value::Array(ids)) => ids.iter().any(|id| id.as_str() == Some(&release_id)),
                    _ => false,
                }
            }
            None => false,
        })
    }

    /// The lock document's `_source` and the reply it came in; `None` when
    /// there is no document. GET is real-time: it sees every write
    /// acknowledged before it.
    async fn read_document(&self, context: Context<'_>, lock_id: &LockId) -> Result<Option<(Value, Reply)>> {
        let reply = self.request(context, Method::Get, &self.doc_path("_doc", lock_id), None).await?;
        if reply.is_not_found() {
            return Ok(None);
        }
        if !reply.is_success() {
            return Err(context.unexpected(&reply).into());
        }
        match reply.body.get("_source").cloned() {
            Some(source) => Ok(Some((source, reply))),
            None => Err(context.malformed("no _source", &reply).into()),
        }
    }

    /// The raw `token` of the lock document (any JSON, as another program
    /// may have written it); `None` when there is no document or no holder.
    async fn holder_token(&self, context: Context<'_>, lock_id: &LockId) -> Result<Option<Value>> {
        let source = self.read_document(context, lock_id).await?.map(|(source, _)| source);
        Ok(source.and_then(|mut source| source.get_mut("token").map(Value::take)).filter(|token| !token.is_null()))
    }

    /// Every lock document matching `query` (all of them, page by page);
    /// `None` when the index is missing. Search only sees refreshed
    /// documents; listing is an operator action, so it pays for one explicit
    /// refresh to be exact.
    async fn search_all(&self, context: Context<'_>, query: Value) -> Result<Option<Vec<Value>>> {
        let index = encode_segment(self.layout.concrete_index());
        let refresh = self.request(context, Method::Post, &format!("/{index}/_refresh"), None).await?;
        if refresh.is_not_found() {
            return Ok(None);
        }
        if !refresh.is_success() {
            return Err(context.unexpected(&refresh).into());
        }
        // An exact total (not capped at 10,000) bounds the paging below.
        let first = json!({ "size": SEARCH_PAGE_SIZE, "sort": ["_doc"], "track_total_hits": true, "query": query });
        let mut reply = self
            .request(context, Method::Post, &format!("/{index}/_search?scroll={SCROLL_KEEP_ALIVE}"), Some(&first))
            .await?;
        let mut hits = Vec::new();
        let mut scroll_id = None;
        let total = reply.body.pointer("/hits/total/value").or(reply.body.pointer("/hits/total")).and_then(Value::as_u64);
        let outcome = loop {
            if !reply.is_success() {
                break Err(context.unexpected(&reply).into());
            }
            let Some(total) = total else {
                break Err(context.malformed("no hits.total", &reply).into());
            };
            scroll_id = reply.body["_scroll_id"].as_str().map(str::to_string).or(scroll_id);
            // Taken out of the reply rather than cloned: pages can be large.
            let page = match reply.body.pointer_mut("/hits/hits").map(Value::take) {
                Some(Value::Array(page)) => page,
                _ => break Err(context.malformed("no hits", &reply).into()),
            };
            if page.is_empty() {
                break Ok(());
            }
            hits.extend(page);
            // Never more than the engine said there are: a reply that keeps
            // paging would otherwise never end.
            if hits.len() as u64 > total {
                break Err(context.malformed("more hits than hits.total", &reply).into());
            }
            if hits.len() as u64 == total {
                break Ok(());
            }
            let Some(id) = &scroll_id else {
                break Err(context.malformed("no _scroll_id", &reply).into());
            };
            let next = json!({ "scroll": SCROLL_KEEP_ALIVE, "scroll_id": id });
            reply = self.request(context, Method::Post, "/_search/scroll", Some(&next)).await?;
        };
        if let Some(id) = scroll_id {
            // Frees the engine's search context at once rather than at its
            // keep-alive; a failure here changes nothing for the caller.
            let _ = self.request(context, Method::Delete, "/_search/scroll", Some(&json!({ "scroll_id": [id] }))).await;
        }
        outcome.map(|()| Some(hits))
    }

    /// The cluster's clock now, from an ingest simulation (no index, no
    /// write): what `get` compares expiry with, never the client's clock.
    async fn cluster_now(&self, context: Context<'_>) -> Result<SystemTime> {
        let body = json!({ "pipeline": { "processors": [] }, "docs": [{ "_source": {} }] });
        let reply = self
            .request(context, Method::Post, "/_ingest/pipeline/_simulate?filter_path=docs.doc._ingest.timestamp", Some(&body))
            .await?;
        if !reply.is_success() {
            return Err(context.unexpected(&reply).into());
        }
        reply
            .body
            .pointer("/docs/0/doc/_ingest/timestamp")
            .and_then(document::instant)
            .ok_or_else(|| context.malformed("no _ingest.timestamp", &reply).into())
    }

    fn info_from_update(context: Context<'_>, lock_id: &LockId, reply: &Reply) -> Result<LockInfo> {
        let source = reply.body.pointer("/get/_source").ok_or_else(|| context.malformed("no get._source", reply))?;
        Document::read(lock_id.as_str(), source)
            .and_then(Document::held)
            .ok_or_else(|| context.malformed("lock fields", reply).into())
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
                "_source": document::LOCK_FIELDS,
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
            let timeout = self.lease_attempt_timeout(request.ttl);
            let Some((_, reply)) = self.scripted_update(context, &request.lock_id, body, timeout).await? else {
                return Err(context.error("lock index is missing and could not be created").into());
            };
            let source = reply.body.pointer("/get/_source").ok_or_else(|| context.malformed("no get._source", &reply))?;
            let document = Document::read(request.lock_id.as_str(), source).ok_or_else(|| context.malformed("lock fields", &reply))?;
            // A noop can be our own retried request: the token says who holds
            // it. A released document here means our token was refused.
            Ok(match document.held() {
                Some(info) if info.token == request.token => AcquireOutcome::Acquired(info),
                holder => AcquireOutcome::Held(holder),
            })
        })
    }

    fn extend<'a>(&'a self, lock_id: &'a LockId, token: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockInfo>> {
        Box::pin(async move {
            let context = Context { operation: Operation::Extend, lock_id: Some(lock_id) };
            let body = json!({
                "_source": document::LOCK_FIELDS,
                "script": {
                    "lang": "painless",
                    "source": &*scripts::EXTEND,
                    "params": { "token": token, "ttl": ttl.as_millis() as u64 }
                }
            });
            match self.scripted_update(context, lock_id, body, self.lease_attempt_timeout(ttl)).await? {
                Some((result, reply)) if result == "updated" => Ok(Some(Self::info_from_update(context, lock_id, &reply)?)),
                _ => Ok(None),
            }
        })
    }

    fn extend_many<'a>(&'a self, renewals: &'a [Renewal]) -> StoreFuture<'a, Vec<Result<Option<LockInfo>>>> {
        Box::pin(async move {
            let Some(shortest) = renewals.iter().map(|renewal| renewal.ttl).min() else {
                return Ok(Vec::new());
            };
            let context = Context { operation: Operation::Extend, lock_id: None };
            let path = format!("/{}/_bulk", encode_segment(self.layout.concrete_index()));
            let body = bulk::renewal_body(renewals, RETRY_ON_CONFLICT);
            let mut headers = self.headers.clone();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
            let timeout = self.lease_attempt_timeout(shortest);
            let reply = send_body(&self.client, context, Method::Post, &path, Some(&body), &headers, Some(timeout)).await?;
            bulk::renewal_outcomes(renewals, &reply)
        })
    }

    fn hand_over<'a>(&'a self, lock_id: &'a LockId, token: &'a str, next: &'a AcquireRequest) -> StoreFuture<'a, HandOver> {
        Box::pin(async move {
            let context = Context { operation: Operation::Release, lock_id: Some(lock_id) };
            let release_id = uuid::Uuid::new_v4().to_string();
            let fields: Vec<&str> = document::LOCK_FIELDS.iter().copied().chain(["releasedBy"]).collect();
            let body = json!({
                "_source": fields,
                "script": {
                    "lang": "painless",
                    "source": &*scripts::HAND_OVER,
                    "params": {
                        "token": token,
                        "release_id": release_id,
                        "next_token": next.token,
                        "ttl": next.ttl.as_millis() as u64,
                        "metadata": next.metadata,
                    }
                }
            });
            let timeout = self.lease_attempt_timeout(next.ttl);
            let Some((_, reply)) = self.scripted_update(context, lock_id, body, timeout).await? else {
                return Ok(HandOver::NotHeld);
            };
            let source = reply.body.pointer("/get/_source").ok_or_else(|| context.malformed("no get._source", &reply))?;
            let document = Document::read(lock_id.as_str(), source).ok_or_else(|| context.malformed("lock fields", &reply))?;
            // Judged from the document, so that a retried request that finds
            // its own earlier hand-over done reports it.
            let released_by_us = matches!(source.get("releasedBy"), Some(Value::Array(ids)) if ids.iter().any(|id| id.as_str() == Some(&release_id)));
            Ok(match document.held() {
                Some(info) if info.token == next.token => HandOver::HandedOver(info),
                _ if released_by_us => HandOver::Released,
                _ => HandOver::NotHeld,
            })
        })
    }

    fn release<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let context = Context { operation: Operation::Release, lock_id: Some(lock_id) };
            self.release_document(context, lock_id, &json!(token), false).await
        })
    }

    fn abandon<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let context = Context { operation: Operation::Release, lock_id: Some(lock_id) };
            self.release_document(context, lock_id, &json!(token), true).await
        })
    }

    fn get<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, Option<LockInfo>> {
        Box::pin(async move {
            let context = Context { operation: Operation::Get, lock_id: Some(lock_id) };
            let Some((source, reply)) = self.read_document(context, lock_id).await? else {
                return Ok(None);
            };
            let document = Document::read(lock_id.as_str(), &source).ok_or_else(|| context.malformed("lock fields", &reply))?;
            let Some(info) = document.held() else {
                return Ok(None);
            };
            let now = self.cluster_now(context).await?;
            Ok((!info.is_expired_at(now)).then_some(info))
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<LockInfo>> {
        Box::pin(async move {
            let context = Context { operation: Operation::List, lock_id: None };
            // Expiry is decided by the engine (`now` is the cluster's clock).
            let live = json!({ "bool": { "filter": [
                { "exists": { "field": "token" } },
                { "range": { "expiresAt": { "gt": "now" } } }
            ] } });
            let Some(hits) = self.search_all(context, live).await? else {
                return Ok(Vec::new());
            };
            let mut locks = Vec::with_capacity(hits.len());
            for hit in &hits {
                let id = hit["_id"].as_str().unwrap_or_default();
                match Document::read(id, &hit["_source"]).map(Document::held) {
                    Some(Some(lock)) => locks.push(lock),
                    Some(None) => {}
                    // One unreadable document must not hide every other lock.
                    None => tracing::warn!(lock_id = id, "skipping an unreadable lock document; force_release removes it"),
                }
            }
            locks.sort_by(|a, b| a.lock_id.cmp(&b.lock_id));
            Ok(locks)
        })
    }

    fn force_release<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let context = Context { operation: Operation::ForceRelease, lock_id: Some(lock_id) };
            // By the holder's own token, so that a retried request can never
            // release whoever took the lock after it.
            let mut holder = self.holder_token(context, lock_id).await?;
            for _ in 0..FORCE_RELEASE_ATTEMPTS {
                let Some(token) = holder else { return Ok(false) };
                if self.release_document(context, lock_id, &token, false).await? {
                    return Ok(true);
                }
                // Someone else took it between the read and the release: go
                // again for the new holder; no holder now means nothing to do.
                let now = self.holder_token(context, lock_id).await?;
                if now.as_ref() == Some(&token) {
                    return Ok(false);
                }
                holder = now;
            }
            Ok(false)
        })
    }

    fn index(&self) -> Option<&str> {
        Some(self.layout.concrete_index())
    }

    fn accepts_foreign_ids(&self) -> bool {
        self.layout.is_kibana()
    }
}
