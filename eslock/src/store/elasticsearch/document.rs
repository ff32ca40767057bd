//! Lock documents as stored in the index, and their conversion to `LockInfo`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::LockInfo;

/// Reads a lock from a document's `_source`; `None` when a field is missing
/// or malformed (the caller turns that into a typed error).
pub(crate) fn lock_info(lock_id: &str, source: &Value) -> Option<LockInfo> {
    Some(LockInfo {
        lock_id: lock_id.to_string(),
        token: source.get("token")?.as_str()?.to_string(),
        created_at: instant(source.get("createdAt")?)?,
        expires_at: instant(source.get("expiresAt")?)?,
        metadata: match source.get("metadata") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(metadata) => metadata.clone(),
        },
        fencing_token: source.get("fencingToken").and_then(Value::as_u64).unwrap_or(0),
    })
}

/// Reads a lock from a search hit (`_id` and `_source`).
pub(crate) fn lock_info_from_hit(hit: &Value) -> Option<LockInfo> {
    lock_info(hit["_id"].as_str()?, &hit["_source"])
}

/// Dates are ISO-8601 instants (Kibana's format); epoch millis are accepted too.
fn instant(value: &Value) -> Option<SystemTime> {
    match value {
        Value::String(text) => humantime::parse_rfc3339_weak(text).ok(),
        Value::Number(millis) => Some(UNIX_EPOCH + Duration::from_millis(millis.as_u64()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_kibana_documents() {
        let info = lock_info(
            "a",
            &json!({
                "token": "t", "metadata": { "k": 1 },
                "createdAt": "2025-01-02T03:04:05Z", "expiresAt": "2025-01-02T03:04:35.250Z"
            }),
        )
        .unwrap();
        assert_eq!(info.expires_at.duration_since(info.created_at).unwrap(), Duration::from_millis(30_250));
        assert_eq!(info.metadata, json!({ "k": 1 }));
        assert_eq!(info.fencing_token, 0);
        assert!(lock_info("a", &json!({ "token": "t" })).is_none());
        assert!(lock_info("a", &json!({ "token": 5, "createdAt": 1, "expiresAt": 2 })).is_none());
    }
}
