//! The Elasticsearch/OpenSearch store: one document per lock id in a hidden,
//! single-shard index. Acquire, extend and release are single scripted
//! updates (atomic, real-time, deciding expiry on the cluster clock); `get` is
//! a real-time GET. No request asks for a refresh.

use std::time::Duration;

use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::{ACCEPT_ENCODING, HeaderMap, HeaderValue};
use serde::Serialize;
use serde_json::{Value, json};

use super::{AcquireOutcome, AcquireRequest, HandOver, LockStore, Renewal, StoreFuture};
use crate::error::{Operation, Result};
use crate::id::LockId;
use crate::info::LockInfo;

mod bulk;
mod coalesce;
mod connect;
mod document;
mod layout;
mod resent;
mod scripts;
mod setup;
mod transport;

use coalesce::{Coalescer, Write};
use document::Document;
use scripts::Update;
use resent::ResentGrants;
pub use connect::{API_KEY_VAR, CA_CERT_VAR, Connection, PASSWORD_VAR, URL_VAR, USERNAME_VAR};
pub use layout::IndexLayout;
use transport::{Context, Engine, Reply, path};

/// How often the engine re-runs an update script that lost a race.
const RETRY_ON_CONFLICT: u32 = 10;

/// The shortest time limit of one attempt of an acquire or extend request.
const MIN_LEASE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// How many holders in a row force-release tries before it gives up on a
/// lock changing hands faster than it can read it.
const FORCE_RELEASE_ATTEMPTS: usize = 3;

/// The default time limit of one request to the engine.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for the cluster at `urls`: one URL, or several separated by
/// commas (requests then go round-robin over the nodes, and a request that
/// cannot reach one node is retried on the next). No sniffing. For callers
/// that have URLs rather than a configured client; [`Connection`] adds
/// credentials and a private CA.
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
    Connection::new(urls).client()
}

/// Locks stored in an Elasticsearch or OpenSearch cluster. It owns its
/// configuration: [`ElasticsearchStore::builder`] chooses the index layout,
/// the request timeout and Kibana's preset.
///
/// ```
/// use std::time::Duration;
/// use eslock::{ElasticsearchStore, LockManager};
///
/// let client = eslock::store::elasticsearch::client("http://localhost:9200")?;
/// let store = ElasticsearchStore::builder(client)
///     .index_name("myapp-locks")
///     .request_timeout(Duration::from_secs(10))
///     .build();
/// assert_eq!(store.layout().concrete_index(), "myapp-locks-000001");
/// let manager = LockManager::builder().store(store).build();
/// # Ok::<(), eslock::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ElasticsearchStore {
    engine: Engine,
    layout: IndexLayout,
    resent_grants: ResentGrants,
    writes: Coalescer,
}

impl ElasticsearchStore {
    /// A store in the default index layout (`.eslock-locks`), with the
    /// default request timeout (30 s).
    pub fn new(client: Elasticsearch) -> Self {
        Self::builder(client).build()
    }

    /// Configures a store on the cluster behind `client`.
    pub fn builder(client: Elasticsearch) -> ElasticsearchStoreBuilder {
        ElasticsearchStoreBuilder { client, layout: IndexLayout::default(), request_timeout: DEFAULT_REQUEST_TIMEOUT }
    }

    /// The index layout.
    pub fn layout(&self) -> &IndexLayout {
        &self.layout
    }

    /// The time limit of one attempt of a request made for a lease of `ttl`:
    /// a third of the TTL (at least a second, at most the request timeout),
    /// so that a node that swallows requests leaves time to try the next one
    /// before the lease's trust deadline.
    fn lease_attempt_timeout(&self, ttl: Duration) -> Duration {
        (ttl / 3).max(MIN_LEASE_ATTEMPT_TIMEOUT).min(self.engine.timeout)
    }

    fn doc_path(&self, endpoint: &str, lock_id: &LockId, query: &str) -> String {
        path(&[self.layout.concrete_index(), endpoint, lock_id.as_str()], query)
    }

    /// Runs a scripted update on one lock document and returns the result
    /// (`created`, `updated`, `noop`) and the reply; `None` when the
    /// document (or index) does not exist. With `together`, it may share a
    /// request with other acquires and releases (see [`coalesce`]).
    async fn scripted_update<P: Serialize + Sync>(
        &self,
        context: Context<'_>,
        lock_id: &LockId,
        body: &Update<'_, P>,
        timeout: Duration,
        together: bool,
    ) -> Result<Option<(String, Reply)>> {
        // Two upserts racing to create the same document conflict; the engine
        // re-runs the script against the winner's document.
        let update_path = self.doc_path("_update", lock_id, &format!("retry_on_conflict={RETRY_ON_CONFLICT}"));
        let reply = if together {
            let body = serde_json::to_string(body).map_err(|err| context.error(format!("the request does not serialize: {err}")))?;
            let write = Write { context, lock_id, path: update_path, body, timeout, retry_on_conflict: RETRY_ON_CONFLICT };
            let bulk_path = path(&[self.layout.concrete_index(), "_bulk"], "");
            self.writes.send(&self.engine, &bulk_path, write).await?
        } else {
            self.engine.send_within(context, Method::Post, &update_path, Some(body), timeout).await?
        };
        let Some(reply) = context.found(reply)? else {
            return Ok(None);
        };
        let result = reply.body["result"]
            .as_str()
            .ok_or_else(|| context.malformed("no result", &reply))?
            .to_string();
        Ok(Some((result, reply)))
    }

    /// Releases `lock_id` if `token` holds it; with `abandon`, also records
    /// `token` as never to be granted when it does not. `token` is JSON: a
    /// document written by another program may hold any value there.
    /// `record` lists the token among the abandoned ones in any case (see
    /// [`resent`]). Each call has its own id, recorded in the document, so
    /// that when a retry of the call finds the lock already released it can
    /// tell whether its own first attempt did it.
    async fn release_document(&self, context: Context<'_>, lock_id: &LockId, token: &Value, abandon: bool, record: bool) -> Result<bool> {
        let release_id = release_id();
        let body = scripts::release(token, &release_id, abandon, record || abandon);
        let Some((_, reply)) = self.scripted_update(context, lock_id, &body, self.engine.timeout, !abandon).await? else {
            return Ok(false);
        };
        let source = reply.body.pointer("/get/_source").ok_or_else(|| context.malformed("no get._source", &reply))?;
        if let Some(token) = token.as_str() {
            // The document lists the token now.
            self.resent_grants.forget(token);
        }
        Ok(released_by(source, &release_id))
    }

    /// Releases `lock_id` if `token` holds it, recording `token` as
    /// abandoned when its acquire was resent.
    async fn release_token(&self, context: Context<'_>, lock_id: &LockId, token: &str) -> Result<bool> {
        self.release_document(context, lock_id, &json!(token), false, self.resent_grants.contains(token)).await
    }

    /// The lock document's `_source` and the reply it came in; `None` when
    /// there is no document. GET is real-time: it sees every write
    /// acknowledged before it.
    async fn read_document(&self, context: Context<'_>, lock_id: &LockId) -> Result<Option<(Value, Reply)>> {
        let Some(reply) = self.engine.expect_found(context, Method::Get, &self.doc_path("_doc", lock_id, ""), None).await? else {
            return Ok(None);
        };
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

    fn info_from_update(context: Context<'_>, lock_id: &LockId, reply: &Reply) -> Result<LockInfo> {
        let source = reply.body.pointer("/get/_source").ok_or_else(|| context.malformed("no get._source", reply))?;
        Document::read(lock_id, source)
            .and_then(Document::held)
            .ok_or_else(|| context.malformed("lock fields", reply).into())
    }
}

/// A fresh id for one release call: 64 random bits, short because the
/// document keeps the last 16.
fn release_id() -> String {
    format!("{:016x}", uuid::Uuid::new_v4().as_u64_pair().0)
}

/// Whether the lock document lists `release_id` among its last releases.
fn released_by(source: &Value, release_id: &str) -> bool {
    matches!(source.get("releasedBy"), Some(Value::Array(ids)) if ids.iter().any(|id| id.as_str() == Some(release_id)))
}

/// Configures an [`ElasticsearchStore`]: [`ElasticsearchStore::builder`].
#[derive(Debug)]
#[must_use]
pub struct ElasticsearchStoreBuilder {
    client: Elasticsearch,
    layout: IndexLayout,
    request_timeout: Duration,
}

impl ElasticsearchStoreBuilder {
    /// Lock index alias `name`; the concrete index is `{name}-000001`
    /// (`.eslock-locks` by default). A bad name is a typed error when the
    /// store is set up, before any request.
    pub fn index_name(mut self, name: impl Into<String>) -> Self {
        self.layout = IndexLayout::named(name);
        self
    }

    /// Lock index `{prefix}-locks` (concrete index `{prefix}-locks-000001`).
    pub fn index_prefix(mut self, prefix: impl AsRef<str>) -> Self {
        self.layout = IndexLayout::with_prefix(prefix);
        self
    }

    /// Use Kibana's lock index and document format (`.kibana_locks`), so this
    /// process and Kibana nodes exclude each other on the same lock id.
    pub fn kibana_compatible(mut self) -> Self {
        self.layout = IndexLayout::kibana();
        self
    }

    /// Time limit of each request to the engine (30 s by default).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Builds the store.
    pub fn build(self) -> ElasticsearchStore {
        let mut headers = HeaderMap::new();
        // Lock replies are small: compressing them costs both sides more
        // CPU than the bytes it saves.
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        if self.layout.is_kibana() {
            // Kibana's product origin, as Kibana itself sends to reach its
            // system indices.
            headers.insert("x-elastic-product-origin", HeaderValue::from_static("kibana"));
        }
        ElasticsearchStore {
            engine: Engine { client: self.client, headers, timeout: self.request_timeout },
            layout: self.layout,
            resent_grants: ResentGrants::default(),
            writes: Coalescer::default(),
        }
    }
}

impl LockStore for ElasticsearchStore {
    fn setup(&self) -> StoreFuture<'_, ()> {
        Box::pin(setup::run(&self.engine, &self.layout))
    }

    fn acquire<'a>(&'a self, request: &'a AcquireRequest) -> StoreFuture<'a, AcquireOutcome> {
        Box::pin(async move {
            let context = Context { operation: Operation::Acquire, lock_id: Some(&request.lock_id) };
            let timeout = self.lease_attempt_timeout(request.ttl);
            let Some((_, reply)) = self.scripted_update(context, &request.lock_id, &scripts::acquire(request), timeout, true).await? else {
                return Err(context.error("lock index is missing and could not be created").into());
            };
            let source = reply.body.pointer("/get/_source").ok_or_else(|| context.malformed("no get._source", &reply))?;
            let document = Document::read(&request.lock_id, source).ok_or_else(|| context.malformed("lock fields", &reply))?;
            // A noop can be our own retried request: the token says who holds
            // it. A released document here means our token was refused.
            match document.held() {
                Some(info) if info.token == request.token => {
                    if reply.resent {
                        self.resent_grants.insert(&request.token);
                    }
                    Ok(AcquireOutcome::Acquired(info))
                }
                holder => {
                    if reply.resent {
                        // A copy of the request may still arrive and take
                        // the lock for a token nobody will hold: refuse it.
                        // Should that fail, the error makes the caller
                        // abandon the token in the background.
                        self.release_document(context, &request.lock_id, &json!(request.token), true, true).await?;
                    }
                    Ok(AcquireOutcome::Held(holder))
                }
            }
        })
    }

    fn extend<'a>(&'a self, lock_id: &'a LockId, token: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockInfo>> {
        Box::pin(async move {
            let context = Context { operation: Operation::Extend, lock_id: Some(lock_id) };
            match self.scripted_update(context, lock_id, &scripts::extend(token, ttl), self.lease_attempt_timeout(ttl), false).await? {
                Some((result, reply)) if result == "updated" => Ok(Some(Self::info_from_update(context, lock_id, &reply)?)),
                Some((result, _)) if result == "noop" => Ok(None),
                Some((_, reply)) => Err(context.malformed("an update result an extend cannot have", &reply).into()),
                None => Ok(None),
            }
        })
    }

    fn extend_many<'a>(&'a self, renewals: &'a [Renewal]) -> StoreFuture<'a, Vec<Result<Option<LockInfo>>>> {
        Box::pin(async move {
            let Some(shortest) = renewals.iter().map(|renewal| renewal.ttl).min() else {
                return Ok(Vec::new());
            };
            let context = Context { operation: Operation::Extend, lock_id: None };
            let bulk_path = path(&[self.layout.concrete_index(), "_bulk"], "");
            let body = bulk::renewal_body(renewals, RETRY_ON_CONFLICT);
            let reply = self.engine.send_ndjson(context, &bulk_path, &body, self.lease_attempt_timeout(shortest)).await?;
            bulk::renewal_outcomes(renewals, &reply)
        })
    }

    fn hand_over<'a>(&'a self, lock_id: &'a LockId, token: &'a str, next: &'a AcquireRequest) -> StoreFuture<'a, HandOver> {
        Box::pin(async move {
            let context = Context { operation: Operation::Release, lock_id: Some(lock_id) };
            let release_id = release_id();
            let body = scripts::hand_over(token, &release_id, self.resent_grants.contains(token), next);
            let timeout = self.lease_attempt_timeout(next.ttl);
            let Some((_, reply)) = self.scripted_update(context, lock_id, &body, timeout, false).await? else {
                return Ok(HandOver::NotHeld);
            };
            let source = reply.body.pointer("/get/_source").ok_or_else(|| context.malformed("no get._source", &reply))?;
            let document = Document::read(lock_id, source).ok_or_else(|| context.malformed("lock fields", &reply))?;
            // The document lists the token now, if it had to.
            self.resent_grants.forget(token);
            // Judged from the document, so that a retried request that finds
            // its own earlier hand-over done reports it.
            let released_by_us = released_by(source, &release_id);
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
            self.release_token(context, lock_id, token).await
        })
    }

    fn abandon<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let context = Context { operation: Operation::Release, lock_id: Some(lock_id) };
            self.release_document(context, lock_id, &json!(token), true, true).await
        })
    }

    fn get<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, Option<LockInfo>> {
        Box::pin(async move {
            let context = Context { operation: Operation::Get, lock_id: Some(lock_id) };
            let Some((source, reply)) = self.read_document(context, lock_id).await? else {
                return Ok(None);
            };
            let document = Document::read(lock_id, &source).ok_or_else(|| context.malformed("lock fields", &reply))?;
            let Some(info) = document.held() else {
                return Ok(None);
            };
            let now = self.engine.cluster_now(context).await?;
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
            let Some(hits) = self.engine.search_all(context, self.layout.concrete_index(), live).await? else {
                return Ok(Vec::new());
            };
            let mut locks = Vec::with_capacity(hits.len());
            for hit in &hits {
                match Document::from_hit(hit).map(Document::held) {
                    Some(Some(lock)) => locks.push(lock),
                    Some(None) => {}
                    // One unreadable document must not hide every other lock.
                    None => tracing::warn!(lock_id = ?hit["_id"], "skipping an unreadable lock document; force_release removes it"),
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
                // Recorded as abandoned: this process cannot know how the
                // holder's token was acquired, and a late copy of its request
                // must not bring the forced-out lease back.
                if self.release_document(context, lock_id, &token, false, true).await? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn builder_chooses_the_layout() {
        let store = |builder: ElasticsearchStoreBuilder| builder.build().index().map(str::to_string);
        let client = Elasticsearch::default;
        assert_eq!(store(ElasticsearchStore::builder(client())).as_deref(), Some(".eslock-locks-000001"));
        assert_eq!(store(ElasticsearchStore::builder(client()).index_prefix("billing")).as_deref(), Some("billing-locks-000001"));
        assert_eq!(store(ElasticsearchStore::builder(client()).kibana_compatible()).as_deref(), Some(".kibana_locks-000001"));
        assert!(ElasticsearchStore::builder(client()).kibana_compatible().build().accepts_foreign_ids());
    }

    #[tokio::test]
    async fn bad_index_names_are_typed_errors() {
        let store = ElasticsearchStore::builder(Elasticsearch::default()).index_name("Bad Name").build();
        let err = store.setup().await.unwrap_err();
        assert!(matches!(&err, Error::InvalidOption(e) if e.option == "index"), "{err:?}");
    }
}
