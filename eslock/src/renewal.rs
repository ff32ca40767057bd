//! One manager's lease renewals, coalesced: renewals due at about the same
//! time go to the store together ([`LockStore::extend_many`], one `_bulk`
//! request on Elasticsearch), and each keeps its own outcome.
//!
//! Renewals line up by themselves: when a batch starts to gather, every
//! lease at least half-way to its next renewal joins it, so leases of
//! similar TTLs soon share one request per tick, however they were spread
//! out when acquired.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::error::{BackendError, Operation, Result};
use crate::store::{LockStore, Renewal};
use crate::LockInfo;

/// The longest a batch waits for more renewals after its first one; never
/// more than a twentieth of that renewal's TTL.
const GATHER_WINDOW: Duration = Duration::from_millis(5);

/// The renewals of one manager's leases.
#[derive(Debug)]
pub(crate) struct Renewals {
    store: Arc<dyn LockStore>,
    queue: Mutex<Queue>,
    /// Bumped when a batch starts to gather.
    gathering: watch::Sender<u64>,
}

/// The renewals waiting for the next batch, and whether a task is
/// gathering them (it sends them when its window ends).
#[derive(Debug, Default)]
struct Queue {
    renewals: Vec<Queued>,
    gathering: bool,
}

/// A renewal waiting for its batch, and where its outcome goes.
#[derive(Debug)]
struct Queued {
    renewal: Renewal,
    outcome: oneshot::Sender<Result<Option<LockInfo>>>,
}

impl Renewals {
    pub(crate) fn new(store: Arc<dyn LockStore>) -> Self {
        Renewals {
            store,
            queue: Mutex::new(Queue::default()),
            gathering: watch::channel(0).0,
        }
    }

    /// Changes whenever a batch starts to gather: a lease half-way to its
    /// next renewal should join it.
    pub(crate) fn gathering(&self) -> watch::Receiver<u64> {
        self.gathering.subscribe()
    }

    /// Renews one lease as part of the next batch: what
    /// [`LockStore::extend`] would say for it alone.
    pub(crate) async fn extend(self: &Arc<Self>, renewal: Renewal) -> Result<Option<LockInfo>> {
        let (outcome, reply) = oneshot::channel();
        let lock_id = renewal.lock_id.clone();
        let window = (renewal.ttl / 20).min(GATHER_WINDOW);
        let first = {
            let mut queue = self.queue();
            queue.renewals.push(Queued { renewal, outcome });
            !std::mem::replace(&mut queue.gathering, true)
        };
        if first {
            self.gathering.send_modify(|count| *count = count.wrapping_add(1));
            let gatherer = Gatherer { renewals: Arc::clone(self), took_batch: false };
            tokio::spawn(async move {
                tokio::time::sleep(window).await;
                gatherer.send_batch().await;
            });
        }
        reply.await.unwrap_or_else(|_| {
            Err(BackendError::new(Operation::Extend, Some(&lock_id), "the renewal batch was dropped (the runtime shut down)").into())
        })
    }

    /// Takes the queued renewals; the next renewal starts a new batch.
    fn take_batch(&self) -> Vec<Queued> {
        let mut queue = self.queue();
        queue.gathering = false;
        std::mem::take(&mut queue.renewals)
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        crate::sync::lock(&self.queue)
    }
}

/// The task that gathers a batch and sends it. Dropped before it took the
/// batch (its runtime shut down during the window), it fails the renewals
/// gathered so far, so that later renewals start a batch of their own
/// rather than join one that is never sent.
struct Gatherer {
    renewals: Arc<Renewals>,
    took_batch: bool,
}

impl Drop for Gatherer {
    fn drop(&mut self) {
        if !self.took_batch {
            // Their outcome senders drop with them: each renewal sees an error.
            drop(self.renewals.take_batch());
        }
    }
}

impl Gatherer {
    /// Sends every queued renewal in one store call and hands out the outcomes.
    async fn send_batch(mut self) {
        let batch = self.renewals.take_batch();
        self.took_batch = true;
        let renewals: Vec<Renewal> = batch.iter().map(|queued| queued.renewal.clone()).collect();
        let outcomes = self.renewals.store.extend_many(&renewals).await;
        let outcomes: Vec<Result<Option<LockInfo>>> = match outcomes {
            Ok(outcomes) if outcomes.len() == batch.len() => outcomes,
            Ok(outcomes) => {
                let reason = format!("the store answered {} of {} renewals", outcomes.len(), batch.len());
                batch.iter().map(|queued| Err(batch_error(&queued.renewal, &reason))).collect()
            }
            Err(err) => {
                let reason = format!("the batched renewal failed: {err}");
                batch.iter().map(|queued| Err(batch_error(&queued.renewal, &reason))).collect()
            }
        };
        for (queued, outcome) in batch.into_iter().zip(outcomes) {
            // A lease that stopped waiting has settled its renewal as unknown.
            let _ = queued.outcome.send(outcome);
        }
    }
}

fn batch_error(renewal: &Renewal, reason: &str) -> crate::Error {
    BackendError::new(Operation::Extend, Some(&renewal.lock_id), reason).into()
}
