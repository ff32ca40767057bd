//! Hand-over and batched renewals on the real engine (`ELASTICSEARCH_URL`).
//! Written by an adversarial review: each test named `problemN_...` failed
//! on the first version of the code; the others probed the same area and held.

use std::time::Duration;

use elasticsearch::http::Method;
use eslock::store::{AcquireOutcome, AcquireRequest, HandOver, LockStore, Renewal};
use eslock::{ElasticsearchStore, Error, LockId, LockManager, LockOptions};
use eslock_test_support::proxy::{FaultProxy, Mode};
use eslock_test_support::{client_for, engine_client, engine_url, raw_request, unique_name};
use serde_json::json;

fn engine() -> String {
    engine_url().expect("ELASTICSEARCH_URL is set")
}

fn manager_at(url: &str, alias: &str) -> LockManager {
    eslock_test_support::manager_on(client_for(url), alias)
}

async fn store(alias: &str) -> ElasticsearchStore {
    let store = eslock_test_support::store_on(engine_client(), alias);
    store.setup().await.unwrap();
    store
}

fn request(id: &LockId, token: &str) -> AcquireRequest {
    AcquireRequest { lock_id: id.clone(), token: token.into(), ttl: Duration::from_secs(30), metadata: json!({}) }
}

// ---------------------------------------------------------------------------
// Problem 1 (painless HAND_OVER): the script grants `next_token` even when it
// is listed in `abandonedTokens`. ACQUIRE refuses abandoned tokens; HAND_OVER
// does not, so `Shared::hand_over`'s "abandon the new token on an unknown
// outcome" does not cover a hand-over request that arrives after the abandon.
// ---------------------------------------------------------------------------
#[tokio::test]
async fn problem1_engine_hand_over_grants_an_abandoned_token() {
    let store = store(&unique_name("review-abandon")).await;
    let id = LockId::new("review/abandoned-next").unwrap();
    assert!(matches!(store.acquire(&request(&id, "old")).await.unwrap(), AcquireOutcome::Acquired(_)));
    assert!(!store.abandon(&id, "next").await.unwrap());
    let outcome = store.hand_over(&id, "old", &request(&id, "next")).await.unwrap();
    assert!(
        !matches!(outcome, HandOver::HandedOver(_)),
        "problem 1: HAND_OVER granted an abandoned token: {outcome:?}"
    );
}

// ---------------------------------------------------------------------------
// Held: duplicates of one lock id in one `_bulk` (a stale token and the
// holder's), an unknown id and a held id: each item keeps its own outcome,
// in order.
// ---------------------------------------------------------------------------
#[tokio::test]
async fn bulk_duplicates_keep_their_own_outcomes() {
    let store = store(&unique_name("review-bulk")).await;
    let a = LockId::new("review/a").unwrap();
    let b = LockId::new("review/b").unwrap();
    let missing = LockId::new("review/missing").unwrap();
    assert!(matches!(store.acquire(&request(&a, "a1")).await.unwrap(), AcquireOutcome::Acquired(_)));
    assert!(matches!(store.acquire(&request(&b, "b1")).await.unwrap(), AcquireOutcome::Acquired(_)));
    let renewal = |id: &LockId, token: &str| Renewal { lock_id: id.clone(), token: token.into(), ttl: Duration::from_secs(40) };
    let outcomes = store
        .extend_many(&[renewal(&a, "stale"), renewal(&b, "b1"), renewal(&a, "a1"), renewal(&missing, "x"), renewal(&a, "stale")])
        .await
        .unwrap();
    let shape: Vec<Option<String>> = outcomes.into_iter().map(|o| o.unwrap().map(|info| info.token)).collect();
    assert_eq!(shape, vec![None, Some("b1".into()), Some("a1".into()), None, None]);
}

// ---------------------------------------------------------------------------
// Problem 2 on the engine: `tokio::time::timeout(.., lease.release())` gives
// up while the hand-over's reply is held back. The engine applied it: the
// lock belongs to a token that only the cancelled future knew. Lease::drop
// hands over again and finds NotHeld; nobody abandons the orphan token; the
// waiter (the only one who wants the lock) is refused for the TTL.
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problem2_engine_cancelled_release_orphans_the_handed_over_lock() {
    let alias = unique_name("review-cancel");
    let proxy = FaultProxy::start(&engine()).await;
    let manager = manager_at(proxy.url(), &alias);
    manager.setup().await.unwrap();
    let ttl = Duration::from_secs(20);
    let lease = manager.acquire("job", LockOptions::default().ttl(ttl)).await.unwrap();
    let waiter = tokio::spawn({
        let manager = manager.clone();
        async move { manager.acquire("job", LockOptions::default().ttl(ttl).wait(Duration::from_secs(60))).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set_mode(Mode::HoldReplies);
    let timed_out = tokio::time::timeout(Duration::from_millis(700), lease.release()).await;
    assert!(timed_out.is_err(), "the reply was held back");
    proxy.set_mode(Mode::Pass);
    tokio::time::timeout(Duration::from_secs(20), manager.flush()).await.expect("flush hung");
    let direct = manager_at(&engine(), &alias);
    let holder = direct.get("job").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), waiter).await;
    assert!(
        matches!(got, Ok(Ok(Ok(_)))),
        "problem 2: the waiter was refused for 5 s after a cancelled release; holder: {holder:?}"
    );
}

// ---------------------------------------------------------------------------
// Held: the Kibana preset. A Kibana-written (expired) document is taken over,
// renewed by `_bulk` on `.kibana_locks-000001` with Kibana's product origin,
// then handed over to a local waiter; Kibana's own acquire script is refused
// throughout and fencing tokens increase.
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kibana_preset_renews_in_bulk_and_hands_over() {
    let manager = LockManager::builder().store(ElasticsearchStore::builder(engine_client()).kibana_compatible().build()).build();
    manager.setup().await.unwrap();
    let client = engine_client();
    let id = unique_name("review-kibana");
    let path = format!("/.kibana_locks-000001/_doc/{id}?refresh=true");
    let doc = json!({ "token": "kibana-token", "metadata": { "kibana": true },
                      "createdAt": "2020-01-01T00:00:00.000Z", "expiresAt": "2020-01-01T00:00:30.000Z" });
    let (status, reply) = raw_request(&client, Method::Put, &path, Some(doc)).await;
    assert!(status == 200 || status == 201, "{reply}");
    let ttl = Duration::from_millis(1500);
    let lease = manager.acquire(&id, LockOptions::default().ttl(ttl)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!lease.is_lost(), "bulk renewals on the Kibana index kept failing: {:?}", lease.lost_reason());
    let kibana_acquire = json!({ "scripted_upsert": true, "upsert": {}, "script": { "lang": "painless", "params": { "token": "k2", "ttl": 30000, "metadata": {} }, "source": "
        long now = System.currentTimeMillis();
        if (ctx.op == 'create' || Instant.parse(ctx._source.expiresAt).toEpochMilli() < now || ctx._source.token == params.token) {
          ctx._source.token = params.token; ctx._source.expiresAt = Instant.ofEpochMilli(now + params.ttl).toString();
        } else { ctx.op = 'noop'; }" } });
    let update = format!("/.kibana_locks-000001/_update/{id}");
    let (_, reply) = raw_request(&client, Method::Post, &update, Some(kibana_acquire.clone())).await;
    assert_eq!(reply["result"], "noop", "Kibana took a lock eslock holds: {reply}");
    let waiter = tokio::spawn({
        let manager = manager.clone();
        let id = id.clone();
        async move { manager.acquire(&id, LockOptions::default().ttl(ttl).wait(Duration::from_secs(10))).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = lease.fencing_token();
    assert!(lease.release().await.unwrap());
    let next = waiter.await.unwrap().unwrap();
    assert!(next.fencing_token() > first);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!next.is_lost(), "{:?}", next.lost_reason());
    let (_, reply) = raw_request(&client, Method::Post, &update, Some(kibana_acquire)).await;
    assert_eq!(reply["result"], "noop", "Kibana took a handed-over lock: {reply}");
    assert!(next.release().await.unwrap());
    let refused = manager.get(&id).await.unwrap();
    assert_eq!(refused, None);
    let _ = Error::NotConfigured;
}

// ---------------------------------------------------------------------------
// Held: a duplicated hand-over request (a transport retry whose first copy
// was applied) reports the hand-over, not NotHeld, so release() stays true.
// ---------------------------------------------------------------------------
#[tokio::test]
async fn duplicated_hand_over_reports_its_own_success() {
    let store = store(&unique_name("review-dup")).await;
    let id = LockId::new("review/dup").unwrap();
    assert!(matches!(store.acquire(&request(&id, "old")).await.unwrap(), AcquireOutcome::Acquired(_)));
    let next = request(&id, "next");
    let first = store.hand_over(&id, "old", &next).await.unwrap();
    let again = store.hand_over(&id, "old", &next).await.unwrap();
    let fencing = |o: &HandOver| match o {
        HandOver::HandedOver(info) => info.fencing_token,
        other => panic!("{other:?}"),
    };
    assert_eq!(fencing(&first), fencing(&again));
}

// ---------------------------------------------------------------------------
// Held: a hand-over whose reply comes after the waiter's trust deadline is
// not a lease; the claim is given back and the waiter then gets a fresh
// lease with a larger fencing token; nobody else held it meanwhile.
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_hand_over_reply_is_not_a_lease() {
    let alias = unique_name("review-late");
    let proxy = FaultProxy::start(&engine()).await;
    let manager = manager_at(proxy.url(), &alias);
    manager.setup().await.unwrap();
    let lease = manager.acquire("job", LockOptions::default().ttl(Duration::from_secs(10))).await.unwrap();
    let waiter = tokio::spawn({
        let manager = manager.clone();
        async move { manager.acquire("job", LockOptions::default().ttl(Duration::from_secs(1)).wait(Duration::from_secs(20))).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set_mode(Mode::DelayReplies(Duration::from_millis(900)));
    let before = lease.fencing_token();
    let released = lease.release().await;
    proxy.set_mode(Mode::Pass);
    assert!(released.unwrap());
    let got = tokio::time::timeout(Duration::from_secs(15), waiter).await.expect("waiter hung").unwrap().unwrap();
    assert!(got.fencing_token() > before);
    assert!(!got.is_lost());
    assert!(got.release().await.unwrap());
}
