//! How locks are shown: aligned tables for people, JSON for scripts.

use std::time::{Duration, SystemTime};

use eslock::LockInfo;
use serde_json::{Value, json};

pub(crate) fn to_json(lock: &LockInfo) -> Value {
    json!({
        "lock_id": lock.lock_id.as_str(),
        "fencing_token": lock.fencing_token,
        "created_at": humantime::format_rfc3339_millis(lock.created_at).to_string(),
        "expires_at": humantime::format_rfc3339_millis(lock.expires_at).to_string(),
        "metadata": lock.metadata,
    })
}

/// `later - earlier` in whole seconds (`0s` when negative: clocks differ).
fn span(earlier: SystemTime, later: SystemTime) -> String {
    let span = later.duration_since(earlier).unwrap_or(Duration::ZERO);
    humantime::format_duration(Duration::from_secs(span.as_secs())).to_string()
}

const HEADER: [&str; 5] = ["LOCK ID", "FENCING TOKEN", "HELD FOR", "EXPIRES IN", "METADATA"];

fn row(lock: &LockInfo, now: SystemTime) -> Vec<String> {
    vec![
        lock.lock_id.to_string(),
        lock.fencing_token.map_or_else(|| "-".to_string(), |token| token.to_string()),
        span(lock.created_at, now),
        span(now, lock.expires_at),
        lock.metadata.to_string(),
    ]
}

/// The `list` and `get` table.
pub(crate) fn table(locks: &[LockInfo], now: SystemTime) -> String {
    let rows: Vec<Vec<String>> = locks.iter().map(|lock| row(lock, now)).collect();
    align(HEADER.iter().map(|cell| cell.to_string()).collect(), rows)
}

/// One `watch` refresh: the live locks, those acquired since `previous`
/// marked `+` (a new token, so a take-over counts too), then those gone since
/// `previous` marked `-`.
pub(crate) fn watch_table(locks: &[LockInfo], previous: Option<&[LockInfo]>, now: SystemTime) -> String {
    let held_before = |lock: &LockInfo| previous.is_none_or(|before| before.iter().any(|old| old.token == lock.token));
    let mut rows: Vec<Vec<String>> = locks
        .iter()
        .map(|lock| {
            let mark = if held_before(lock) { " " } else { "+" };
            [vec![mark.to_string()], row(lock, now)].concat()
        })
        .collect();
    for gone in previous.unwrap_or_default().iter().filter(|old| !locks.iter().any(|lock| lock.token == old.token)) {
        let mut cells = [vec!["-".to_string()], row(gone, now)].concat();
        cells[4] = if gone.is_expired_at(now) { "expired" } else { "released" }.to_string();
        rows.push(cells);
    }
    let header = std::iter::once(" ").chain(HEADER).map(String::from).collect();
    align(header, rows)
}

/// The `+N acquired, -M released` summary of a refresh.
pub(crate) fn changes(locks: &[LockInfo], previous: Option<&[LockInfo]>) -> Option<String> {
    let previous = previous?;
    let acquired = locks.iter().filter(|lock| !previous.iter().any(|old| old.token == lock.token)).count();
    let gone = previous.iter().filter(|old| !locks.iter().any(|lock| lock.token == old.token)).count();
    Some(format!("+{acquired} acquired, -{gone} released"))
}

fn align(header: Vec<String>, rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(id: &str, token: &str, now: SystemTime) -> LockInfo {
        LockInfo {
            lock_id: eslock::LockId::foreign(id).unwrap(),
            token: token.into(),
            created_at: now - Duration::from_secs(75),
            expires_at: now + Duration::from_secs(90),
            metadata: json!({ "host": "a" }),
            fencing_token: Some(7),
        }
    }

    #[test]
    fn table_aligns_columns() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut kibana = lock("kibana task", "k", now);
        kibana.fencing_token = None;
        let text = table(&[lock("reindex/logs", "t", now), kibana], now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("LOCK ID       FENCING TOKEN  HELD FOR  EXPIRES IN  METADATA"), "{text}");
        assert!(lines[1].starts_with("reindex/logs  7              1m 15s    1m 30s"), "{text}");
        assert!(lines[1].ends_with(r#"{"host":"a"}"#));
        assert!(lines[2].starts_with("kibana task   -  "), "{text}");
    }

    #[test]
    fn watch_marks_acquisitions_and_releases() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let before = [lock("a", "1", now), lock("b", "2", now)];
        let after = [lock("a", "1", now), lock("c", "3", now)];
        let text = watch_table(&after, Some(&before), now);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("   a "), "{text}");
        assert!(lines[2].starts_with("+  c "), "{text}");
        assert!(lines[3].starts_with("-  b ") && lines[3].contains("released"), "{text}");
        assert_eq!(changes(&after, Some(&before)).unwrap(), "+1 acquired, -1 released");
        assert!(!watch_table(&after, None, now).contains('+'), "the first refresh marks nothing");
    }
}
