//! Hostile replies: for every kind of broken answer an engine (or a proxy in
//! front of it) can give, every store operation and the manager's acquire
//! paths return `Error::Backend` naming the operation, in bounded time,
//! without a panic. The replies come from `eslock_test_support::fake::FakeEngine`.

use std::fmt::Debug;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use eslock::store::{AcquireRequest, LockStore, Renewal, StoreFuture};
use eslock::{ElasticsearchStore, Error, LockId, LockInfo, LockManager, LockOptions, Operation, Result};
use eslock_test_support::client_for;
use eslock_test_support::fake::{FakeEngine, Reply};
use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use serde_json::json;

/// Longer than any bounded failure can take (four attempts of a 2 s request
/// timeout plus backoff is about 10 s); reaching it means a hang.
const HANG: Duration = Duration::from_secs(30);

/// The request timeout of the stores that face a slow reply.
const SHORT_TIMEOUT: Duration = Duration::from_millis(500);

/// The manager's request timeout, as a service would configure it.
const MANAGER_TIMEOUT: Duration = Duration::from_secs(2);

/// An Elasticsearch store whose setup has (supposedly) already run, so that
/// the manager's acquire paths reach the hostile reply themselves rather
/// than failing in the lazy setup first.
struct AlreadySetUp(ElasticsearchStore);

impl LockStore for AlreadySetUp {
    fn setup(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    fn acquire<'a>(&'a self, request: &'a AcquireRequest) -> StoreFuture<'a, eslock::store::AcquireOutcome> {
        self.0.acquire(request)
    }
    fn extend<'a>(&'a self, lock_id: &'a LockId, token: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockInfo>> {
        self.0.extend(lock_id, token, ttl)
    }
    fn release<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
        self.0.release(lock_id, token)
    }
    fn abandon<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
        self.0.abandon(lock_id, token)
    }
    fn get<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, Option<LockInfo>> {
        self.0.get(lock_id)
    }
    fn list(&self) -> StoreFuture<'_, Vec<LockInfo>> {
        self.0.list()
    }
    fn force_release<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, bool> {
        self.0.force_release(lock_id)
    }
}

/// One call: a name for the report, the operation its error must name, and
/// the call itself, its value (which no garbage reply should produce) shown
/// as text.
type Call<'a> = (&'static str, Operation, BoxFuture<'a, Result<String>>);

fn call<'a, T: Debug>(name: &'static str, operation: Operation, future: impl Future<Output = Result<T>> + Send + 'a) -> Call<'a> {
    (name, operation, future.map(|outcome| outcome.map(|value| format!("{value:?}"))).boxed())
}

/// Runs every call at once against a fake engine answering `reply`, and
/// fails listing each call that did not end in time with the right backend
/// error (a panic, a hang, `Ok`, another error or another operation).
async fn every_operation_fails_cleanly(reply: Reply) {
    let slow = reply.is_slow();
    let fake = FakeEngine::start(reply).await;
    let client = || client_for(fake.url());
    let store = match slow {
        true => ElasticsearchStore::builder(client()).request_timeout(SHORT_TIMEOUT).build(),
        false => ElasticsearchStore::new(client()),
    };
    // A manager per call: calls on one manager would wait for each other's
    // lazy setup.
    let patient = || ElasticsearchStore::builder(client()).request_timeout(MANAGER_TIMEOUT).build();
    let manager = || LockManager::builder().store(patient()).build();
    let set_up = || LockManager::builder().store(AlreadySetUp(patient())).build();
    let managers = [manager(), manager(), set_up(), set_up()];

    let id = LockId::new("hostile/reply").unwrap();
    let request = AcquireRequest { lock_id: id.clone(), token: "t-1".into(), ttl: Duration::from_secs(30), metadata: json!({}) };
    let renewals = [Renewal { lock_id: id.clone(), token: "t-1".into(), ttl: Duration::from_secs(30) }];
    let next = AcquireRequest { token: "t-2".into(), ..request.clone() };
    let options = || LockOptions::default().metadata(json!({ "by": "hostile_replies" }));
    let work = || async { panic!("work must not run without the lock") };
    let calls: Vec<Call<'_>> = vec![
        call("store.setup", Operation::Setup, store.setup()),
        call("store.acquire", Operation::Acquire, store.acquire(&request)),
        call("store.extend", Operation::Extend, store.extend(&id, "t-1", Duration::from_secs(30))),
        call("store.extend_many", Operation::Extend, store.extend_many(&renewals)),
        call("store.hand_over", Operation::Release, store.hand_over(&id, "t-1", &next)),
        call("store.release", Operation::Release, store.release(&id, "t-1")),
        call("store.get", Operation::Get, store.get(&id)),
        call("store.list", Operation::List, store.list()),
        call("store.force_release", Operation::ForceRelease, store.force_release(&id)),
        // The lazy setup meets the reply first.
        call("manager.acquire", Operation::Setup, managers[0].acquire("a", options())),
        call("manager.with_lock", Operation::Setup, managers[1].with_lock("a", options(), work)),
        call("set-up manager.acquire", Operation::Acquire, managers[2].acquire("a", options())),
        call("set-up manager.with_lock", Operation::Acquire, managers[3].with_lock("a", options(), work)),
    ];

    let outcomes = join_all(calls.into_iter().map(|(name, operation, future)| async move {
        let started = tokio::time::Instant::now();
        let outcome = tokio::time::timeout(HANG, AssertUnwindSafe(future).catch_unwind()).await;
        let problem = match outcome {
            Err(_) => Some(format!("no answer after {HANG:?} (a hang)")),
            Ok(Err(panic)) => Some(format!("panicked: {}", panic_message(&*panic))),
            Ok(Ok(Err(Error::Backend(err)))) if err.operation() == operation => {
                // Formatting must not panic either (multi-byte text cut short).
                let _ = (err.to_string(), format!("{err:?}"));
                None
            }
            Ok(Ok(Err(other))) => Some(format!("expected a backend error of {operation}, got {other:?}")),
            Ok(Ok(Ok(value))) => Some(format!("returned Ok({value}) for a garbage reply")),
        };
        let report = format!("{name}: {} (after {:.1?})", problem.as_deref().unwrap_or("failed cleanly"), started.elapsed());
        // Every call's time is shown when the test fails.
        eprintln!("{report}");
        problem.map(|_| report)
    }))
    .await;
    let problems: Vec<String> = outcomes.into_iter().flatten().collect();
    assert!(problems.is_empty(), "{} of the calls misbehaved:\n  {}", problems.len(), problems.join("\n  "));
    assert!(fake.requests() > 0, "the calls reached the fake engine");
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
        .unwrap_or_else(|| "(not a string)".into())
}

/// One test per reply kind, so that each failure names its reply.
macro_rules! hostile_reply_tests {
    ($($name:ident => $reply:expr,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                every_operation_fails_cleanly($reply).await;
            }
        )*
    };
}

hostile_reply_tests! {
    malformed_json => Reply::malformed_json(),
    truncated_json => Reply::truncated_json(),
    not_json => Reply::not_json(),
    html_error_page => Reply::html_error_page(),
    huge_json => Reply::huge_json(20 * 1024 * 1024),
    non_utf8 => Reply::non_utf8(),
    multi_byte_text => Reply::multi_byte_text(),
    multi_byte_json => Reply::multi_byte_json(),
    reply_never_comes => Reply::never(),
    reply_trickles => Reply::trickle(),
    empty_object => Reply::json(200, json!({})),
    empty_array => Reply::json(200, json!([])),
    result_of_wrong_type => Reply::json(200, json!({ "result": 5 })),
    // An update reply without the `get` that every update asks for.
    result_without_source => Reply::json(200, json!({ "result": "updated" })),
    connection_closed => Reply::close(),
    // A proxy that routes nowhere (a wrong base path) answering JSON 404s:
    // not the engine's "no such document", so not "no lock".
    not_found_from_a_proxy => Reply::json(404, json!({ "message": "Not Found" })),
    // A broken search that serves the same non-empty page forever: listing
    // must end anyway.
    endless_pages => Reply::json(200, json!({
        "_scroll_id": "s1",
        "hits": { "hits": [{ "_id": "a", "_source": { "token": "t", "createdAt": 1, "expiresAt": 2 } }] }
    })),
}
