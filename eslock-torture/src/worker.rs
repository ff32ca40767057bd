//! A worker process: tasks that contend for a handful of lock ids in every
//! way the API offers, write the shared counter under the lock, and record
//! each hold in the history.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eslock::{Error, LeaseHandle, LockManager, LockOptions};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::history::{Event, Hold, now};
use crate::resource::Counter;

/// What a worker does; passed as JSON on its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerConfig {
    /// The worker's name: names its history file and its holders.
    pub name: String,
    /// The engine's URL.
    pub url: String,
    /// The lock index.
    pub index: String,
    /// The lock ids its tasks contend for.
    pub ids: Vec<String>,
    /// Ids an operator force-releases: only fenced writes touch them.
    pub operator_ids: Vec<String>,
    /// How many tasks contend at once.
    pub tasks: usize,
    /// How many acquisitions each task attempts.
    pub attempts_per_task: usize,
    /// The range a lease's TTL is drawn from, in milliseconds (inclusive).
    pub ttl_ms: (u64, u64),
    /// The longest a holder works under the lock, in milliseconds.
    pub hold_ms_max: u64,
    /// The store's request timeout, in milliseconds.
    pub request_timeout_ms: u64,
    /// Where the history files and counters are.
    pub dir: PathBuf,
}

/// Appends events to this worker's history file, one JSON line each,
/// flushed at once so that a killed process loses nothing it reported.
#[derive(Clone)]
pub struct Recorder {
    file: Arc<Mutex<std::fs::File>>,
}

impl Recorder {
    /// A recorder appending to the file at `path` (created if missing).
    pub fn new(path: &std::path::Path) -> Recorder {
        let file = OpenOptions::new().create(true).append(true).open(path).expect("history file");
        Recorder { file: Arc::new(Mutex::new(file)) }
    }

    /// Appends `event` as one JSON line.
    pub fn record(&self, event: &Event) {
        let line = serde_json::to_string(event).expect("events serialize") + "\n";
        let mut file = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(line.as_bytes()).expect("history is writable");
    }
}

/// A manager on the Elasticsearch store at `url`, with locks in `index`.
pub fn manager(url: &str, index: &str, request_timeout: Duration) -> LockManager {
    let store = eslock::ElasticsearchStore::builder(eslock_test_support::client_for(url))
        .index_name(index)
        .request_timeout(request_timeout)
        .build();
    LockManager::builder().store(store).build()
}

/// Runs the worker to the end; returns how many holds it recorded.
pub async fn run(config: WorkerConfig) -> usize {
    let manager = manager(&config.url, &config.index, Duration::from_millis(config.request_timeout_ms));
    let recorder = Recorder::new(&config.dir.join(format!("history-{}.jsonl", config.name)));
    let config = Arc::new(config);
    let tasks: Vec<_> = (0..config.tasks)
        .map(|task| {
            let (manager, recorder, config) = (manager.clone(), recorder.clone(), Arc::clone(&config));
            tokio::spawn(async move {
                let mut holds = 0;
                for _ in 0..config.attempts_per_task {
                    let holder = format!("{}/{task}", config.name);
                    if let Some(hold) = attempt(&manager, &config, holder).await {
                        recorder.record(&Event::Hold(hold));
                        holds += 1;
                    }
                }
                holds
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("worker task");
    }
    manager.flush().await;
    total
}

/// The ways a holder can use a lock.
#[derive(Debug, Clone, Copy)]
enum Style {
    /// `acquire`, fenced writes, `release`.
    Lease,
    /// `with_lease`, fenced writes.
    WithLease,
    /// `with_lock`, unfenced writes: only the lock protects them.
    WithLock,
    /// `with_lease` dropped by a timeout, often mid-work.
    CancelledWork,
    /// `acquire` dropped by a timeout, often while in flight.
    CancelledAcquire,
}

async fn attempt(manager: &LockManager, config: &WorkerConfig, holder: String) -> Option<Hold> {
    let (id, style, options, hold_for) = {
        let mut rng = rand::rng();
        let id = config.ids[rng.random_range(0..config.ids.len())].clone();
        let mut style = [Style::Lease, Style::WithLease, Style::WithLock, Style::CancelledWork, Style::CancelledAcquire]
            [rng.random_range(0..5)];
        if matches!(style, Style::WithLock) && config.operator_ids.contains(&id) {
            style = Style::WithLease;
        }
        let mut options = LockOptions::default().ttl(Duration::from_millis(rng.random_range(config.ttl_ms.0..=config.ttl_ms.1)));
        if rng.random_bool(0.5) {
            options = options.wait(Duration::from_millis(rng.random_range(100..2_000)));
        }
        (id, style, options, Duration::from_millis(rng.random_range(0..=config.hold_ms_max)))
    };
    let counter = Counter::new(&config.dir, &id);
    let requested = now();
    match style {
        Style::Lease => {
            let lease = manager.acquire(&id, options).await.ok()?;
            Some(hold_lease(lease, &counter, hold_for, holder, requested).await)
        }
        Style::CancelledAcquire => {
            let cut = Duration::from_millis(rand::rng().random_range(1..40));
            let lease = tokio::time::timeout(cut, manager.acquire(&id, options)).await.ok()?.ok()?;
            Some(hold_lease(lease, &counter, hold_for, holder, requested).await)
        }
        Style::WithLease | Style::WithLock | Style::CancelledWork => {
            let record = Arc::new(Mutex::new(None::<Hold>));
            let fenced = !matches!(style, Style::WithLock);
            let work = manager.with_lease(&id, options, |lease| {
                let (record, holder, id) = (Arc::clone(&record), holder.clone(), id.clone());
                async move { work_under(lease, &counter, fenced, hold_for, Who { holder, lock_id: id, requested }, &record).await }
            });
            let outcome = if matches!(style, Style::CancelledWork) {
                let cut = hold_for / 2 + Duration::from_millis(rand::rng().random_range(0..20));
                tokio::time::timeout(cut, work).await.ok()
            } else {
                Some(work.await)
            };
            let mut hold = record.lock().unwrap().take()?;
            hold.ended = now();
            match outcome {
                // Ok: the lease was trusted until after the work finished.
                Some(Ok(finished)) => hold.trusted_until = Some(finished),
                Some(Err(Error::LeaseLost(_))) => hold.outcome = "lost".into(),
                Some(Err(_)) => hold.outcome = "error".into(),
                None => hold.outcome = "cancelled".into(),
            }
            Some(hold)
        }
    }
}

/// The work of a `with_lease`/`with_lock` holder: what it did goes into
/// `record` as it happens, so a cancelled holder is recorded too. Returns
/// when the work finished.
/// Who holds which lock, asked for when.
struct Who {
    holder: String,
    lock_id: String,
    requested: u64,
}

async fn work_under(
    lease: LeaseHandle,
    counter: &Counter,
    fenced: bool,
    hold_for: Duration,
    who: Who,
    record: &Mutex<Option<Hold>>,
) -> u64 {
    let fence = lease.fencing_token();
    *record.lock().unwrap() = Some(Hold {
        lock_id: who.lock_id,
        holder: who.holder,
        fencing_token: fence,
        requested: who.requested,
        acquired: now(),
        trusted_until: None,
        ended: 0,
        wrote: false,
        outcome: "released".into(),
    });
    let read = if fenced { counter.claim(fence) } else { Some(counter.value()) };
    tokio::time::sleep(hold_for).await;
    if let Some(read) = read {
        // No await between here and the end: the write and its record are
        // one step, never split by a cancellation.
        let wrote = if fenced {
            counter.commit(fence, read)
        } else {
            counter.write_unfenced(read);
            true
        };
        record.lock().unwrap().as_mut().expect("recorded above").wrote = wrote;
    }
    now()
}

/// An `acquire`d lease: claims the counter, works, and writes only after
/// checking that the lease is still trusted; released at the end.
async fn hold_lease(lease: eslock::Lease, counter: &Counter, hold_for: Duration, holder: String, requested: u64) -> Hold {
    let fence = lease.fencing_token();
    let mut hold = Hold {
        lock_id: lease.lock_id().to_string(),
        holder,
        fencing_token: fence,
        requested,
        acquired: now(),
        trusted_until: None,
        ended: 0,
        wrote: false,
        outcome: "released".into(),
    };
    let read = counter.claim(fence);
    tokio::time::sleep(hold_for).await;
    let checked = now();
    if !lease.is_lost() {
        hold.trusted_until = Some(checked);
        if let Some(read) = read {
            hold.wrote = counter.commit(fence, read);
        }
        let checked = now();
        if !lease.is_lost() {
            hold.trusted_until = Some(checked);
        }
    }
    hold.ended = now();
    match lease.release().await {
        Ok(true) => {}
        Ok(false) => hold.outcome = "lost".into(),
        Err(_) => hold.outcome = "release-error".into(),
    }
    hold
}
