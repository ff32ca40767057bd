//! Per-acquisition options.

use std::time::Duration;

use eslock_rules::{MetadataError, check_metadata_key, check_metadata_size};
use serde_json::{Map, Value};

use crate::LockId;
use crate::error::{Error, Result};

/// How to acquire a lock: lease TTL, metadata stored with the lock, and how
/// long to wait for a held lock.
///
/// ```
/// use std::time::Duration;
/// use eslock::LockOptions;
/// use serde_json::json;
///
/// let options = LockOptions::default()
///     .ttl(Duration::from_secs(45))
///     .metadata(json!({ "owner": "worker-1" }))
///     .wait(Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LockOptions {
    ttl: Option<Duration>,
    metadata: Option<Value>,
    wait: Option<Duration>,
    no_renewal: bool,
}

impl LockOptions {
    /// Options with the manager's default TTL (30 s unless configured), no
    /// metadata, and no waiting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lease time-to-live. The lease is renewed while it is held, at most
    /// every `ttl / 3`; a crashed holder's lock frees itself after `ttl`.
    /// Must be more than zero.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// A JSON object stored with the lock and shown to other contenders and
    /// operators (at most 8 KiB as JSON).
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Keep trying, with jittered exponential backoff, until the lock is won
    /// or `wait` has passed. Without it a held lock fails at once.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Whether the lease renews itself (the default). With `false` the lease
    /// lasts one TTL unless [`Lease::extend`](crate::Lease::extend) is called,
    /// and is declared lost when that time runs out.
    pub fn renew(mut self, renew: bool) -> Self {
        self.no_renewal = !renew;
        self
    }

    /// The TTL, if set.
    pub fn ttl_value(&self) -> Option<Duration> {
        self.ttl
    }

    /// The metadata, if set.
    pub fn metadata_value(&self) -> Option<&Value> {
        self.metadata.as_ref()
    }

    /// The wait, if set.
    pub fn wait_value(&self) -> Option<Duration> {
        self.wait
    }

    /// Checks the options for `lock_id` and fills in defaults.
    pub(crate) fn resolve(&self, lock_id: &LockId, default_ttl: Duration) -> Result<ResolvedOptions> {
        let ttl = self.ttl.unwrap_or(default_ttl);
        check_ttl(ttl)?;
        let metadata = match &self.metadata {
            None => Map::new(),
            Some(value) => check_metadata(value).map_err(|reason| Error::invalid_metadata(lock_id, reason))?,
        };
        Ok(ResolvedOptions {
            ttl,
            metadata: Value::Object(metadata),
            wait: self.wait,
            renew: !self.no_renewal,
        })
    }
}

/// Options after validation.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedOptions {
    pub ttl: Duration,
    pub metadata: Value,
    pub wait: Option<Duration>,
    pub renew: bool,
}

/// The smallest TTL the lease clock can work with.
const MIN_TTL: Duration = Duration::from_millis(10);

pub(crate) fn check_ttl(ttl: Duration) -> Result<()> {
    if ttl < MIN_TTL {
        return Err(Error::invalid_option("ttl", format!("ttl must be at least {} ms, got {ttl:?}", MIN_TTL.as_millis())));
    }
    if ttl.as_millis() > u64::MAX as u128 / 1000 {
        return Err(Error::invalid_option("ttl", format!("ttl {ttl:?} is too large")));
    }
    Ok(())
}

fn check_metadata(value: &Value) -> std::result::Result<Map<String, Value>, MetadataError> {
    let object = value.as_object().ok_or(MetadataError::NotAnObject {
        found: json_type(value),
    })?;
    for key in object.keys() {
        check_metadata_key(key)?;
    }
    check_metadata_size(value.to_string().len())?;
    Ok(object.clone())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id() -> LockId {
        LockId::new("x").unwrap()
    }

    #[test]
    fn defaults() {
        let resolved = LockOptions::default().resolve(&id(), Duration::from_secs(30)).unwrap();
        assert_eq!(resolved.ttl, Duration::from_secs(30));
        assert_eq!(resolved.metadata, json!({}));
        assert_eq!(resolved.wait, None);
    }

    #[test]
    fn rejects_bad_input() {
        let zero = LockOptions::default().ttl(Duration::ZERO).resolve(&id(), Duration::from_secs(1));
        assert!(matches!(zero, Err(Error::InvalidOption(e)) if e.option == "ttl"));
        let array = LockOptions::default().metadata(json!([1])).resolve(&id(), Duration::from_secs(1));
        assert!(matches!(array, Err(Error::InvalidMetadata(e)) if matches!(e.reason, MetadataError::NotAnObject { .. })));
        let big = LockOptions::default()
            .metadata(json!({ "blob": "x".repeat(9000) }))
            .resolve(&id(), Duration::from_secs(1));
        assert!(matches!(big, Err(Error::InvalidMetadata(e)) if matches!(e.reason, MetadataError::TooLarge { .. })));
        let empty_key = LockOptions::default().metadata(json!({ "": 1 })).resolve(&id(), Duration::from_secs(1));
        assert!(matches!(empty_key, Err(Error::InvalidMetadata(e)) if e.reason == MetadataError::EmptyKey));
    }
}
