//! `#[exclusive]` and `lock_names!`: annotated functions exclude each other
//! across managers, bodies do not run while the lock is held, attribute
//! metadata is stored, and templated ids lock per value. On the in-memory
//! store, no engine needed: what the macros generate does not depend on the
//! store, and the conformance suite holds both stores to the same behaviour.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use eslock::{Error, LockManager, LockOptions, MemoryStore, exclusive, lock_names};
use serde_json::{Value, json};
use tokio::sync::Notify;

lock_names! {
    /// Per-source re-index lock.
    pub NAMED_REINDEX = "named/reindex/{source}";
    pub NIGHTLY = "named/nightly";
}

/// Holds a body inside its lock until the test lets it go, so that
/// "the second caller is refused" does not depend on timing.
#[derive(Default)]
struct Gate {
    entered: Notify,
    leave: Notify,
}

impl Gate {
    async fn hold(gate: Option<&Gate>) {
        if let Some(gate) = gate {
            gate.entered.notify_one();
            gate.leave.notified().await;
        }
    }

    /// Runs `then` once the gated body is inside its lock, then lets it go.
    async fn while_held<T>(&self, then: impl std::future::Future<Output = T>) -> T {
        self.entered.notified().await;
        let result = then.await;
        self.leave.notify_one();
        result
    }
}

/// Two "processes" on one store.
fn two_managers() -> (LockManager, LockManager) {
    let store = MemoryStore::new();
    let manager = || LockManager::builder().store(store.clone()).build();
    (manager(), manager())
}

struct Service {
    locks: LockManager,
    runs: Arc<AtomicUsize>,
}

impl Service {
    /// Docs and attributes stay on the function.
    #[exclusive("service/compaction", manager = &self.locks, ttl = "10s")]
    async fn compact(&self, gate: Option<&Gate>) -> Result<&'static str, Error> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Gate::hold(gate).await;
        Ok("compacted")
    }

    #[exclusive("service/counter", manager = self.locks.clone())]
    async fn bump(&mut self) -> Result<usize, Error> {
        Ok(self.runs.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

#[tokio::test]
async fn annotated_methods_exclude_each_other_across_managers() {
    let (a, b) = two_managers();
    let runs = Arc::new(AtomicUsize::new(0));
    let first = Service { locks: a, runs: Arc::clone(&runs) };
    let second = Service { locks: b, runs: Arc::clone(&runs) };

    let gate = Gate::default();
    let (one, two) = tokio::join!(first.compact(Some(&gate)), gate.while_held(second.compact(None)));
    assert_eq!(one.unwrap(), "compacted");
    match two {
        Err(Error::Acquisition(err)) => assert_eq!(err.lock_id, "service/compaction"),
        other => panic!("expected the second call to be refused, got {other:?}"),
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the refused body did not run");
    // Released afterwards: the other manager can run it now.
    assert_eq!(second.compact(None).await.unwrap(), "compacted");

    let mut service = Service { locks: second.locks.clone(), runs: Arc::new(AtomicUsize::new(0)) };
    assert_eq!(service.bump().await.unwrap(), 1);
    assert_eq!(service.bump().await.unwrap(), 2);
}

#[exclusive("held/body", manager = locks)]
async fn guarded(locks: &LockManager, runs: &AtomicUsize) -> Result<(), Error> {
    runs.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test]
async fn body_does_not_run_while_the_lock_is_held() {
    let (holder, caller) = two_managers();
    let runs = AtomicUsize::new(0);
    let lease = holder.acquire("held/body", LockOptions::default()).await.unwrap();
    let err = guarded(&caller, &runs).await.unwrap_err();
    assert!(err.to_string().contains("lock \"held/body\""), "{err}");
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    lease.release().await.unwrap();
    guarded(&caller, &runs).await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[exclusive("meta/job", manager = locks, metadata(team = "search", "build-id" = 42, ratio = -0.5, dry_run = false))]
async fn with_metadata(locks: &LockManager) -> Result<Value, Error> {
    // `?` inside the body converts as in any function returning Result.
    let info = locks.get("meta/job").await?.expect("held while the body runs");
    Ok(info.metadata)
}

#[tokio::test]
async fn attribute_metadata_is_stored() {
    let (manager, _) = two_managers();
    let metadata = with_metadata(&manager).await.unwrap();
    assert_eq!(metadata, json!({ "team": "search", "build-id": 42, "ratio": -0.5, "dry_run": false }));
}

#[exclusive("tpl/reindex/{source}:{shard}", manager = locks, ttl = "5s")]
async fn reindex(locks: &LockManager, source: &str, shard: u32, gate: Option<&Gate>) -> Result<String, Error> {
    Gate::hold(gate).await;
    Ok(format!("{source}#{shard}"))
}

#[exclusive(NAMED_REINDEX, manager = locks)]
async fn named_reindex(locks: &LockManager, source: String, gate: Option<&Gate>) -> Result<String, Error> {
    Gate::hold(gate).await;
    Ok(source)
}

#[exclusive(NIGHTLY, manager = locks)]
async fn nightly(locks: &LockManager) -> Result<(), Error> {
    assert!(locks.get(NIGHTLY).await?.is_some());
    Ok(())
}

#[tokio::test]
async fn templated_ids_lock_per_argument_value() {
    let (a, b) = two_managers();
    let gate = Gate::default();
    let (same_a, (same_b, other)) = tokio::join!(
        reindex(&a, "logs", 1, Some(&gate)),
        gate.while_held(async { (reindex(&b, "logs", 1, None).await, reindex(&b, "metrics", 1, None).await) }),
    );
    assert_eq!(same_a.unwrap(), "logs#1");
    match same_b {
        Err(Error::Acquisition(err)) => assert_eq!(err.lock_id, "tpl/reindex/logs:1"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(other.unwrap(), "metrics#1");

    // A value that makes an invalid id is a typed error, not a panic.
    assert!(matches!(reindex(&a, "has space", 1, None).await, Err(Error::InvalidLockId(_))));
}

#[tokio::test]
async fn typed_lock_names_lock_per_value() {
    let (a, b) = two_managers();
    let gate = Gate::default();
    let (first, (second, other)) = tokio::join!(
        named_reindex(&a, "logs".into(), Some(&gate)),
        gate.while_held(async {
            (named_reindex(&b, "logs".into(), None).await, named_reindex(&b, "metrics".into(), None).await)
        }),
    );
    assert_eq!(first.unwrap(), "logs");
    match second {
        Err(Error::Acquisition(err)) => assert_eq!(err.lock_id, "named/reindex/logs"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(other.unwrap(), "metrics");
    nightly(&a).await.unwrap();
    assert_eq!(NIGHTLY.name(), "NIGHTLY");
}

/// A user error type: the lock's errors convert into it.
#[derive(Debug)]
enum JobError {
    Lock(Error),
}

impl From<Error> for JobError {
    fn from(error: Error) -> Self {
        JobError::Lock(error)
    }
}

#[exclusive("generic/{label}", manager = locks)]
async fn generic_job<T: std::fmt::Display + Send + Sync>(locks: &LockManager, label: T) -> Result<String, JobError> {
    Ok(label.to_string())
}

#[tokio::test]
async fn generic_functions_and_custom_error_types() {
    let (manager, other) = two_managers();
    assert_eq!(generic_job(&manager, 7).await.unwrap(), "7");
    let lease = other.acquire("generic/held", LockOptions::default()).await.unwrap();
    assert!(matches!(generic_job(&manager, "held").await, Err(JobError::Lock(Error::Acquisition(_)))));
    lease.release().await.unwrap();
}
