//! What a store knows about one lock.

use std::time::SystemTime;

use serde_json::Value;

use crate::id::LockId;

/// A lock as the store holds it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> eslock::Result<()> {
/// let manager = eslock::LockManager::in_memory();
/// let lease = manager.acquire("nightly-report", eslock::LockOptions::default()).await?;
/// let info = manager.get("nightly-report").await?.expect("held");
/// assert_eq!(info.lock_id, "nightly-report");
/// assert_eq!(info.fencing_token, Some(lease.fencing_token()));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LockInfo {
    /// The lock id.
    pub lock_id: LockId,
    /// The holder's token (fresh and random for every acquisition).
    pub token: String,
    /// When the current holder acquired the lock (store clock).
    pub created_at: SystemTime,
    /// When the lease expires unless renewed (store clock).
    pub expires_at: SystemTime,
    /// The JSON object the holder stored with the lock.
    pub metadata: Value,
    /// The holder's fencing token: strictly increasing across successive
    /// acquisitions of this lock id. `None` when the holder did not write one
    /// (a Kibana node sharing the index); never a number left behind by an
    /// earlier holder.
    pub fencing_token: Option<u64>,
}

impl LockInfo {
    /// Whether the lease has expired at `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expires_at <= now
    }
}
