//! The store conformance suite on the in-memory store.

mod conformance;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use conformance::{Backend, CountingStore};
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

conformance_tests!(backend());

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
