//! The painless scripts that make every lock operation one atomic update on
//! the cluster, deciding expiry on the cluster's clock (never the client's).
//!
//! Documents use the field names and date format of Kibana's lock manager
//! (`token`, `metadata`, `createdAt`, `expiresAt` as ISO-8601 instants), plus
//! `fencingToken`, so Rust processes and Kibana nodes exclude each other.

use std::sync::LazyLock;

/// Shared helper: a lock's expiry in epoch millis (0 when missing).
const EXPIRES_AT: &str = "
long expiresAtMillis(def value) {
  if (value == null) { return 0L; }
  if (value instanceof Number) { return ((Number) value).longValue(); }
  return Instant.parse(value.toString()).toEpochMilli();
}
";

/// Takes the lock when the document is new, expired, or already ours (a
/// retried request); otherwise a noop that returns the holder's document.
///
/// The fencing token is larger than the previous one and than the cluster
/// clock in microseconds, so it keeps increasing even after the document was
/// deleted by a release.
const ACQUIRE_BODY: &str = "
long now = System.currentTimeMillis();
boolean fresh = ctx.op == 'create' || ctx._source.token == null;
if (!fresh && ctx._source.token == params.token) {
  ctx.op = 'noop';
} else if (fresh || expiresAtMillis(ctx._source.expiresAt) <= now) {
  long previous = ctx._source.fencingToken == null ? 0L : ((Number) ctx._source.fencingToken).longValue();
  Instant start = Instant.ofEpochMilli(now);
  ctx._source.token = params.token;
  ctx._source.metadata = params.metadata;
  ctx._source.createdAt = start.toString();
  ctx._source.expiresAt = start.plusMillis(params.ttl).toString();
  // Painless resolves Math.max to its double form; compare as longs instead.
  long fencing = now * 1000L;
  if (previous + 1L > fencing) { fencing = previous + 1L; }
  ctx._source.fencingToken = fencing;
} else {
  ctx.op = 'noop';
}
";

/// Moves the expiry forward only for the holder of a lease that has not expired.
const EXTEND_BODY: &str = "
long now = System.currentTimeMillis();
if (ctx._source.token == params.token && expiresAtMillis(ctx._source.expiresAt) > now) {
  ctx._source.expiresAt = Instant.ofEpochMilli(now).plusMillis(params.ttl).toString();
} else {
  ctx.op = 'noop';
}
";

/// Deletes the document only for the holder.
pub(crate) const RELEASE: &str = "
if (ctx._source.token == params.token) { ctx.op = 'delete'; } else { ctx.op = 'noop'; }
";

/// The full acquire script, assembled once.
pub(crate) static ACQUIRE: LazyLock<String> = LazyLock::new(|| format!("{EXPIRES_AT}{ACQUIRE_BODY}"));

/// The full extend script, assembled once.
pub(crate) static EXTEND: LazyLock<String> = LazyLock::new(|| format!("{EXPIRES_AT}{EXTEND_BODY}"));
