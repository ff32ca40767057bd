//! Per-acquisition options.

use std::borrow::Cow;
use std::time::Duration;

use eslock_rules::{MetadataError, check_metadata_depth, check_metadata_key, check_metadata_size};
use serde_json::{Map, Value};

use crate::id::LockId;
use crate::error::{Error, Result};
use crate::telemetry::Label;

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
    label: Option<Cow<'static, str>>,
}

impl LockOptions {
    /// Options with the manager's default TTL (30 s unless configured), no
    /// metadata, and no waiting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lease time-to-live. The lease is renewed while it is held, at most
    /// every `ttl / 3`; a crashed holder's lock frees itself after `ttl`.
    /// From [`MIN_TTL`](crate::rules::MIN_TTL) (10 ms) to
    /// [`MAX_TTL`](crate::rules::MAX_TTL) (100 years); anything else is an
    /// [`Error::InvalidOption`] before any request.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// A JSON object stored with the lock and shown to other contenders and
    /// operators (at most 8 KiB as JSON, nested at most 32 levels deep).
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Keep trying, with jittered exponential backoff, until the lock is won
    /// or `wait` has passed. Without it a held lock fails at once.
    ///
    /// Waiters for one lock id in one manager queue up: only the first
    /// polls the store, and a lease of the same manager that is released or
    /// dropped hands the lock straight to the first waiter, in one atomic
    /// store request, so no other caller can take it in between.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Whether the lease renews itself (the default). With `false` the lease
    /// lasts one TTL unless [`LeaseHandle::extend`](crate::LeaseHandle::extend) is called,
    /// and is declared lost when that time runs out.
    pub fn renew(mut self, renew: bool) -> Self {
        self.no_renewal = !renew;
        self
    }

    /// A low-cardinality name for this kind of lock, used as the `lock`
    /// label of eslock's metrics (feature `metrics`): the lock id's template
    /// (`"reindex/{source}"`) rather than each rendered id. `#[exclusive]`
    /// sets it.
    pub fn label(mut self, label: impl Into<Cow<'static, str>>) -> Self {
        self.label = Some(label.into());
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
    pub(crate) fn resolve(&self, lock_id: &LockId, default_ttl: Duration, label_ids: bool) -> Result<ResolvedOptions> {
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
            label: Label::new(self.label.as_ref(), lock_id.as_str(), label_ids),
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
    pub label: Label,
}

pub(crate) fn check_ttl(ttl: Duration) -> Result<()> {
    eslock_rules::check_ttl(ttl).map_err(|err| Error::invalid_option("ttl", err.to_string()))
}

fn check_metadata(value: &Value) -> std::result::Result<Map<String, Value>, MetadataError> {
    let object = value.as_object().ok_or(MetadataError::NotAnObject {
        found: json_type(value),
    })?;
    for key in object.keys() {
        check_metadata_key(key)?;
    }
    // Depth first: serializing very deep JSON recurses.
    check_metadata_depth(nesting_depth(value))?;
    check_metadata_size(value.to_string().len())?;
    Ok(object.clone())
}

/// How deeply objects and arrays nest (a scalar is 0, `{}` is 1), without
/// recursion so that hostile input cannot overflow the stack.
fn nesting_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 1)];
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(map) => Box::new(map.values()),
            Value::Array(items) => Box::new(items.iter()),
            _ => continue,
        };
        deepest = deepest.max(depth);
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    deepest
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
        let resolved = LockOptions::default().resolve(&id(), Duration::from_secs(30), false).unwrap();
        assert_eq!(resolved.ttl, Duration::from_secs(30));
        assert_eq!(resolved.metadata, json!({}));
        assert_eq!(resolved.wait, None);
    }

    #[test]
    fn rejects_bad_input() {
        let zero = LockOptions::default().ttl(Duration::ZERO).resolve(&id(), Duration::from_secs(1), false);
        assert!(matches!(zero, Err(Error::InvalidOption(e)) if e.option == "ttl"));
        let array = LockOptions::default().metadata(json!([1])).resolve(&id(), Duration::from_secs(1), false);
        assert!(matches!(array, Err(Error::InvalidMetadata(e)) if matches!(e.reason, MetadataError::NotAnObject { .. })));
        let big = LockOptions::default()
            .metadata(json!({ "blob": "x".repeat(9000) }))
            .resolve(&id(), Duration::from_secs(1), false);
        assert!(matches!(big, Err(Error::InvalidMetadata(e)) if matches!(e.reason, MetadataError::TooLarge { .. })));
        let mut deep = json!(1);
        for _ in 0..200 {
            deep = json!({ "d": deep });
        }
        let deep = LockOptions::default().metadata(deep).resolve(&id(), Duration::from_secs(1), false);
        assert!(matches!(deep, Err(Error::InvalidMetadata(e)) if matches!(e.reason, MetadataError::TooDeep { depth: 200 })));
        let huge_ttl = LockOptions::default().ttl(Duration::from_secs(10_000 * 365 * 86_400)).resolve(&id(), Duration::from_secs(1), false);
        assert!(matches!(huge_ttl, Err(Error::InvalidOption(e)) if e.option == "ttl"));
        let empty_key = LockOptions::default().metadata(json!({ "": 1 })).resolve(&id(), Duration::from_secs(1), false);
        assert!(matches!(empty_key, Err(Error::InvalidMetadata(e)) if e.reason == MetadataError::EmptyKey));
    }
}
