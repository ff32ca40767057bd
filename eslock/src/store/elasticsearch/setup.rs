//! Idempotent index setup: component template, index template, the hidden
//! single-shard index, and a check of its mappings. Safe when many processes
//! run it at once: every step either replaces an identical definition or
//! tolerates "already exists".

use std::time::SystemTime;

use elasticsearch::http::Method;
use serde_json::{Value, json};

use super::transport::{Context, encode_segment};
use super::{ElasticsearchStore, document};
use crate::error::{Error, Operation, Result};

const CONTEXT: Context<'static> = Context { operation: Operation::Setup, lock_id: None };

fn mappings() -> Value {
    json!({
        "dynamic": false,
        "properties": {
            "token": { "type": "keyword" },
            "metadata": { "type": "object", "enabled": false },
            "createdAt": { "type": "date" },
            "expiresAt": { "type": "date" },
            "fencingToken": { "type": "long" }
        }
    })
}

fn settings() -> Value {
    json!({ "number_of_shards": 1, "auto_expand_replicas": "0-1", "hidden": true })
}

pub(super) async fn run(store: &ElasticsearchStore) -> Result<()> {
    store.layout.validate()?;
    put_templates(store).await?;
    create_index(store).await?;
    match check_mappings(store).await? {
        MappingCheck::Compatible => Ok(()),
        MappingCheck::Conflicts(problems) => {
            repair(store, &problems).await?;
            match check_mappings(store).await? {
                MappingCheck::Compatible => Ok(()),
                MappingCheck::Conflicts(problems) => Err(incompatible(store, &problems, "the repaired index is still wrong; check for another template that matches it")),
            }
        }
    }
}

async fn put_templates(store: &ElasticsearchStore) -> Result<()> {
    let layout = &store.layout;
    let component = json!({ "template": { "settings": settings(), "mappings": mappings() } });
    let path = format!("/_component_template/{}", encode_segment(&layout.component_template()));
    expect_success(store.request(CONTEXT, Method::Put, &path, Some(&component)).await?)?;

    let template = json!({
        "index_patterns": [format!("{}-*", layout.alias())],
        "composed_of": [layout.component_template()],
        "priority": 100,
        "template": { "aliases": { layout.alias(): { "is_hidden": true } } },
        "_meta": { "managed_by": "eslock" }
    });
    let path = format!("/_index_template/{}", encode_segment(&layout.index_template()));
    expect_success(store.request(CONTEXT, Method::Put, &path, Some(&template)).await?)
}

async fn create_index(store: &ElasticsearchStore) -> Result<()> {
    let layout = &store.layout;
    // Settings and mappings are given explicitly too, so the index is right
    // even if some other template of higher priority matches its name.
    let body = json!({
        "settings": settings(),
        "mappings": mappings(),
        "aliases": { layout.alias(): { "is_hidden": true } }
    });
    let reply = store
        .request(CONTEXT, Method::Put, &format!("/{}", encode_segment(layout.concrete_index())), Some(&body))
        .await?;
    match reply.error_type() {
        Some("resource_already_exists_exception") => Ok(()),
        _ => expect_success(reply),
    }
}

fn expect_success(reply: super::Reply) -> Result<()> {
    if reply.is_success() { Ok(()) } else { Err(CONTEXT.unexpected(&reply).into()) }
}

enum MappingCheck {
    Compatible,
    Conflicts(Vec<String>),
}

/// Compares the index's mappings with ours. Missing fields are added (always
/// safe); fields of the wrong type are conflicts.
async fn check_mappings(store: &ElasticsearchStore) -> Result<MappingCheck> {
    let index = encode_segment(store.layout.concrete_index());
    let reply = store.request(CONTEXT, Method::Get, &format!("/{index}/_mapping"), None).await?;
    if !reply.is_success() {
        return Err(CONTEXT.unexpected(&reply).into());
    }
    let actual = reply
        .body
        .as_object()
        .and_then(|indices| indices.values().next())
        .and_then(|index| index.pointer("/mappings/properties"))
        .cloned()
        .unwrap_or(Value::Null);

    let wanted = mappings();
    let mut conflicts = Vec::new();
    let mut missing = serde_json::Map::new();
    for (field, spec) in wanted["properties"].as_object().expect("static mappings") {
        match actual.get(field) {
            None => {
                missing.insert(field.clone(), spec.clone());
            }
            Some(found) => {
                if let Some(problem) = field_problem(field, found) {
                    conflicts.push(problem);
                }
            }
        }
    }
    if !missing.is_empty() {
        let body = json!({ "properties": missing });
        expect_success(store.request(CONTEXT, Method::Put, &format!("/{index}/_mapping"), Some(&body)).await?)?;
    }
    Ok(if conflicts.is_empty() { MappingCheck::Compatible } else { MappingCheck::Conflicts(conflicts) })
}

fn field_problem(field: &str, found: &Value) -> Option<String> {
    let found_type = found["type"].as_str().unwrap_or("object");
    let acceptable: &[&str] = match field {
        "token" => &["keyword"],
        "createdAt" | "expiresAt" => &["date", "date_nanos"],
        "fencingToken" => &["long", "unsigned_long"],
        "metadata" => &["object", "flattened", "flat_object"],
        _ => return None,
    };
    (!acceptable.contains(&found_type)).then(|| format!("`{field}` is {found_type}, expected {}", acceptable[0]))
}

/// Recreates an index with wrong mappings, but only when it holds no live
/// lock: deleting it must never free a lock someone holds.
async fn repair(store: &ElasticsearchStore, problems: &[String]) -> Result<()> {
    let index = encode_segment(store.layout.concrete_index());
    let live = count_live_locks(store).await?;
    if live > 0 {
        return Err(incompatible(
            store,
            problems,
            &format!(
                "it holds {live} live lock(s), so it was not repaired; let them expire or release them, then run setup again"
            ),
        ));
    }
    tracing::warn!(index = store.layout.concrete_index(), problems = ?problems, "lock index has wrong mappings and no live locks; recreating it");
    let reply = store.request(CONTEXT, Method::Delete, &format!("/{index}"), None).await?;
    if reply.status != 404 {
        expect_success(reply)?;
    }
    create_index(store).await
}

async fn count_live_locks(store: &ElasticsearchStore) -> Result<usize> {
    let Some(reply) = store.search_all(CONTEXT).await? else {
        return Ok(0);
    };
    let now = SystemTime::now();
    let hits = reply.body.pointer("/hits/hits").and_then(Value::as_array).cloned().unwrap_or_default();
    // A document we cannot read counts as live: when unsure, keep it.
    Ok(hits
        .iter()
        .filter(|hit| document::lock_info_from_hit(hit).is_none_or(|lock| !lock.is_expired_at(now)))
        .count())
}

fn incompatible(store: &ElasticsearchStore, problems: &[String], advice: &str) -> Error {
    Error::IncompatibleIndex {
        index: store.layout.concrete_index().to_string(),
        problems: problems.join("; "),
        advice: advice.to_string(),
    }
}
