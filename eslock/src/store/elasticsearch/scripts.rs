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
pub(crate) const RELEASE: &str = "
boolean exists = ctx.op != 'create';
def holder = exists ? ctx._source.token : null;
boolean releasing = holder != null && holder == params.token;
def abandoned = exists && ctx._source.abandonedTokens instanceof List ? ctx._source.abandonedTokens : new ArrayList();
boolean recording = (releasing || params.abandon) && !abandoned.contains(params.token);
if (!releasing && !recording) {
  ctx.op = 'none';
} else {
  long now = System.currentTimeMillis();
  if (recording) {
    abandoned.add(params.token);
    while (abandoned.size() > 64) { abandoned.remove(0); }
    ctx._source.abandonedTokens = abandoned;
  }
  if (releasing) {
    ctx._source.remove('token');
    ctx._source.remove('metadata');
    def releases = ctx._source.releasedBy instanceof List ? ctx._source.releasedBy : new ArrayList();
    releases.add(params.release_id);
    while (releases.size() > 16) { releases.remove(0); }
    ctx._source.releasedBy = releases;
  }
  if (releasing || !exists) {
    ctx._source.expiresAt = Instant.ofEpochMilli(now - 1L).toString();
  }
}
";

/// The full acquire script, assembled once.
pub(crate) static ACQUIRE: LazyLock<String> = LazyLock::new(|| format!("{EXPIRES_AT}{ACQUIRE_BODY}"));

/// The full extend script, assembled once.
pub(crate) static EXTEND: LazyLock<String> = LazyLock::new(|| format!("{EXPIRES_AT}{EXTEND_BODY}"));
