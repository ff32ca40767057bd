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
