//! Faults around the local hand-over (handoff.rs, `Shared::give_back` and
//! `hand_over` in lease.rs) and batched renewals (renewal.rs), on the
//! in-memory store (no engine). Written by an adversarial review: each test
//! named `problemN_...` failed on the first version of the code, and names
//! the problem it found; the others probed the same area and held.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eslock::store::{AcquireOutcome, AcquireRequest, HandOver, LockStore, Renewal, StoreFuture};
use eslock::{BackendError, Error, LockId, LockInfo, LockManager, LockOptions, MemoryStore, Operation};
use serde_json::json;
use tokio::sync::Notify;

const GENEROUS: Duration = Duration::from_secs(5);

/// How a wrapped store's `hand_over` misbehaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum HandOverFault {
    /// Forwarded as is.
    None,
    /// The caller gets an error at once, and the request reaches the inner
    /// store `delay` later (a request the network held past the client's
    /// time limit, then delivered: what `abandon` exists for).
    ErrThenLateApply(Duration),
    /// Waits for `gate` before the inner call (a slow request in flight).
    Gated,
    /// Applied at once, but the reply never comes (held by the network).
    ApplyThenHang,
    /// The caller gets an error and the request is lost for good.
    ErrNeverApplied,
}

/// A MemoryStore whose hand_over can be faulted, and which counts calls.
#[derive(Clone)]
struct Faulty {
    inner: MemoryStore,
    fault: Arc<std::sync::Mutex<HandOverFault>>,
    gate: Arc<Notify>,
    hand_overs: Arc<AtomicUsize>,
    acquires: Arc<AtomicUsize>,
    extend_many_calls: Arc<AtomicUsize>,
}

impl Faulty {
    fn new() -> Self {
        Faulty {
            inner: MemoryStore::new(),
            fault: Arc::new(std::sync::Mutex::new(HandOverFault::None)),
            gate: Arc::new(Notify::new()),
            hand_overs: Arc::default(),
            acquires: Arc::default(),
            extend_many_calls: Arc::default(),
        }
    }
    fn set(&self, fault: HandOverFault) {
        *self.fault.lock().unwrap() = fault;
    }
}

impl LockStore for Faulty {
    fn setup(&self) -> StoreFuture<'_, ()> {
        self.inner.setup()
    }
    fn acquire<'a>(&'a self, request: &'a AcquireRequest) -> StoreFuture<'a, AcquireOutcome> {
        self.acquires.fetch_add(1, Ordering::SeqCst);
        self.inner.acquire(request)
    }
    fn extend<'a>(&'a self, lock_id: &'a LockId, token: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockInfo>> {
        self.inner.extend(lock_id, token, ttl)
    }
    fn extend_many<'a>(&'a self, renewals: &'a [Renewal]) -> StoreFuture<'a, Vec<eslock::Result<Option<LockInfo>>>> {
        self.extend_many_calls.fetch_add(1, Ordering::SeqCst);
        self.inner.extend_many(renewals)
    }
    fn hand_over<'a>(&'a self, lock_id: &'a LockId, token: &'a str, next: &'a AcquireRequest) -> StoreFuture<'a, HandOver> {
        self.hand_overs.fetch_add(1, Ordering::SeqCst);
        let fault = {
            let mut fault = self.fault.lock().unwrap();
            let now = *fault;
            // A reply held back forever happens to one request only.
            if now == HandOverFault::ApplyThenHang {
                *fault = HandOverFault::None;
            }
            now
        };
        Box::pin(async move {
            match fault {
                HandOverFault::None => self.inner.hand_over(lock_id, token, next).await,
                HandOverFault::Gated => {
                    self.gate.notified().await;
                    self.inner.hand_over(lock_id, token, next).await
                }
                HandOverFault::ErrNeverApplied => {
                    Err(BackendError::new(Operation::Release, Some(lock_id), "request lost (test fault)").into())
                }
                HandOverFault::ApplyThenHang => {
                    // The reply is held back until the request times out,
                    // as every request to the engine does.
                    let _ = self.inner.hand_over(lock_id, token, next).await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Err(eslock::BackendError::new(eslock::Operation::Release, Some(lock_id), "timed out").into())
                }
                HandOverFault::ErrThenLateApply(delay) => {
                    let inner = self.inner.clone();
                    let (id, token, next) = (lock_id.clone(), token.to_string(), next.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = inner.hand_over(&id, &token, &next).await;
                    });
                    Err(BackendError::new(Operation::Release, Some(lock_id), "request timed out (test fault)").into())
                }
            }
        })
    }
    eslock_test_support::forward_to_inner!();
}

fn waiting(ttl: Duration, wait: Duration) -> LockOptions {
    LockOptions::default().ttl(ttl).wait(wait)
}

/// Lets spawned waiters run their first attempt and join the queue.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

// ---------------------------------------------------------------------------
// Problem 1 (store level, memory): `hand_over` grants the lock to a token that
// was abandoned. `abandon` promises that "an acquire request with this token
// that is still on its way can never take the lock afterwards", and
// `Shared::hand_over` relies on exactly that when a hand-over fails with an
// unknown outcome (it abandons `request.token`). But neither the memory
// store's `hand_over` nor the painless `HAND_OVER` script checks the
// abandoned tokens: a hand-over that arrives after its abandon still grants.
// ---------------------------------------------------------------------------
#[tokio::test]
async fn problem1_memory_hand_over_grants_an_abandoned_token() {
    let store = MemoryStore::new();
    let id = LockId::new("review/abandoned-next").unwrap();
    let old = AcquireRequest { lock_id: id.clone(), token: "old".into(), ttl: Duration::from_secs(30), metadata: json!({}) };
    assert!(matches!(store.acquire(&old).await.unwrap(), AcquireOutcome::Acquired(_)));
    // The hand-over's caller saw an error and abandoned the new token...
    assert!(!store.abandon(&id, "next").await.unwrap());
    // ... then the hand-over request itself arrives.
    let next = AcquireRequest { token: "next".into(), ..old.clone() };
    let outcome = store.hand_over(&id, "old", &next).await.unwrap();
    assert!(
        !matches!(outcome, HandOver::HandedOver(_)),
        "problem 1: an abandoned token was granted the lock by hand_over: {outcome:?}; \
         the lock is now held by a token nobody will ever use or release"
    );
}

// ---------------------------------------------------------------------------
// Problem 1 (manager level): a release that hands over while the hand-over
// request times out (error to the caller) but is delivered late. The manager
// abandons the new token at once; the late request still grants it; nobody
// owns that token, so the lock stays held for the waiter's whole TTL while
// the waiter (the only one who wants it) keeps being refused. Guarantee 3:
// the lock is not released on this exit path. (Without the late delivery the
// old lease's 2 s TTL frees the lock and the test passes; with HAND_OVER
// refusing abandoned tokens, the late request only releases the old token.)
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problem1_a_late_hand_over_leaves_the_lock_held_by_an_abandoned_token() {
    let store = Faulty::new();
    let manager = LockManager::builder().store(store.clone()).build();
    let ttl = Duration::from_secs(20);
    // The releasing lease has a short TTL: had the late hand-over never
    // arrived, its own token would free the lock within 2 s (the documented
    // "the TTL will free the lock" after a failed release). The waiter's
    // long TTL is what the orphan token gets instead.
    let lease = manager.acquire("review/late-hand-over", LockOptions::default().ttl(Duration::from_secs(2))).await.unwrap();
    let waiter = tokio::spawn({
        let manager = manager.clone();
        async move { manager.acquire("review/late-hand-over", waiting(ttl, Duration::from_secs(30))).await }
    });
    settle().await;
    store.set(HandOverFault::ErrThenLateApply(Duration::from_millis(200)));
    // The release fails (unknown outcome); its Drop tries again, which fails the same way.
    assert!(lease.release().await.is_err());
    manager.flush().await;
    store.set(HandOverFault::None);
    // Let the late requests land.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let holder = manager.get("review/late-hand-over").await.unwrap();
    let got = tokio::time::timeout(GENEROUS, waiter).await;
    assert!(
        matches!(got, Ok(Ok(Ok(_)))),
        "problem 1: no lease and no process holds the lock, yet the waiter was refused for {GENEROUS:?}: \
         the lock is held by abandoned token {holder:?} until its TTL ({ttl:?}) runs out"
    );
}

// Control for the test above: the same failed hand-overs, never delivered.
// The old lease's 2 s TTL frees the lock and the waiter gets it: it is the
// late delivery to an abandoned token that keeps the lock for 20 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_failed_hand_overs_never_delivered_free_the_lock_at_the_old_ttl() {
    let store = Faulty::new();
    let manager = LockManager::builder().store(store.clone()).build();
    let ttl = Duration::from_secs(20);
    let lease = manager.acquire("review/lost-hand-over", LockOptions::default().ttl(Duration::from_secs(2))).await.unwrap();
    let waiter = tokio::spawn({
        let manager = manager.clone();
        async move { manager.acquire("review/lost-hand-over", waiting(ttl, Duration::from_secs(30))).await }
    });
    settle().await;
    store.set(HandOverFault::ErrNeverApplied);
    assert!(lease.release().await.is_err());
    manager.flush().await;
    store.set(HandOverFault::None);
    let got = tokio::time::timeout(GENEROUS, waiter).await;
    assert!(matches!(got, Ok(Ok(Ok(_)))), "{got:?}");
}

// ---------------------------------------------------------------------------
// Held: the first waiter gives up (its future dropped) while a hand-over to
// it is in flight; the claim it never took is released and the next waiter
// gets the lock promptly; release() says true.
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_waiter_dropped_during_hand_over_next_waiter_gets_it() {
    let store = Faulty::new();
    let manager = LockManager::builder().store(store.clone()).build();
    let ttl = Duration::from_secs(20);
    let lease = manager.acquire("review/drop-during", LockOptions::default().ttl(ttl)).await.unwrap();
    let first = tokio::spawn({
        let manager = manager.clone();
        async move { manager.acquire("review/drop-during", waiting(ttl, Duration::from_secs(30))).await }
    });
    settle().await;
    let second = tokio::spawn({
        let manager = manager.clone();
        async move { manager.acquire("review/drop-during", waiting(ttl, Duration::from_secs(30))).await }
    });
    settle().await;
    store.set(HandOverFault::Gated);
    let old_fencing = lease.fencing_token();
    let release = tokio::spawn(async move { lease.release().await });
    settle().await;
    first.abort();
    let _ = first.await;
    store.gate.notify_one();
    assert!(release.await.unwrap().unwrap(), "the lock was ours");
    store.set(HandOverFault::None);
    let lease = tokio::time::timeout(Duration::from_secs(2), second)
        .await
        .expect("the second waiter must not wait for a TTL or backoff of seconds")
        .unwrap()
        .unwrap();
    assert!(lease.fencing_token() > old_fencing);
    assert!(lease.release().await.unwrap());
    manager.flush().await;
    assert_eq!(manager.get("review/drop-during").await.unwrap(), None);
}

// ---------------------------------------------------------------------------
// Held: the first waiter is cancelled; the second (never first until then)
// polls and takes a lock released by another process.
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_waiter_polls_after_first_is_cancelled() {
    let store = MemoryStore::new();
    let here = LockManager::builder().store(store.clone()).build();
    let elsewhere = LockManager::builder().store(store.clone()).build();
    let held = elsewhere.acquire("review/cancel-first", LockOptions::default()).await.unwrap();
    let first = tokio::spawn({
        let here = here.clone();
        async move { here.acquire("review/cancel-first", waiting(Duration::from_secs(10), Duration::from_secs(60))).await }
    });
    settle().await;
    let second = tokio::spawn({
        let here = here.clone();
        async move { here.acquire("review/cancel-first", waiting(Duration::from_secs(10), Duration::from_secs(60))).await }
    });
    settle().await;
    first.abort();
    let _ = first.await;
    settle().await;
    assert!(held.release().await.unwrap());
    let lease = tokio::time::timeout(Duration::from_secs(4), second).await.expect("second waiter never polled").unwrap().unwrap();
    lease.release().await.unwrap();
}

// ---------------------------------------------------------------------------
// Held: a lease lost to another process and then released while a local
// waiter queues: release() says false, the waiter is not given the other
// process's lock, and fencing tokens keep increasing.
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_lease_released_with_waiter_queued() {
    let store = MemoryStore::new();
    let here = LockManager::builder().store(store.clone()).build();
    let elsewhere = LockManager::builder().store(store.clone()).build();
    let lease = here.acquire("review/lost", LockOptions::default().ttl(Duration::from_secs(20))).await.unwrap();
    let waiter = tokio::spawn({
        let here = here.clone();
        async move { here.acquire("review/lost", waiting(Duration::from_secs(20), Duration::from_secs(2))).await }
    });
    settle().await;
    assert!(elsewhere.force_release("review/lost").await.unwrap());
    let other = elsewhere.acquire("review/lost", LockOptions::default().ttl(Duration::from_secs(20))).await;
    // The local waiter may be quicker than `elsewhere`: either way exactly one holder.
    let old_fencing = lease.fencing_token();
    match other {
        Ok(other) => {
            assert!(!lease.release().await.unwrap(), "release() must say false: the lock was no longer ours");
            let refused = waiter.await.unwrap();
            assert!(matches!(refused, Err(Error::Acquisition(_))), "{refused:?}");
            assert!(other.fencing_token() > old_fencing);
            other.release().await.unwrap();
        }
        Err(_) => {
            let got = waiter.await.unwrap().unwrap();
            assert!(got.fencing_token() > lease.fencing_token());
            assert!(!lease.release().await.unwrap());
            got.release().await.unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// Held: a hand-over gives the waiter a lease whose trust deadline counts from
// the hand-over request (paused clock: the waiter loses it 0.8 TTL after the
// release was sent, and the store's expiry is later than that).
// ---------------------------------------------------------------------------
#[tokio::test(start_paused = true)]
async fn handed_over_lease_trust_deadline_is_before_store_expiry() {
    let store = MemoryStore::new();
    let manager = LockManager::builder().store(store.clone()).build();
    let other = LockManager::builder().store(store.clone()).build();
    let ttl = Duration::from_secs(10);
    let lease = manager.acquire("review/deadline", LockOptions::default().ttl(ttl)).await.unwrap();
    let waiter = tokio::spawn({
        let manager = manager.clone();
        async move { manager.acquire("review/deadline", waiting(ttl, Duration::from_secs(60)).renew(false)).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let released_at = tokio::time::Instant::now();
    assert!(lease.release().await.unwrap());
    let got = waiter.await.unwrap().unwrap();
    got.lost().await;
    let lost_after = released_at.elapsed();
    assert!(lost_after <= ttl - ttl / 5 + Duration::from_millis(5), "lost only after {lost_after:?}");
    // Nobody else could have entered yet.
    let refused = other.acquire("review/deadline", LockOptions::default()).await;
    assert!(matches!(refused, Err(Error::Acquisition(_))), "another holder entered before the handed-over lease was lost: {refused:?}");
    drop(got);
    manager.flush().await;
}

// ---------------------------------------------------------------------------
// Held: many waiters, leases dropped (not released) one after the other:
// every waiter gets the lock exactly once, fencing strictly increases, and
// flush() leaves nothing held.
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_dropped_leases_hands_over_to_every_waiter() {
    let manager = LockManager::in_memory();
    let inside = Arc::new(AtomicUsize::new(0));
    let fencing = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..12 {
        let manager = manager.clone();
        let inside = Arc::clone(&inside);
        let fencing = Arc::clone(&fencing);
        tasks.push(tokio::spawn(async move {
            let lease = manager.acquire("review/chain", waiting(Duration::from_secs(5), Duration::from_secs(20))).await.unwrap();
            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
            fencing.lock().unwrap().push(lease.fencing_token());
            tokio::time::sleep(Duration::from_millis(5 + i)).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            if i % 2 == 0 { drop(lease) } else { assert!(lease.release().await.unwrap()) }
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(20), task).await.expect("a waiter hung").unwrap();
    }
    let fencing = fencing.lock().unwrap().clone();
    assert!(fencing.windows(2).all(|w| w[0] < w[1]), "{fencing:?}");
    tokio::time::timeout(GENEROUS, manager.flush()).await.expect("flush hung");
    assert_eq!(manager.get("review/chain").await.unwrap(), None);
}

// ---------------------------------------------------------------------------
// Problem 2: a release() future cancelled while its hand-over is in flight
// (`tokio::time::timeout(.., lease.release())`, a dropped `with_lock` future,
// a select!). The hand-over request reaches the store and grants the lock to
// the waiter's new token, but nobody ever learns that token: the claim is
// never built, and unlike an acquire attempt (run in a task of its own, with
// `abandon` on an unknown outcome), the hand-over runs inside the caller's
// future, so no abandon is scheduled either. Lease::drop then hands over
// again, finds the old token gone (NotHeld), and the lock stays held by the
// orphan token for the waiter's full TTL while the waiter is refused.
// Guarantee 3 (released on every exit path, cancelled futures included).
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problem2_cancelled_release_during_hand_over_orphans_the_lock() {
    let store = Faulty::new();
    let manager = LockManager::builder().store(store.clone()).build();
    let ttl = Duration::from_secs(20);
    let lease = manager.acquire("review/cancelled-release", LockOptions::default().ttl(ttl)).await.unwrap();
    let waiter = tokio::spawn({
        let manager = manager.clone();
        async move { manager.acquire("review/cancelled-release", waiting(ttl, Duration::from_secs(30))).await }
    });
    settle().await;
    store.set(HandOverFault::ApplyThenHang);
    // The caller gives up on a slow release; the lease's Drop takes over.
    let timed_out = tokio::time::timeout(Duration::from_millis(200), lease.release()).await;
    assert!(timed_out.is_err(), "the release reply is held back");
    store.set(HandOverFault::None);
    tokio::time::timeout(GENEROUS, manager.flush()).await.expect("flush hung");
    let holder = manager.get("review/cancelled-release").await.unwrap();
    let got = tokio::time::timeout(GENEROUS, waiter).await;
    assert!(
        matches!(got, Ok(Ok(Ok(_)))),
        "problem 2: after a cancelled release, the only waiter was refused for {GENEROUS:?}; \
         the lock is held by orphan token {holder:?} until its TTL ({ttl:?})"
    );
}

// ---------------------------------------------------------------------------
// Same cancellation, via with_lock: the whole with_lock future is dropped
// while its release hands over.
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problem2_cancelled_with_lock_during_hand_over_orphans_the_lock() {
    let store = Faulty::new();
    let manager = LockManager::builder().store(store.clone()).build();
    let ttl = Duration::from_secs(20);
    let entered = Arc::new(Notify::new());
    let holder_task = tokio::spawn({
        let manager = manager.clone();
        let entered = Arc::clone(&entered);
        async move {
            manager
                .with_lock("review/cancelled-with-lock", LockOptions::default().ttl(ttl), || async move {
                    entered.notify_one();
                    tokio::time::sleep(Duration::from_millis(300)).await;
                })
                .await
        }
    });
    entered.notified().await;
    let waiter = tokio::spawn({
        let manager = manager.clone();
        async move { manager.acquire("review/cancelled-with-lock", waiting(ttl, Duration::from_secs(30))).await }
    });
    store.set(HandOverFault::ApplyThenHang);
    // The work ends at 300 ms; its release hangs; the caller is cancelled at 600 ms.
    tokio::time::sleep(Duration::from_millis(600)).await;
    holder_task.abort();
    let _ = holder_task.await;
    store.set(HandOverFault::None);
    tokio::time::timeout(GENEROUS, manager.flush()).await.expect("flush hung");
    let got = tokio::time::timeout(GENEROUS, waiter).await;
    assert!(
        matches!(got, Ok(Ok(Ok(_)))),
        "problem 2: the waiter never got a lock whose with_lock caller was cancelled mid-release: {got:?}"
    );
}

// ---------------------------------------------------------------------------
// Problem 3 (head-of-line blocking): only the first local waiter polls the
// store; the others sleep for their whole remaining wait unless the queue
// changes. A first waiter whose future is alive but not being polled (pinned
// outside a select! loop, a task starved on a busy runtime) then keeps every
// other local waiter from noticing a lock released by another process, until
// each one's own wait has run out. Here the lock is free from 0.3 s on, and
// the second waiter (wait 4 s) only gets it at about 4 s.
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problem3_an_unpolled_first_waiter_blocks_the_others() {
    let store = MemoryStore::new();
    let here = LockManager::builder().store(store.clone()).build();
    let elsewhere = LockManager::builder().store(store.clone()).build();
    let held = elsewhere.acquire("review/hol", LockOptions::default()).await.unwrap();
    // The first waiter: polled until it has queued, then left alone.
    let mut first = Box::pin(here.acquire("review/hol", waiting(Duration::from_secs(10), Duration::from_secs(60))));
    assert!(tokio::time::timeout(Duration::from_millis(100), &mut first).await.is_err());
    let started = tokio::time::Instant::now();
    let second = tokio::spawn({
        let here = here.clone();
        async move { here.acquire("review/hol", waiting(Duration::from_secs(10), Duration::from_secs(20))).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(held.release().await.unwrap());
    let lease = second.await.unwrap().unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(7),
        "problem 3: the lock was free from 0.3 s, but the second local waiter only got it after {took:?} \
         (the end of its own wait): it never polled while an idle first waiter headed the queue"
    );
    lease.release().await.unwrap();
    drop(first);
}

// ---------------------------------------------------------------------------
// Problem 4 (remote starvation): a release always hands the lock to a local
// waiter with no gap, so as long as this process keeps one waiter queued the
// lock never becomes free in the store, and a waiter in another process
// (polling with backoff) can never get it, whatever its wait. Not one of the
// five guarantees, but "can waiters starve" was asked: they can.
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problem4_local_hand_overs_starve_other_processes() {
    let store = MemoryStore::new();
    let busy = LockManager::builder().store(store.clone()).build();
    let other = LockManager::builder().store(store.clone()).build();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..2 {
        let busy = busy.clone();
        let stop = Arc::clone(&stop);
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let lease = busy.acquire("review/starve", waiting(Duration::from_secs(5), Duration::from_secs(10))).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                lease.release().await.unwrap();
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let outsider = other.acquire("review/starve", waiting(Duration::from_secs(5), Duration::from_secs(3))).await;
    let outsider = match outsider {
        Ok(lease) => Ok(lease.release().await.unwrap()),
        Err(err) => Err(err),
    };
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }
    assert!(
        outsider.is_ok(),
        "problem 4: another process waited 3 s for a lock that was released every 20 ms, and never got it: {:?}",
        outsider.err()
    );
}

// ---------------------------------------------------------------------------
// Held: two releases racing with a waiter queued: a stale lease (expired in
// the store, renew off) and the current holder of the same manager. The
// stale one says false, the holder true, the waiter gets the lock once.
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_releases_of_a_stale_and_a_current_lease() {
    let manager = LockManager::in_memory();
    let stale = manager
        .acquire("review/race", LockOptions::default().ttl(Duration::from_millis(200)).renew(false))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(stale.is_lost());
    let current = manager.acquire("review/race", LockOptions::default().ttl(Duration::from_secs(10))).await.unwrap();
    let waiter = tokio::spawn({
        let manager = manager.clone();
        async move { manager.acquire("review/race", waiting(Duration::from_secs(10), Duration::from_secs(5))).await }
    });
    settle().await;
    let (a, b) = tokio::join!(stale.release(), current.release());
    assert!(!a.unwrap(), "the stale lease's release must say false");
    assert!(b.unwrap(), "the holder's release must say true");
    let got = tokio::time::timeout(Duration::from_secs(2), waiter).await.expect("waiter hung").unwrap().unwrap();
    assert!(got.release().await.unwrap());
}

// ---------------------------------------------------------------------------
// Held: the runtime shuts down with a lease, a queued waiter and a hand-over
// claim in flight: no panic, no hang (the TTL frees the lock, as documented).
// ---------------------------------------------------------------------------
#[test]
fn runtime_shutdown_with_waiters_and_hand_overs() {
    let store = MemoryStore::new();
    for flavor in 0..2 {
        let runtime = match flavor {
            0 => tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
            _ => tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap(),
        };
        let manager = LockManager::builder().store(store.clone()).build();
        let lease = runtime.block_on(manager.acquire("review/shutdown", LockOptions::default().ttl(Duration::from_millis(300)))).unwrap();
        for _ in 0..3 {
            let manager = manager.clone();
            runtime.spawn(async move {
                let _ = manager.acquire("review/shutdown", waiting(Duration::from_secs(1), Duration::from_secs(30))).await;
                std::future::pending::<()>().await;
            });
        }
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
        runtime.spawn(async move { drop(lease) });
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(5)).await });
        drop(runtime);
        drop(manager);
        std::thread::sleep(Duration::from_millis(400));
    }
}

// ---------------------------------------------------------------------------
// Problem 5: a runtime that ends during a renewal batch's gather window
// poisons the manager's renewals for good. Only the renewal that finds the
// queue empty spawns the task that sends the batch; when that task is
// dropped before its 5 ms window ends (its runtime shut down: a
// #[tokio::test] runtime under a manager installed with `eslock::install`, a
// start-up runtime before the main one), its renewal stays queued forever,
// every later renewal of the manager sees a non-empty queue, spawns nothing,
// and waits for a reply that never comes: every lease of the manager, on any
// runtime, is then lost at its trust deadline (no request is even sent).
// ---------------------------------------------------------------------------
#[test]
fn problem5_a_runtime_ending_in_a_gather_window_stops_all_later_renewals() {
    let manager = LockManager::in_memory();
    let first = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    first.block_on(async {
        let lease = manager.acquire("review/first-runtime", LockOptions::default().ttl(Duration::from_secs(3))).await.unwrap();
        // The renewal is due at TTL/3: it queues and spawns the batch task,
        // which sleeps out its gather window...
        tokio::time::advance(Duration::from_millis(1001)).await;
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        std::mem::forget(lease);
    });
    // ... when its runtime ends.
    drop(first);

    let second = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    second.block_on(async {
        let lease = manager.acquire("review/second-runtime", LockOptions::default().ttl(Duration::from_millis(600))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            !lease.is_lost(),
            "problem 5: a healthy lease on a healthy store was lost: {:?}; its renewals queue behind \
             one whose batch task died with its runtime",
            lease.lost_reason()
        );
        assert!(lease.release().await.unwrap());
    });
}

// Control for PROBLEM 5: the same second half alone renews fine.
#[test]
fn control_renewals_work_without_a_dead_runtime() {
    let manager = LockManager::in_memory();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let lease = manager.acquire("review/second-runtime", LockOptions::default().ttl(Duration::from_millis(600))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!lease.is_lost(), "{:?}", lease.lost_reason());
        assert!(lease.release().await.unwrap());
    });
}
