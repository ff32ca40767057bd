//! One place that sends requests to the engine: bounded retries of transient
//! failures, and every other failure turned into a typed `BackendError`
//! naming the operation and lock id.

use std::time::Duration;

use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::HeaderMap;
use elasticsearch::http::request::{Body, JsonBody};
use serde_json::Value;

use crate::LockId;
use crate::backoff::Backoff;
use crate::error::{BackendError, Operation, Result};

/// How many times a request is sent at most when it keeps failing transiently.
const MAX_ATTEMPTS: u32 = 4;

/// A response with its status and JSON body (`Null` when empty).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The engine's `error.type`, for 4xx/5xx replies.
    pub fn error_type(&self) -> Option<&str> {
        self.body.pointer("/error/type").and_then(Value::as_str)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A 404 that the engine means: no such document or index. Any other
    /// 404 (a proxy's, a wrong base path) is an unexpected reply.
    pub fn is_not_found(&self) -> bool {
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
    pub fn error(&self, reason: impl Into<String>) -> BackendError {
        BackendError::new(self.operation, self.lock_id, reason)
    }

    /// The error for a reply the caller did not expect.
    pub fn unexpected(&self, reply: &Reply) -> BackendError {
        let kind = reply.error_type().unwrap_or("unexpected response");
        let reason = describe_error(&reply.body);
        self.error(format!("HTTP {} {kind}: {reason}", reply.status)).with_status(reply.status)
    }

    /// The error for a reply that lacks what the protocol promises.
    pub fn malformed(&self, what: &str, reply: &Reply) -> BackendError {
        let body = reply.body.to_string();
        self.error(format!("malformed response ({what}): {}", shorten(&body, 500))).with_status(reply.status)
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
pub(crate) fn shorten(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn is_transient_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// Percent-encodes a path segment; lock ids may contain `/` and `:`.
pub(crate) fn encode_segment(segment: &str) -> String {
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

/// Sends one request, retrying 429/502/503/504 and connection failures a
/// bounded number of times. Any status is returned to the caller to
/// interpret; only exhausted retries and unreadable bodies become errors.
pub(crate) async fn send(
    client: &Elasticsearch,
    context: Context<'_>,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &HeaderMap,
    timeout: Option<Duration>,
) -> Result<Reply> {
    send_body(client, context, method, path, body.map(JsonBody::new).as_ref(), headers, timeout).await
}

/// [`send`] with a body of any kind (the `_bulk` API's NDJSON).
pub(crate) async fn send_body<B: Body + Sync + ?Sized>(
    client: &Elasticsearch,
    context: Context<'_>,
    method: Method,
    path: &str,
    body: Option<&B>,
    headers: &HeaderMap,
    timeout: Option<Duration>,
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
                timeout,
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
                    return Ok(Reply { status, body });
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
        let reply = Reply { status: 500, body: serde_json::json!({ "x": "锁".repeat(300) }) };
        assert!(context.malformed("test", &reply).to_string().contains('锁'));
        assert!(!context.unexpected(&reply).to_string().is_empty());
    }

    #[test]
    fn encodes_path_characters() {
        assert_eq!(encode_segment("reindex/logs:2024_a-b.c"), "reindex%2Flogs%3A2024_a-b.c");
    }
}
