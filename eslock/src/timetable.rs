//! When deferred work starts: one task per runtime sleeps until the earliest
//! entry is due and runs it then.
//!
//! Leases use it to start their keep-alive task only once it has something
//! to do (half-way to the first renewal). Most leases end long before that,
//! and spawning a task per acquisition, then aborting it at release, each
//! woke an idle worker thread: about a tenth of a short critical section.
//! An entry costs an insert and a removal. While entries come more often
//! than they fall due, the task wakes only when one is due; a lone entry
//! costs a notification and one timed wake, no more than the spawn and
//! abort it replaces.
//!
//! Entries run on the runtime that scheduled them (a task of a runtime that
//! shut down never runs them, as a task spawned there would not have run),
//! and on its clock, so paused Tokio time moves them as it moves every timer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::runtime::{Handle, Id};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::sync::lock;

/// What an entry does when it is due. It runs on the timetable's task:
/// it must be quick (spawn anything longer).
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// One manager's deferred work, a queue per runtime.
#[derive(Debug, Default)]
pub(crate) struct Timetable {
    runtimes: Mutex<Vec<Arc<Queue>>>,
}

/// The entries of one runtime, served by one task.
struct Queue {
    runtime: Id,
    state: Mutex<State>,
    /// Wakes the task for an entry due before it planned to wake.
    earlier: Arc<Notify>,
}

#[derive(Default)]
struct State {
    entries: BTreeMap<(Instant, u64), Job>,
    next_id: u64,
    /// When the task wakes next (`None`: only when notified).
    wakes_at: Option<Instant>,
    /// Whether the task still runs (it ends with its runtime).
    running: bool,
}

/// A scheduled job; dropped before it is due, the job never runs.
#[derive(Debug)]
pub(crate) struct Entry {
    queue: Weak<Queue>,
    key: (Instant, u64),
}

impl Timetable {
    /// Runs `job` at `at` (on `runtime`'s clock) on a task of `runtime`.
    pub(crate) fn schedule(&self, runtime: &Handle, at: Instant, job: Job) -> Entry {
        let queue = self.queue_of(runtime);
        let (key, wake) = {
            let mut state = lock(&queue.state);
            let key = (at, state.next_id);
            state.next_id += 1;
            state.entries.insert(key, job);
            let wake = state.wakes_at.is_none_or(|planned| at < planned);
            if wake {
                state.wakes_at = Some(at);
            }
            (key, wake)
        };
        if wake {
            queue.earlier.notify_one();
        }
        Entry { queue: Arc::downgrade(&queue), key }
    }

    /// The runtime's queue, its task started if it is not running; queues
    /// of runtimes whose task ended are dropped with their entries.
    fn queue_of(&self, runtime: &Handle) -> Arc<Queue> {
        let id = runtime.id();
        let (queue, start) = {
            let mut runtimes = lock(&self.runtimes);
            runtimes.retain(|queue| queue.runtime == id || lock(&queue.state).running);
            match runtimes.iter().find(|queue| queue.runtime == id) {
                // Its task ended: the runtime is shutting down (the new task
                // ends with it), or a job panicked.
                Some(queue) => (Arc::clone(queue), !std::mem::replace(&mut lock(&queue.state).running, true)),
                None => {
                    let queue = Arc::new(Queue {
                        runtime: id,
                        state: Mutex::new(State { running: true, ..State::default() }),
                        earlier: Arc::default(),
                    });
                    runtimes.push(Arc::clone(&queue));
                    (queue, true)
                }
            }
        };
        if start {
            // Spawned outside the locks: a runtime that is shutting down
            // drops the task at once, and with it the guard that locks the state.
            let running = Running(Arc::downgrade(&queue));
            let earlier = Arc::clone(&queue.earlier);
            runtime.spawn(async move {
                let _running = running;
                serve(Weak::clone(&_running.0), earlier).await
            });
        }
        queue
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.upgrade() {
            // Drops the job outside the lock: it may own anything.
            let job = lock(&queue.state).entries.remove(&self.key);
            drop(job);
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // The task sees the queue gone and ends.
        self.earlier.notify_one();
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("runtime", &self.runtime).field("entries", &lock(&self.state).entries.len()).finish()
    }
}

/// The task of one queue: runs the due entries, then sleeps until the next
/// one or until an earlier one is scheduled. Ends with its queue, or with
/// its runtime (then it marks the queue as not running).
async fn serve(queue: Weak<Queue>, earlier: Arc<Notify>) {
    loop {
        let next = loop {
            let Some(queue) = queue.upgrade() else { return };
            let now = Instant::now();
            // One due job at a time, out of the lock: were one to panic,
            // the others stay queued for the task that schedule() restarts.
            let due = {
                let mut state = lock(&queue.state);
                match state.entries.first_key_value().map(|(&key, _)| key) {
                    Some(key) if key.0 <= now => Ok(state.entries.pop_first()),
                    first => {
                        // With no entry left, the wake already planned stays:
                        // a later entry (the usual case) needs no notification.
                        let planned = state.wakes_at.filter(|planned| *planned > now);
                        let next = first.map(|key| key.0).or(planned);
                        state.wakes_at = next;
                        Err(next)
                    }
                }
            };
            match due {
                Ok(Some((_, job))) => job(),
                Ok(None) => {}
                Err(next) => break next,
            }
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = earlier.notified() => {}
                }
            }
            None => earlier.notified().await,
        }
    }
}

/// Marks the queue as not running when its task ends (dropped with its
/// runtime, polled or not).
struct Running(Weak<Queue>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(queue) = self.0.upgrade() {
            lock(&queue.state).running = false;
        }
    }
}
