//! What eslock reports about its locks, in one place: metrics through the
//! [`metrics`](https://docs.rs/metrics) facade (cargo feature `metrics`),
//! recorded by whatever exporter the application installs.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `eslock_acquisitions_total` | counter | `lock`, `outcome` = `acquired`, `refused`, `failed`, `late` |
//! | `eslock_acquire_seconds` | histogram | `lock` (acquire latency, waiting included) |
//! | `eslock_wait_seconds` | histogram | `lock` (time spent waiting for a held lock, when `wait` is given) |
//! | `eslock_hold_seconds` | histogram | `lock` (from acquisition to release or loss) |
//! | `eslock_renewals_total` | counter | `lock`, `outcome` = `extended`, `failed` |
//! | `eslock_leases_lost_total` | counter | `lock` |
//! | `eslock_leases_held` | gauge | `lock` |
//!
//! The `lock` label keeps cardinality bounded: it is the lock's template or
//! name when one is known ([`LockOptions::label`](crate::LockOptions::label),
//! set by `#[exclusive]` and `lock_names!`), the rendered lock id only when
//! the application opts in
//! ([`LockManagerBuilder::label_metrics_with_lock_ids`](crate::LockManagerBuilder::label_metrics_with_lock_ids)),
//! and `other` otherwise.

use std::borrow::Cow;
use std::time::Duration;

/// The `lock` label of an acquisition's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Label(Cow<'static, str>);

impl Label {
    /// The label for lock `lock_id`: `label` if the caller named its kind,
    /// else the id itself when `use_ids`, else `other`.
    pub(crate) fn new(label: Option<&Cow<'static, str>>, lock_id: &str, use_ids: bool) -> Label {
        Label(match label {
            Some(label) => label.clone(),
            None if use_ids => Cow::Owned(lock_id.to_string()),
            None => Cow::Borrowed("other"),
        })
    }

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn value(&self) -> String {
        self.0.to_string()
    }
}

/// How an acquisition ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Acquisition {
    Acquired,
    /// Held by another holder (after waiting, if asked to).
    Refused,
    /// A backend error.
    Failed,
    /// Granted, but the reply came past the lease's trust deadline.
    Late,
}

impl Acquisition {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Acquisition::Acquired => "acquired",
            Acquisition::Refused => "refused",
            Acquisition::Failed => "failed",
            Acquisition::Late => "late",
        }
    }
}

#[cfg(feature = "metrics")]
mod record {
    use super::*;

    pub(crate) fn acquisition(label: &Label, outcome: Acquisition, took: Duration, waited: Option<Duration>) {
        let lock = label.value();
        metrics::counter!("eslock_acquisitions_total", "lock" => lock.clone(), "outcome" => outcome.as_str()).increment(1);
        metrics::histogram!("eslock_acquire_seconds", "lock" => lock.clone()).record(took.as_secs_f64());
        if let Some(waited) = waited {
            metrics::histogram!("eslock_wait_seconds", "lock" => lock).record(waited.as_secs_f64());
        }
    }

    pub(crate) fn lease_started(label: &Label) {
        metrics::gauge!("eslock_leases_held", "lock" => label.value()).increment(1.0);
    }

    pub(crate) fn lease_ended(label: &Label, held: Duration) {
        let lock = label.value();
        metrics::gauge!("eslock_leases_held", "lock" => lock.clone()).decrement(1.0);
        metrics::histogram!("eslock_hold_seconds", "lock" => lock).record(held.as_secs_f64());
    }

    pub(crate) fn renewal(label: &Label, extended: bool) {
        let outcome = if extended { "extended" } else { "failed" };
        metrics::counter!("eslock_renewals_total", "lock" => label.value(), "outcome" => outcome).increment(1);
    }

    pub(crate) fn lease_lost(label: &Label) {
        metrics::counter!("eslock_leases_lost_total", "lock" => label.value()).increment(1);
    }
}

#[cfg(not(feature = "metrics"))]
mod record {
    use super::*;

    pub(crate) fn acquisition(_: &Label, _: Acquisition, _: Duration, _: Option<Duration>) {}
    pub(crate) fn lease_started(_: &Label) {}
    pub(crate) fn lease_ended(_: &Label, _: Duration) {}
    pub(crate) fn renewal(_: &Label, _: bool) {}
    pub(crate) fn lease_lost(_: &Label) {}
}

pub(crate) use record::{acquisition, lease_ended, lease_lost, lease_started, renewal};
