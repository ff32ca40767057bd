//! Declarative start-up tasks: five nodes boot at once; a `once` task runs on
//! exactly one of them and is skipped on a later boot; a task without `once`
//! runs on every node that waits for it, never two at a time. On both stores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eslock::{Error, LockManager, MemoryStore, StartupOutcome, exclusive, run_startup_tasks, startup_tasks};
use futures::future::join_all;

static MIGRATIONS: AtomicUsize = AtomicUsize::new(0);
static WARMUPS: AtomicUsize = AtomicUsize::new(0);
static WARMING_NOW: AtomicUsize = AtomicUsize::new(0);
static MAX_WARMING_AT_ONCE: AtomicUsize = AtomicUsize::new(0);

#[exclusive("startup-test/migrations-v1", startup, once, ttl = "10s")]
async fn migrate() -> Result<(), Error> {
    MIGRATIONS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    Ok(())
}

#[exclusive("startup-test/warm-cache", startup, wait = "30s")]
async fn warm_cache() -> Result<(), Error> {
    let now = WARMING_NOW.fetch_add(1, Ordering::SeqCst) + 1;
    MAX_WARMING_AT_ONCE.fetch_max(now, Ordering::SeqCst);
    WARMUPS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    WARMING_NOW.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

fn outcomes(reports: &[Vec<eslock::StartupReport>], lock_id: &str) -> Vec<StartupOutcome> {
    reports
        .iter()
        .map(|node| node.iter().find(|r| r.lock_id == lock_id).expect("every node reports every task").outcome.clone())
        .collect()
}

async fn boot_five_nodes_then_one_more(new_node: impl Fn() -> LockManager) {
    for counter in [&MIGRATIONS, &WARMUPS, &MAX_WARMING_AT_ONCE] {
        counter.store(0, Ordering::SeqCst);
    }
    let nodes: Vec<LockManager> = (0..5).map(|_| new_node()).collect();
    let reports = join_all(nodes.iter().map(|node| run_startup_tasks(node, None))).await;

    let migrations = outcomes(&reports, "startup-test/migrations-v1");
    assert_eq!(migrations.iter().filter(|o| **o == StartupOutcome::Ran).count(), 1, "{migrations:?}");
    assert!(migrations.iter().all(|o| matches!(o, StartupOutcome::Ran | StartupOutcome::HeldElsewhere | StartupOutcome::SkippedDone)));
    assert_eq!(MIGRATIONS.load(Ordering::SeqCst), 1);

    let warmups = outcomes(&reports, "startup-test/warm-cache");
    assert_eq!(warmups, vec![StartupOutcome::Ran; 5], "each node waited its turn");
    assert_eq!(WARMUPS.load(Ordering::SeqCst), 5);
    assert_eq!(MAX_WARMING_AT_ONCE.load(Ordering::SeqCst), 1, "never two at a time");

    // A node that boots later skips the completed `once` task.
    let later = run_startup_tasks(&new_node(), None).await;
    assert_eq!(outcomes(&[later], "startup-test/migrations-v1"), vec![StartupOutcome::SkippedDone]);
    assert_eq!(MIGRATIONS.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_tasks_run_once_across_nodes_on_both_stores() {
    let names: Vec<_> = startup_tasks().iter().map(|task| task.lock_id()).collect();
    assert_eq!(names, ["startup-test/migrations-v1", "startup-test/warm-cache"]);

    let store = MemoryStore::new();
    boot_five_nodes_then_one_more(|| LockManager::builder().store(store.clone()).build()).await;

    let index = eslock_test_support::unique_name("startup");
    boot_five_nodes_then_one_more(|| {
        eslock_test_support::manager_on(eslock_test_support::engine_client(), &index)
    })
    .await;
}

#[tokio::test]
async fn a_startup_function_still_locks_when_called_directly() {
    // No installed manager in this binary: calling it directly reports that
    // instead of running the body without a lock.
    assert!(matches!(migrate().await, Err(Error::NotConfigured)));
}
