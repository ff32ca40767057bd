//! The store conformance suite (`eslock_test_support::conformance`) on the
//! in-memory store, and what only the in-memory store does. No engine needed.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use eslock_test_support::conformance::{Backend, CountingStore};
use eslock::store::LockStore;
use eslock::{LockManager, MemoryStore};

/// Managers built on clones of one store share its locks, like processes
/// sharing a cluster.
struct Memory(MemoryStore);

impl Backend for Memory {
    fn manager(&self) -> LockManager {
        LockManager::builder().store(self.0.clone()).build()
    }

    fn counting_manager(&self) -> (LockManager, Arc<AtomicUsize>) {
        CountingStore::manager(self.0.clone())
    }

    fn raw_store(&self) -> Box<dyn LockStore> {
        Box::new(self.0.clone())
    }
}

fn backend() -> Memory {
    Memory(MemoryStore::new())
}

eslock_test_support::conformance_tests!(backend());

/// Issue 7.12: the in-memory store decides expiry on Tokio's clock, the
/// clock leases count on, so paused-time tests see what production would.
#[tokio::test(start_paused = true)]
async fn expiry_follows_tokios_clock() {
    use std::time::Duration;
    use eslock::LockOptions;

    let store = MemoryStore::new();
    let (holder, contender) = (LockManager::builder().store(store.clone()).build(), LockManager::builder().store(store).build());
    let lease = holder.acquire("paused", LockOptions::default().ttl(Duration::from_secs(10)).renew(false)).await.unwrap();
    assert!(contender.acquire("paused", LockOptions::default()).await.is_err());
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(contender.get("paused").await.unwrap().is_some(), "not expired yet on Tokio's clock");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(lease.is_lost());
    assert_eq!(contender.get("paused").await.unwrap(), None, "expired on Tokio's clock");
    let taken = contender.acquire("paused", LockOptions::default()).await.unwrap();
    assert!(taken.fencing_token() > lease.fencing_token());
}

/// `lost()` futures polled while the lease is being declared lost all
/// complete: none may miss the change and sleep until the old deadline.
#[test]
fn lost_never_misses_the_lease_being_declared_lost() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};
    use eslock::LockOptions;

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for _ in 0..20 {
        let manager = LockManager::in_memory();
        let lease = runtime.block_on(manager.acquire("job", LockOptions::default().ttl(Duration::from_millis(600)))).unwrap();
        // The token is gone: the renewal at ~200 ms declares the lease lost.
        runtime.block_on(manager.force_release("job")).unwrap();
        let _entered = runtime.enter();
        let mut context = Context::from_waker(Waker::noop());
        let mut pending = Vec::new();
        let started = Instant::now();
        // Lost at the trust deadline (480 ms) at the latest; the spinning
        // itself slows the runtime down, so allow for a loaded machine.
        while !lease.is_lost() && started.elapsed() < Duration::from_secs(5) {
            let mut lost = Box::pin(lease.lost());
            if lost.as_mut().poll(&mut context).is_pending() {
                pending.push(lost);
            }
            if pending.len() > 100_000 {
                pending.drain(..50_000);
            }
        }
        assert!(lease.is_lost(), "the lease was never declared lost");
        let stuck = pending.iter_mut().map(|lost| lost.as_mut().poll(&mut context)).filter(Poll::is_pending).count();
        assert_eq!(stuck, 0, "lost() futures still pending after the lease was declared lost");
    }
}
