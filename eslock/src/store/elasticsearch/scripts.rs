//! The painless scripts that make every lock operation one atomic update on
//! the cluster, deciding expiry on the cluster's clock (never the client's).
//!
//! Documents use the field names and date format of Kibana's lock manager
//! (`token`, `metadata`, `createdAt`, `expiresAt` as ISO-8601 instants), plus
//! `fencingToken` (the lock id's counter), `fencingTokenOwner` (the token it
//! was issued to) and `releasedBy` (the call that released it). A release
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

/// Takes the lock when the document is new, released, expired, or already
/// ours (a retried request: a no-op that returns our own grant); otherwise a
/// no-op that returns the holder's document. A token that was released
/// without holding the lock (see [`RELEASE`]) is refused.
///
/// The fencing token is one more than the id's counter, which a release
/// keeps: no clock is involved. Only an id without a counter (never seen, or
/// its document deleted with the index or by a Kibana node's release) starts
/// from the cluster clock in microseconds.
const ACQUIRE_BODY: &str = "
long now = System.currentTimeMillis();
boolean held = ctx.op != 'create' && ctx._source.token != null;
if (ctx.op != 'create' && ctx._source.abandonedTokens instanceof List && ctx._source.abandonedTokens.contains(params.token)) {
  ctx.op = 'none';
} else if (held && ctx._source.token == params.token) {
  ctx.op = 'none';
} else if (!held || expiresAtMillis(ctx._source.expiresAt) <= now) {
  def previous = ctx._source.fencingToken;
  long fencing = now * 1000L;
  if (previous instanceof Number && ((Number) previous).longValue() + 1L > fencing) {
    fencing = ((Number) previous).longValue() + 1L;
  }
  Instant start = Instant.ofEpochMilli(now);
  ctx._source.token = params.token;
  ctx._source.metadata = params.metadata;
  ctx._source.createdAt = start.toString();
  ctx._source.expiresAt = start.plusMillis(params.ttl).toString();
  ctx._source.fencingToken = fencing;
  ctx._source.fencingTokenOwner = params.token;
  ctx._source.remove('releasedBy');
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

/// Releases the lock: for its holder (`params.token`), or for anyone when
/// `params.token` is null (force-release). The document stays, with its
/// counter, no token, an expiry just past, and `releasedBy` naming this call
/// so that a retried call can tell its own earlier success.
///
/// With `params.abandon`, a token that does not hold the lock is recorded
/// as abandoned (the last 16 per lock id), and acquire refuses it: an
/// acquire of that token still on its way (its caller gave up on it) can
/// then never take the lock after this request has passed it.
pub(crate) const RELEASE: &str = "
boolean exists = ctx.op != 'create';
def holder = exists ? ctx._source.token : null;
if (holder != null && (params.token == null || holder == params.token)) {
  ctx._source.remove('token');
  ctx._source.remove('metadata');
  ctx._source.expiresAt = Instant.ofEpochMilli(System.currentTimeMillis() - 1L).toString();
  ctx._source.releasedBy = params.release_id;
} else if (params.abandon) {
  def abandoned = exists && ctx._source.abandonedTokens instanceof List ? ctx._source.abandonedTokens : new ArrayList();
  if (abandoned.contains(params.token)) {
    ctx.op = 'none';
  } else {
    abandoned.add(params.token);
    while (abandoned.size() > 16) { abandoned.remove(0); }
    ctx._source.abandonedTokens = abandoned;
    if (!exists) { ctx._source.expiresAt = Instant.ofEpochMilli(System.currentTimeMillis() - 1L).toString(); }
  }
} else {
  ctx.op = 'none';
}
";

/// The full acquire script, assembled once.
pub(crate) static ACQUIRE: LazyLock<String> = LazyLock::new(|| format!("{EXPIRES_AT}{ACQUIRE_BODY}"));

/// The full extend script, assembled once.
pub(crate) static EXTEND: LazyLock<String> = LazyLock::new(|| format!("{EXPIRES_AT}{EXTEND_BODY}"));
