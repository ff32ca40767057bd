//! What only the Elasticsearch store does, on the real engine: index setup
//! and its repair rules, Kibana's document format, typed backend errors. The
//! behaviour every store shares is the conformance suite
//! (`conformance_elasticsearch.rs`).

use std::time::{Duration, SystemTime};

use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::HeaderMap;
use eslock::{ElasticsearchStore, Error, LockManager, LockOptions, Operation};
use eslock_test_support::{engine_client, unique_name};
use futures::future::join_all;
use serde_json::json;

use eslock_test_support::raw_request as raw;

fn manager_on(alias: &str) -> LockManager {
    eslock_test_support::manager_on(engine_client(), alias)
}

fn iso(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

#[tokio::test]
async fn setup_creates_hidden_single_shard_index_from_templates() {
    let alias = unique_name("setup");
    let manager = manager_on(&alias);
    manager.setup().await.unwrap();
    let index = format!("{alias}-000001");
    assert_eq!(manager.index(), Some(index.as_str()));

    let client = engine_client();
    let (_, settings) = raw(&client, Method::Get, &format!("/{index}/_settings"), None).await;
    let settings = &settings[&index]["settings"]["index"];
    assert_eq!(settings["number_of_shards"], "1");
    assert_eq!(settings["auto_expand_replicas"], "0-1");
    assert_eq!(settings["hidden"], "true");

    let (_, mapping) = raw(&client, Method::Get, &format!("/{index}/_mapping"), None).await;
    let mappings = &mapping[&index]["mappings"];
    assert_eq!(mappings["dynamic"], "false");
    let properties = &mappings["properties"];
    assert_eq!(properties["token"]["type"], "keyword");
    assert_eq!(properties["createdAt"]["type"], "date");
    assert_eq!(properties["expiresAt"]["type"], "date");
    assert_eq!(properties["metadata"]["enabled"], false);
    assert_eq!(properties["fencingToken"]["type"], "long");

    let (status, aliases) = raw(&client, Method::Get, &format!("/_alias/{alias}"), None).await;
    assert_eq!(status, 200);
    assert!(aliases[&index]["aliases"][&alias].is_object());
    let (status, _) = raw(&client, Method::Get, &format!("/_component_template/{alias}-component"), None).await;
    assert_eq!(status, 200);
    let (status, template) = raw(&client, Method::Get, &format!("/_index_template/{alias}-index-template"), None).await;
    assert_eq!(status, 200);
    assert_eq!(template["index_templates"][0]["index_template"]["composed_of"][0], format!("{alias}-component"));
}

#[tokio::test]
async fn setup_is_idempotent_in_parallel_and_in_sequence() {
    let alias = unique_name("parallel");
    let results = join_all((0..8).map(|_| {
        let manager = manager_on(&alias);
        async move { manager.setup().await }
    }))
    .await;
    for result in results {
        result.unwrap();
    }
    let manager = manager_on(&alias);
    let lease = manager.acquire("kept", LockOptions::default()).await.unwrap();
    manager.setup().await.unwrap();
    manager_on(&alias).setup().await.unwrap();
    assert_eq!(manager.get("kept").await.unwrap().unwrap().token, lease.token());
}

/// An index someone created by hand, with `token` as text (what dynamic
/// mapping would make of it).
async fn create_wrong_index(client: &Elasticsearch, index: &str, expires_at: SystemTime) {
    let body = json!({
        "settings": { "number_of_shards": 1, "number_of_replicas": 0 },
        "mappings": { "properties": { "token": { "type": "text" }, "expiresAt": { "type": "date" } } }
    });
    assert_eq!(raw(client, Method::Put, &format!("/{index}"), Some(body)).await.0, 200);
    let doc = json!({
        "token": "someone", "metadata": { "who": "hand-made" },
        "createdAt": iso(SystemTime::now()), "expiresAt": iso(expires_at)
    });
    let (status, _) = raw(client, Method::Put, &format!("/{index}/_doc/held"), Some(doc)).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn wrong_mappings_with_a_live_lock_are_reported_not_repaired() {
    let alias = unique_name("wrong-live");
    let index = format!("{alias}-000001");
    let client = engine_client();
    create_wrong_index(&client, &index, SystemTime::now() + Duration::from_secs(3600)).await;

    let err = manager_on(&alias).setup().await.unwrap_err();
    match &err {
        Error::IncompatibleIndex(eslock::IncompatibleIndexError { index: reported, problems, .. }) => {
            assert_eq!(reported, &index);
            assert!(problems.contains("`token` is text"), "{problems}");
        }
        other => panic!("expected IncompatibleIndex, got {other:?}"),
    }
    assert!(err.to_string().contains("live lock"), "{err}");
    // The live lock is still there.
    let (status, doc) = raw(&client, Method::Get, &format!("/{index}/_doc/held"), None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["_source"]["token"], "someone");
}

#[tokio::test]
async fn wrong_mappings_without_live_locks_are_repaired() {
    let alias = unique_name("wrong-expired");
    let index = format!("{alias}-000001");
    let client = engine_client();
    create_wrong_index(&client, &index, SystemTime::now() - Duration::from_secs(60)).await;

    let manager = manager_on(&alias);
    manager.setup().await.unwrap();
    let (_, mapping) = raw(&client, Method::Get, &format!("/{index}/_mapping"), None).await;
    assert_eq!(mapping[&index]["mappings"]["properties"]["token"]["type"], "keyword");
    let lease = manager.acquire("held", LockOptions::default()).await.unwrap();
    assert!(lease.release().await.unwrap());
}

#[tokio::test]
async fn lock_ids_with_path_characters_round_trip() {
    let alias = unique_name("ids");
    let manager = manager_on(&alias);
    let lock_id = "reindex/logs:2024/part-1";
    let lease = manager.acquire(lock_id, LockOptions::default()).await.unwrap();
    let (status, doc) = raw(&engine_client(), Method::Get, &format!("/{alias}-000001/_doc/reindex%2Flogs%3A2024%2Fpart-1"), None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["_id"], lock_id);
    assert_eq!(manager.list().await.unwrap()[0].lock_id, lock_id);
    assert!(lease.release().await.unwrap());
}

#[tokio::test]
async fn engine_errors_are_typed_with_operation_and_lock_id() {
    let alias = unique_name("closed");
    let manager = manager_on(&alias);
    manager.setup().await.unwrap();
    // A closed index refuses writes with a non-transient error.
    let (status, _) = raw(&engine_client(), Method::Post, &format!("/{alias}-000001/_close"), None).await;
    assert_eq!(status, 200);

    let err = manager.acquire("closed-lock", LockOptions::default()).await.unwrap_err();
    let Error::Backend(backend) = &err else { panic!("{err:?}") };
    assert_eq!(backend.operation(), Operation::Acquire);
    assert_eq!(backend.lock_id().map(|id| id.as_str()), Some("closed-lock"));
    assert_eq!(backend.status(), Some(400));
    assert!(err.to_string().contains("acquire of lock \"closed-lock\""), "{err}");
}

#[tokio::test]
async fn unreachable_engine_is_a_backend_error() {
    let client = eslock_test_support::client_for("http://127.0.0.1:9");
    let manager = LockManager::elasticsearch(client);
    let err = manager.acquire("anything", LockOptions::default()).await.unwrap_err();
    let Error::Backend(backend) = &err else { panic!("{err:?}") };
    assert_eq!(backend.operation(), Operation::Setup);
    assert!(backend.reason().contains("attempts"), "{err}");
}

#[tokio::test]
async fn malformed_documents_are_errors_not_panics() {
    let alias = unique_name("malformed");
    let manager = manager_on(&alias);
    manager.setup().await.unwrap();
    let doc = json!({ "token": 42, "expiresAt": "2099-01-01T00:00:00Z" });
    let (status, _) = raw(&engine_client(), Method::Put, &format!("/{alias}-000001/_doc/odd"), Some(doc)).await;
    assert_eq!(status, 201);
    let err = manager.get("odd").await.unwrap_err();
    let Error::Backend(backend) = &err else { panic!("{err:?}") };
    assert_eq!(backend.operation(), Operation::Get);
    assert!(backend.reason().contains("malformed"), "{err}");
}

/// Issue 7.5: setups racing to repair an index with wrong mappings, each
/// followed at once by an acquisition, never delete an index that holds a
/// lock another setup's process has taken meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repairs_never_drop_a_live_lock() {
    for round in 0..3 {
        let alias = unique_name("repair-race");
        let index = format!("{alias}-000001");
        create_wrong_index(&engine_client(), &index, SystemTime::now() - Duration::from_secs(60)).await;
        let processes = join_all((0..6).map(|process| {
            let alias = alias.clone();
            async move {
                let manager = manager_on(&alias);
                manager.setup().await.unwrap();
                let id = format!("process-{process}");
                let lease = manager.acquire(&id, LockOptions::default().ttl(Duration::from_secs(60))).await.unwrap();
                (manager, id, lease)
            }
        }))
        .await;
        let observer = manager_on(&alias);
        for (_, id, lease) in &processes {
            let held = observer.get(id).await.unwrap();
            assert_eq!(held.map(|info| info.token), Some(lease.token().to_string()), "round {round}: lock {id} was dropped by a repair");
            assert!(!lease.is_lost());
        }
        for (_, _, lease) in processes {
            assert!(lease.release().await.unwrap());
        }
    }
}

/// Issue 7.5, the interleaving that dropped a lock: repairer B has counted
/// no live lock (its replies are slow: it is paused after counting) when
/// process A repairs the index itself and takes a lock in the new index; B
/// must not then delete the index A's lock lives in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_repairer_cannot_delete_a_newer_index() {
    use eslock_test_support::proxy::{FaultProxy, Mode};
    let alias = unique_name("repair-paused");
    let index = format!("{alias}-000001");
    create_wrong_index(&engine_client(), &index, SystemTime::now() - Duration::from_secs(60)).await;
    let proxy = FaultProxy::start(&eslock_test_support::engine_url().unwrap()).await;
    proxy.set_mode(Mode::DelayReplies(Duration::from_millis(700)));
    let slow = eslock_test_support::manager_on(eslock_test_support::client_for(proxy.url()), &alias);
    let repairer_b = tokio::spawn(async move { slow.setup().await });
    // B's count has reached the engine; its reply is on the way, late.
    let counted = async {
        while !proxy.request_lines().iter().any(|line| line.contains("/_search")) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), counted).await.expect("B counts live locks");
    let process_a = manager_on(&alias);
    process_a.setup().await.unwrap();
    let lease = process_a.acquire("a-lock", LockOptions::default().ttl(Duration::from_secs(60))).await.unwrap();
    repairer_b.await.unwrap().unwrap();
    let held = manager_on(&alias).get("a-lock").await.unwrap();
    assert_eq!(held.map(|info| info.token), Some(lease.token().to_string()), "B's repair dropped A's live lock");
    assert!(lease.release().await.unwrap());
}

/// Issue 7.5: a setup whose index another process's repair deletes between
/// the setup's create and its check of the mappings (the check finds no
/// index) creates the index again instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_survives_its_index_deleted_under_it() {
    use eslock_test_support::proxy::{FaultProxy, Mode};
    let alias = unique_name("setup-deleted");
    let index = format!("{alias}-000001");
    let proxy = FaultProxy::start(&eslock_test_support::engine_url().unwrap()).await;
    proxy.set_mode(Mode::DelayReplies(Duration::from_millis(700)));
    let slow = eslock_test_support::manager_on(eslock_test_support::client_for(proxy.url()), &alias);
    let setup = tokio::spawn(async move { slow.setup().await });
    // The create has reached the engine; its reply is on the way, late.
    let create = format!("PUT /{index}");
    let created = async {
        while !proxy.request_lines().iter().any(|line| line == &create)
            || raw(&engine_client(), Method::Head, &format!("/{index}"), None).await.0 != 200
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), created).await.expect("setup creates the index");
    let (status, reply) = raw(&engine_client(), Method::Delete, &format!("/{index}"), None).await;
    assert_eq!(status, 200, "{reply}");
    let mapping = format!("GET /{index}/_mapping");
    assert!(!proxy.request_lines().contains(&mapping), "deleted before setup checked the mappings: {:?}", proxy.request_lines());
    setup.await.unwrap().expect("setup creates the index again");
    let creates = proxy.request_lines().iter().filter(|line| **line == create).count();
    assert_eq!(creates, 2, "{:?}", proxy.request_lines());
    let lease = manager_on(&alias).acquire("after", LockOptions::default()).await.unwrap();
    assert!(lease.release().await.unwrap());
}

/// Issue 7.5: repair counts live locks among every document, not the first
/// 10,000 a search returns.
#[tokio::test]
async fn repair_sees_a_live_lock_behind_ten_thousand_expired_ones() {
    let alias = unique_name("repair-many");
    let index = format!("{alias}-000001");
    let client = engine_client();
    create_wrong_index(&client, &index, SystemTime::now() - Duration::from_secs(60)).await;
    let expired = iso(SystemTime::now() - Duration::from_secs(60));
    let live = iso(SystemTime::now() + Duration::from_secs(3600));
    let mut bulk = String::new();
    for n in 0..10_050 {
        let expires = if n == 10_049 { &live } else { &expired };
        bulk.push_str(&format!("{{\"index\":{{\"_id\":\"lock-{n}\"}}}}\n"));
        bulk.push_str(&json!({ "token": format!("t{n}"), "createdAt": expired, "expiresAt": expires }).to_string());
        bulk.push('\n');
    }
    let response = client
        .send(Method::Post, &format!("/{index}/_bulk?refresh=true"), HeaderMap::new(), None::<&()>, Some(bulk), None)
        .await
        .unwrap();
    assert_eq!(response.status_code().as_u16(), 200);

    let err = manager_on(&alias).setup().await.unwrap_err();
    assert!(matches!(&err, Error::IncompatibleIndex(_)) && err.to_string().contains("1 live lock"), "{err}");
    let (status, doc) = raw(&client, Method::Get, &format!("/{index}/_doc/lock-10049"), None).await;
    assert_eq!(status, 200, "the live lock survives");
    assert_eq!(doc["_source"]["token"], "t10049");
}

/// Issue 7.9: one unreadable document neither breaks `list()` nor other
/// ids; `get` reports it as a typed error and `force_release` removes it.
#[tokio::test]
async fn an_unreadable_document_breaks_nothing_else() {
    let alias = unique_name("unreadable");
    let manager = manager_on(&alias);
    let other = manager.acquire("healthy", LockOptions::default()).await.unwrap();
    let odd = json!({ "token": 42, "createdAt": iso(SystemTime::now()), "expiresAt": "2099-01-01T00:00:00Z" });
    let (status, _) = raw(&engine_client(), Method::Put, &format!("/{alias}-000001/_doc/odd"), Some(odd)).await;
    assert_eq!(status, 201);

    let listed = manager.list().await.expect("list skips what it cannot read");
    assert_eq!(listed.iter().map(|lock| lock.lock_id.as_str()).collect::<Vec<_>>(), ["healthy"]);
    let second = manager.acquire("healthy-2", LockOptions::default()).await.unwrap();
    assert!(matches!(manager.get("odd").await, Err(Error::Backend(_))));
    assert!(manager.force_release("odd").await.unwrap());
    let taken = manager.acquire("odd", LockOptions::default()).await.unwrap();
    assert_eq!(manager.get("odd").await.unwrap().unwrap().token, taken.token());
    for lease in [other, second, taken] {
        assert!(lease.release().await.unwrap());
    }
}

/// Issue 7.9: the longest accepted TTL is stored and read back.
#[tokio::test]
async fn the_longest_accepted_ttl_round_trips() {
    let alias = unique_name("max-ttl");
    let manager = manager_on(&alias);
    let lease = manager.acquire("long", LockOptions::default().ttl(eslock::rules::MAX_TTL).renew(false)).await.unwrap();
    let info = manager.get("long").await.unwrap().expect("readable");
    assert!(info.expires_at > SystemTime::now() + Duration::from_secs(99 * 365 * 86_400));
    assert_eq!(manager.list().await.unwrap().len(), 1);
    assert!(lease.release().await.unwrap());
}

/// No lock operation draws a deprecation `Warning` header, in either index
/// layout: warnings announce what the engine's next major version refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_operations_draw_no_deprecation_warnings() {
    use eslock_test_support::proxy::FaultProxy;
    let proxy = FaultProxy::start(&eslock_test_support::engine_url().unwrap()).await;
    let client = || eslock_test_support::client_for(proxy.url());
    let default_layout = eslock_test_support::manager_on(client(), &unique_name("warnings"));
    let kibana = LockManager::builder().store(ElasticsearchStore::builder(client()).kibana_compatible().build()).build();
    for manager in [default_layout, kibana] {
        let id = unique_name("warn");
        manager.setup().await.unwrap();
        let lease = manager.acquire(&id, LockOptions::default()).await.unwrap();
        assert!(matches!(manager.acquire(&id, LockOptions::default()).await, Err(Error::Acquisition(_))));
        assert!(lease.extend(Duration::from_secs(20)).await.unwrap());
        assert!(manager.get(&id).await.unwrap().is_some());
        assert!(!manager.list().await.unwrap().is_empty());
        assert!(lease.release().await.unwrap());
        manager.with_lock(&id, LockOptions::default(), || async {}).await.unwrap();
        let _held = manager.acquire(&id, LockOptions::default()).await.unwrap();
        assert!(manager.force_release(&id).await.unwrap());
    }
    assert!(proxy.requests() > 10, "the operations went through the proxy");
    assert_eq!(proxy.warnings(), Vec::<String>::new(), "requests: {:?}", proxy.request_lines());
}

/// After an upgrade re-index, the concrete index name can be an alias of
/// another index: eslock works through it, and never repairs (deletes) the
/// index behind it, whatever its mappings.
#[tokio::test]
async fn a_lock_index_name_that_is_an_alias_is_worked_through() {
    let client = engine_client();
    for correct in [true, false] {
        let alias = unique_name("aliased");
        let target = format!("{alias}-reindexed");
        let token_type = if correct { "keyword" } else { "text" };
        let body = json!({
            "settings": { "number_of_shards": 1, "number_of_replicas": 0, "hidden": true },
            "mappings": { "dynamic": false, "properties": {
                "token": { "type": token_type }, "metadata": { "type": "object", "enabled": false },
                "createdAt": { "type": "date" }, "expiresAt": { "type": "date" } } },
            "aliases": { format!("{alias}-000001"): { "is_hidden": true }, alias.clone(): { "is_hidden": true } }
        });
        assert_eq!(raw(&client, Method::Put, &format!("/{target}"), Some(body)).await.0, 200);
        let manager = manager_on(&alias);
        if correct {
            let lease = manager.acquire("job", LockOptions::default()).await.unwrap();
            assert_eq!(manager.list().await.unwrap().len(), 1);
            assert!(lease.release().await.unwrap());
        } else {
            let err = manager.setup().await.unwrap_err();
            assert!(matches!(&err, Error::IncompatibleIndex(_)) && err.to_string().contains("alias"), "{err}");
        }
        let (status, settings) = raw(&client, Method::Get, &format!("/{target}/_settings"), None).await;
        assert_eq!(status, 200, "the alias's target is never deleted");
        assert!(settings[&target]["settings"]["index"]["blocks"]["write"] != "true", "left read-only: {settings}");
    }
}

/// Issue 10: concurrent acquires and releases of one store share `_bulk`
/// requests, and each keeps its own outcome: free ids are granted, ids held
/// by another process are refused, of two acquires of one id at once only
/// one wins, and every release reports its own lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lock_writes_share_requests_and_keep_their_own_outcomes() {
    use eslock_test_support::proxy::FaultProxy;
    let alias = unique_name("coalesced");
    let proxy = FaultProxy::start(&eslock_test_support::required_engine_url()).await;
    let manager = eslock_test_support::manager_on(eslock_test_support::client_for(proxy.url()), &alias);
    manager.setup().await.unwrap();
    let other = manager_on(&alias);
    let mut held_elsewhere = Vec::new();
    for i in (0..48).step_by(3) {
        held_elsewhere.push(other.acquire(format!("id-{i}"), LockOptions::default()).await.unwrap());
    }
    let mut last_fencing = std::collections::HashMap::new();
    for round in 0..3 {
        let ids: Vec<String> = (0..48).map(|i| format!("id-{i}")).chain(["twice".to_string(), "twice".to_string()]).collect();
        let outcomes = join_all(ids.iter().map(|id| manager.acquire(id, LockOptions::default()))).await;
        let mut leases = Vec::new();
        let mut twice_won = 0;
        for (id, outcome) in ids.iter().zip(outcomes) {
            let held = id.strip_prefix("id-").is_some_and(|i| i.parse::<usize>().unwrap() % 3 == 0);
            match outcome {
                Ok(lease) if !held => {
                    twice_won += usize::from(id == "twice");
                    assert_eq!(lease.lock_id().as_str(), id);
                    let previous = last_fencing.insert(id.clone(), lease.fencing_token()).unwrap_or(0);
                    assert!(lease.fencing_token() > previous, "round {round}, {id}: fencing went back");
                    leases.push(lease);
                }
                Err(Error::Acquisition(_)) if held || id == "twice" => {}
                other => panic!("round {round}, {id} (held elsewhere: {held}): {other:?}"),
            }
        }
        assert_eq!(twice_won, 1, "round {round}: two acquires of one id at once");
        let released = join_all(leases.into_iter().map(|lease| lease.release())).await;
        assert!(released.into_iter().all(|released| released.unwrap()), "round {round}: a release did not report its own lease");
    }
    for lease in held_elsewhere {
        assert!(lease.release().await.unwrap(), "the other process's locks were never touched");
    }
    let bulks = proxy.request_lines().iter().filter(|line| line.contains("/_bulk")).count();
    assert!(bulks > 0, "the writes went out one request each: {:?}", proxy.request_lines());
}
