//! The store conformance suite (`eslock_test_support::conformance`: the
//! cases every store must pass) on the Elasticsearch store, against the real
//! engine (`ELASTICSEARCH_URL`). What only the Elasticsearch store does is in
//! `elasticsearch_specifics.rs`.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use eslock_test_support::conformance::{Backend, CountingStore};
use eslock::store::LockStore;
use eslock::{ElasticsearchStore, LockManager};
use eslock_test_support::{engine_client, manager_on, store_on, unique_name};

/// Each test gets its own lock index; each manager its own client, like a
/// separate process.
struct Engine {
    index: String,
}

impl Backend for Engine {
    fn manager(&self) -> LockManager {
        manager_on(engine_client(), &self.index)
    }

    fn counting_manager(&self) -> (LockManager, Arc<AtomicUsize>) {
        CountingStore::manager(self.store())
    }

    fn raw_store(&self) -> Box<dyn LockStore> {
        Box::new(self.store())
    }
}

impl Engine {
    fn store(&self) -> ElasticsearchStore {
        store_on(engine_client(), &self.index)
    }
}

fn backend() -> Engine {
    Engine { index: unique_name("conformance") }
}

eslock_test_support::conformance_tests!(backend());
