//! Many lease renewals in one `_bulk` request: one scripted update per lease,
//! each with its own outcome, so that one lease's refusal or failure says
//! nothing about another's.

use serde_json::{Value, json};

use super::document::Document;
use super::scripts;
use super::transport::{Context, Reply};
use crate::error::{Operation, Result};
use crate::id::LockId;
use crate::store::Renewal;
use crate::LockInfo;

/// The `_bulk` lines of one scripted update of `lock_id`: its action, then
/// its body (already serialized).
pub(super) fn update_lines(lock_id: &LockId, body: &str, retry_on_conflict: u32) -> String {
    let action = json!({ "update": { "_id": lock_id.as_str(), "retry_on_conflict": retry_on_conflict } });
    format!("{action}\n{body}\n")
}

/// The NDJSON body: an update action and its script for every renewal.
pub(super) fn renewal_body(renewals: &[Renewal], retry_on_conflict: u32) -> String {
    let mut body = String::new();
    for renewal in renewals {
        let update = serde_json::to_string(&scripts::extend(&renewal.token, renewal.ttl)).expect("a lock request serializes");
        body.push_str(&update_lines(&renewal.lock_id, &update, retry_on_conflict));
    }
    body
}

/// Each renewal's outcome from the `_bulk` reply, in order: the renewed
/// lock, `None` when the token no longer holds it, or the item's error.
pub(super) fn renewal_outcomes(renewals: &[Renewal], reply: &Reply) -> Result<Vec<Result<Option<LockInfo>>>> {
    let batch = Context { operation: Operation::Extend, lock_id: None };
    if !reply.is_success() {
        return Err(batch.unexpected(reply).into());
    }
    let items = match reply.body.get("items") {
        Some(Value::Array(items)) if items.len() == renewals.len() => items,
        _ => return Err(batch.malformed("one item per renewal", reply).into()),
    };
    Ok(renewals.iter().zip(items).map(|(renewal, item)| outcome(renewal, item, reply)).collect())
}

fn outcome(renewal: &Renewal, item: &Value, reply: &Reply) -> Result<Option<LockInfo>> {
    let context = Context { operation: Operation::Extend, lock_id: Some(&renewal.lock_id) };
    let Some(update) = item.get("update") else {
        return Err(context.malformed("an update item", reply).into());
    };
    let status = update.get("status").and_then(Value::as_u64).unwrap_or_default() as u16;
    // Each item reads like the reply to a single update.
    let item_reply = Reply { status, body: update.clone(), resent: reply.resent };
    if item_reply.is_not_found() {
        return Ok(None);
    }
    if !item_reply.is_success() {
        return Err(context.unexpected(&item_reply).into());
    }
    match update.get("result").and_then(Value::as_str) {
        Some("updated") => {
            let source = update.pointer("/get/_source").ok_or_else(|| context.malformed("no get._source", &item_reply))?;
            Document::read(&renewal.lock_id, source)
                .and_then(Document::held)
                .map(Some)
                .ok_or_else(|| context.malformed("lock fields", &item_reply).into())
        }
        Some("noop") => Ok(None),
        _ => Err(context.malformed("an update result an extend cannot have", &item_reply).into()),
    }
}
