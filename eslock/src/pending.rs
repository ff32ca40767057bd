//! Work on a lock id that this process started and has not finished: an
//! acquire request still in flight after its caller went away, or a release
//! scheduled by a dropped lease. A new acquire of the same id in this process
//! waits for it, so that dropping a lease and acquiring again at once is not
//! refused by our own lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// The ids with unfinished work, shared by a manager and its leases.
#[derive(Debug)]
pub(crate) struct PendingWork {
    counts: Mutex<HashMap<String, usize>>,
    /// Bumped whenever some work finishes, to wake waiters.
    finished: watch::Sender<u64>,
    /// Bumped whenever a lock of this process is released.
    released: watch::Sender<u64>,
}

impl Default for PendingWork {
    fn default() -> Self {
        PendingWork {
            counts: Mutex::new(HashMap::new()),
            finished: watch::channel(0).0,
            released: watch::channel(0).0,
        }
    }
}

impl PendingWork {
    /// Marks work on `lock_id` as started; it ends when the guard drops.
    pub(crate) fn start(self: &Arc<Self>, lock_id: &str) -> PendingGuard {
        *self.counts().entry(lock_id.to_string()).or_default() += 1;
        PendingGuard {
            work: Arc::clone(self),
            lock_id: lock_id.to_string(),
        }
    }

    /// Completes once no work on `lock_id` is pending.
    pub(crate) async fn settled(&self, lock_id: &str) {
        let mut finished = self.finished.subscribe();
        while self.counts().contains_key(lock_id) {
            // The sender lives in `self`, so this only ends when work finishes.
            if finished.changed().await.is_err() {
                return;
            }
        }
    }

    /// A lock of this process was released: local waiters may try at once
    /// rather than at their next backoff step.
    pub(crate) fn released(&self) {
        self.released.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Changes whenever a lock of this process is released.
    pub(crate) fn releases(&self) -> watch::Receiver<u64> {
        self.released.subscribe()
    }

    /// Completes once no work on any lock id is pending.
    pub(crate) async fn all_settled(&self) {
        let mut finished = self.finished.subscribe();
        while !self.counts().is_empty() {
            if finished.changed().await.is_err() {
                return;
            }
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        crate::sync::lock(&self.counts)
    }
}

/// Unfinished work on one lock id; dropping it marks the work finished.
#[derive(Debug)]
pub(crate) struct PendingGuard {
    work: Arc<PendingWork>,
    lock_id: String,
}

impl PendingGuard {
    /// The work released a lock: wake local waiters.
    pub(crate) fn released(&self) {
        self.work.released();
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let mut counts = self.work.counts();
        if let Some(count) = counts.get_mut(&self.lock_id) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.lock_id);
            }
        }
        drop(counts);
        self.work.finished.send_modify(|generation| *generation = generation.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waits_until_every_guard_of_the_id_is_gone() {
        let work = Arc::new(PendingWork::default());
        let first = work.start("a");
        let second = work.start("a");
        let _other = work.start("b");
        let waiter = tokio::spawn({
            let work = Arc::clone(&work);
            async move { work.settled("a").await }
        });
        drop(first);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "one guard of `a` is still alive");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    }
}
