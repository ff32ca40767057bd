//! Trying to break the lazy keep-alive: leases start their background task
//! from a per-runtime timetable (eslock/src/timetable.rs) half-way to the
//! first renewal, instead of spawning it at acquisition. Each test tries to
//! break one guarantee of that change (renewals on time on every runtime and
//! clock, loss at the deadline, nothing left behind, no deadlock or panic).
//! The first two failed on the first version of the change. In-memory store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, mpsc};
use std::time::Duration;

use eslock::store::{AcquireOutcome, AcquireRequest, HandOver, LockStore, Renewal, StoreFuture};
use eslock::{BackendError, LockId, LockInfo, LockManager, LockOptions, MemoryStore, Operation};
use tokio::time::Instant;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Workers named after the test, so that panics on them are counted.
fn multi_thread_named(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name(name).enable_all().build().unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn ttl(ttl: Duration) -> LockOptions {
    LockOptions::default().ttl(ttl)
}

/// A memory store that counts extend requests per token, and whose extends
/// can be made to fail (the store unreachable).
#[derive(Clone, Default)]
struct Counting {
    inner: MemoryStore,
    extends: Arc<Mutex<HashMap<String, usize>>>,
    unreachable: Arc<AtomicBool>,
}

impl Counting {
    fn renewals(&self, token: &str) -> usize {
        self.extends.lock().unwrap().get(token).copied().unwrap_or(0)
    }
    fn total(&self) -> usize {
        self.extends.lock().unwrap().values().sum()
    }
    fn manager(&self) -> LockManager {
        LockManager::builder().store(self.clone()).build()
    }
}

impl LockStore for Counting {
    fn setup(&self) -> StoreFuture<'_, ()> {
        self.inner.setup()
    }
    fn acquire<'a>(&'a self, request: &'a AcquireRequest) -> StoreFuture<'a, AcquireOutcome> {
        self.inner.acquire(request)
    }
    fn extend<'a>(&'a self, lock_id: &'a LockId, token: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockInfo>> {
        *self.extends.lock().unwrap().entry(token.to_string()).or_default() += 1;
        if self.unreachable.load(Ordering::SeqCst) {
            return Box::pin(async move { Err(BackendError::new(Operation::Extend, Some(lock_id), "unreachable (test fault)").into()) });
        }
        self.inner.extend(lock_id, token, ttl)
    }
    fn extend_many<'a>(&'a self, renewals: &'a [Renewal]) -> StoreFuture<'a, Vec<eslock::Result<Option<LockInfo>>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for renewal in renewals {
                out.push(self.extend(&renewal.lock_id, &renewal.token, renewal.ttl).await);
            }
            Ok(out)
        })
    }
    fn hand_over<'a>(&'a self, lock_id: &'a LockId, token: &'a str, next: &'a AcquireRequest) -> StoreFuture<'a, HandOver> {
        self.inner.hand_over(lock_id, token, next)
    }
    eslock_test_support::forward_to_inner!();
}

/// The timetable as the manager's Debug output shows it: (queues, entries).
fn timetable(manager: &LockManager) -> (usize, usize) {
    let text = format!("{manager:?}");
    let mut queues = 0;
    let mut entries = 0;
    for part in text.split("Queue { runtime: ").skip(1) {
        queues += 1;
        let after = part.split("entries: ").nth(1).expect("a queue shows its entries");
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        entries += digits.parse::<usize>().unwrap();
    }
    (queues, entries)
}

/// Panics seen on threads whose name starts with a prefix (panics inside
/// tasks and task drops are caught by Tokio, so they are counted here).
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = std::thread::current().name().unwrap_or("").to_string();
            PANICS.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{name}: {info}"));
            previous(info);
        }));
    });
}

fn panics_on(prefix: &str) -> Vec<String> {
    PANICS.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|p| p.starts_with(prefix)).cloned().collect()
}

/// Runs `f` on a named thread and fails if it does not finish in `limit`
/// (a deadlock on a std mutex would block forever).
fn within<T: Send + 'static>(name: &str, limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = done.send(f());
        })
        .unwrap();
    match finished.recv_timeout(limit) {
        Ok(value) => {
            thread.join().unwrap();
            value
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: did not finish within {limit:?} (deadlock?)"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let err = thread.join().unwrap_err();
            std::panic::resume_unwind(err)
        }
    }
}

// ---------------------------------------------------------------------------
// An extend before TTL/6 starts the keep-alive task at once. It must start
// on the runtime that acquired the lease, not on the caller's: a handle
// extended from a short-lived runtime of its own (a helper thread, a
// blocking client's inner runtime) would otherwise take the lease's only
// renewal task with it when that runtime ends.
// ---------------------------------------------------------------------------
#[test]
fn extend_from_a_short_lived_runtime_leaves_renewals_on_the_lease_runtime() {
    const TTL: Duration = Duration::from_millis(1200);
    let holder_runtime = multi_thread();
    let store = Counting::default();
    let manager = store.manager();
    let lease = holder_runtime.block_on(manager.acquire("review/extend-elsewhere", ttl(TTL))).unwrap();
    let handle = lease.handle();
    // Well before TTL/6 (200 ms): a helper with a runtime of its own extends once.
    let extended = std::thread::spawn(move || current_thread().block_on(handle.extend(TTL))).join().unwrap();
    assert!(extended.unwrap());
    // The helper's runtime is gone; the holder's runtime still runs.
    holder_runtime.block_on(async {
        tokio::time::sleep(TTL * 3).await;
        let renewals = store.renewals(lease.token());
        assert!(
            !lease.is_lost(),
            "a healthy lease held on a live runtime was lost after {renewals} renewal(s): {:?}",
            lease.lost_reason()
        );
        assert!(lease.release().await.unwrap());
    });
}

// ---------------------------------------------------------------------------
// Extend outside any Tokio runtime, before TTL/6: with the in-memory store it
// needs no runtime (ready futures, a Tokio mutex, `Instant::now()`), so
// starting the keep-alive task must not need one either.
// ---------------------------------------------------------------------------
#[test]
fn extend_outside_a_runtime_does_not_panic() {
    let runtime = multi_thread();
    let manager = LockManager::in_memory();
    let lease = runtime.block_on(manager.acquire("review/extend-no-runtime", ttl(Duration::from_secs(30)))).unwrap();
    let handle = lease.handle();
    let outcome = std::thread::spawn(move || futures::executor::block_on(handle.extend(Duration::from_secs(30)))).join();
    let extended = match outcome {
        Ok(extended) => extended,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("extend outside a Tokio runtime panicked: {message}");
        }
    };
    assert!(extended.unwrap());
    assert!(runtime.block_on(lease.release()).unwrap());
}

// ---------------------------------------------------------------------------
// Renewal cadence and loss, on every runtime flavour and on paused time.
// ---------------------------------------------------------------------------

/// Paused clock: a healthy lease is renewed about every TTL/3 and `lost()`
/// never completes while it is held.
#[tokio::test(start_paused = true)]
async fn paused_clock_renews_every_third_of_the_ttl_and_lost_never_fires() {
    let store = Counting::default();
    let manager = store.manager();
    let lease = manager.acquire("review/paused-cadence", ttl(Duration::from_secs(3))).await.unwrap();
    tokio::select! {
        () = lease.lost() => panic!("lost while healthy: {:?}", lease.lost_reason()),
        () = tokio::time::sleep(Duration::from_secs(120)) => {}
    }
    let renewals = store.renewals(lease.token());
    assert!((100..=125).contains(&renewals), "{renewals} renewals in 120 s at TTL 3 s (expected about 120)");
    assert!(lease.release().await.unwrap());
}

/// Real time, both flavours: renewed about every TTL/3, never lost.
#[test]
fn real_time_cadence_on_both_flavours() {
    const TTL: Duration = Duration::from_millis(600);
    for (name, runtime) in [("current_thread", current_thread()), ("multi_thread", multi_thread())] {
        let store = Counting::default();
        let manager = store.manager();
        runtime.block_on(async {
            let lease = manager.acquire(format!("review/cadence-{name}"), ttl(TTL)).await.unwrap();
            tokio::time::sleep(TTL * 3).await;
            assert!(!lease.is_lost(), "{name}: lost: {:?}", lease.lost_reason());
            let renewals = store.renewals(lease.token());
            // Nine expected (every 200 ms over 1.8 s); loose for a loaded machine.
            assert!((5..=11).contains(&renewals), "{name}: {renewals} renewals in 3 TTLs");
            assert!(lease.release().await.unwrap());
        });
    }
}

/// A short TTL (the first renewal one extra timer hop after the timetable
/// wakes) is still kept: on a paused clock, so that only the schedule
/// decides (real time at 60 ms loses a lease to any 30 ms stall of a
/// loaded machine; the real-time cadence test covers both flavours).
#[tokio::test(start_paused = true)]
async fn short_ttl_is_kept() {
    const TTL: Duration = Duration::from_millis(60);
    let store = Counting::default();
    let manager = store.manager();
    let lease = manager.acquire("review/short", ttl(TTL)).await.unwrap();
    tokio::time::sleep(TTL * 100).await;
    assert!(!lease.is_lost(), "lost: {:?}", lease.lost_reason());
    // One renewal every TTL/3 (20 ms) over 6 s: about 300.
    let renewals = store.renewals(lease.token());
    assert!((250..=310).contains(&renewals), "{renewals} renewals in 100 TTLs");
    assert!(lease.release().await.unwrap());
}

/// The store becomes unreachable before the first renewal: `lost()` fires at
/// the trust deadline of the acquisition (TTL - TTL/5), not later.
#[tokio::test(start_paused = true)]
async fn lost_fires_at_the_trust_deadline_when_the_store_is_unreachable_from_the_start() {
    let store = Counting::default();
    let manager = store.manager();
    let before = Instant::now();
    let lease = manager.acquire("review/unreachable-early", ttl(Duration::from_secs(10))).await.unwrap();
    store.unreachable.store(true, Ordering::SeqCst);
    lease.lost().await;
    let at = before.elapsed();
    assert!(at >= Duration::from_secs(8) && at <= Duration::from_millis(8050), "lost after {at:?}, deadline 8 s");
    assert!(store.renewals(lease.token()) >= 1, "renewal was never even tried");
}

/// A renewal-free lease (`renew(false)`) is lost at its deadline too.
#[tokio::test(start_paused = true)]
async fn lease_without_renewal_is_lost_at_its_deadline() {
    let store = Counting::default();
    let manager = store.manager();
    let before = Instant::now();
    let lease = manager.acquire("review/no-renew", ttl(Duration::from_secs(10)).renew(false)).await.unwrap();
    lease.lost().await;
    let at = before.elapsed();
    assert!(at >= Duration::from_secs(8) && at <= Duration::from_millis(8050), "lost after {at:?}");
    assert!(lease.is_lost());
    assert_eq!(store.renewals(lease.token()), 0);
}

/// A user extend to a shorter TTL before TTL/6 starts the task at once: the
/// lease is renewed at the new cadence (paused clock).
#[tokio::test(start_paused = true)]
async fn early_extend_to_a_short_ttl_renews_at_the_new_cadence() {
    let store = Counting::default();
    let manager = store.manager();
    let lease = manager.acquire("review/early-extend", ttl(Duration::from_secs(60))).await.unwrap();
    assert!(lease.extend(Duration::from_millis(600)).await.unwrap());
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(!lease.is_lost(), "lost after an early extend: {:?}", lease.lost_reason());
    let renewals = store.renewals(lease.token());
    assert!(renewals >= 25, "{renewals} requests in 6 s at TTL 600 ms");
    assert!(lease.release().await.unwrap());
}

// ---------------------------------------------------------------------------
// The manager value dropped while leases live.
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn manager_dropped_while_leases_live_paused() {
    let store = Counting::default();
    let manager = store.manager();
    let early = manager.acquire("review/orphan-early", ttl(Duration::from_secs(3))).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // One lease past its first renewal (task running), one still scheduled.
    let late = manager.acquire("review/orphan-late", ttl(Duration::from_secs(3))).await.unwrap();
    drop(manager);
    tokio::time::sleep(Duration::from_secs(30)).await;
    for lease in [early, late] {
        assert!(!lease.is_lost(), "{}: lost after the manager was dropped: {:?}", lease.lock_id(), lease.lost_reason());
        assert!(store.renewals(lease.token()) >= 25);
        assert!(lease.release().await.unwrap());
    }
}

#[test]
fn manager_dropped_while_leases_live_multi_thread() {
    let runtime = multi_thread();
    let store = Counting::default();
    runtime.block_on(async {
        let manager = store.manager();
        let lease = manager.acquire("review/orphan-mt", ttl(Duration::from_millis(600))).await.unwrap();
        drop(manager);
        tokio::time::sleep(Duration::from_millis(1800)).await;
        assert!(!lease.is_lost(), "lost after the manager was dropped: {:?}", lease.lost_reason());
        assert!(lease.release().await.unwrap());
    });
}

// ---------------------------------------------------------------------------
// Several runtimes.
// ---------------------------------------------------------------------------

/// Runtimes created and dropped in turn, each acquiring on one shared
/// manager (some leaving a lease whose entry never ran): the queues of dead
/// runtimes are pruned, entries do not pile up, and a lease of the live
/// runtime is still renewed afterwards.
#[test]
fn dead_runtimes_queues_are_pruned() {
    let store = Counting::default();
    let manager = store.manager();
    let mut leftovers = Vec::new();
    for i in 0..40 {
        let runtime = if i % 2 == 0 { current_thread() } else { tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap() };
        runtime.block_on(async {
            let lease = manager.acquire(format!("review/rt-{i}"), ttl(Duration::from_secs(30))).await.unwrap();
            assert!(lease.release().await.unwrap());
            if i % 5 == 0 {
                // Held past its runtime, its entry still scheduled there.
                leftovers.push(manager.acquire(format!("review/rt-left-{i}"), ttl(Duration::from_secs(30))).await.unwrap());
            }
        });
        drop(runtime);
        let (queues, _) = timetable(&manager);
        assert!(queues <= 2, "after {} runtimes: {queues} queues kept", i + 1);
    }
    // Dropped outside any runtime: no panic, entries removed.
    drop(leftovers);
    let (queues, entries) = timetable(&manager);
    assert!(queues <= 2 && entries == 0, "{queues} queues, {entries} entries left");
    let runtime = multi_thread();
    runtime.block_on(async {
        let lease = manager.acquire("review/rt-last", ttl(Duration::from_millis(600))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!lease.is_lost(), "{:?}", lease.lost_reason());
        assert!(lease.release().await.unwrap());
    });
    let (queues, entries) = timetable(&manager);
    assert!(queues == 1 && entries == 0, "{queues} queues, {entries} entries at the end");
}

/// Two current_thread runtimes on two threads share a manager; one ends
/// (its queue pruned by the other's next acquisition) while the other's
/// leases wait for their first renewal.
#[test]
fn current_thread_runtime_ending_leaves_the_other_renewing() {
    let manager = LockManager::in_memory();
    let (acquired, proceed) = (mpsc::channel(), mpsc::channel::<()>());
    let first = std::thread::spawn({
        let manager = manager.clone();
        move || {
            let runtime = current_thread();
            runtime.block_on(async {
                let lease = manager.acquire("review/ct-first", ttl(Duration::from_secs(30))).await.unwrap();
                acquired.0.send(()).unwrap();
                proceed.1.recv().unwrap();
                drop(lease);
            });
        }
    });
    acquired.1.recv().unwrap();
    let second = current_thread();
    second.block_on(async {
        let waiting = manager.acquire("review/ct-second", ttl(Duration::from_millis(600))).await.unwrap();
        proceed.0.send(()).unwrap();
        first.join().unwrap();
        // Prunes the first runtime's queue.
        let other = manager.acquire("review/ct-third", ttl(Duration::from_millis(600))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for lease in [waiting, other] {
            assert!(!lease.is_lost(), "{}: {:?}", lease.lock_id(), lease.lost_reason());
            assert!(lease.release().await.unwrap());
        }
    });
    assert_eq!(timetable(&manager), (1, 0));
}

/// One manager on a paused-clock runtime and a real-time runtime at once:
/// each queue follows its own runtime's clock.
#[test]
fn paused_and_real_time_runtimes_share_a_manager() {
    let manager = LockManager::in_memory();
    let paused = std::thread::spawn({
        let manager = manager.clone();
        move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
            runtime.block_on(async {
                let lease = manager.acquire("review/clock-paused", ttl(Duration::from_secs(3))).await.unwrap();
                tokio::time::sleep(Duration::from_secs(60)).await;
                assert!(!lease.is_lost(), "paused: {:?}", lease.lost_reason());
                assert!(lease.release().await.unwrap());
            });
        }
    });
    let real = multi_thread();
    real.block_on(async {
        let lease = manager.acquire("review/clock-real", ttl(Duration::from_millis(600))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!lease.is_lost(), "real: {:?}", lease.lost_reason());
        assert!(lease.release().await.unwrap());
    });
    paused.join().unwrap();
}

/// Leases (scheduled and running) dropped inside a runtime's shutdown, and
/// afterwards outside any runtime: no panic, no hang, and the manager keeps
/// working on another runtime.
#[test]
fn leases_dropped_during_runtime_shutdown_and_outside_any_runtime() {
    count_panics();
    within("review-shutdown", Duration::from_secs(10), || {
        let manager = LockManager::in_memory();
        let mut outside = Vec::new();
        for flavour in 0..2 {
            let runtime = if flavour == 0 { current_thread() } else { multi_thread_named("review-shutdown-worker") };
            runtime.block_on(async {
                for i in 0..10 {
                    let manager = manager.clone();
                    // Held by tasks that never finish: dropped by the shutdown.
                    tokio::spawn(async move {
                        let lease = manager.acquire(format!("review/shutdown-{flavour}-{i}"), ttl(Duration::from_millis(120))).await.unwrap();
                        let _keep = lease;
                        std::future::pending::<()>().await;
                    });
                }
                // Past TTL/6 for half of them: their keep-alive tasks run.
                tokio::time::sleep(Duration::from_millis(40)).await;
                for i in 0..10 {
                    let manager = manager.clone();
                    tokio::spawn(async move {
                        let lease = manager.acquire(format!("review/shutdown-late-{flavour}-{i}"), ttl(Duration::from_secs(30))).await.unwrap();
                        let _keep = lease;
                        std::future::pending::<()>().await;
                    });
                }
                outside.push(manager.acquire(format!("review/outside-{flavour}"), ttl(Duration::from_millis(300))).await.unwrap());
                tokio::time::sleep(Duration::from_millis(20)).await;
            });
            drop(runtime);
        }
        for lease in &outside {
            let _ = lease.is_lost();
        }
        drop(outside);
        let runtime = current_thread();
        runtime.block_on(async {
            let lease = manager.acquire("review/after-shutdown", ttl(Duration::from_millis(600))).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(!lease.is_lost(), "{:?}", lease.lost_reason());
            assert!(lease.release().await.unwrap());
        });
        drop(runtime);
        let (queues, entries) = timetable(&manager);
        assert!(queues <= 1 && entries == 0, "{queues} queues, {entries} entries left");
    });
    let panics = panics_on("review-shutdown");
    assert!(panics.is_empty(), "panics: {panics:#?}");
}

// ---------------------------------------------------------------------------
// Ended leases, and what a short lease costs.
// ---------------------------------------------------------------------------

/// Thousands of acquire/release cycles: one queue, no entry left, no task
/// left, no renewal.
#[test]
fn thousands_of_cycles_leave_nothing_behind() {
    let runtime = current_thread();
    let store = Counting::default();
    let manager = store.manager();
    runtime.block_on(async {
        let first = manager.acquire("review/cycle-first", ttl(Duration::from_secs(30))).await.unwrap();
        let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        for i in 0..3000 {
            let lease = manager.acquire(format!("review/cycle-{}", i % 7), ttl(Duration::from_secs(30))).await.unwrap();
            match i % 3 {
                0 => assert!(lease.release().await.unwrap()),
                1 => drop(lease),
                _ => {
                    let id = lease.lock_id().to_string();
                    lease.detach();
                    assert!(manager.force_release(&id).await.unwrap());
                }
            }
            if i % 500 == 0 {
                tokio::task::yield_now().await;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        assert!(now <= tasks, "{} tasks left over after the cycles", now - tasks);
        assert_eq!(timetable(&manager), (1, 1), "only the first lease's entry should remain");
        assert_eq!(store.total(), 0, "short leases were renewed");
        assert!(first.release().await.unwrap());
        assert_eq!(timetable(&manager), (1, 0));
    });
}

/// The point of the change: acquire/release cycles do not wake the
/// runtime's idle workers (the timetable task is not notified for each
/// acquisition). Counted with the workers' park counts.
#[test]
fn cycles_do_not_wake_idle_workers() {
    let runtime = multi_thread();
    let manager = LockManager::in_memory();
    runtime.block_on(async {
        // First acquisition: the timetable task starts and plans its wake.
        let lease = manager.acquire("review/wake-0", ttl(Duration::from_secs(30))).await.unwrap();
        assert!(lease.release().await.unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    });
    let metrics = runtime.metrics();
    let parks = |m: &tokio::runtime::RuntimeMetrics| (0..m.num_workers()).map(|w| m.worker_park_count(w)).sum::<u64>();
    let before = parks(&metrics);
    // From outside the workers (block_on runs on this thread).
    runtime.block_on(async {
        for i in 0..500 {
            let lease = manager.acquire(format!("review/wake-{}", i % 3), ttl(Duration::from_secs(30))).await.unwrap();
            assert!(lease.release().await.unwrap());
        }
    });
    let after = parks(&metrics);
    assert!(after - before <= 20, "500 cycles woke the workers {} times", after - before);
}

/// Released, dropped or detached around TTL/6 (racing the timetable task,
/// multi_thread): never renewed, no keep-alive task left behind, no entry
/// left behind.
#[test]
fn leases_ended_around_a_sixth_of_the_ttl_are_never_renewed() {
    const TTL: Duration = Duration::from_millis(600);
    let runtime = multi_thread();
    let store = Counting::default();
    let manager = store.manager();
    runtime.block_on(async {
        let baseline = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let mut tasks = Vec::new();
        for i in 0..60u64 {
            let manager = manager.clone();
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                let lease = manager.acquire(format!("review/race-{i}"), ttl(TTL)).await.unwrap();
                let token = lease.token().to_string();
                let handle = lease.handle();
                // 80..=139 ms: both sides of TTL/6 = 100 ms, well before TTL/3.
                tokio::time::sleep(Duration::from_millis(80 + i)).await;
                match i % 3 {
                    0 => assert!(lease.release().await.unwrap()),
                    1 => drop(lease),
                    _ => lease.detach(),
                }
                let ended = started.elapsed();
                // A handle used after the end: no renewal, no task.
                assert!(!handle.extend(TTL).await.unwrap());
                (token, ended)
            }));
        }
        let mut ended = Vec::new();
        for task in tasks {
            ended.push(task.await.unwrap());
        }
        tokio::time::sleep(TTL * 2).await;
        // A lease a stalled machine ended only after TTL/3 may have been
        // renewed while it lived; the others never were.
        let before_first_renewal: Vec<_> = ended.iter().filter(|(_, ended)| *ended < TTL / 3 - Duration::from_millis(20)).collect();
        assert!(!before_first_renewal.is_empty(), "every lease ended after TTL/3: {ended:?}");
        for (token, ended) in before_first_renewal {
            assert_eq!(store.renewals(token), 0, "a lease ended {ended:?} after its acquire began was renewed afterwards");
        }
        let alive = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        assert!(alive <= baseline + 1, "{} tasks left behind", alive - baseline);
        let (queues, entries) = timetable(&manager);
        assert!(queues == 1 && entries == 0, "{queues} queues, {entries} entries left");
        // Detached ones were not renewed: their TTL freed them.
        for i in (2..60).step_by(3) {
            assert!(manager.get(format!("review/race-{i}")).await.unwrap().is_none(), "detached lease {i} still held");
        }
    });
}

/// Ended after its keep-alive task started (and renewed): never renewed again.
#[tokio::test(start_paused = true)]
async fn running_task_stops_at_release_drop_and_detach() {
    let store = Counting::default();
    let manager = store.manager();
    let mut ended = Vec::new();
    for (i, how) in ["release", "drop", "detach"].into_iter().enumerate() {
        let lease = manager.acquire(format!("review/running-{i}"), ttl(Duration::from_secs(3))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let token = lease.token().to_string();
        assert!(store.renewals(&token) >= 1, "{how}: not renewed yet");
        match how {
            "release" => assert!(lease.release().await.unwrap()),
            "drop" => drop(lease),
            _ => lease.detach(),
        }
        ended.push((how, token.clone(), store.renewals(&token)));
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    for (how, token, at_end) in ended {
        assert_eq!(store.renewals(&token), at_end, "{how}: renewed after it ended");
    }
}

/// A lease handed over by a local release gets its keep-alive task too.
#[tokio::test(start_paused = true)]
async fn handed_over_lease_is_renewed() {
    let store = Counting::default();
    let manager = store.manager();
    let first = manager.acquire("review/hand-over", ttl(Duration::from_secs(3))).await.unwrap();
    let waiter = tokio::spawn({
        let manager = manager.clone();
        async move { manager.acquire("review/hand-over", ttl(Duration::from_secs(3)).wait(Duration::from_secs(60))).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(first.release().await.unwrap());
    let second = waiter.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!second.is_lost(), "{:?}", second.lost_reason());
    assert!(store.renewals(second.token()) >= 25);
    assert!(second.release().await.unwrap());
}

/// Many managers on one runtime, each used once and dropped: their
/// timetable tasks end with them (no task per manager left behind).
#[test]
fn dropped_managers_leave_no_timetable_task() {
    let runtime = current_thread();
    runtime.block_on(async {
        let baseline = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        for i in 0..200 {
            let manager = LockManager::in_memory();
            let lease = manager.acquire(format!("review/managers-{i}"), ttl(Duration::from_secs(30))).await.unwrap();
            if i % 2 == 0 {
                assert!(lease.release().await.unwrap());
            } else {
                drop(lease);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let alive = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        assert!(alive <= baseline, "{} tasks left by 200 dropped managers", alive - baseline);
    });
}

/// Concurrent acquire / extend / release / drop / detach on a very short
/// TTL (entries come due all the time) from several tasks and a second
/// runtime: no deadlock, no panic, nothing left behind.
#[test]
fn concurrent_churn_does_not_deadlock() {
    count_panics();
    within("review-churn", Duration::from_secs(15), || {
        let manager = LockManager::in_memory();
        let other = multi_thread_named("review-churn-other");
        let runtime = multi_thread_named("review-churn-main");
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for t in 0..6u64 {
                let manager = manager.clone();
                let spawn_on = if t % 2 == 0 { tokio::runtime::Handle::current() } else { other.handle().clone() };
                tasks.push(spawn_on.spawn(async move {
                    for i in 0..120u64 {
                        let id = format!("review/churn-{t}-{}", i % 4);
                        let Ok(lease) = manager.acquire(&id, ttl(Duration::from_millis(24))).await else { continue };
                        let handle = lease.handle();
                        let extender = tokio::spawn(async move {
                            let _ = handle.extend(Duration::from_millis(30)).await;
                            handle
                        });
                        tokio::time::sleep(Duration::from_millis((i * 7 + t) % 6)).await;
                        match i % 3 {
                            0 => {
                                let _ = lease.release().await;
                            }
                            1 => drop(lease),
                            _ => {
                                lease.detach();
                                let _ = manager.force_release(&id).await;
                            }
                        }
                        let handle = extender.await.unwrap();
                        assert!(!handle.extend(Duration::from_millis(30)).await.unwrap());
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        });
        let (queues, entries) = timetable(&manager);
        assert!(queues <= 2 && entries == 0, "{queues} queues, {entries} entries left");
        drop(other);
    });
    let panics = panics_on("review-churn");
    assert!(panics.is_empty(), "panics: {panics:#?}");
}
