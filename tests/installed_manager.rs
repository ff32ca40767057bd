//! `#[exclusive]` without `manager = ...` uses the process-wide manager:
//! before `eslock::install` that is `Error::NotConfigured`, not a panic.
//! (Its own test binary: the installed manager is process-wide.) On the
//! in-memory store: no engine needed.

use std::sync::atomic::{AtomicUsize, Ordering};

use eslock::{Error, LockManager, LockOptions, exclusive};

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[exclusive("installed/job", wait = "5s")]
async fn job() -> Result<usize, Error> {
    Ok(RUNS.fetch_add(1, Ordering::SeqCst) + 1)
}

#[tokio::test]
async fn uses_the_installed_manager_and_reports_when_there_is_none() {
    assert!(matches!(job().await, Err(Error::NotConfigured)));
    assert_eq!(RUNS.load(Ordering::SeqCst), 0);

    let manager = LockManager::in_memory();
    eslock::install(manager.clone()).unwrap();
    assert!(eslock::install(LockManager::in_memory()).is_err(), "installed once");
    assert_eq!(job().await.unwrap(), 1);

    // The installed manager is the one that locks: while it is held, the job waits (wait = "5s").
    let lease = manager.acquire("installed/job", LockOptions::default()).await.unwrap();
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        lease.release().await.unwrap()
    });
    assert_eq!(job().await.unwrap(), 2);
    assert!(releaser.await.unwrap());
}
