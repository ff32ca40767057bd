//! eslock's Kibana preset and Kibana nodes sharing `.kibana_locks-000001`.
//!
//! A Kibana-role client sends what Kibana's lock manager sends: its setup
//! (component template, index template, index) and its acquire, extend and
//! release scripted updates. The scripts are written here from the
//! behaviour of Kibana's `kbn-lock-manager` (same conditions, fields and
//! formats), not copied. Every test here works on the one shared Kibana
//! index, so they take turns.

use std::time::{Duration, SystemTime};

use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use eslock::{ElasticsearchStore, Error, LockManager, LockOptions};
use eslock_test_support::{engine_client, raw_request as raw, unique_name};
use serde_json::{Value, json};

const INDEX: &str = ".kibana_locks-000001";

/// The Kibana index is shared: one test at a time touches it.
static KIBANA_INDEX: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn eslock_kibana() -> LockManager {
    LockManager::builder().store(ElasticsearchStore::builder(engine_client()).kibana_compatible().build()).build()
}

/// Kibana's side: takes a lock when the document is new, expired or its
/// own; extends and releases (deletes) only with its token.
struct Kibana {
    client: Elasticsearch,
}

const KIBANA_ACQUIRE: &str = "
long now = System.currentTimeMillis();
if (ctx.op == 'create' || Instant.parse(ctx._source.expiresAt).toEpochMilli() < now || ctx._source.token == params.token) {
  def instantNow = Instant.ofEpochMilli(now);
  ctx._source.createdAt = instantNow.toString();
  ctx._source.expiresAt = instantNow.plusMillis(params.ttl).toString();
  ctx._source.metadata = params.metadata;
  ctx._source.token = params.token;
} else {
  ctx.op = 'noop';
}";

const KIBANA_EXTEND: &str = "
if (ctx._source.token == params.token) {
  long now = System.currentTimeMillis();
  ctx._source.expiresAt = Instant.ofEpochMilli(now + params.ttl).toString();
} else {
  ctx.op = 'noop';
}";

const KIBANA_RELEASE: &str = "
if (ctx._source.token == params.token) {
  ctx.op = 'delete';
} else {
  ctx.op = 'noop';
}";

impl Kibana {
    fn new() -> Self {
        Kibana { client: engine_client() }
    }

    /// Kibana's setup: both templates written (created or replaced), then
    /// the index created, "already exists" tolerated.
    async fn setup(&self) {
        let component = json!({ "template": { "mappings": { "dynamic": false, "properties": {
            "token": { "type": "keyword" }, "metadata": { "enabled": false },
            "createdAt": { "type": "date" }, "expiresAt": { "type": "date" }
        } } } });
        assert_eq!(raw(&self.client, Method::Put, "/_component_template/.kibana_locks-component", Some(component)).await.0, 200);
        let template = json!({
            "index_patterns": [".kibana_locks*"], "composed_of": [".kibana_locks-component"], "priority": 500,
            "template": { "settings": { "number_of_shards": 1, "auto_expand_replicas": "0-1", "hidden": true } }
        });
        assert_eq!(raw(&self.client, Method::Put, "/_index_template/.kibana_locks-index-template", Some(template)).await.0, 200);
        let (status, reply) = raw(&self.client, Method::Put, &format!("/{INDEX}"), None).await;
        let error = reply.pointer("/error/type").and_then(Value::as_str);
        assert!(status == 200 || matches!(error, Some("resource_already_exists_exception" | "invalid_index_name_exception")), "{reply}");
    }

    async fn update(&self, lock_id: &str, body: Value) -> String {
        let path = format!("/{INDEX}/_update/{}", urlencode(lock_id));
        let (status, reply) = raw(&self.client, Method::Post, &path, Some(body)).await;
        match status {
            200 | 201 => reply["result"].as_str().unwrap().to_string(),
            404 => "missing".to_string(),
            _ => panic!("Kibana's request failed: {reply}"),
        }
    }

    async fn acquire(&self, lock_id: &str, token: &str, ttl: Duration) -> String {
        let params = json!({ "token": token, "ttl": ttl.as_millis() as u64, "metadata": { "kibana": true } });
        let body = json!({ "scripted_upsert": true, "script": { "lang": "painless", "source": KIBANA_ACQUIRE, "params": params }, "upsert": {} });
        self.update(lock_id, body).await
    }

    async fn extend(&self, lock_id: &str, token: &str, ttl: Duration) -> String {
        let params = json!({ "token": token, "ttl": ttl.as_millis() as u64 });
        self.update(lock_id, json!({ "script": { "lang": "painless", "source": KIBANA_EXTEND, "params": params } })).await
    }

    async fn release(&self, lock_id: &str, token: &str) -> String {
        let params = json!({ "token": token });
        self.update(lock_id, json!({ "script": { "lang": "painless", "source": KIBANA_RELEASE, "params": params } })).await
    }

    /// Kibana's `get`: the document unless its `expiresAt` has passed.
    async fn get(&self, lock_id: &str) -> Option<Value> {
        let (status, reply) = raw(&self.client, Method::Get, &format!("/{INDEX}/_doc/{}", urlencode(lock_id)), None).await;
        let source = reply.get("_source").filter(|_| status == 200)?.clone();
        let expires = humantime::parse_rfc3339_weak(source["expiresAt"].as_str()?).ok()?;
        (expires >= SystemTime::now()).then_some(source)
    }

    async fn templates(&self) -> (Value, Value) {
        let (_, component) = raw(&self.client, Method::Get, "/_component_template/.kibana_locks-component", None).await;
        let (_, template) = raw(&self.client, Method::Get, "/_index_template/.kibana_locks-index-template", None).await;
        (component["component_templates"][0].clone(), template["index_templates"][0].clone())
    }

    async fn delete_templates(&self) {
        raw(&self.client, Method::Delete, "/_index_template/.kibana_locks-index-template", None).await;
        raw(&self.client, Method::Delete, "/_component_template/.kibana_locks-component", None).await;
    }
}

fn urlencode(id: &str) -> String {
    id.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// eslock writes Kibana's exact assets only when absent and never changes
/// them, in either order of start-up; the fencing field goes to the index
/// mapping only.
#[tokio::test]
async fn kibanas_assets_are_left_as_kibana_wrote_them() {
    let _turn = KIBANA_INDEX.lock().await;
    let kibana = Kibana::new();

    // Kibana first: eslock changes nothing.
    kibana.setup().await;
    let before = kibana.templates().await;
    eslock_kibana().setup().await.unwrap();
    assert_eq!(kibana.templates().await, before, "eslock rewrote Kibana's templates");

    // eslock first: what it writes is what Kibana writes.
    kibana.delete_templates().await;
    eslock_kibana().setup().await.unwrap();
    let written_by_eslock = kibana.templates().await;
    kibana.setup().await;
    assert_eq!(kibana.templates().await, written_by_eslock, "eslock's templates differ from Kibana's");

    let (component, _) = kibana.templates().await;
    assert!(component.pointer("/component_template/template/mappings/properties/fencingToken").is_none());
    let (_, mapping) = raw(&kibana.client, Method::Get, &format!("/{INDEX}/_mapping"), None).await;
    let (_, index) = mapping.as_object().unwrap().iter().next().unwrap();
    assert_eq!(index.pointer("/mappings/properties/fencingToken/type"), Some(&json!("long")));
}

/// Locks pass between Kibana and eslock in both directions: each side is
/// refused while the other holds the lock, takes it over once it expired
/// or was released, and the fencing token never claims a Kibana holder.
#[tokio::test]
async fn locks_pass_between_kibana_and_eslock_both_ways() {
    let _turn = KIBANA_INDEX.lock().await;
    let kibana = Kibana::new();
    kibana.setup().await;
    let manager = eslock_kibana();
    manager.setup().await.unwrap();
    let id = unique_name("kibana-shared");

    // Kibana holds it: eslock is refused and sees Kibana's holder.
    assert_eq!(kibana.acquire(&id, "kibana-1", Duration::from_secs(2)).await, "created");
    assert_eq!(kibana.extend(&id, "kibana-1", Duration::from_secs(2)).await, "updated");
    let err = manager.acquire(&id, LockOptions::default()).await.unwrap_err();
    let Error::Acquisition(refused) = &err else { panic!("{err:?}") };
    assert_eq!(refused.holder_metadata, Some(json!({ "kibana": true })));
    let info = manager.get(&id).await.unwrap().unwrap();
    assert_eq!((info.token.as_str(), info.fencing_token), ("kibana-1", None));

    // Kibana's lock expires: eslock takes it over; Kibana is refused.
    let lease = manager.acquire(&id, LockOptions::default().wait(Duration::from_secs(10))).await.unwrap();
    assert_eq!(kibana.acquire(&id, "kibana-2", Duration::from_secs(30)).await, "noop");
    assert_eq!(kibana.extend(&id, "kibana-1", Duration::from_secs(30)).await, "noop");
    assert_eq!(kibana.release(&id, "kibana-1").await, "noop");
    let held = kibana.get(&id).await.expect("Kibana sees eslock's lock");
    assert_eq!(held["token"], lease.token());
    let first = lease.fencing_token();

    // eslock releases (the document stays, expired): Kibana takes it.
    assert!(lease.release().await.unwrap());
    assert_eq!(kibana.get(&id).await, None, "a released lock is free for Kibana");
    assert_eq!(kibana.acquire(&id, "kibana-3", Duration::from_secs(2)).await, "updated");
    assert_eq!(manager.get(&id).await.unwrap().unwrap().fencing_token, None, "the counter is not Kibana's token");
    assert!(manager.acquire(&id, LockOptions::default()).await.is_err());

    // Kibana's lock expires: eslock takes over with a larger fencing token.
    let lease = manager.acquire(&id, LockOptions::default().wait(Duration::from_secs(10))).await.unwrap();
    assert!(lease.fencing_token() > first);
    assert!(lease.release().await.unwrap());

    // Kibana acquires and releases (deleting the document); eslock goes on.
    assert_eq!(kibana.acquire(&id, "kibana-4", Duration::from_secs(30)).await, "updated");
    assert_eq!(kibana.release(&id, "kibana-4").await, "deleted");
    let after_delete = manager.acquire(&id, LockOptions::default()).await.unwrap();
    assert!(after_delete.fencing_token() > first, "the clock floor after a Kibana delete");
    assert!(after_delete.release().await.unwrap());
}

/// Kibana's ids are free strings: eslock's Kibana preset reads, lists and
/// force-releases such locks, while its own locks keep eslock's id rules.
#[tokio::test]
async fn kibana_ids_can_be_read_listed_and_released() {
    let _turn = KIBANA_INDEX.lock().await;
    let kibana = Kibana::new();
    kibana.setup().await;
    let manager = eslock_kibana();
    let id = format!("Kibana task: {} (ü)", unique_name("free"));
    assert_eq!(kibana.acquire(&id, "kibana-1", Duration::from_secs(60)).await, "created");

    assert_eq!(manager.get(&id).await.unwrap().unwrap().token, "kibana-1");
    assert!(manager.list().await.unwrap().iter().any(|lock| lock.lock_id == id));
    assert!(matches!(manager.acquire(&id, LockOptions::default()).await, Err(Error::InvalidLockId(_))));
    assert!(manager.force_release(&id).await.unwrap());
    assert_eq!(manager.get(&id).await.unwrap(), None);
    assert_eq!(kibana.acquire(&id, "kibana-2", Duration::from_secs(60)).await, "updated", "free for Kibana again");
    assert_eq!(kibana.release(&id, "kibana-2").await, "deleted");

    // The default layout keeps the strict rules.
    let strict = eslock_test_support::manager_on(engine_client(), &unique_name("strict"));
    assert!(matches!(strict.get(&id).await, Err(Error::InvalidLockId(_))));
}

/// After an upgrade re-index, `.kibana_locks-000001` is an alias of another
/// index: eslock works through it and never deletes the alias's target.
#[tokio::test]
async fn kibanas_index_as_an_alias_is_worked_through() {
    let _turn = KIBANA_INDEX.lock().await;
    let kibana = Kibana::new();
    kibana.setup().await;
    let reindexed = format!(".kibana_locks-reindexed-{}", std::process::id());
    let client = &kibana.client;
    assert_eq!(raw(client, Method::Delete, &format!("/{INDEX}"), None).await.0, 200);
    let body = json!({ "aliases": { INDEX: {} } });
    assert_eq!(raw(client, Method::Put, &format!("/{reindexed}"), Some(body)).await.0, 200);

    let outcome = async {
        let manager = eslock_kibana();
        manager.setup().await.unwrap();
        let id = unique_name("through-alias");
        let lease = manager.acquire(&id, LockOptions::default()).await.unwrap();
        assert_eq!(kibana.acquire(&id, "kibana", Duration::from_secs(30)).await, "noop");
        assert!(manager.list().await.unwrap().iter().any(|lock| lock.lock_id == id));
        assert!(lease.release().await.unwrap());
        assert_eq!(kibana.acquire(&id, "kibana", Duration::from_secs(30)).await, "updated");
        assert_eq!(manager.get(&id).await.unwrap().unwrap().token, "kibana");
        let (status, _) = raw(client, Method::Get, &format!("/{reindexed}"), None).await;
        assert_eq!(status, 200, "the alias's target is still there");
    };
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    // Put Kibana's index back for the other tests, whatever happened.
    raw(client, Method::Delete, &format!("/{reindexed}"), None).await;
    kibana.setup().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
