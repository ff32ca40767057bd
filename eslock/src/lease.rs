//! A held lock: renewed in the background while it lives, with a `lost`
//! signal when it can no longer be trusted, and released on every exit path.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::error::Result;
use crate::store::LockStore;
use crate::{LockId, LockInfo};

/// A lock held by this process.
///
/// While the `Lease` lives, a background task extends it at most every
/// TTL/3, retrying transient failures. The lease is *lost* — [`Lease::lost`]
/// completes and [`Lease::is_lost`] turns true — when the store reports that
/// another token holds the lock, or when no renewal has succeeded within the
/// TTL minus a safety margin, counted on the local monotonic clock from the
/// moment the last successful renewal was sent.
///
/// Release it with [`Lease::release`]. Dropping it instead schedules a
/// release on the current Tokio runtime; with no runtime left, the TTL frees
/// the lock.
///
/// ```
/// # async fn demo() -> eslock::Result<()> {
/// use eslock::{LockManager, LockOptions};
///
/// let manager = LockManager::in_memory();
/// let lease = manager.acquire("compaction", LockOptions::default()).await?;
/// // ... pass lease.fencing_token() along with writes downstream ...
/// assert!(!lease.is_lost());
/// assert!(lease.release().await?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Lease {
    shared: Arc<Shared>,
    renewal: JoinHandle<()>,
    released: bool,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn LockStore>,
    lock_id: LockId,
    token: String,
    fencing_token: u64,
    created_at: SystemTime,
    state: Mutex<RenewalState>,
    lost: watch::Sender<Option<String>>,
}

#[derive(Debug, Clone, Copy)]
struct RenewalState {
    ttl: Duration,
    /// When the request behind the last successful acquire/extend was sent.
    last_success_sent: Instant,
    expires_at: SystemTime,
}

/// How long before the TTL runs out (on the local clock) the lease is
/// declared lost: room for clock drift and the request's own travel time.
fn safety_margin(ttl: Duration) -> Duration {
    ttl / 5
}

fn renewal_interval(ttl: Duration) -> Duration {
    ttl / 3
}

impl RenewalState {
    fn trust_deadline(&self) -> Instant {
        self.last_success_sent + self.ttl - safety_margin(self.ttl)
    }
}

impl Lease {
    /// Starts the lease for a lock just acquired with a request sent at `sent`.
    pub(crate) fn start(store: Arc<dyn LockStore>, info: LockInfo, ttl: Duration, sent: Instant, renew: bool) -> Self {
        let (lost, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            store,
            lock_id: LockId::new(&info.lock_id).expect("the store returns the id it was given"),
            token: info.token,
            fencing_token: info.fencing_token,
            created_at: info.created_at,
            state: Mutex::new(RenewalState {
                ttl,
                last_success_sent: sent,
                expires_at: info.expires_at,
            }),
            lost,
        });
        let renewal = tokio::spawn(keep_alive(Arc::clone(&shared), renew));
        Lease {
            shared,
            renewal,
            released: false,
        }
    }

    /// The lock id.
    pub fn lock_id(&self) -> &str {
        self.shared.lock_id.as_str()
    }

    /// This acquisition's random token.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Strictly increasing across successive acquisitions of this lock id:
    /// pass it with downstream writes so they can reject stale holders.
    pub fn fencing_token(&self) -> u64 {
        self.shared.fencing_token
    }

    /// When the lock was acquired (store clock).
    pub fn created_at(&self) -> SystemTime {
        self.shared.created_at
    }

    /// When the lease expires unless renewed again (store clock), as of the
    /// last successful renewal.
    pub fn expires_at(&self) -> SystemTime {
        self.shared.state().expires_at
    }

    /// Extends the lease to `ttl` from now, and makes `ttl` the TTL of later
    /// renewals. `false` when the lock is no longer ours (the lease is then lost).
    pub async fn extend(&self, ttl: Duration) -> Result<bool> {
        crate::options::check_ttl(ttl)?;
        self.shared.extend(ttl).await
    }

    /// Completes when the lease is lost. Never completes for a healthy lease.
    pub async fn lost(&self) {
        let mut receiver = self.shared.lost.subscribe();
        // The sender lives in `shared`, which outlives this borrow.
        let _ = receiver.wait_for(Option::is_some).await;
    }

    /// Whether the lease has been lost.
    pub fn is_lost(&self) -> bool {
        self.shared.lost.borrow().is_some()
    }

    /// Why the lease was lost, if it was.
    pub fn lost_reason(&self) -> Option<String> {
        self.shared.lost.borrow().clone()
    }

    /// Stops renewal without releasing: the lock stays held until its TTL
    /// runs out (for example a marker that must outlive this process).
    pub fn detach(mut self) {
        self.renewal.abort();
        self.released = true;
        tracing::debug!(lock_id = %self.shared.lock_id, "lease detached; its TTL frees the lock");
    }

    /// Stops renewal and releases the lock. `false` when it was no longer
    /// ours (expired and taken over, or force-released).
    pub async fn release(mut self) -> Result<bool> {
        self.renewal.abort();
        let released = self.shared.store.release(&self.shared.lock_id, &self.shared.token).await?;
        // Only a completed request settles it; after an error, Drop tries again.
        self.released = true;
        tracing::debug!(lock_id = %self.shared.lock_id, released, "lock released");
        Ok(released)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
        if self.released {
            return;
        }
        let shared = Arc::clone(&self.shared);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    match shared.store.release(&shared.lock_id, &shared.token).await {
                        Ok(released) => tracing::debug!(lock_id = %shared.lock_id, released, "dropped lease released"),
                        Err(err) => tracing::warn!(lock_id = %shared.lock_id, error = %err, "releasing a dropped lease failed; its TTL will free it"),
                    }
                });
            }
            Err(_) => {
                tracing::debug!(lock_id = %self.shared.lock_id, "lease dropped outside a runtime; its TTL will free it");
            }
        }
    }
}

impl Shared {
    fn state(&self) -> RenewalState {
        *self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn declare_lost(&self, reason: String) {
        let mut first = false;
        self.lost.send_if_modified(|current| {
            first = current.is_none();
            if first {
                *current = Some(reason.clone());
            }
            first
        });
        if first {
            tracing::debug!(lock_id = %self.lock_id, %reason, "lease lost");
        }
    }

    async fn extend(&self, ttl: Duration) -> Result<bool> {
        let sent = Instant::now();
        match self.store.extend(&self.lock_id, &self.token, ttl).await? {
            Some(info) => {
                let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                state.ttl = ttl;
                if sent > state.last_success_sent {
                    state.last_success_sent = sent;
                    state.expires_at = info.expires_at;
                }
                tracing::debug!(lock_id = %self.lock_id, "lease extended");
                Ok(true)
            }
            None => {
                self.declare_lost("the store no longer holds this lease's token (expired, taken over or force-released)".into());
                Ok(false)
            }
        }
    }
}

/// The background task: renews the lease (unless `renew` is false) and
/// declares it lost when it can no longer be trusted.
async fn keep_alive(shared: Arc<Shared>, renew: bool) {
    let mut backoff: Option<Backoff> = None;
    loop {
        let state = shared.state();
        if !renew {
            tokio::time::sleep_until(state.trust_deadline()).await;
            if Instant::now() >= shared.state().trust_deadline() {
                shared.declare_lost(format!("the lease was not renewed and its TTL ({:?}) ran out", state.ttl));
                return;
            }
            continue;
        }
        let interval = renewal_interval(state.ttl);
        let next = match backoff.as_mut() {
            // After a failure, retry sooner, but never wait longer than the interval.
            Some(backoff) => Instant::now() + backoff.next_delay().min(interval),
            None => state.last_success_sent + interval,
        };
        let deadline = state.trust_deadline();
        tokio::time::sleep_until(next.min(deadline)).await;

        if Instant::now() >= shared.state().trust_deadline() {
            shared.declare_lost(format!(
                "no renewal succeeded within the TTL ({:?}) minus the safety margin",
                state.ttl
            ));
            return;
        }
        let remaining = shared.state().trust_deadline() - Instant::now();
        match tokio::time::timeout(remaining, shared.extend(state.ttl)).await {
            Ok(Ok(true)) => backoff = None,
            Ok(Ok(false)) => return,
            Ok(Err(err)) => {
                tracing::warn!(lock_id = %shared.lock_id, error = %err, "lease renewal failed; retrying");
                backoff.get_or_insert_with(|| Backoff::new(Duration::from_millis(50), Duration::from_secs(2)));
            }
            Err(_) => {
                tracing::warn!(lock_id = %shared.lock_id, "lease renewal did not answer in time");
                // The loop's deadline check declares the lease lost.
            }
        }
    }
}
