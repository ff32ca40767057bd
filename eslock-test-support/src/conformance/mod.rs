//! The store conformance suite: every case runs against every store
//! (`tests/conformance_memory.rs`, `tests/conformance_elasticsearch.rs`)
//! through a [`Backend`]; [`conformance_tests!`](crate::conformance_tests)
//! generates one test per case. A store of your own can run it too.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use eslock::store::{AcquireOutcome, AcquireRequest, HandOver, LockStore, Renewal, StoreFuture};
use eslock::{Error, LockId, LockInfo, LockManager, LockOptions};
use serde_json::json;

pub mod cases;

/// How a case reaches a store.
pub trait Backend: Send + Sync {
    /// A manager as a separate process would have it, on the same locks.
    fn manager(&self) -> LockManager;

    /// A manager on the same locks whose store counts every call it gets.
    fn counting_manager(&self) -> (LockManager, Arc<AtomicUsize>);

    /// The raw store, for callers that bypass `Lease` (strangers with made-up tokens).
    fn raw_store(&self) -> Box<dyn LockStore>;
}

/// Wraps a store and counts the calls that reach it, to prove that bad input
/// is refused before any request.
pub struct CountingStore<S> {
    /// The store that does the work.
    pub inner: S,
    /// How many calls reached `inner` so far.
    pub calls: Arc<AtomicUsize>,
}

impl<S: LockStore> CountingStore<S> {
    /// A manager on `inner` through a counting wrapper, with its call count.
    pub fn manager(inner: S) -> (LockManager, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let store = CountingStore { inner, calls: Arc::clone(&calls) };
        (LockManager::builder().store(store).build(), calls)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl<S: LockStore> LockStore for CountingStore<S> {
    fn setup(&self) -> StoreFuture<'_, ()> {
        self.count();
        self.inner.setup()
    }
    fn acquire<'a>(&'a self, request: &'a AcquireRequest) -> StoreFuture<'a, AcquireOutcome> {
        self.count();
        self.inner.acquire(request)
    }
    fn extend<'a>(&'a self, lock_id: &'a LockId, token: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockInfo>> {
        self.count();
        self.inner.extend(lock_id, token, ttl)
    }
    fn extend_many<'a>(&'a self, renewals: &'a [Renewal]) -> StoreFuture<'a, Vec<eslock::Result<Option<LockInfo>>>> {
        self.count();
        self.inner.extend_many(renewals)
    }
    fn hand_over<'a>(&'a self, lock_id: &'a LockId, token: &'a str, next: &'a AcquireRequest) -> StoreFuture<'a, HandOver> {
        self.count();
        self.inner.hand_over(lock_id, token, next)
    }
    fn release<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
        self.count();
        self.inner.release(lock_id, token)
    }
    fn abandon<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
        self.count();
        self.inner.abandon(lock_id, token)
    }
    fn get<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, Option<LockInfo>> {
        self.count();
        self.inner.get(lock_id)
    }
    fn list(&self) -> StoreFuture<'_, Vec<LockInfo>> {
        self.count();
        self.inner.list()
    }
    fn force_release<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, bool> {
        self.count();
        self.inner.force_release(lock_id)
    }
    fn index(&self) -> Option<&str> {
        self.inner.index()
    }
}

/// The store methods a fault-injecting wrapper passes to `self.inner`
/// unchanged (release, abandon, get, list, force_release). The wrapper
/// needs `LockId`, `LockInfo` and `StoreFuture` in scope.
#[macro_export]
macro_rules! forward_to_inner {
    () => {
        fn release<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
            self.inner.release(lock_id, token)
        }
        fn abandon<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
            self.inner.abandon(lock_id, token)
        }
        fn get<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, Option<LockInfo>> {
            self.inner.get(lock_id)
        }
        fn list(&self) -> StoreFuture<'_, Vec<LockInfo>> {
            self.inner.list()
        }
        fn force_release<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, bool> {
            self.inner.force_release(lock_id)
        }
    };
}

/// Wraps a store and makes replies late: the store has already acted when
/// the delay starts, like a reply held back by the network or a paused
/// process. `extend_delay` only applies to extends asking for `slow_ttl`.
pub struct LateReplies {
    /// The store that does the work.
    pub inner: Box<dyn LockStore>,
    /// How late every acquire reply comes.
    pub acquire_delay: Duration,
    /// How late an extend reply comes when it asks for `slow_ttl`.
    pub extend_delay: Duration,
    /// The TTL whose extends are answered late; `None`: no extend is.
    pub slow_ttl: Option<Duration>,
}

impl LateReplies {
    /// A manager whose acquire replies come `delay` late; other calls are
    /// answered at once.
    pub fn acquires(inner: Box<dyn LockStore>, delay: Duration) -> LockManager {
        let store = LateReplies { inner, acquire_delay: delay, extend_delay: Duration::ZERO, slow_ttl: None };
        LockManager::builder().store(store).build()
    }
}

impl LockStore for LateReplies {
    fn setup(&self) -> StoreFuture<'_, ()> {
        self.inner.setup()
    }
    fn acquire<'a>(&'a self, request: &'a AcquireRequest) -> StoreFuture<'a, AcquireOutcome> {
        Box::pin(async move {
            let outcome = self.inner.acquire(request).await;
            tokio::time::sleep(self.acquire_delay).await;
            outcome
        })
    }
    fn extend<'a>(&'a self, lock_id: &'a LockId, token: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockInfo>> {
        Box::pin(async move {
            let outcome = self.inner.extend(lock_id, token, ttl).await;
            if self.slow_ttl == Some(ttl) {
                tokio::time::sleep(self.extend_delay).await;
            }
            outcome
        })
    }
    forward_to_inner!();
}

/// Wraps a store whose first acquire fails at once while the request is
/// still on its way: the store applies it later (a request queued in the
/// engine or the network after the client gave up on it).
pub struct AppliedAfterFailure {
    /// The store that does the work.
    pub inner: Arc<dyn LockStore>,
    /// How long after its failure the first acquire is applied.
    pub delay: Duration,
    /// Set once the first acquire has failed; start with `false`.
    pub failed_once: std::sync::atomic::AtomicBool,
}

impl LockStore for AppliedAfterFailure {
    fn setup(&self) -> StoreFuture<'_, ()> {
        self.inner.setup()
    }
    fn acquire<'a>(&'a self, request: &'a AcquireRequest) -> StoreFuture<'a, AcquireOutcome> {
        if self.failed_once.swap(true, Ordering::SeqCst) {
            return self.inner.acquire(request);
        }
        let (inner, request, delay) = (Arc::clone(&self.inner), request.clone(), self.delay);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = inner.acquire(&request).await;
        });
        Box::pin(async { Err(Error::NotConfigured) })
    }
    fn extend<'a>(&'a self, lock_id: &'a LockId, token: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockInfo>> {
        self.inner.extend(lock_id, token, ttl)
    }
    forward_to_inner!();
}

/// A lock id no other test uses (with the `/` and `:` that must round-trip).
pub fn lock_id(name: &str) -> String {
    crate::unique_name(&format!("conf/{name}:x"))
}

/// Default options with a TTL of `ttl_ms` milliseconds.
pub fn short(ttl_ms: u64) -> LockOptions {
    LockOptions::default().ttl(Duration::from_millis(ttl_ms))
}

/// Polls `check` until it holds or `limit` passes (generous bounds: the
/// machine may be slow; a real failure still fails).
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts that `err` is an acquisition error for `lock_id` whose message
/// names the lock.
pub fn assert_acquisition_error(err: &Error, lock_id: &str) {
    match err {
        Error::Acquisition(acq) => {
            assert_eq!(acq.lock_id, lock_id);
            assert!(err.to_string().contains(&format!("lock \"{lock_id}\"")), "message: {err}");
        }
        other => panic!("expected an acquisition error for {lock_id}, got {other:?}"),
    }
}

/// Nested metadata tagged with `tag`, to tell holders apart.
pub fn metadata(tag: &str) -> serde_json::Value {
    json!({ "owner": tag, "attempt": 1, "nested": { "ok": true } })
}

/// The time from `earlier` to `later`; zero when `later` is earlier.
pub fn since(earlier: SystemTime, later: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or(Duration::ZERO)
}

/// Generates one `#[tokio::test]` per conformance case for a backend (the
/// calling test crate depends on `tokio` with `macros` and `rt-multi-thread`).
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::conformance_tests!(@cases $backend;
            acquire_store_and_release,
            releasing_twice_is_harmless,
            get_hides_expired_lock,
            ids_do_not_interfere,
            held_lock_is_refused_and_holder_kept,
            expired_lock_is_taken_over,
            wait_acquires_after_release,
            wait_that_runs_out_fails,
            extend_moves_expiry,
            extend_after_lock_gone_is_false,
            concurrent_acquires_have_one_winner,
            strangers_cannot_release_or_steal,
            token_changed_behind_holder,
            fresh_tokens_and_increasing_fencing,
            with_lock_runs_once_among_callers,
            with_lock_releases_after_error,
            with_lock_releases_after_panic,
            with_lock_releases_when_dropped,
            renewal_keeps_short_ttl_alive,
            renewal_finds_foreign_token_and_fires_lost,
            with_lock_reports_lost_lease,
            dropped_lease_is_released,
            list_and_force_release,
            bad_input_is_refused_before_any_request,
            shorter_extend_moves_trust_deadline,
            shorter_extend_right_after_acquire_keeps_renewing,
            late_renewal_reply_cannot_restore_old_ttl,
            late_acquire_reply_is_never_a_lease,
            with_lock_reports_loss_after_blocking_callback,
            hand_over_passes_the_lock_in_one_step,
            extend_many_keeps_each_outcome,
            a_release_hands_over_to_a_local_waiter,
            only_the_first_local_waiter_polls,
            renewals_share_requests,
            cancelled_acquire_leaves_no_lock,
            dropped_lease_can_be_acquired_again_at_once,
            fencing_survives_release_and_force_release,
            an_acquire_applied_after_its_failure_is_refused,
            flush_completes_scheduled_releases,
            with_lease_gives_the_work_its_fencing_token,
            handles_stop_trusting_a_lease_that_ended,
        );
    };
    (@cases $backend:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::cases::$case(&$backend).await;
            }
        )*
    };
}
