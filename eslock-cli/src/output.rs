//! How locks are shown: an aligned table for people, JSON for scripts.

use std::time::{Duration, SystemTime};

use eslock::LockInfo;
use serde_json::{Value, json};

pub fn to_json(lock: &LockInfo) -> Value {
    json!({
        "lock_id": lock.lock_id,
        "fencing_token": lock.fencing_token,
        "created_at": humantime::format_rfc3339_millis(lock.created_at).to_string(),
        "expires_at": humantime::format_rfc3339_millis(lock.expires_at).to_string(),
        "metadata": lock.metadata,
    })
}

/// Seconds until expiry, rounded, for the table.
fn expires_in(lock: &LockInfo, now: SystemTime) -> String {
    let left = lock.expires_at.duration_since(now).unwrap_or(Duration::ZERO);
    humantime::format_duration(Duration::from_secs(left.as_secs())).to_string()
}

pub fn table(locks: &[LockInfo], now: SystemTime) -> String {
    let header = ["LOCK ID", "FENCING TOKEN", "EXPIRES IN", "CREATED AT", "METADATA"].map(String::from);
    let rows: Vec<[String; 5]> = locks
        .iter()
        .map(|lock| {
            [
                lock.lock_id.clone(),
                lock.fencing_token.map_or_else(|| "-".to_string(), |token| token.to_string()),
                expires_in(lock, now),
                humantime::format_rfc3339_seconds(lock.created_at).to_string(),
                lock.metadata.to_string(),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|cell| cell.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let cells: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let lock = LockInfo {
            lock_id: "reindex/logs".into(),
            token: "t".into(),
            created_at: now,
            expires_at: now + Duration::from_secs(90),
            metadata: json!({ "host": "a" }),
            fencing_token: Some(7),
        };
        let text = table(&[lock], now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("LOCK ID       FENCING TOKEN  EXPIRES IN"));
        assert!(lines[1].starts_with("reindex/logs  7              1m 30s"));
        assert!(lines[1].ends_with(r#"{"host":"a"}"#));
    }
}
