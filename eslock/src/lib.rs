//! Distributed locks stored in Elasticsearch or OpenSearch.
//!
//! Only one process at a time can hold a named lock. A lock is a lease with
//! a TTL that the holder renews while it works, and every acquisition carries
//! a fresh token, so a stale holder can neither extend nor release a lock
//! that someone else now holds. [`Lease::fencing_token`] increases strictly
//! with every acquisition of a lock id, so downstream writes can reject
//! stale holders too.
//!
//! ```
//! # async fn demo() -> eslock::Result<()> {
//! use std::time::Duration;
//! use eslock::{LockManager, LockOptions};
//! use serde_json::json;
//!
//! // LockManager::elasticsearch(client) in production; in memory here.
//! let manager = LockManager::in_memory();
//!
//! let options = LockOptions::default()
//!     .ttl(Duration::from_secs(30))
//!     .metadata(json!({ "host": "worker-1" }));
//! manager
//!     .with_lock("reindex/products", options, || async {
//!         // re-index; runs on one process at a time
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! 1. **Atomic acquire**: one atomic operation creates a lock or takes over
//!    an expired one; of any number of racing contenders exactly one wins.
//! 2. **Server time**: with Elasticsearch, expiry is decided on the
//!    cluster's clock inside the update script, so skewed client clocks can
//!    neither steal nor keep a lock.
//! 3. **Renewal**: a [`Lease`] renews itself; it is declared lost when the
//!    store no longer has its token, or when no renewal succeeded within the
//!    TTL minus a safety margin on the local monotonic clock.
//! 4. **Fencing**: extend and release succeed only with the holder's token;
//!    fencing tokens strictly increase per lock id.
//! 5. **Release on every path**: [`LockManager::with_lock`] releases after
//!    return, error, panic and cancellation; a dropped [`Lease`] schedules
//!    its release.
//! 6. **Bad input** is a typed [`Error`] before any request is sent.

#![warn(missing_docs)]

mod backoff;
mod error;
mod global;
mod id;
mod info;
mod lease;
mod manager;
mod name;
mod options;
mod pending;
mod startup;
pub mod store;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use error::{
    BackendError, Error, InvalidLockIdError, InvalidMetadataError, InvalidOptionError, LeaseLostError, LockAcquisitionError,
    Operation, Result,
};
pub use global::{install, installed};
pub use id::LockId;
pub use info::LockInfo;
pub use lease::Lease;
pub use manager::{LockManager, LockManagerBuilder};
pub use name::LockName;
pub use startup::{StartupOutcome, StartupReport, StartupTask, run_startup_tasks, startup_tasks};

pub use eslock_macros::{exclusive, lock_names};
pub use options::LockOptions;
pub use store::elasticsearch::ElasticsearchStore;
pub use store::memory::MemoryStore;

/// The rules lock ids, durations and metadata follow (shared with the macros).
pub use eslock_rules as rules;
