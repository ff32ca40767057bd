use eslock::{Error, LockManager, StartupOutcome, exclusive, run_startup_tasks};

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

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let manager = LockManager::in_memory();
    let first = run_startup_tasks(&manager, None).await;
    assert!(first.iter().all(|report| report.outcome == StartupOutcome::Ran));
    let second = run_startup_tasks(&manager, None).await;
    assert_eq!(second[0].outcome, StartupOutcome::SkippedDone);
    assert_eq!(second[1].outcome, StartupOutcome::Ran);
}
