//! Lease safety under faults on the real engine (issue 7): replies held back
//! or late (a proxy of the test's own between eslock and the engine), an
//! engine whose clock steps back and forth (libfaketime), and client
//! processes whose clock is an hour off.

use std::time::{Duration, SystemTime};

use eslock::store::{AcquireOutcome, AcquireRequest, LockStore};
use eslock::{ElasticsearchStore, Error, LockId, LockManager, LockOptions};
use eslock_test_support::engine::{SteppedClockNode, faketime_command};
use eslock_test_support::proxy::{FaultProxy, Mode};
use eslock_test_support::{client_for, engine_url, unique_name};

const GENEROUS: Duration = Duration::from_secs(10);

fn manager_at(url: &str, alias: &str) -> LockManager {
    eslock_test_support::manager_on(client_for(url), alias)
}

fn engine() -> String {
    engine_url().expect("ELASTICSEARCH_URL is set by scripts/test")
}

/// A manager whose requests go through a fault proxy, and one that talks to
/// the engine directly (another process), on the same lock index.
async fn proxied(alias: &str) -> (FaultProxy, LockManager, LockManager) {
    let proxy = FaultProxy::start(&engine()).await;
    let through_proxy = manager_at(proxy.url(), alias);
    let direct = manager_at(&engine(), alias);
    direct.setup().await.unwrap();
    through_proxy.setup().await.unwrap();
    (proxy, through_proxy, direct)
}

/// Issue 7.2: a grant whose reply the network delays past the trust deadline
/// is not a lease, and the lock is given back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_acquire_reply_is_not_a_lease() {
    let alias = unique_name("late-reply");
    let (proxy, late, direct) = proxied(&alias).await;
    // TTL 1 s: the trust deadline is 0.8 s after the request; the reply comes
    // at 0.9 s, within the attempt's own time limit (1 s).
    proxy.set_mode(Mode::DelayReplies(Duration::from_millis(900)));
    let outcome = late.acquire("job", LockOptions::default().ttl(Duration::from_secs(1))).await;
    // On a slow machine the attempt's own time limit may pass first: then a
    // typed backend error. Either way, no lease.
    assert!(matches!(outcome, Err(Error::LeaseLost(_) | Error::Backend(_))), "{outcome:?}");
    // Given back: free at once for another process.
    let lease = direct.acquire("job", LockOptions::default().wait(Duration::from_millis(600))).await.unwrap();
    assert!(lease.release().await.unwrap());
}

/// Until the lock is gone from the engine (the first attempt of a release
/// whose reply the proxy delays has been applied).
async fn until_released(direct: &LockManager, lock_id: &str) {
    let gone = async {
        while direct.get(lock_id).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(GENEROUS, gone).await.expect("the first attempt released the lock");
}

/// Issue 7.2: the client's own retry of a timed-out attempt finds the lock
/// granted to its token (a no-op). Reported as acquired although the first
/// attempt's trust deadline has passed, it would be a second holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_acquire_past_its_deadline_is_not_a_lease() {
    let alias = unique_name("retried-acquire");
    let proxy = FaultProxy::start(&engine()).await;
    let impatient = ElasticsearchStore::builder(client_for(proxy.url()))
        .index_name(&alias)
        .request_timeout(Duration::from_millis(400))
        .build();
    let impatient = LockManager::builder().store(impatient).build();
    impatient.setup().await.unwrap();
    let direct = manager_at(&engine(), &alias);
    proxy.set_mode(Mode::HoldReplies);
    let attempt = tokio::spawn({
        let impatient = impatient.clone();
        async move { impatient.acquire("job", LockOptions::default().ttl(Duration::from_secs(1))).await }
    });
    // The first attempt timed out and a retry is in flight; its reply comes
    // after the first attempt's deadline (0.8 s after it was sent).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    proxy.set_mode(Mode::Pass);
    let outcome = attempt.await.unwrap();
    assert!(matches!(outcome, Err(Error::LeaseLost(_))), "{outcome:?}");
    let lease = direct.acquire("job", LockOptions::default().wait(GENEROUS)).await.unwrap();
    assert!(lease.release().await.unwrap());
}

/// Issue 7.4: a caller that gives up while the acquire request is in flight
/// (its reply held back) leaves no lock behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acquire_cancelled_in_flight_leaves_no_lock() {
    let alias = unique_name("cancel-in-flight");
    let (proxy, cancelled, direct) = proxied(&alias).await;
    let ttl = LockOptions::default().ttl(Duration::from_secs(60));
    proxy.set_mode(Mode::HoldReplies);
    assert!(tokio::time::timeout(Duration::from_millis(300), cancelled.acquire("job", ttl.clone())).await.is_err());
    assert!(tokio::time::timeout(Duration::from_millis(300), cancelled.with_lock("job2", ttl, || async {})).await.is_err());
    proxy.set_mode(Mode::Pass);
    for id in ["job", "job2"] {
        let lease = direct.acquire(id, LockOptions::default().wait(GENEROUS)).await.expect("the abandoned grant was released");
        assert!(lease.release().await.unwrap());
    }
}

/// Issue 7.10: a release whose first reply was lost, retried, reports what
/// really happened: our own first attempt released the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_release_reports_the_truth() {
    let alias = unique_name("retried-release");
    let (proxy, manager, direct) = proxied(&alias).await;
    for force in [false, true] {
        let lease = manager.acquire("job", LockOptions::default()).await.unwrap();
        proxy.set_mode(Mode::DelayReplies(Duration::from_secs(3)));
        let release = tokio::spawn({
            let manager = manager.clone();
            async move { if force { manager.force_release("job").await } else { lease.release().await } }
        });
        // The engine has applied the release; its reply is lost on a reset
        // connection, and the client retries.
        until_released(&direct, "job").await;
        proxy.drop_held();
        proxy.set_mode(Mode::Pass);
        assert!(release.await.unwrap().unwrap(), "force={force}: our own first attempt released it");
    }
}

/// Issue 7.6: fencing tokens keep increasing when the engine's clock steps
/// back ten minutes and forward again, across release, force-release and
/// expiry take-over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_tokens_never_go_back_when_the_engine_clock_steps() {
    let node = tokio::task::spawn_blocking(SteppedClockNode::start).await.unwrap();
    let alias = unique_name("stepped");
    let (a, b) = (manager_at(node.url(), &alias), manager_at(node.url(), &alias));
    let mut last = 0;
    let mut next = |token: u64, what: &str| {
        assert!(token > last, "{what}: fencing token {token} after {last}");
        last = token;
    };
    let lease = a.acquire("job", LockOptions::default()).await.unwrap();
    next(lease.fencing_token(), "first");
    assert!(lease.release().await.unwrap());

    node.step(-600);
    let lease = b.acquire("job", LockOptions::default()).await.unwrap();
    next(lease.fencing_token(), "after release, clock 10 min back");
    assert!(a.force_release("job").await.unwrap());
    let lease2 = a.acquire("job", LockOptions::default().ttl(Duration::from_millis(500)).renew(false)).await.unwrap();
    next(lease2.fencing_token(), "after force-release");
    drop(lease);
    let taken = b.acquire("job", LockOptions::default().wait(GENEROUS)).await.unwrap();
    next(taken.fencing_token(), "after expiry take-over");

    // A step forward makes the held lease expire early (inherent to
    // leases): the take-over still gets a larger token.
    node.step(0);
    let again = a.acquire("job", LockOptions::default().wait(GENEROUS)).await.unwrap();
    next(again.fencing_token(), "after the clock stepped forward");
    node.step(-1200);
    assert!(again.release().await.unwrap());
    let last_lease = b.acquire("job", LockOptions::default()).await.unwrap();
    next(last_lease.fencing_token(), "clock 20 min back");
    drop(taken);
    assert!(last_lease.release().await.unwrap());
}

/// Runs the `skewed_client` check under a wall clock `offset` from ours.
fn skewed_client(offset: &str, args: &[&str]) {
    let output = faketime_command(offset, env!("CARGO_BIN_EXE_skewed_client")).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "client with clock {offset}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Issue 7.7: clients whose clock is an hour ahead or behind can neither
/// hide, steal nor delete a live lock, nor see an expired one as held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_client_clocks_decide_nothing() {
    let url = engine();
    let alias = unique_name("skewed");
    let manager = manager_at(&url, &alias);
    let live = manager.acquire("live", LockOptions::default().ttl(Duration::from_secs(120))).await.unwrap();
    let expired = manager.acquire("expired", LockOptions::default().ttl(Duration::from_millis(300)).renew(false)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = tokio::task::spawn_blocking({
        let (url, alias, token) = (url.clone(), alias.clone(), live.token().to_string());
        move || {
            for offset in ["+3600", "-3600"] {
                skewed_client(offset, &["held", &url, &alias, "live", &token]);
                skewed_client(offset, &["free", &url, &alias, "expired"]);
            }
        }
    });
    client.await.unwrap();
    assert!(!live.is_lost());
    drop(expired);

    // Setup's repair of an index with wrong mappings counts live locks on
    // the cluster's clock: a client an hour ahead must not delete it.
    let wrong = unique_name("skewed-repair");
    let direct = client_for(&url);
    let expires = humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(1800)).to_string();
    let create = direct
        .send(
            elasticsearch::http::Method::Put,
            &format!("/{wrong}-000001"),
            elasticsearch::http::headers::HeaderMap::new(),
            None::<&()>,
            Some(elasticsearch::http::request::JsonBody::new(serde_json::json!({
                "mappings": { "properties": { "token": { "type": "text" } } }
            }))),
            None,
        )
        .await
        .unwrap();
    assert!(create.status_code().is_success());
    let doc = serde_json::json!({ "token": "someone", "createdAt": expires, "expiresAt": expires });
    let put = direct
        .send(
            elasticsearch::http::Method::Put,
            &format!("/{wrong}-000001/_doc/held?refresh=true"),
            elasticsearch::http::headers::HeaderMap::new(),
            None::<&()>,
            Some(elasticsearch::http::request::JsonBody::new(doc)),
            None,
        )
        .await
        .unwrap();
    assert!(put.status_code().is_success());
    let repair = tokio::task::spawn_blocking(move || skewed_client("+3600", &["repair", &url, &wrong]));
    repair.await.unwrap();
    assert!(live.release().await.unwrap());
}

/// An operator's force-release whose reply is lost, retried by the client
/// after another holder took the lock, must not release that holder too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_force_release_never_releases_the_next_holder() {
    let alias = unique_name("retried-force");
    let (proxy, operator, direct) = proxied(&alias).await;
    let first = direct.acquire("job", LockOptions::default()).await.unwrap();
    proxy.set_mode(Mode::DelayReplies(Duration::from_secs(3)));
    let forced = tokio::spawn({
        let operator = operator.clone();
        async move { operator.force_release("job").await }
    });
    until_released(&direct, "job").await;
    let second = direct.acquire("job", LockOptions::default().wait(GENEROUS)).await.unwrap();
    // The reply is lost; the client retries the force-release.
    proxy.drop_held();
    proxy.set_mode(Mode::Pass);
    assert!(forced.await.unwrap().unwrap(), "the operator's own first attempt released the first holder");
    assert_eq!(direct.get("job").await.unwrap().map(|info| info.token), Some(second.token().to_string()));
    assert!(!second.is_lost());
    assert!(second.release().await.unwrap());
    drop(first);
}

/// A release whose reply is lost, retried after another process already
/// took the lock, still reports that its own first attempt released it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_release_is_true_even_after_another_acquisition() {
    let alias = unique_name("retried-release-taken");
    let (proxy, manager, direct) = proxied(&alias).await;
    let lease = manager.acquire("job", LockOptions::default()).await.unwrap();
    proxy.set_mode(Mode::HoldReplies);
    let release = tokio::spawn(lease.release());
    let taken = direct.acquire("job", LockOptions::default().wait(GENEROUS)).await.unwrap();
    proxy.drop_held();
    proxy.set_mode(Mode::Pass);
    assert!(release.await.unwrap().unwrap());
    assert!(taken.release().await.unwrap());
}

/// With several nodes, one that swallows requests (a blackhole) costs an
/// acquire attempt a third of the TTL (1 s here), not the whole request
/// timeout (4 s): the next node answers before the trust deadline (2.4 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_among_several_does_not_cost_the_lease() {
    let alias = unique_name("dead-node");
    let dead = FaultProxy::start(&engine()).await;
    dead.set_mode(Mode::Blackhole);
    let urls = format!("{},{}", dead.url(), engine());
    let manager = manager_at(&engine(), &alias);
    manager.setup().await.unwrap();
    // Setup and release wait the whole request timeout on the dead node.
    let across = ElasticsearchStore::builder(client_for(&urls))
        .index_name(&alias)
        .request_timeout(Duration::from_secs(4))
        .build();
    let across = LockManager::builder().store(across).build();
    for round in 0..2 {
        let started = std::time::Instant::now();
        let lease = across
            .acquire(format!("job-{round}"), LockOptions::default().ttl(Duration::from_secs(3)))
            .await
            .unwrap_or_else(|err| panic!("round {round}: {err} after {:?}", started.elapsed()));
        assert!(!lease.is_lost());
        drop(lease);
        // The scheduled release done first: running beside the next round's
        // acquire, it could push that acquire's retry onto the dead node again.
        across.flush().await;
    }
}

/// A store over the nodes at `urls` (requests go round robin, from the
/// first), with a 1 s time limit per request.
fn store_across(urls: &[&str], alias: &str) -> ElasticsearchStore {
    ElasticsearchStore::builder(client_for(&urls.join(",")))
        .index_name(alias)
        .request_timeout(Duration::from_secs(1))
        .build()
}

/// A store whose first request goes to a node that swallows it (held until
/// the proxy passes it on, as a partition that heals) and whose next ones go
/// to the engine: its first acquire attempt times out, and its retry is
/// answered while the first copy still waits to reach the engine.
fn store_behind_a_swallowing_node(swallowing: &FaultProxy, alias: &str) -> ElasticsearchStore {
    // Attempt 1 to the swallowing node, then the engine twice, so that only
    // one request of the test is swallowed.
    store_across(&[swallowing.url(), &engine(), &engine()], alias)
}

/// A fresh lock index with a manager on it (another process), and a node
/// that swallows every request for now.
async fn index_and_swallowing_node(prefix: &str) -> (String, LockManager, FaultProxy) {
    let alias = unique_name(prefix);
    let direct = manager_at(&engine(), &alias);
    direct.setup().await.unwrap();
    let swallowing = FaultProxy::start(&engine()).await;
    swallowing.set_mode(Mode::Blackhole);
    (alias, direct, swallowing)
}

/// Issue 7 and 10: a copy of an acquire request that reaches the engine
/// after the lease it asked for ended (the client retried the attempt
/// elsewhere) never takes the lock for a token nobody holds: not after the
/// lease was released, and not when the retry found the lock held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_copy_of_a_retried_acquire_never_takes_the_lock() {
    for held_by_another in [false, true] {
        let (alias, direct, swallowing) = index_and_swallowing_node("late-copy").await;
        let store = store_behind_a_swallowing_node(&swallowing, &alias);
        let lock_id = format!("job-{held_by_another}");
        let other = if held_by_another { Some(direct.acquire(&lock_id, LockOptions::default()).await.unwrap()) } else { None };
        let request = fresh_request(&lock_id);
        match (store.acquire(&request).await.unwrap(), other) {
            (AcquireOutcome::Acquired(_), None) => assert!(store.release(&request.lock_id, &request.token).await.unwrap()),
            (AcquireOutcome::Held(_), Some(other)) => assert!(other.release().await.unwrap()),
            (outcome, _) => panic!("held by another: {held_by_another}; {outcome:?}"),
        }
        deliver_the_swallowed_copy(&swallowing).await;
        assert_stays_free(&direct, &lock_id, &format!("held by another: {held_by_another}")).await;
    }
}

/// A force-release (here from another process) records the holder's token
/// as abandoned: it cannot know how that token was acquired, and a late
/// copy of its acquire must not bring the forced-out lease back to life
/// (its renewals would succeed, and it would never learn of the loss).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_release_refuses_a_late_copy_of_the_holders_acquire() {
    let (alias, direct, swallowing) = index_and_swallowing_node("late-copy-forced").await;
    let store = store_behind_a_swallowing_node(&swallowing, &alias);
    let request = fresh_request("job");
    assert!(matches!(store.acquire(&request).await.unwrap(), AcquireOutcome::Acquired(_)));
    assert!(direct.force_release("job").await.unwrap());
    deliver_the_swallowed_copy(&swallowing).await;
    let renewed = store.extend(&request.lock_id, &request.token, Duration::from_secs(30)).await.unwrap();
    assert!(renewed.is_none(), "the forced-out token was renewed: {renewed:?}");
    assert_stays_free(&direct, "job", "force-released").await;
}

/// A release that fails (every attempt reset) keeps the token's resent
/// mark: the release tried again still records the token, and the late
/// copy of its acquire is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_release_still_records_a_resent_token_when_tried_again() {
    let (alias, direct, swallowing) = index_and_swallowing_node("late-copy-failed").await;
    let flaky = FaultProxy::start(&engine()).await;
    // Request 1 to the swallowing node, every later one to `flaky`.
    let urls: Vec<&str> = std::iter::once(swallowing.url()).chain(std::iter::repeat_n(flaky.url(), 9)).collect();
    let store = store_across(&urls, &alias);
    let request = fresh_request("job");
    assert!(matches!(store.acquire(&request).await.unwrap(), AcquireOutcome::Acquired(_)));
    flaky.set_mode(Mode::Reset);
    assert!(store.release(&request.lock_id, &request.token).await.is_err(), "every attempt was reset");
    flaky.set_mode(Mode::Pass);
    assert!(store.release(&request.lock_id, &request.token).await.unwrap());
    deliver_the_swallowed_copy(&swallowing).await;
    assert_stays_free(&direct, "job", "release tried again").await;
}

/// A retried release reads its outcome from its own update's reply, not
/// from a later read: 16 releases by others right after it (pushing its id
/// out of `releasedBy`), or a replica behind on a bigger cluster, cannot
/// make its own success read as `false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_release_reads_its_outcome_from_its_own_reply() {
    let alias = unique_name("retried-release-own-reply");
    let direct = manager_at(&engine(), &alias);
    direct.setup().await.unwrap();
    let proxies = [FaultProxy::start(&engine()).await, FaultProxy::start(&engine()).await, FaultProxy::start(&engine()).await];
    let urls: Vec<&str> = proxies.iter().map(FaultProxy::url).collect();
    let store = store_across(&urls, &alias);
    let request = fresh_request("job");
    // Request 1 (proxy 0): the acquire. Request 2 (proxy 1): the release is
    // applied and its reply held back; the retry (proxy 2) is a no-op, and
    // anything after it (a read) goes to proxy 0, which swallows it.
    assert!(matches!(store.acquire(&request).await.unwrap(), AcquireOutcome::Acquired(_)));
    proxies[1].set_mode(Mode::HoldReplies);
    proxies[0].set_mode(Mode::Blackhole);
    let release = tokio::spawn(async move { store.release(&request.lock_id, &request.token).await });
    let started = std::time::Instant::now();
    while proxies[2].requests() == 0 {
        assert!(started.elapsed() < GENEROUS, "the release was never retried");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..16 {
        let lease = direct.acquire("job", LockOptions::default()).await.unwrap();
        assert!(lease.release().await.unwrap());
    }
    proxies[0].set_mode(Mode::Pass);
    assert!(release.await.unwrap().unwrap(), "our own first attempt released the lock");
}

fn fresh_request(lock_id: &str) -> AcquireRequest {
    AcquireRequest {
        lock_id: LockId::new(lock_id).unwrap(),
        token: uuid::Uuid::new_v4().to_string(),
        ttl: Duration::from_secs(30),
        metadata: serde_json::json!({}),
    }
}

/// Lets the swallowed first attempt reach the engine, and waits until it has.
async fn deliver_the_swallowed_copy(swallowing: &FaultProxy) {
    assert_eq!(swallowing.requests(), 0, "only the first attempt went to the swallowing node");
    swallowing.set_mode(Mode::Pass);
    let reached = async {
        while swallowing.requests() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(GENEROUS, reached).await.expect("the copy reached the engine");
}

/// The late copy was refused: the lock stays free (a grant would hold it
/// for its 30 s TTL), and another process takes it at once.
async fn assert_stays_free(direct: &LockManager, lock_id: &str, case: &str) {
    let free_until = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < free_until {
        let holder = direct.get(lock_id).await.unwrap();
        assert!(holder.is_none(), "{case}: the late copy took the lock: {holder:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lease = direct.acquire(lock_id, LockOptions::default()).await.expect("the lock is free");
    assert!(lease.release().await.unwrap());
}

/// Issue 10: an acquire queued behind writes in flight (to share their next
/// request) whose caller gives up leaves no lock: its token is abandoned at
/// once, and its write is never sent, neither alone nor in the batch of a
/// writer queued before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_acquire_cancelled_before_its_batch_leaves_no_lock() {
    let alias = unique_name("queued-cancel");
    let direct = manager_at(&engine(), &alias);
    direct.setup().await.unwrap();
    // Two nodes taken in turn, so that the two writes in flight wait on
    // different nodes and one slot can be freed while the other stays taken.
    let nodes = [FaultProxy::start(&engine()).await, FaultProxy::start(&engine()).await];
    let urls: Vec<&str> = nodes.iter().map(FaultProxy::url).collect();
    let manager = manager_at(&urls.join(","), &alias);
    manager.setup().await.unwrap();
    let before: Vec<usize> = nodes.iter().map(FaultProxy::requests).collect();
    // The lock requests since set-up, over both nodes.
    let sent = || nodes.iter().zip(&before).flat_map(|(node, &before)| node.request_lines().split_off(before)).collect::<Vec<_>>();
    let wait_for = async |what: &str, done: &dyn Fn(&[String]) -> bool| {
        let started = std::time::Instant::now();
        while !done(&sent()) {
            assert!(started.elapsed() < GENEROUS, "{what}: {:?}", sent());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let acquire = |id: &'static str| tokio::spawn({
        let manager = manager.clone();
        async move { manager.acquire(id, LockOptions::default()).await }
    });
    for node in &nodes {
        node.set_mode(Mode::HoldReplies);
    }
    // Two acquires in flight, one on each node (their replies held back),
    // take the store's two slots.
    let busy = [acquire("busy-0"), acquire("busy-1")];
    wait_for("the two acquires go out", &|sent| sent.len() == 2).await;
    for (node, &before) in nodes.iter().zip(&before) {
        assert!(node.request_lines()[before].contains("/_update/busy-"), "{:?}", sent());
    }
    // Two more queue for the next free slot: a patient one first, then one
    // whose caller gives up.
    let patient = acquire("patient");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tokio::time::timeout(Duration::from_millis(300), manager.acquire("cancelled", LockOptions::default())).await.is_err());
    // One slot comes back: the patient writer leads the next request, with
    // whatever still waits in the queue. It must go alone.
    nodes[0].set_mode(Mode::Pass);
    let patient_sent = |sent: &[String]| sent.iter().any(|line| line.contains("/_update/patient") || line.contains("/_bulk"));
    wait_for("the patient acquire goes out", &patient_sent).await;
    assert!(!sent().iter().any(|line| line.contains("/_bulk")), "the cancelled write went with the patient one: {:?}", sent());
    nodes[1].set_mode(Mode::Pass);
    for acquired in busy.into_iter().chain([patient]) {
        assert!(acquired.await.unwrap().unwrap().release().await.unwrap());
    }
    assert_stays_free(&direct, "cancelled", "cancelled while queued").await;
}

/// Issue 10: renewals travel in one `_bulk` request per manager. When the
/// batch is slow (its reply held back while the engine applies it) or never
/// arrives (a partition: the engine never sees it), every lease in it is lost
/// at its own trust deadline, before another process can hold the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_renewal_batch_loses_each_lease_before_another_holder_enters() {
    for mode in [Mode::HoldReplies, Mode::Blackhole] {
        let alias = unique_name("stuck-batch");
        let (proxy, held, direct) = proxied(&alias).await;
        let ttl = Duration::from_millis(1500);
        let mut leases = Vec::new();
        for i in 0..6 {
            leases.push(held.acquire(format!("batch-{i}"), LockOptions::default().ttl(ttl)).await.unwrap());
        }
        proxy.set_mode(mode);
        for lease in &leases {
            let taken = direct.acquire(lease.lock_id(), LockOptions::default().wait(GENEROUS * 3)).await.unwrap();
            assert!(lease.is_lost(), "{mode:?}: another process holds {} while its lease still trusts it", lease.lock_id());
            assert!(taken.fencing_token() > lease.fencing_token());
            assert!(taken.release().await.unwrap());
        }
        if mode == Mode::HoldReplies {
            let bulk_requests = proxy.request_lines().iter().filter(|line| line.contains("/_bulk")).count();
            assert!(bulk_requests > 0, "the renewals went out as _bulk requests");
        }
        proxy.set_mode(Mode::Reset);
        drop(leases);
        held.flush().await;
    }
}
