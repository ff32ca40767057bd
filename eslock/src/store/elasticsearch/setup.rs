//! Idempotent index setup: component template, index template, the hidden
//! single-shard index, and a check of its mappings. Safe when many processes
//! run it at once: every step either replaces an identical definition or
//! tolerates "already exists".

use std::time::Duration;

use elasticsearch::http::Method;
use serde_json::{Value, json};

use super::document::Document;
use super::layout::IndexLayout;
use super::transport::{Context, Engine, Reply, path};
use crate::error::{Error, IncompatibleIndexError, Operation, Result};

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

/// What setup works on: the engine, through the request layer, and the
/// names of the lock index and its templates.
struct Setup<'a> {
    engine: &'a Engine,
    layout: &'a IndexLayout,
}

pub(super) async fn run(engine: &Engine, layout: &IndexLayout) -> Result<()> {
    let setup = &Setup { engine, layout };
    setup.layout.validate()?;
    if setup.layout.is_kibana() {
        put_kibana_templates_if_absent(setup).await?;
    } else {
        put_templates(setup).await?;
    }
    let mut repaired = false;
    for _ in 0..MAX_ROUNDS {
        create_index(setup).await?;
        let problems = match check_mappings(setup).await? {
            MappingCheck::Compatible => return Ok(()),
            // Another process's repair deleted the index after our create:
            // create it again (or find the repairer's new one).
            MappingCheck::Gone => continue,
            MappingCheck::AliasConflicts { target, problems } => {
                let advice = format!("the name is an alias of the index {target}, which eslock did not create and never deletes");
                return Err(incompatible(setup, &problems, &advice));
            }
            MappingCheck::Conflicts(problems) => problems,
        };
        if setup.layout.is_kibana() {
            let advice = "it is Kibana's index, which eslock never deletes; Kibana's own setup recreates it when it holds no lock";
            return Err(incompatible(setup, &problems, advice));
        }
        if repaired {
            return Err(incompatible(setup, &problems, "the repaired index is still wrong; check for another template that matches it"));
        }
        repair(setup, &problems).await?;
        repaired = true;
    }
    Err(CONTEXT
        .error(format!("the index {} kept disappearing during setup; is something deleting it?", setup.layout.concrete_index()))
        .into())
}

/// How many times setup creates and checks the index before it gives up on
/// an index that others keep deleting.
const MAX_ROUNDS: usize = 8;

async fn put_templates(setup: &Setup<'_>) -> Result<()> {
    let layout = &setup.layout;
    let component = json!({ "template": { "settings": settings(), "mappings": mappings() } });
    let component_path = path(&["_component_template", &layout.component_template()], "");
    setup.engine.expect_success(CONTEXT, Method::Put, &component_path, Some(&component)).await?;

    let template = json!({
        "index_patterns": [format!("{}-*", layout.alias())],
        "composed_of": [layout.component_template()],
        "priority": 100,
        "template": { "aliases": { layout.alias(): { "is_hidden": true } } },
        "_meta": { "managed_by": "eslock" }
    });
    let template_path = path(&["_index_template", &layout.index_template()], "");
    setup.engine.expect_success(CONTEXT, Method::Put, &template_path, Some(&template)).await?;
    Ok(())
}

/// Kibana's own lock index assets, written only when absent and never
/// changed, so that Kibana nodes and eslock do not rewrite each other's
/// definitions on every start. `fencingToken` is added to the index's
/// mapping only (`check_mappings`); with `dynamic: false` Kibana never minds.
async fn put_kibana_templates_if_absent(setup: &Setup<'_>) -> Result<()> {
    let layout = &setup.layout;
    let component = json!({ "template": { "mappings": {
        "dynamic": false,
        "properties": {
            "token": { "type": "keyword" },
            "metadata": { "enabled": false },
            "createdAt": { "type": "date" },
            "expiresAt": { "type": "date" }
        }
    } } });
    let template = json!({
        "index_patterns": [format!("{}*", layout.alias())],
        "composed_of": [layout.component_template()],
        "priority": 500,
        "template": { "settings": { "number_of_shards": 1, "auto_expand_replicas": "0-1", "hidden": true } }
    });
    for (path, body) in [
        (path(&["_component_template", &layout.component_template()], "create=true"), component),
        (path(&["_index_template", &layout.index_template()], "create=true"), template),
    ] {
        let reply = setup.engine.send(CONTEXT, Method::Put, &path, Some(&body)).await?;
        let exists = reply.status == 400 && reason(&reply).contains("already exists");
        if !exists {
            CONTEXT.success(reply)?;
        }
    }
    Ok(())
}

async fn create_index(setup: &Setup<'_>) -> Result<()> {
    let layout = &setup.layout;
    let body = if layout.is_kibana() {
        // As Kibana creates it: its index template gives settings and mappings.
        json!({})
    } else {
        // Settings and mappings are given explicitly too, so the index is right
        // even if some other template of higher priority matches its name.
        json!({
            "settings": settings(),
            "mappings": mappings(),
            "aliases": { layout.alias(): { "is_hidden": true } }
        })
    };
    let reply = setup.engine.send(CONTEXT, Method::Put, &path(&[layout.concrete_index()], ""), Some(&body)).await?;
    match reply.error_type() {
        Some("resource_already_exists_exception") => Ok(()),
        // After an upgrade re-index, the concrete index name can be an alias
        // of the new index: work through it.
        Some("invalid_index_name_exception") if reason(&reply).contains("alias") => Ok(()),
        _ => CONTEXT.success(reply).map(drop),
    }
}

fn reason(reply: &Reply) -> &str {
    reply.body.pointer("/error/reason").and_then(Value::as_str).unwrap_or_default()
}


enum MappingCheck {
    Compatible,
    Conflicts(Vec<String>),
    /// Wrong mappings on the index behind an alias of the concrete name.
    AliasConflicts { target: String, problems: Vec<String> },
    /// The index is gone (another process's repair deleted it meanwhile).
    Gone,
}

/// Compares the index's mappings with ours. Missing fields are added (always
/// safe); fields of the wrong type are conflicts.
async fn check_mappings(setup: &Setup<'_>) -> Result<MappingCheck> {
    let index = setup.layout.concrete_index();
    let Some(reply) = setup.engine.expect_found(CONTEXT, Method::Get, &path(&[index, "_mapping"], ""), None).await? else {
        return Ok(MappingCheck::Gone);
    };
    let (target, found) = reply
        .body
        .as_object()
        .and_then(|indices| indices.iter().next())
        .and_then(|(target, index)| Some((target.clone(), index.get("mappings")?)))
        .ok_or_else(|| CONTEXT.malformed("no mappings", &reply))?;
    // An index without fields yet has no `properties`.
    let actual = found.get("properties").cloned().unwrap_or(Value::Null);

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
        if setup.engine.expect_found(CONTEXT, Method::Put, &path(&[index, "_mapping"], ""), Some(&body)).await?.is_none() {
            return Ok(MappingCheck::Gone);
        }
    }
    Ok(if conflicts.is_empty() {
        MappingCheck::Compatible
    } else if target != setup.layout.concrete_index() {
        MappingCheck::AliasConflicts { target, problems: conflicts }
    } else {
        MappingCheck::Conflicts(conflicts)
    })
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

/// How long setup waits for another process's repair of the index.
const REPAIR_WAIT: Duration = Duration::from_secs(30);

/// Recreates an index with wrong mappings, but only when it holds no live
/// lock: deleting it must never free a lock someone holds, even with other
/// processes acquiring and repairing at the same time.
///
/// - One repairer at a time: each first creates a marker index, which the
///   engine lets exactly one process create; the others wait for it to go.
/// - Under the marker the mappings are checked again (the previous repairer
///   may have fixed them), so no repairer acts on what it saw before.
/// - Writes to the index are blocked before counting (the block API waits
///   for writes in flight), so no lock can be taken between count and delete.
/// - Live locks are counted on the cluster's clock; an unreadable document
///   counts as live. Any live lock: the block is lifted and setup refuses.
async fn repair(setup: &Setup<'_>, problems: &[String]) -> Result<()> {
    let marker = take_repair_marker(setup, problems).await?;
    let outcome = repair_alone(setup).await;
    if let Err(err) = setup.engine.expect_found(CONTEXT, Method::Delete, &path(&[&marker], ""), None).await {
        tracing::warn!(marker, error = %err, "could not remove the repair marker index; delete it by hand");
    }
    outcome
}

/// The marker index a repairer creates first; named outside every lock index
/// pattern so no template applies to it.
fn repair_marker(setup: &Setup<'_>) -> String {
    format!(".eslock-repair.{}", setup.layout.alias().trim_start_matches('.'))
}

async fn take_repair_marker(setup: &Setup<'_>, problems: &[String]) -> Result<String> {
    let marker = repair_marker(setup);
    let body = json!({ "settings": { "number_of_shards": 1, "number_of_replicas": 0, "hidden": true } });
    let give_up = tokio::time::Instant::now() + REPAIR_WAIT;
    loop {
        let reply = setup.engine.send(CONTEXT, Method::Put, &path(&[&marker], ""), Some(&body)).await?;
        if reply.error_type() != Some("resource_already_exists_exception") {
            CONTEXT.success(reply)?;
            return Ok(marker);
        }
        if tokio::time::Instant::now() >= give_up {
            return Err(incompatible(
                setup,
                problems,
                &format!("another process is repairing it, or a repair was interrupted; if none is running, delete the index {marker} and run setup again"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn repair_alone(setup: &Setup<'_>) -> Result<()> {
    let problems = match check_mappings(setup).await? {
        MappingCheck::Compatible => return Ok(()),
        MappingCheck::Conflicts(problems) => problems,
        // Another process made the name an alias meanwhile: leave it be.
        MappingCheck::AliasConflicts { .. } => return Ok(()),
        MappingCheck::Gone => return create_index(setup).await,
    };
    let index = setup.layout.concrete_index();
    // Once the block request is sent, the engine may have applied it, even
    // if its reply is lost: from here on, every way out but a successful
    // delete lifts the block again.
    let deleted = match setup.engine.expect_found(CONTEXT, Method::Put, &path(&[index, "_block", "write"], ""), None).await {
        Ok(None) => return create_index(setup).await,
        Ok(Some(_)) => delete_if_no_live_lock(setup, &problems).await,
        Err(err) => Err(err),
    };
    match deleted {
        Ok(true) => create_index(setup).await,
        outcome => {
            lift_write_block(setup).await?;
            outcome.map(drop)
        }
    }
}

/// Lifts the write block a repair set, trying a few times: an index left
/// read-only would stop every lock operation.
async fn lift_write_block(setup: &Setup<'_>) -> Result<()> {
    let index = setup.layout.concrete_index();
    let unblock = json!({ "index.blocks.write": false });
    let mut last = None;
    for _ in 0..3 {
        match setup.engine.expect_found(CONTEXT, Method::Put, &path(&[index, "_settings"], ""), Some(&unblock)).await {
            Ok(_) => return Ok(()),
            Err(err) => last = Some(err),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let err: Error = last.expect("three attempts");
    tracing::error!(index, error = %err, "could not lift the write block of the lock index; lift it by hand: PUT <index>/_settings {{\"index.blocks.write\": false}}");
    Err(err)
}

/// With writes blocked: deletes the index if it holds no live lock (`true`),
/// else returns the error that says so.
async fn delete_if_no_live_lock(setup: &Setup<'_>, problems: &[String]) -> Result<bool> {
    let live = count_live_locks(setup).await?;
    if live > 0 {
        return Err(incompatible(
            setup,
            problems,
            &format!("it holds {live} live lock(s), so it was not repaired; let them expire or release them, then run setup again"),
        ));
    }
    tracing::warn!(index = setup.layout.concrete_index(), problems = ?problems, "lock index has wrong mappings and no live locks; recreating it");
    setup.engine.expect_found(CONTEXT, Method::Delete, &path(&[setup.layout.concrete_index()], ""), None).await?;
    Ok(true)
}

/// Locks that have not expired by the cluster's clock, among every document
/// in the index. A document we cannot read counts as live: when unsure, keep it.
async fn count_live_locks(setup: &Setup<'_>) -> Result<usize> {
    let Some(hits) = setup.engine.search_all(CONTEXT, setup.layout.concrete_index(), json!({ "match_all": {} })).await? else {
        return Ok(0);
    };
    // Read after the documents: a lock can only have expired since.
    let now = setup.engine.cluster_now(CONTEXT).await?;
    Ok(hits
        .iter()
        .filter(|hit| match Document::from_hit(hit) {
            None => true,
            Some(document) => document.held().is_some_and(|lock| !lock.is_expired_at(now)),
        })
        .count())
}

fn incompatible(setup: &Setup<'_>, problems: &[String], advice: &str) -> Error {
    IncompatibleIndexError {
        index: setup.layout.concrete_index().to_string(),
        problems: problems.join("; "),
        advice: advice.to_string(),
    }
    .into()
}
