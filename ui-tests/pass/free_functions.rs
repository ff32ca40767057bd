use eslock::{Error, LockManager, exclusive};

/// Docs stay on the function.
#[exclusive("jobs/nightly", ttl = "45s", wait = "2m", metadata(team = "reports", retries = 3, ratio = -1.5, dry_run = false))]
pub async fn nightly() -> Result<u32, Error> {
    Ok(1)
}

#[exclusive("jobs/with-manager", manager = manager)]
async fn with_manager(manager: &LockManager) -> Result<(), Error> {
    let _ = manager;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert!(matches!(nightly().await, Err(Error::NotConfigured)));
    let manager = LockManager::in_memory();
    with_manager(&manager).await.unwrap();
    eslock::install(manager).unwrap();
    assert_eq!(nightly().await.unwrap(), 1);
}
