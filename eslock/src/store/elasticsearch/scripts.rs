//! The painless scripts that make every lock operation one atomic update on
//! the cluster, deciding expiry on the cluster's clock (never the client's).
//!
//! Documents use the field names and date format of Kibana's lock manager
//! (`token`, `metadata`, `createdAt`, `expiresAt` as ISO-8601 instants), plus
//! `fencingToken` (the lock id's counter), `fencingTokenOwner` (the token it
//! was issued to), `releasedBy` (the last release calls) and
//! `abandonedTokens` (tokens that may never take the lock). A release
//! keeps the document, without `token` and with `expiresAt` in the past, so
//! the counter survives it; Kibana reads such a document as expired.
//! No-ops use `ctx.op = 'none'`, which every engine version recognises.

use std::sync::LazyLock;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::store::AcquireRequest;

/// Shared helper: a lock's expiry in epoch millis (0 when missing). An
/// unreadable date fails the script: such a lock is neither taken nor kept.
const EXPIRES_AT: &str = "
long expiresAtMillis(def value) {
  if (value == null) { return 0L; }
  if (value instanceof Number) { return ((Number) value).longValue(); }
  return Instant.parse(value.toString()).toEpochMilli();
}
";

/// Shared helper: makes `token` the holder of the lock in `source`. The
/// fencing token is one more than the id's counter, which a release keeps:
/// no clock is involved. Only an id without a counter (never seen, or its
/// document deleted with the index or by a Kibana node's release) starts
/// from the cluster clock in microseconds.
const GRANT: &str = "
void grant(Map source, def token, def metadata, long ttl, long now) {
  def previous = source.fencingToken;
  long fencing = now * 1000L;
  if (previous instanceof Number && ((Number) previous).longValue() + 1L > fencing) {
    fencing = ((Number) previous).longValue() + 1L;
  }
  Instant start = Instant.ofEpochMilli(now);
  source.token = token;
  source.metadata = metadata;
  source.createdAt = start.toString();
  source.expiresAt = start.plusMillis(ttl).toString();
  source.fencingToken = fencing;
  source.fencingTokenOwner = token;
}
";

/// Shared helper: whether `token` is listed among the abandoned tokens of
/// `source`, which may never take the lock (see [`RELEASE_BODY`]).
const ABANDONED: &str = "
boolean abandoned(Map source, def token) {
  return source.abandonedTokens instanceof List && source.abandonedTokens.contains(token);
}
";

/// Shared helper: appends `value` to the list `field` of `source` unless it
/// is there, keeping the last `keep` entries.
const REMEMBER: &str = "
void remember(Map source, String field, def value, int keep) {
  def values = source[field] instanceof List ? source[field] : new ArrayList();
  if (!values.contains(value)) {
    values.add(value);
    while (values.size() > keep) { values.remove(0); }
  }
  source[field] = values;
}
";

/// Takes the lock when the document is new, released, expired, or already
/// ours (a retried request: a no-op that returns our own grant); otherwise a
/// no-op that returns the holder's document. A token that was released
/// without holding the lock (see [`RELEASE`]) is refused.
const ACQUIRE_BODY: &str = "
long now = System.currentTimeMillis();
boolean held = ctx.op != 'create' && ctx._source.token != null;
if (ctx.op != 'create' && abandoned(ctx._source, params.token)) {
  ctx.op = 'none';
} else if (held && ctx._source.token == params.token) {
  ctx.op = 'none';
} else if (!held || expiresAtMillis(ctx._source.expiresAt) <= now) {
  grant(ctx._source, params.token, params.metadata, params.ttl, now);
} else {
  ctx.op = 'none';
}
";

/// Passes the lock from its holder `params.token` straight to
/// `params.next_token`, as a release followed by an acquire with no moment
/// in between: the release is recorded as [`RELEASE_BODY`] records it (in
/// `releasedBy`, with this call's id, and with `params.record` among the
/// abandoned tokens), and the new holder
/// gets the next fencing token. A new token already abandoned (its
/// hand-over failed and was given up, and this is a late copy) only gets
/// the release. When `params.token` does not hold the lock (including a
/// retry of a hand-over already done) it changes nothing, but for recording
/// the token with `params.record`.
const HAND_OVER_BODY: &str = "
if (ctx._source.token != null && ctx._source.token == params.token) {
  long now = System.currentTimeMillis();
  boolean refused = abandoned(ctx._source, params.next_token);
  if (params.record) {
    remember(ctx._source, 'abandonedTokens', params.token, 64);
  }
  remember(ctx._source, 'releasedBy', params.release_id, 16);
  if (refused) {
    ctx._source.remove('token');
    ctx._source.remove('metadata');
    ctx._source.expiresAt = Instant.ofEpochMilli(now - 1L).toString();
  } else {
    grant(ctx._source, params.next_token, params.metadata, params.ttl, now);
  }
} else if (params.record && !abandoned(ctx._source, params.token)) {
  remember(ctx._source, 'abandonedTokens', params.token, 64);
} else {
  ctx.op = 'none';
}
";

/// Moves the expiry forward only for the holder of a lease that has not expired.
const EXTEND_BODY: &str = "
long now = System.currentTimeMillis();
if (ctx._source.token != null && ctx._source.token == params.token && expiresAtMillis(ctx._source.expiresAt) > now) {
  ctx._source.expiresAt = Instant.ofEpochMilli(now).plusMillis(params.ttl).toString();
} else {
  ctx.op = 'none';
}
";

/// Releases the lock for its holder `params.token`. The document stays,
/// with its counter, no token and an expiry just past, and `releasedBy`
/// lists this call's id among the last 16 releases, so that a retry of the
/// call can tell its own earlier success even after someone else took the
/// lock meanwhile.
///
/// With `params.record`, the token is also recorded as abandoned (the last
/// 64 per lock id), whether it holds the lock or not, and acquire refuses
/// abandoned tokens: a copy of the token's own acquire request still on its
/// way (an attempt the client retried) can then never take the lock again.
/// `params.abandon` records the token even before any document exists (its
/// acquire failed or was given up, and may still arrive).
const RELEASE_BODY: &str = "
boolean exists = ctx.op != 'create';
def holder = exists ? ctx._source.token : null;
boolean releasing = holder != null && holder == params.token;
boolean recording = (params.record || params.abandon)
  && !(exists && abandoned(ctx._source, params.token));
if (!releasing && !recording) {
  ctx.op = 'none';
} else {
  long now = System.currentTimeMillis();
  if (recording) {
    remember(ctx._source, 'abandonedTokens', params.token, 64);
  }
  if (releasing) {
    ctx._source.remove('token');
    ctx._source.remove('metadata');
    remember(ctx._source, 'releasedBy', params.release_id, 16);
  }
  if (releasing || !exists) {
    ctx._source.expiresAt = Instant.ofEpochMilli(now - 1L).toString();
  }
}
";

/// A script's source, assembled and written as a JSON string once: requests
/// copy it into their bodies without escaping it again.
type Source = LazyLock<Box<RawValue>>;

fn source(parts: &[&str]) -> Box<RawValue> {
    serde_json::value::to_raw_value(&parts.concat()).expect("a string always serializes")
}

/// The full acquire script.
static ACQUIRE: Source = LazyLock::new(|| source(&[EXPIRES_AT, ABANDONED, GRANT, ACQUIRE_BODY]));

/// The full release script.
static RELEASE: Source = LazyLock::new(|| source(&[ABANDONED, REMEMBER, RELEASE_BODY]));

/// The full hand-over script.
static HAND_OVER: Source = LazyLock::new(|| source(&[ABANDONED, GRANT, REMEMBER, HAND_OVER_BODY]));

/// The full extend script.
static EXTEND: Source = LazyLock::new(|| source(&[EXPIRES_AT, EXTEND_BODY]));

/// The body of a scripted update of one lock document. It borrows the
/// script and its parameters: building a request copies neither.
#[derive(Debug, Serialize)]
pub(super) struct Update<'a, P> {
    /// Whether the reply carries the document as the script left it.
    #[serde(rename = "_source")]
    return_document: bool,
    script: Script<'a, P>,
    /// Runs the script on an empty document when there is none.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    upsert: Option<Upsert>,
}

#[derive(Debug, Serialize)]
struct Script<'a, P> {
    lang: &'static str,
    source: &'a RawValue,
    params: P,
}

#[derive(Debug, Serialize)]
struct Upsert {
    scripted_upsert: bool,
    upsert: Empty,
}

#[derive(Debug, Serialize)]
struct Empty {}

impl<'a, P> Update<'a, P> {
    fn new(source: &'a RawValue, params: P, return_document: bool, upsert: bool) -> Self {
        Update {
            return_document,
            script: Script { lang: "painless", source, params },
            upsert: upsert.then_some(Upsert { scripted_upsert: true, upsert: Empty {} }),
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct AcquireParams<'a> {
    token: &'a str,
    ttl: u64,
    metadata: &'a Value,
}

#[derive(Debug, Serialize)]
pub(super) struct ExtendParams<'a> {
    token: &'a str,
    ttl: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct ReleaseParams<'a> {
    token: &'a Value,
    release_id: &'a str,
    abandon: bool,
    record: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct HandOverParams<'a> {
    token: &'a str,
    release_id: &'a str,
    record: bool,
    next_token: &'a str,
    ttl: u64,
    metadata: &'a Value,
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

/// [`ACQUIRE_BODY`] for `request`, creating the document when missing; the
/// reply carries the document (the holder, or our grant).
pub(super) fn acquire(request: &AcquireRequest) -> Update<'_, AcquireParams<'_>> {
    let params = AcquireParams { token: &request.token, ttl: millis(request.ttl), metadata: &request.metadata };
    Update::new(&ACQUIRE, params, true, true)
}

/// [`EXTEND_BODY`] for `token`; the reply carries the document.
pub(super) fn extend(token: &str, ttl: Duration) -> Update<'_, ExtendParams<'_>> {
    Update::new(&EXTEND, ExtendParams { token, ttl: millis(ttl) }, true, false)
}

/// [`RELEASE_BODY`] for `token` (any JSON: another program may have written
/// it). The reply carries the document (its `releasedBy` is the answer,
/// read from the update's own reply: a later read could see a replica that
/// is behind, or a document that moved on); with `abandon`, the document is
/// created when missing, so that the token is refused from the start.
pub(super) fn release<'a>(token: &'a Value, release_id: &'a str, abandon: bool, record: bool) -> Update<'a, ReleaseParams<'a>> {
    Update::new(&RELEASE, ReleaseParams { token, release_id, abandon, record }, true, abandon)
}

/// [`HAND_OVER_BODY`] from `token` to `next`; the reply carries the document.
pub(super) fn hand_over<'a>(token: &'a str, release_id: &'a str, record: bool, next: &'a AcquireRequest) -> Update<'a, HandOverParams<'a>> {
    let params = HandOverParams { token, release_id, record, next_token: &next.token, ttl: millis(next.ttl), metadata: &next.metadata };
    Update::new(&HAND_OVER, params, true, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_have_the_update_api_shape() {
        let request = AcquireRequest {
            lock_id: crate::LockId::new("a").unwrap(),
            token: "t".into(),
            ttl: Duration::from_millis(1500),
            metadata: json!({ "k": 1 }),
        };
        let body = serde_json::to_value(acquire(&request)).unwrap();
        assert_eq!(body["_source"], json!(true));
        assert_eq!(body["scripted_upsert"], json!(true));
        assert_eq!(body["upsert"], json!({}));
        assert_eq!(body["script"]["lang"], json!("painless"));
        assert_eq!(body["script"]["source"], json!([EXPIRES_AT, ABANDONED, GRANT, ACQUIRE_BODY].concat()));
        assert_eq!(body["script"]["params"], json!({ "token": "t", "ttl": 1500, "metadata": { "k": 1 } }));
        let body = serde_json::to_value(release(&json!("t"), "r", false, true)).unwrap();
        assert_eq!(body["_source"], json!(true));
        assert!(body.get("upsert").is_none() && body.get("scripted_upsert").is_none());
        assert_eq!(body["script"]["params"], json!({ "token": "t", "release_id": "r", "abandon": false, "record": true }));
        assert_eq!(serde_json::to_value(release(&json!("t"), "r", true, true)).unwrap()["upsert"], json!({}));
    }
}
