//! The request layer: the one place that talks to the engine. It encodes
//! paths, retries transient failures a bounded number of times, checks
//! statuses, and turns every other failure into a typed `BackendError`
//! naming the operation and lock id, with the engine's text cut at a
//! character boundary. The store and its setup build on it and on nothing
//! below it.

use std::time::{Duration, SystemTime};

use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::request::{Body, JsonBody};
use serde::Serialize;
use serde_json::{Value, json};

use super::document;
use crate::backoff::Backoff;
use crate::error::{BackendError, Operation, Result};
use crate::id::LockId;

/// How many times a request is sent at most when it keeps failing transiently.
const MAX_ATTEMPTS: u32 = 4;

/// A response with its status and JSON body (`Null` when empty).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
    /// The request was sent more than once (an attempt failed or timed out
    /// and was retried): a copy of it may still reach the engine later.
    pub resent: bool,
}

impl Reply {
    /// The engine's `error.type`, for 4xx/5xx replies.
    pub(super) fn error_type(&self) -> Option<&str> {
        self.body.pointer("/error/type").and_then(Value::as_str)
    }

    pub(super) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A 404 that the engine means: no such document or index. Any other
    /// 404 (a proxy's, a wrong base path) is an unexpected reply.
    pub(super) fn is_not_found(&self) -> bool {
        self.status == 404
            && (self.body.get("found") == Some(&Value::Bool(false))
                || matches!(self.error_type(), Some("index_not_found_exception" | "document_missing_exception")))
    }
}

/// What is being done, for error messages and logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub operation: Operation,
    pub lock_id: Option<&'a LockId>,
}

impl Context<'_> {
    pub(super) fn error(&self, reason: impl Into<String>) -> BackendError {
        BackendError::new(self.operation, self.lock_id, reason)
    }

    /// The error for a reply the caller did not expect.
    pub(super) fn unexpected(&self, reply: &Reply) -> BackendError {
        let kind = reply.error_type().unwrap_or("unexpected response");
        let reason = describe_error(&reply.body);
        self.error(format!("HTTP {} {kind}: {reason}", reply.status)).with_status(reply.status)
    }

    /// The error for a reply that lacks what the protocol promises.
    pub(super) fn malformed(&self, what: &str, reply: &Reply) -> BackendError {
        let body = reply.body.to_string();
        self.error(format!("malformed response ({what}): {}", shorten(&body, 500))).with_status(reply.status)
    }

    /// The reply if it is a success; else the error that describes it.
    pub(super) fn success(&self, reply: Reply) -> Result<Reply> {
        if reply.is_success() { Ok(reply) } else { Err(self.unexpected(&reply).into()) }
    }

    /// The reply if it is a success, `None` if the engine found no such
    /// document or index; else the error that describes it.
    pub(super) fn found(&self, reply: Reply) -> Result<Option<Reply>> {
        if reply.is_not_found() { Ok(None) } else { self.success(reply).map(Some) }
    }
}

fn describe_error(body: &Value) -> String {
    let error = &body["error"];
    let mut reason = error["reason"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| shorten(&body.to_string(), 300).to_string());
    if let Some(cause) = error.pointer("/caused_by/reason").and_then(Value::as_str) {
        reason.push_str(&format!(" (caused by: {cause})"));
    }
    reason
}

/// At most `max_bytes` of `text`, cut at a character boundary (replies may
/// hold any UTF-8, and cutting inside a character would panic).
fn shorten(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

pub(super) fn is_transient_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// The path `/a/b/c` with every segment percent-encoded (index names and
/// lock ids may contain `/` and `:`), then `query` if not empty.
pub(crate) fn path(segments: &[&str], query: &str) -> String {
    let mut path = String::new();
    for segment in segments {
        path.push('/');
        path.push_str(&encode_segment(segment));
    }
    if !query.is_empty() {
        path.push('?');
        path.push_str(query);
    }
    path
}

fn encode_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Documents per page when searching a whole index.
const SEARCH_PAGE_SIZE: usize = 1_000;

/// How long the engine keeps a scroll between two pages.
const SCROLL_KEEP_ALIVE: &str = "1m";

/// The engine as the store sees it: a client, the headers every request
/// carries, and the time limit of each request.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    pub client: Elasticsearch,
    pub headers: HeaderMap,
    pub timeout: Duration,
}

impl Engine {
    /// Sends one request with the usual time limit; any status comes back.
    pub(super) async fn send(&self, context: Context<'_>, method: Method, path: &str, body: Option<&Value>) -> Result<Reply> {
        self.send_within(context, method, path, body, self.timeout).await
    }

    /// [`send`](Self::send) with a time limit of its own.
    pub(super) async fn send_within<B: Serialize + Sync>(&self, context: Context<'_>, method: Method, path: &str, body: Option<&B>, timeout: Duration) -> Result<Reply> {
        send(&self.client, context, method, path, body.map(JsonBody::new).as_ref(), &self.headers, timeout).await
    }

    /// Sends a JSON body already serialized, with a time limit of its own;
    /// any status comes back.
    pub(super) async fn send_text_within(&self, context: Context<'_>, method: Method, path: &str, body: &str, timeout: Duration) -> Result<Reply> {
        send(&self.client, context, method, path, Some(&body), &self.headers, timeout).await
    }

    /// Sends newline-delimited JSON (the `_bulk` API) with a time limit of
    /// its own; any status comes back.
    pub(super) async fn send_ndjson(&self, context: Context<'_>, path: &str, body: &str, timeout: Duration) -> Result<Reply> {
        let mut headers = self.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
        send(&self.client, context, Method::Post, path, Some(&body), &headers, timeout).await
    }

    /// Sends one request that must succeed; any other status is an error.
    pub(super) async fn expect_success(&self, context: Context<'_>, method: Method, path: &str, body: Option<&Value>) -> Result<Reply> {
        context.success(self.send(context, method, path, body).await?)
    }

    /// Sends one request that must succeed or find nothing (`None`: no such
    /// document or index); any other status is an error.
    pub(super) async fn expect_found(&self, context: Context<'_>, method: Method, path: &str, body: Option<&Value>) -> Result<Option<Reply>> {
        context.found(self.send(context, method, path, body).await?)
    }

    /// Every document of `index` matching `query` (all of them, page by
    /// page); `None` when the index is missing. Search only sees refreshed
    /// documents, so this pays for one explicit refresh to be exact (its
    /// callers are operator actions and index repair).
    pub(super) async fn search_all(&self, context: Context<'_>, index: &str, query: Value) -> Result<Option<Vec<Value>>> {
        if self.expect_found(context, Method::Post, &path(&[index, "_refresh"], ""), None).await?.is_none() {
            return Ok(None);
        }
        // An exact total (not capped at 10,000) bounds the paging below.
        let first = json!({ "size": SEARCH_PAGE_SIZE, "sort": ["_doc"], "track_total_hits": true, "query": query });
        let search = path(&[index, "_search"], &format!("scroll={SCROLL_KEEP_ALIVE}"));
        let mut reply = self.send(context, Method::Post, &search, Some(&first)).await?;
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
            reply = self.send(context, Method::Post, "/_search/scroll", Some(&next)).await?;
        };
        if let Some(id) = scroll_id {
            // Frees the engine's search context at once rather than at its
            // keep-alive; a failure here changes nothing for the caller.
            let _ = self.send(context, Method::Delete, "/_search/scroll", Some(&json!({ "scroll_id": [id] }))).await;
        }
        outcome.map(|()| Some(hits))
    }

    /// The cluster's clock now, from an ingest simulation (no index, no
    /// write): what expiry is compared with, never the client's clock.
    pub(super) async fn cluster_now(&self, context: Context<'_>) -> Result<SystemTime> {
        let body = json!({ "pipeline": { "processors": [] }, "docs": [{ "_source": {} }] });
        let simulate = "/_ingest/pipeline/_simulate?filter_path=docs.doc._ingest.timestamp";
        let reply = self.expect_success(context, Method::Post, simulate, Some(&body)).await?;
        reply
            .body
            .pointer("/docs/0/doc/_ingest/timestamp")
            .and_then(document::instant)
            .ok_or_else(|| context.malformed("no _ingest.timestamp", &reply).into())
    }
}

/// Sends one request with a body of any kind (JSON, or the `_bulk` API's
/// NDJSON), retrying 429/502/503/504 and connection failures a bounded
/// number of times. Any status is returned to the caller to interpret; only
/// exhausted retries and unreadable bodies become errors.
async fn send<B: Body + Sync + ?Sized>(
    client: &Elasticsearch,
    context: Context<'_>,
    method: Method,
    path: &str,
    body: Option<&B>,
    headers: &HeaderMap,
    timeout: Duration,
) -> Result<Reply> {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut attempt = 1;
    loop {
        let sent = client
            .send(
                method,
                path,
                headers.clone(),
                None::<&()>,
                body,
                Some(timeout),
            )
            .await;
        let failure = match sent {
            Ok(response) => {
                let status = response.status_code().as_u16();
                // Warnings announce what the engine's next version will refuse.
                for warning in response.headers().get_all("warning") {
                    tracing::warn!(operation = %context.operation, warning = %String::from_utf8_lossy(warning.as_bytes()),
                        "the engine answered with a deprecation warning");
                }
                if !is_transient_status(status) || attempt >= MAX_ATTEMPTS {
                    let bytes = response
                        .bytes()
                        .await
                        .map_err(|err| context.error("reading the response failed").with_status(status).with_source(err))?;
                    // From bytes, so that a body that is not UTF-8 is an error, not replaced text.
                    let body = if bytes.trim_ascii().is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_slice(&bytes).map_err(|err| {
                            let text = String::from_utf8_lossy(&bytes);
                            context
                                .error(format!("response is not JSON: {}", shorten(&text, 300)))
                                .with_status(status)
                                .with_source(err)
                        })?
                    };
                    return Ok(Reply { status, body, resent: attempt > 1 });
                }
                format!("HTTP {status}")
            }
            Err(err) => {
                if attempt >= MAX_ATTEMPTS {
                    return Err(context
                        .error(format!("request failed after {attempt} attempts: {err}"))
                        .with_source(err)
                        .into());
                }
                err.to_string()
            }
        };
        let delay = backoff.next_delay();
        tracing::debug!(operation = %context.operation, lock_id = ?context.lock_id.map(LockId::as_str),
            attempt, ?delay, %failure, "transient failure; retrying");
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_at_character_boundaries() {
        let text = "锁".repeat(300);
        for max in 0..12 {
            let short = shorten(&text, max);
            assert!(short.len() <= max && text.starts_with(short));
        }
        assert_eq!(shorten("abc", 10), "abc");
        let context = Context { operation: Operation::Get, lock_id: None };
        let reply = Reply { status: 500, body: serde_json::json!({ "x": "锁".repeat(300) }), resent: false };
        assert!(context.malformed("test", &reply).to_string().contains('锁'));
        assert!(!context.unexpected(&reply).to_string().is_empty());
    }

    #[test]
    fn encodes_path_characters() {
        assert_eq!(encode_segment("reindex/logs:2024_a-b.c"), "reindex%2Flogs%3A2024_a-b.c");
        assert_eq!(path(&[".locks-000001", "_doc", "a/b"], ""), "/.locks-000001/_doc/a%2Fb");
        assert_eq!(path(&["x", "_update", "id"], "retry_on_conflict=3"), "/x/_update/id?retry_on_conflict=3");
    }
}
