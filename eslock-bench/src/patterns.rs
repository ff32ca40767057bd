//! One acquire + release cycle, issued four ways with the same client:
//! eslock, the pattern of Kibana's lock manager, the pattern of ShedLock's
//! Elasticsearch/OpenSearch provider, and the engine's floor (a plain
//! index + delete). The two peer patterns are written here from their
//! documented behaviour, not copied.

use std::time::{SystemTime, UNIX_EPOCH};

use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use eslock::{LockManager, LockOptions};
use serde_json::{Value, json};

use crate::engine;

/// Kibana's lock manager: one scripted upsert takes the lock when the
/// document is new, expired, or already ours; otherwise a no-op. Server
/// clock, no refresh.
const KIBANA_ACQUIRE: &str = "
long now = System.currentTimeMillis();
if (ctx.op == 'create' || ctx._source.token == params.token || ctx._source.expiresAt == null
    || Instant.parse(ctx._source.expiresAt.toString()).toEpochMilli() <= now) {
  Instant start = Instant.ofEpochMilli(now);
  ctx._source.token = params.token;
  ctx._source.metadata = params.metadata;
  ctx._source.createdAt = start.toString();
  ctx._source.expiresAt = start.plusMillis(params.ttl).toString();
} else {
  ctx.op = 'none';
}";

/// Kibana's release: delete the document when the token matches.
const KIBANA_RELEASE: &str = "if (ctx._source.token == params.token) { ctx.op = 'delete' } else { ctx.op = 'none' }";

/// ShedLock: an update with an upsert document; the script takes the lock
/// when `lockUntil` (client clock, epoch millis) has passed. `refresh=true`.
const SHEDLOCK_LOCK: &str = "
if (ctx._source.lockUntil <= params.now) {
  ctx._source.lockedBy = params.lockedBy;
  ctx._source.lockedAt = params.now;
  ctx._source.lockUntil = params.lockUntil;
} else {
  ctx.op = 'none';
}";

/// ShedLock's unlock: move `lockUntil` to now (or lock-at-least-until). `refresh=true`.
const SHEDLOCK_UNLOCK: &str = "ctx._source.lockUntil = params.unlockTime";

const TTL_MS: u64 = 30_000;

#[derive(Clone)]
pub(crate) enum Pattern {
    Eslock(LockManager),
    Kibana { client: Elasticsearch, index: String },
    ShedLock { client: Elasticsearch, index: String },
    Floor { client: Elasticsearch, index: String },
}

impl Pattern {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Pattern::Eslock(_) => "eslock",
            Pattern::Kibana { .. } => "Kibana pattern",
            Pattern::ShedLock { .. } => "ShedLock pattern",
            Pattern::Floor { .. } => "floor (index+delete)",
        }
    }

    /// Creates the pattern's index (eslock: its own setup).
    pub(crate) async fn setup(&self) {
        match self {
            Pattern::Eslock(manager) => manager.setup().await.expect("eslock setup"),
            Pattern::Kibana { client, index } => {
                let properties = json!({
                    "token": { "type": "keyword" }, "createdAt": { "type": "date" },
                    "expiresAt": { "type": "date" }, "metadata": { "type": "object", "enabled": false }
                });
                engine::create_index(client, index, properties).await
            }
            Pattern::ShedLock { client, index } => {
                let properties = json!({
                    "name": { "type": "keyword" }, "lockUntil": { "type": "date" },
                    "lockedAt": { "type": "date" }, "lockedBy": { "type": "keyword" }
                });
                engine::create_index(client, index, properties).await
            }
            Pattern::Floor { client, index } => engine::create_index(client, index, json!({})).await,
        }
    }

    pub(crate) async fn teardown(&self) {
        match self {
            Pattern::Eslock(_) => {}
            Pattern::Kibana { client, index } | Pattern::ShedLock { client, index } | Pattern::Floor { client, index } => {
                engine::delete_index(client, index).await
            }
        }
    }

    /// One acquire + release of `lock_id`; an error when the lock was not
    /// granted or not released.
    pub(crate) async fn cycle(&self, lock_id: &str) -> Result<(), String> {
        match self {
            Pattern::Eslock(manager) => {
                let lease = manager.acquire(lock_id, LockOptions::default()).await.map_err(|e| e.to_string())?;
                match lease.release().await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err("release: not ours".into()),
                    Err(err) => Err(err.to_string()),
                }
            }
            Pattern::Kibana { client, index } => {
                let token = uuid::Uuid::new_v4().to_string();
                let path = format!("/{index}/_update/{lock_id}");
                let acquire = json!({
                    "scripted_upsert": true,
                    "script": { "lang": "painless", "source": KIBANA_ACQUIRE,
                                "params": { "token": token, "ttl": TTL_MS, "metadata": {} } },
                    "upsert": {}
                });
                expect_result(client, &path, &acquire, &["created", "updated"]).await?;
                let release = json!({
                    "script": { "lang": "painless", "source": KIBANA_RELEASE, "params": { "token": token } }
                });
                expect_result(client, &path, &release, &["deleted"]).await
            }
            Pattern::ShedLock { client, index } => {
                let now = now_millis();
                let path = format!("/{index}/_update/{lock_id}?refresh=true");
                let lock = json!({
                    "script": { "lang": "painless", "source": SHEDLOCK_LOCK,
                                "params": { "now": now, "lockedBy": "bench-host", "lockUntil": now + TTL_MS } },
                    "upsert": { "name": lock_id, "lockedBy": "bench-host", "lockedAt": now, "lockUntil": now + TTL_MS }
                });
                expect_result(client, &path, &lock, &["created", "updated"]).await?;
                let unlock = json!({
                    "script": { "lang": "painless", "source": SHEDLOCK_UNLOCK, "params": { "unlockTime": now_millis() } }
                });
                expect_result(client, &path, &unlock, &["updated", "noop"]).await
            }
            Pattern::Floor { client, index } => {
                let path = format!("/{index}/_doc/{lock_id}");
                let (status, _) = engine::send(client, Method::Put, &path, Some(&json!({ "n": 1 }))).await?;
                if !(200..300).contains(&status) {
                    return Err(format!("index: HTTP {status}"));
                }
                let (status, _) = engine::send(client, Method::Delete, &path, None).await?;
                if !(200..300).contains(&status) {
                    return Err(format!("delete: HTTP {status}"));
                }
                Ok(())
            }
        }
    }
}

/// Sends a scripted update and checks its `result`.
async fn expect_result(client: &Elasticsearch, path: &str, body: &Value, wanted: &[&str]) -> Result<(), String> {
    let (status, reply) = engine::send(client, Method::Post, path, Some(body)).await?;
    let result = reply["result"].as_str().unwrap_or_default();
    if (200..300).contains(&status) && wanted.contains(&result) {
        Ok(())
    } else {
        Err(format!("{path}: HTTP {status}, result {result:?}: {:.300}", reply.to_string()))
    }
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}
