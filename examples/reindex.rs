//! Several workers try to re-index the same source at once: exactly one runs
//! the re-index, the others are refused with `LockAcquisitionError`, and a
//! second source is re-indexed in parallel.
//!
//! Uses the cluster in `ELASTICSEARCH_URL` when it is set, the in-memory
//! store otherwise (`LockManager::from_env`):
//!
//! ```sh
//! cargo run --example reindex
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use eslock::{Error, LockManager, LockOptions};
use serde_json::json;
use tokio::sync::Barrier;

/// What one worker did with one source.
#[derive(Debug)]
enum Outcome {
    Reindexed,
    Refused,
}

/// Stands in for a long re-index of `source`; must never run twice at once.
async fn reindex(source: &str) -> u64 {
    tokio::time::sleep(Duration::from_secs(1)).await;
    source.len() as u64 * 1_000
}

async fn worker(manager: LockManager, name: String, source: &'static str, start: Arc<Barrier>) -> (String, &'static str, Outcome) {
    start.wait().await; // every worker tries at the same moment
    let options = LockOptions::default()
        .ttl(Duration::from_secs(30))
        .metadata(json!({ "worker": name, "source": source }));
    let lock_id = format!("reindex/{source}");
    let result = manager
        .with_lock(&lock_id, options, || async {
            println!("{name}: re-indexing {source} ...");
            reindex(source).await
        })
        .await;
    let outcome = match result {
        Ok(documents) => {
            println!("{name}: finished {source}: {documents} documents");
            Outcome::Reindexed
        }
        Err(Error::Acquisition(refused)) => {
            println!("{name}: skipped {source}: {refused}");
            Outcome::Refused
        }
        Err(other) => panic!("{name}: unexpected error: {other}"),
    };
    (name, source, outcome)
}

#[tokio::main]
async fn main() -> ExitCode {
    // The cluster in ELASTICSEARCH_URL (with ELASTICSEARCH_USERNAME and
    // ELASTICSEARCH_PASSWORD, or ELASTICSEARCH_API_KEY), else in memory.
    let manager = LockManager::from_env().expect("ELASTICSEARCH_* variables are usable");
    println!("store: {}", manager.index().unwrap_or("in memory (set ELASTICSEARCH_URL to use a cluster)"));

    // Three workers on logs-2024, two on metrics-2024, all at once.
    let plan = [("worker-1", "logs-2024"), ("worker-2", "logs-2024"), ("worker-3", "logs-2024"),
                ("worker-4", "metrics-2024"), ("worker-5", "metrics-2024")];
    let start = Arc::new(Barrier::new(plan.len()));
    let workers = plan.iter().map(|(name, source)| {
        // Clones share the store, as processes share a cluster.
        tokio::spawn(worker(manager.clone(), name.to_string(), source, Arc::clone(&start)))
    });
    let results: Vec<_> = futures::future::join_all(workers).await.into_iter().map(Result::unwrap).collect();

    let mut ok = true;
    for source in ["logs-2024", "metrics-2024"] {
        let ran = results.iter().filter(|(_, s, o)| *s == source && matches!(o, Outcome::Reindexed)).count();
        let refused = results.iter().filter(|(_, s, o)| *s == source && matches!(o, Outcome::Refused)).count();
        println!("summary: {source}: re-indexed by {ran} worker, refused {refused}");
        ok &= ran == 1;
    }
    if ok {
        println!("each source was re-indexed exactly once");
        ExitCode::SUCCESS
    } else {
        println!("ERROR: a source was re-indexed more or less than once");
        ExitCode::FAILURE
    }
}
