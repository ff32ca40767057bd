use eslock::{Error, LockManager, StartupOutcome, exclusive, run_startup_tasks};

eslock::lock_names! {
    pub SCHEMA = "bootstrap/schema-v2";
}

#[exclusive("bootstrap/templates-v3", startup, once, ttl = "1m")]
async fn install_templates() -> Result<(), Error> {
    Ok(())
}

#[derive(Debug)]
struct WarmError(String);

impl std::fmt::Display for WarmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Error> for WarmError {
    fn from(error: Error) -> Self {
        WarmError(error.to_string())
    }
}

#[exclusive("cache/warm", startup, wait = "10s")]
async fn warm_cache() -> Result<(), WarmError> {
    Ok(())
}

// A declared name, and an associated function (no `self`) in an impl.
struct Schema;

impl Schema {
    #[exclusive(SCHEMA, startup, once)]
    async fn migrate() -> Result<(), Error> {
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let manager = LockManager::in_memory();
    let first = run_startup_tasks(&manager, None).await;
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|report| report.outcome == StartupOutcome::Ran));
    let second = run_startup_tasks(&manager, None).await;
    let outcome = |lock_id: &str| second.iter().find(|report| report.lock_id == lock_id).unwrap().outcome.clone();
    assert_eq!(outcome("bootstrap/templates-v3"), StartupOutcome::SkippedDone);
    assert_eq!(outcome("bootstrap/schema-v2"), StartupOutcome::SkippedDone);
    assert_eq!(outcome("cache/warm"), StartupOutcome::Ran);
    // Called directly, the functions lock too (no manager installed here).
    assert!(matches!(Schema::migrate().await, Err(Error::NotConfigured)));
    assert!(matches!(install_templates().await, Err(Error::NotConfigured)));
    assert!(warm_cache().await.is_err());
}
