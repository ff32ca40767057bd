//! The waiters of one manager, per lock id, and the hand-off between them.
//!
//! Waiters for one id queue up in this process. The first polls the store;
//! the others wait for their turn, checking in only rarely (in case the
//! first is not being polled). A lease of this process released while
//! someone waits here passes the lock straight to the first waiter in one
//! atomic store request ([`LockStore::hand_over`]), so no other caller,
//! local or remote, can take it in between. After a run of hand-overs the
//! lock is released plainly instead, without waking the local waiters at
//! once, so that waiters in other processes get their turn too.
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
use crate::sync::lock;

/// What a release in this process offers a waiter.
#[derive(Debug)]
pub(crate) enum Offer {
    /// The lock, handed over by a request sent at `sent` (the claim boxed:
    /// it is far larger than the other variant).
    Granted { claim: Box<Claim>, sent: Instant },
    /// The lock was let go, or the hand-over did not happen: try now.
    TryNow,
}

/// How many hand-overs in a row one lock id gets before a plain release
/// lets other processes compete for it.
const MAX_HAND_OVERS_IN_A_ROW: u32 = 8;

/// After such a release, how long this process's waiters leave the lock to
/// others: longer than the longest pause between two polls of a waiter.
const YIELD_AFTER_HAND_OVERS: Duration = Duration::from_millis(2500);

/// How long the waiters behind the first let it poll alone: if nobody in
/// the queue polled for this long (the first waiter's future is not being
/// polled), the next waiter polls itself.
pub(crate) const IDLE_POLLING: Duration = Duration::from_secs(4);

/// What a release in this process does with the lock.
#[derive(Debug)]
pub(crate) enum Next {
    /// Hand it to the first local waiter.
    HandOver(Handoff),
    /// Release it to the store; wake the local waiters unless they have had
    /// their run of hand-overs.
    Release { wake_local_waiters: bool },
}

/// The local waiters of one manager.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    queues: Mutex<HashMap<String, Queue>>,
    /// Per lock id, the hand-overs in a row and until when this process
    /// leaves the lock to others after them.
    turns: Mutex<Turns>,
    next_id: std::sync::atomic::AtomicU64,
    /// Bumped whenever a waiter leaves a queue: the next may be first now.
    left: watch::Sender<u64>,
}

/// The waiters of one lock id, in order.
#[derive(Debug, Default)]
struct Queue {
    waiters: VecDeque<Waiter>,
    /// When a waiter of this queue last asked the store.
    last_poll: Option<Instant>,
}

/// Fairness towards other processes, per lock id. Kept apart from the
/// queues, which come and go with every hand-over.
#[derive(Debug, Default)]
struct Turns {
    hand_overs_in_a_row: HashMap<String, u32>,
    yields: HashMap<String, Instant>,
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
        let mut queues = self.queues();
        let queue = queues.entry(lock_id.as_str().to_string()).or_default();
        queue.waiters.push_back(Waiter { id, ttl, metadata, offers: sender });
        // Every waiter joins right after asking the store.
        queue.last_poll = Some(Instant::now());
        drop(queues);
        Place { waiters: Arc::clone(self), lock_id: lock_id.as_str().to_string(), id, offers, left }
    }

    /// What a release of `lock_id` in this process should do.
    pub(crate) fn next(&self, lock_id: &LockId) -> Next {
        let queues = self.queues();
        let mut turns = lock(&self.turns);
        let waiter = queues.get(lock_id.as_str()).and_then(|queue| queue.waiters.iter().find(|waiter| !waiter.offers.is_closed()));
        let Some(waiter) = waiter else {
            turns.hand_overs_in_a_row.remove(lock_id.as_str());
            return Next::Release { wake_local_waiters: true };
        };
        let in_a_row = turns.hand_overs_in_a_row.entry(lock_id.as_str().to_string()).or_default();
        if *in_a_row >= MAX_HAND_OVERS_IN_A_ROW {
            turns.hand_overs_in_a_row.remove(lock_id.as_str());
            turns.yields.insert(lock_id.as_str().to_string(), Instant::now() + YIELD_AFTER_HAND_OVERS);
            return Next::Release { wake_local_waiters: false };
        }
        *in_a_row += 1;
        Next::HandOver(Handoff {
            request: AcquireRequest {
                lock_id: lock_id.clone(),
                token: uuid::Uuid::new_v4().to_string(),
                ttl: waiter.ttl,
                metadata: waiter.metadata.clone(),
            },
            offers: waiter.offers.clone(),
        })
    }

    /// Until when this process leaves `lock_id` to other processes, if it does.
    pub(crate) fn yielding(&self, lock_id: &LockId) -> Option<Instant> {
        let yields = &mut lock(&self.turns).yields;
        let until = *yields.get(lock_id.as_str())?;
        if until <= Instant::now() {
            yields.remove(lock_id.as_str());
            return None;
        }
        Some(until)
    }

    fn queues(&self) -> std::sync::MutexGuard<'_, HashMap<String, Queue>> {
        lock(&self.queues)
    }
}


impl Place {
    /// Whether this waiter is the first of its lock id: the one that polls.
    /// Changes of the queue from here on wake [`Place::turns`].
    pub(crate) fn is_first(&mut self) -> bool {
        self.left.borrow_and_update();
        let queues = self.waiters.queues();
        queues.get(&self.lock_id).and_then(|queue| queue.waiters.front()).is_some_and(|first| first.id == self.id)
    }

    /// Records that this waiter asks the store now.
    pub(crate) fn polling(&self) {
        if let Some(queue) = self.waiters.queues().get_mut(&self.lock_id) {
            queue.last_poll = Some(Instant::now());
        }
    }

    /// Whether nobody in this waiter's queue asked the store for [`IDLE_POLLING`].
    pub(crate) fn polling_is_idle(&self) -> bool {
        let queues = self.waiters.queues();
        let last = queues.get(&self.lock_id).and_then(|queue| queue.last_poll);
        last.is_none_or(|last| last.elapsed() >= IDLE_POLLING)
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
            queue.waiters.retain(|waiter| waiter.id != self.id);
            if queue.waiters.is_empty() {
                queues.remove(&self.lock_id);
            }
        }
        drop(queues);
        self.waiters.left.send_modify(|count| *count = count.wrapping_add(1));
        // Offers still queued (a claim sent as the waiter gave up) drop with
        // the receiver, and a dropped claim releases its lock.
    }
}
