//! The waiters of one manager, per lock id, and the hand-off between them.
//!
//! Waiters for one id queue up in this process. Only the first polls the
//! store; the others wait for their turn. A lease of this process released
//! while someone waits here passes the lock straight to the first waiter in
//! one atomic store request ([`LockStore::hand_over`]), so no other caller,
//! local or remote, can take it in between.
//!
//! [`LockStore::hand_over`]: crate::store::LockStore::hand_over

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::id::LockId;
use crate::lease::Claim;
use crate::store::AcquireRequest;

/// What a release in this process offers a waiter.
#[derive(Debug)]
pub(crate) enum Offer {
    /// The lock, handed over by a request sent at `sent`.
    Granted { claim: Claim, sent: Instant },
    /// The lock was let go, or the hand-over did not happen: try now.
    TryNow,
}

/// The local waiters of one manager.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    queues: Mutex<HashMap<String, VecDeque<Waiter>>>,
    next_id: std::sync::atomic::AtomicU64,
    /// Bumped whenever a waiter leaves a queue: the next may be first now.
    left: watch::Sender<u64>,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    ttl: Duration,
    metadata: Value,
    offers: mpsc::UnboundedSender<Offer>,
}

/// A waiter's place in the queue of its lock id; dropped, it leaves.
#[derive(Debug)]
pub(crate) struct Place {
    waiters: Arc<Waiters>,
    lock_id: String,
    id: u64,
    offers: mpsc::UnboundedReceiver<Offer>,
    left: watch::Receiver<u64>,
}

/// Where to send what became of a hand-over to the first waiter.
#[derive(Debug)]
pub(crate) struct Handoff {
    /// The acquisition to hand the lock to, with a fresh token.
    pub(crate) request: AcquireRequest,
    pub(crate) offers: mpsc::UnboundedSender<Offer>,
}

impl Waiters {
    /// Queues a waiter for `lock_id` that wants it for `ttl` with `metadata`.
    pub(crate) fn join(self: &Arc<Self>, lock_id: &LockId, ttl: Duration, metadata: Value) -> Place {
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sender, offers) = mpsc::unbounded_channel();
        let left = self.left.subscribe();
        self.queues().entry(lock_id.as_str().to_string()).or_default().push_back(Waiter { id, ttl, metadata, offers: sender });
        Place { waiters: Arc::clone(self), lock_id: lock_id.as_str().to_string(), id, offers, left }
    }

    /// A hand-over to the first waiter for `lock_id` still listening, if any.
    pub(crate) fn first(&self, lock_id: &LockId) -> Option<Handoff> {
        let queues = self.queues();
        let waiter = queues.get(lock_id.as_str())?.iter().find(|waiter| !waiter.offers.is_closed())?;
        Some(Handoff {
            request: AcquireRequest {
                lock_id: lock_id.clone(),
                token: uuid::Uuid::new_v4().to_string(),
                ttl: waiter.ttl,
                metadata: waiter.metadata.clone(),
            },
            offers: waiter.offers.clone(),
        })
    }

    fn queues(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Waiter>>> {
        // Every change is one push or one removal: poisoning cannot leave a queue half-changed.
        self.queues.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Place {
    /// Whether this waiter is the first of its lock id: the one that polls.
    /// Changes of the queue from here on wake [`Place::turns`].
    pub(crate) fn is_first(&mut self) -> bool {
        self.left.borrow_and_update();
        let queues = self.waiters.queues();
        queues.get(&self.lock_id).and_then(VecDeque::front).is_some_and(|first| first.id == self.id)
    }

    /// Changes when a waiter leaves the queue after the last [`Place::is_first`]:
    /// this one may be first now.
    pub(crate) fn turns(&self) -> watch::Receiver<u64> {
        self.left.clone()
    }

    /// The next offer from a release in this process.
    pub(crate) async fn offer(&mut self) -> Offer {
        // The sender lives in the queue while this place does.
        self.offers.recv().await.unwrap_or(Offer::TryNow)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut queues = self.waiters.queues();
        if let Some(queue) = queues.get_mut(&self.lock_id) {
            queue.retain(|waiter| waiter.id != self.id);
            if queue.is_empty() {
                queues.remove(&self.lock_id);
            }
        }
        drop(queues);
        self.waiters.left.send_modify(|count| *count = count.wrapping_add(1));
        // Offers still queued (a claim sent as the waiter gave up) drop with
        // the receiver, and a dropped claim releases its lock.
    }
}
