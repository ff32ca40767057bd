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
if (ctx.op != 'create' && ctx._source.abandonedTokens instanceof List && ctx._source.abandonedTokens.contains(params.token)) {
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
/// in between: the old token is recorded as released (in `releasedBy`,
/// with this call's id, and among the abandoned tokens), and the new holder
/// gets the next fencing token. A new token already abandoned (its
/// hand-over failed and was given up, and this is a late copy) only gets
/// the release. A no-op when `params.token` does not hold the lock,
/// including a retry of a hand-over already done.
const HAND_OVER_BODY: &str = "
if (ctx._source.token != null && ctx._source.token == params.token) {
  long now = System.currentTimeMillis();
  boolean refused = ctx._source.abandonedTokens instanceof List && ctx._source.abandonedTokens.contains(params.next_token);
  remember(ctx._source, 'abandonedTokens', params.token, 64);
  remember(ctx._source, 'releasedBy', params.release_id, 16);
  if (refused) {
    ctx._source.remove('token');
    ctx._source.remove('metadata');
    ctx._source.expiresAt = Instant.ofEpochMilli(now - 1L).toString();
  } else {
    grant(ctx._source, params.next_token, params.metadata, params.ttl, now);
  }
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
/// The released token is also recorded as abandoned (the last 64 per lock
/// id), and acquire refuses abandoned tokens: a copy of the token's own
/// acquire request still on its way (a timed-out attempt the client retried
/// elsewhere) can then never take the lock again. With `params.abandon`, a
/// token that does not hold the lock is recorded the same way (its acquire
/// failed or was given up, and may still arrive).
const RELEASE_BODY: &str = "
boolean exists = ctx.op != 'create';
def holder = exists ? ctx._source.token : null;
boolean releasing = holder != null && holder == params.token;
boolean recording = (releasing || params.abandon)
  && !(exists && ctx._source.abandonedTokens instanceof List && ctx._source.abandonedTokens.contains(params.token));
if (!releasing && !recording) {
  ctx.op = 'none';
} else {
  long now = System.currentTimeMillis();
  remember(ctx._source, 'abandonedTokens', params.token, 64);
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

/// The full acquire script, assembled once.
pub(crate) static ACQUIRE: LazyLock<String> = LazyLock::new(|| format!("{EXPIRES_AT}{GRANT}{ACQUIRE_BODY}"));

/// The full release script, assembled once.
pub(crate) static RELEASE: LazyLock<String> = LazyLock::new(|| format!("{REMEMBER}{RELEASE_BODY}"));

/// The full hand-over script, assembled once.
pub(crate) static HAND_OVER: LazyLock<String> = LazyLock::new(|| format!("{GRANT}{REMEMBER}{HAND_OVER_BODY}"));

/// The full extend script, assembled once.
pub(crate) static EXTEND: LazyLock<String> = LazyLock::new(|| format!("{EXPIRES_AT}{EXTEND_BODY}"));
