//! Lock documents as stored in the index, and their conversion to `LockInfo`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::id::LockId;
use crate::info::LockInfo;

/// What one lock document says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Document {
    /// Released: the document only keeps the id's fencing counter.
    Released,
    /// Someone holds, or held until `expires_at`, the lock.
    Held(LockInfo),
}

impl Document {
    /// Reads a document's `_source`; `None` when it is unreadable (a field of
    /// the wrong type or an unparseable date).
    pub(crate) fn read(lock_id: &LockId, source: &Value) -> Option<Document> {
        let token = match source.get("token") {
            None | Some(Value::Null) => return Some(Document::Released),
            Some(token) => token.as_str()?,
        };
        let fencing_token = source.get("fencingToken").and_then(Value::as_u64);
        let fencing_owner = source.get("fencingTokenOwner").and_then(Value::as_str);
        Some(Document::Held(LockInfo {
            lock_id: lock_id.clone(),
            token: token.to_string(),
            created_at: instant(source.get("createdAt")?)?,
            expires_at: instant(source.get("expiresAt")?)?,
            metadata: match source.get("metadata") {
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(metadata) => metadata.clone(),
            },
            // A counter issued to an earlier holder is not this holder's.
            fencing_token: fencing_token.filter(|_| fencing_owner == Some(token)),
        }))
    }

    /// Reads a search hit (`_id` and `_source`); `None` when it is
    /// unreadable. Another program may have written any id there.
    pub(crate) fn from_hit(hit: &Value) -> Option<Document> {
        let lock_id = LockId::foreign(hit["_id"].as_str()?).ok()?;
        Document::read(&lock_id, &hit["_source"])
    }

    /// The lock, unless released.
    pub(crate) fn held(self) -> Option<LockInfo> {
        match self {
            Document::Released => None,
            Document::Held(info) => Some(info),
        }
    }
}

/// Dates are ISO-8601 instants (Kibana's format); epoch millis are accepted too.
pub(crate) fn instant(value: &Value) -> Option<SystemTime> {
    match value {
        Value::String(text) => humantime::parse_rfc3339_weak(text).ok(),
        Value::Number(millis) => UNIX_EPOCH.checked_add(Duration::from_millis(millis.as_u64()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn a() -> LockId {
        LockId::new("a").unwrap()
    }

    #[test]
    fn reads_kibana_documents() {
        let info = Document::read(
            &a(),
            &json!({
                "token": "t", "metadata": { "k": 1 },
                "createdAt": "2025-01-02T03:04:05Z", "expiresAt": "2025-01-02T03:04:35.250Z"
            }),
        )
        .unwrap()
        .held()
        .unwrap();
        assert_eq!(info.expires_at.duration_since(info.created_at).unwrap(), Duration::from_millis(30_250));
        assert_eq!(info.metadata, json!({ "k": 1 }));
        assert_eq!(info.fencing_token, None);
        assert!(Document::read(&a(), &json!({ "token": "t" })).is_none());
        assert!(Document::read(&a(), &json!({ "token": 5, "createdAt": 1, "expiresAt": 2 })).is_none());
        assert!(Document::read(&a(), &json!({ "token": "t", "createdAt": "+12026-01-01T00:00:00Z", "expiresAt": 2 })).is_none());
    }

    #[test]
    fn fencing_token_belongs_to_its_owner() {
        let doc = |owner: &str| {
            json!({ "token": "t2", "createdAt": 1, "expiresAt": 2, "fencingToken": 7, "fencingTokenOwner": owner })
        };
        assert_eq!(Document::read(&a(), &doc("t2")).unwrap().held().unwrap().fencing_token, Some(7));
        assert_eq!(Document::read(&a(), &doc("t1")).unwrap().held().unwrap().fencing_token, None);
        assert_eq!(Document::read(&a(), &json!({ "fencingToken": 7, "expiresAt": 1 })), Some(Document::Released));
        let hit = json!({ "_id": "b", "_source": doc("t2") });
        assert_eq!(Document::from_hit(&hit).unwrap().held().unwrap().lock_id, "b");
        assert!(Document::from_hit(&json!({ "_source": doc("t2") })).is_none());
    }
}
