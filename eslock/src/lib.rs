//! Distributed locks stored in Elasticsearch or OpenSearch.
//!
//! Only one process at a time can hold a named lock. A lock is a lease with
//! a TTL that the holder renews while it works, and every acquisition carries
//! a fresh token, so a stale holder can neither extend nor release a lock
//! that someone else now holds. [`LeaseHandle::fencing_token`] increases strictly
//! with every acquisition of a lock id, so downstream writes can reject
//! stale holders too.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> eslock::Result<()> {
//! use std::time::Duration;
//! use eslock::{LockManager, LockOptions};
//! use serde_json::json;
//!
//! // LockManager::elasticsearch(client) or LockManager::from_env()? in
//! // production; in memory here.
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
//!    an expired or released one; of any number of racing contenders exactly
//!    one wins.
//! 2. **Server time**: with Elasticsearch, every decision about expiry — in
//!    the update scripts, in [`LockManager::get`], [`LockManager::list`] and
//!    index repair — is made on the cluster's clock, so skewed client clocks
//!    can neither steal, keep, hide nor delete a lock.
//! 3. **Lease trust**: a [`Lease`] is trusted until its trust deadline — the
//!    send time of its last successful acquire or renewal, plus that
//!    request's TTL, minus a safety margin of TTL/5 — on the local monotonic
//!    clock. [`LeaseHandle::is_lost`] computes it; [`LeaseHandle::lost`] fires at it even
//!    if no renewal task ran; [`LockManager::acquire`] never returns a lease
//!    already past it; a shorter TTL given to [`LeaseHandle::extend`] moves it at
//!    once. The lease is also lost as soon as the store reports another
//!    token. A lost lease stays lost.
//! 4. **Fencing**: extend and release succeed only with the holder's token.
//!    [`LeaseHandle::fencing_token`] strictly increases per lock id across release,
//!    force-release, expiry take-over, primary fail-over and clock steps: a
//!    release keeps the lock id's counter, and the next token is one more
//!    (or the cluster clock in microseconds, if larger). Only when the lock
//!    index itself is deleted (or, in the Kibana preset, a Kibana node
//!    deletes a lock's document) does an id start again from the cluster
//!    clock.
//! 5. **Release on every path**: [`LockManager::with_lock`] releases after
//!    return, error, panic and cancellation — also while the acquire request
//!    is in flight — and returns [`Error::LeaseLost`] if the lease was lost
//!    before the callback finished, whatever it returned. A dropped [`Lease`]
//!    schedules its release, and a new acquire of that id in the same
//!    process waits for it.
//! 6. **Bad input** is a typed [`Error`] before any request is sent: what is
//!    accepted can be read back (TTL from 10 ms to 100 years, metadata a JSON
//!    object of at most 8 KiB nested at most 32 levels). No reply makes
//!    eslock panic; one unreadable lock document never breaks the others.
//!
//! What no lease can promise: a process paused (a GC pause, a stopped VM)
//! right after checking [`LeaseHandle::is_lost`] may act after its lease ended.
//! That is what fencing tokens are for: pass [`LeaseHandle::fencing_token`] with
//! every write, and let the resource refuse a token lower than one it has
//! seen.

#![warn(missing_docs)]

mod backoff;
mod error;
mod global;
mod handoff;
mod id;
mod info;
mod lease;
mod local;
mod manager;
mod name;
mod options;
mod pending;
mod renewal;
mod startup;
mod sync;
mod telemetry;
mod timetable;
pub mod store;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use error::{
    BackendError, Error, IncompatibleIndexError, InvalidLockIdError, InvalidMetadataError, InvalidOptionError, LeaseLostError,
    LockAcquisitionError, Operation, Result,
};
pub use global::{install, installed};
pub use id::LockId;
pub use info::LockInfo;
pub use lease::{Lease, LeaseHandle};
pub use manager::{LockManager, LockManagerBuilder};
pub use name::{LockName, LockTemplate};
pub use startup::{StartupOutcome, StartupReport, StartupTask, run_startup_tasks, startup_tasks};

pub use eslock_macros::{exclusive, lock_names};
pub use options::LockOptions;
pub use store::elasticsearch::{ElasticsearchStore, ElasticsearchStoreBuilder};
pub use store::memory::MemoryStore;

/// The rules lock ids, durations and metadata follow (shared with the macros).
pub use eslock_rules as rules;
