//! Where locks live. The manager knows only the [`LockStore`] trait; each
//! store knows only its backend.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;

use crate::error::Result;
use crate::id::LockId;
use crate::info::LockInfo;

pub mod elasticsearch;
pub mod memory;

/// The future every store method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// One attempt to take a lock.
#[derive(Debug, Clone)]
pub struct AcquireRequest {
    /// The lock to take.
    pub lock_id: LockId,
    /// The new holder's token.
    pub token: String,
    /// Lease TTL.
    pub ttl: Duration,
    /// Metadata to store (a JSON object).
    pub metadata: Value,
}

/// What an acquisition attempt found.
#[derive(Debug, Clone)]
pub enum AcquireOutcome {
    /// The lock is now ours.
    Acquired(LockInfo),
    /// Someone else holds it; their lock when the store returned it.
    Held(Option<LockInfo>),
}

/// One lease to renew in a batch ([`LockStore::extend_many`]).
#[derive(Debug, Clone)]
pub struct Renewal {
    /// The lock.
    pub lock_id: LockId,
    /// The holder's token.
    pub token: String,
    /// The new TTL, from now.
    pub ttl: Duration,
}

/// What [`LockStore::hand_over`] did.
#[derive(Debug, Clone)]
pub enum HandOver {
    /// The lock passed to the new token, without a moment between the two
    /// holders; the new holder's lock.
    HandedOver(LockInfo),
    /// The old token held the lock and let it go, but the new token did not
    /// get it (someone else was quicker).
    Released,
    /// The old token did not hold the lock: nothing changed.
    NotHeld,
}

/// A backend that stores locks. Every implementation honours the semantics in
/// the crate documentation: atomic acquire, expiry on the store's clock, token
/// checks on extend and release, strictly increasing fencing tokens.
///
/// Implement it to keep locks somewhere else; pass it to
/// [`LockManagerBuilder::store`](crate::LockManagerBuilder::store).
///
/// ```
/// use eslock::store::{AcquireOutcome, AcquireRequest, LockStore};
/// use eslock::{LockId, LockManager, MemoryStore};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> eslock::Result<()> {
/// // Stores can be driven directly, below the manager's validation and leases.
/// let store = MemoryStore::new();
/// let request = AcquireRequest {
///     lock_id: LockId::new("raw")?,
///     token: "t-1".into(),
///     ttl: std::time::Duration::from_secs(5),
///     metadata: serde_json::json!({}),
/// };
/// assert!(matches!(store.acquire(&request).await?, AcquireOutcome::Acquired(_)));
/// assert!(store.release(&request.lock_id, "t-1").await?);
/// let manager = LockManager::builder().store(store).build();
/// # Ok(()) }
/// ```
pub trait LockStore: Send + Sync + 'static {
    /// Prepares the backend (idempotent, safe to run from many processes).
    fn setup(&self) -> StoreFuture<'_, ()>;

    /// Creates the lock, or takes it over when it has expired, in one atomic step.
    fn acquire<'a>(&'a self, request: &'a AcquireRequest) -> StoreFuture<'a, AcquireOutcome>;

    /// Moves the expiry to now + `ttl` if `token` still holds the lock and the
    /// lease has not expired; `None` otherwise.
    fn extend<'a>(&'a self, lock_id: &'a LockId, token: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockInfo>>;

    /// Extends several leases, each as [`extend`](Self::extend) would, in
    /// one round trip where the backend can: one outcome per renewal, in
    /// order. An `Err` for the whole call leaves every outcome unknown.
    /// The default extends them one by one, concurrently.
    fn extend_many<'a>(&'a self, renewals: &'a [Renewal]) -> StoreFuture<'a, Vec<Result<Option<LockInfo>>>> {
        let each = renewals.iter().map(|renewal| self.extend(&renewal.lock_id, &renewal.token, renewal.ttl));
        Box::pin(async move { Ok(futures_util::future::join_all(each).await) })
    }

    /// If `token` holds `lock_id`, gives the lock to `next.token` as a new
    /// acquisition (next fencing token, new TTL and metadata), with no
    /// moment in between where a third party could take it; `token` holds
    /// nothing afterwards, as after a release. The default releases and
    /// then acquires: correct, but with a gap.
    fn hand_over<'a>(&'a self, lock_id: &'a LockId, token: &'a str, next: &'a AcquireRequest) -> StoreFuture<'a, HandOver> {
        Box::pin(async move {
            if !self.release(lock_id, token).await? {
                return Ok(HandOver::NotHeld);
            }
            Ok(match self.acquire(next).await? {
                AcquireOutcome::Acquired(info) => HandOver::HandedOver(info),
                AcquireOutcome::Held(_) => HandOver::Released,
            })
        })
    }

    /// Deletes the lock if `token` holds it; whether it did.
    fn release<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool>;

    /// Gives `token` up for good: releases the lock if `token` holds it, and
    /// makes sure an acquire request with this token that is still on its
    /// way (its caller saw it fail or gave up on it) can never take the lock
    /// afterwards. Whether it released a lock. Stores whose requests cannot
    /// outlive their caller may keep the default, a plain release.
    fn abandon<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
        self.release(lock_id, token)
    }

    /// The lock, unless absent or expired.
    fn get<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, Option<LockInfo>>;

    /// All locks that have not expired, ordered by lock id.
    fn list(&self) -> StoreFuture<'_, Vec<LockInfo>>;

    /// Deletes the lock whoever holds it; whether there was one.
    fn force_release<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, bool>;

    /// Whether other programs keep locks in this store under ids outside
    /// eslock's rules (Kibana's lock index): [`LockManager::get`] and
    /// [`LockManager::force_release`] then accept any id the store can hold,
    /// so every such lock can be inspected and removed. Acquisition always
    /// follows eslock's rules.
    ///
    /// [`LockManager::get`]: crate::LockManager::get
    /// [`LockManager::force_release`]: crate::LockManager::force_release
    fn accepts_foreign_ids(&self) -> bool {
        false
    }

    /// The concrete index, for stores that have one.
    fn index(&self) -> Option<&str> {
        None
    }
}

impl std::fmt::Debug for dyn LockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockStore")
    }
}
