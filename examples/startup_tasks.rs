//! Five nodes boot at the same time and run their declared start-up tasks.
//! Migrations and template bootstrapping are `once` tasks: exactly one node
//! runs each, the others see it held elsewhere or already done. Cache warming
//! runs on every node, one at a time (`wait`). A sixth node boots later and
//! skips the completed tasks.
//!
//! Uses the cluster in `ELASTICSEARCH_URL` when it is set, the in-memory
//! store otherwise (`LockManager::from_env`):
//!
//! ```sh
//! cargo run --example startup_tasks
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eslock::{Error, LockManager, StartupOutcome, StartupReport, exclusive, run_startup_tasks};

static MIGRATIONS_RUN: AtomicUsize = AtomicUsize::new(0);
static TEMPLATES_INSTALLED: AtomicUsize = AtomicUsize::new(0);

/// Schema migrations: must run once, ever.
#[exclusive("example/migrations-v7", startup, once, ttl = "1m")]
async fn run_migrations() -> Result<(), Error> {
    MIGRATIONS_RUN.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// Index templates: once; nodes that find it running wait for it.
#[exclusive("example/bootstrap/templates-v3", startup, once, wait = "30s")]
async fn install_templates() -> Result<(), Error> {
    TEMPLATES_INSTALLED.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// Safe to repeat, not to run in parallel: every node warms, in turn.
#[exclusive("example/cache/warm", startup, wait = "30s")]
async fn warm_cache() -> Result<(), Error> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

fn describe(outcome: &StartupOutcome) -> String {
    match outcome {
        StartupOutcome::Ran => "ran".into(),
        StartupOutcome::SkippedDone => "skipped (done)".into(),
        StartupOutcome::HeldElsewhere => "held elsewhere".into(),
        StartupOutcome::Failed(error) => format!("FAILED: {error}"),
        other => format!("{other:?}"),
    }
}

fn print_node(node: &str, reports: &[StartupReport]) {
    for report in reports {
        println!("{node}: {:<32} {}", report.lock_id, describe(&report.outcome));
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // The cluster in ELASTICSEARCH_URL (with ELASTICSEARCH_USERNAME and
    // ELASTICSEARCH_PASSWORD, or ELASTICSEARCH_API_KEY), else in memory.
    let manager = LockManager::from_env().expect("ELASTICSEARCH_* variables are usable");
    println!("store: {}", manager.index().unwrap_or("in memory (set ELASTICSEARCH_URL to use a cluster)"));
    // The done markers of an earlier run would make every task "skipped";
    // start the demonstration from a clean slate.
    for task in eslock::startup_tasks() {
        manager.force_release(task.done_marker()).await.expect("reset markers");
    }

    // Clones share the store, as nodes share a cluster.
    let nodes: Vec<(String, LockManager)> = (1..=5).map(|n| (format!("node-{n}"), manager.clone())).collect();
    let boots = nodes.iter().map(|(_, node)| run_startup_tasks(node, None));
    let reports = futures::future::join_all(boots).await;
    for ((name, _), report) in nodes.iter().zip(&reports) {
        print_node(name, report);
    }

    println!("-- node-6 boots later --");
    let later = run_startup_tasks(&manager, None).await;
    print_node("node-6", &later);

    let migrations = MIGRATIONS_RUN.load(Ordering::SeqCst);
    let templates = TEMPLATES_INSTALLED.load(Ordering::SeqCst);
    println!("migrations ran {migrations} time(s), templates installed {templates} time(s)");
    let later_skipped = later.iter().filter(|r| r.outcome == StartupOutcome::SkippedDone).count();
    if migrations == 1 && templates == 1 && later_skipped == 2 {
        ExitCode::SUCCESS
    } else {
        println!("ERROR: a once task did not run exactly once");
        ExitCode::FAILURE
    }
}
