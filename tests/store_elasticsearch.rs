//! The store conformance suite on the real engine (`ELASTICSEARCH_URL`).

mod conformance;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use conformance::{Backend, CountingStore};
use eslock::store::elasticsearch::IndexLayout;
use eslock::store::LockStore;
use eslock::{ElasticsearchStore, LockManager};
use eslock_suite::{engine_client, unique_name};

/// Each test gets its own lock index; each manager its own client, like a
/// separate process.
struct Engine {
    index: String,
}

impl Backend for Engine {
    fn manager(&self) -> LockManager {
        LockManager::builder().elasticsearch(engine_client()).index_name(&self.index).build()
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
        ElasticsearchStore::with_layout(engine_client(), IndexLayout::named(&self.index))
    }
}

fn backend() -> Engine {
    Engine { index: unique_name("conformance") }
}

conformance_tests!(backend());
