//! `eslock watch`: the live locks, refreshed in place until Ctrl-C.

use std::io::{IsTerminal, Write};
use std::time::SystemTime;

use eslock::{LockInfo, LockManager};

use crate::args::WatchArgs;
use crate::{FAILURE, Fail, output};

/// Cursor home and clear screen: redraw the table in place on a terminal.
const CLEAR: &str = "\x1b[H\x1b[2J";

pub(crate) async fn watch(manager: &LockManager, args: &WatchArgs) -> Result<u8, Fail> {
    let iterations = if args.once { Some(1) } else { args.iterations };
    let in_place = std::io::stdout().is_terminal();
    let index = manager.index().unwrap_or_default().to_string();
    let mut previous: Option<Vec<LockInfo>> = None;
    let mut status = 0;
    for refresh in 1.. {
        let now = SystemTime::now();
        let mut frame = format!("{index} at {}", humantime::format_rfc3339_seconds(now));
        match manager.list().await {
            Ok(mut locks) => {
                locks.retain(|lock| args.filter.keeps(lock.lock_id.as_str()));
                let count = match locks.len() {
                    1 => "1 lock".to_string(),
                    n => format!("{n} locks"),
                };
                let changes = output::changes(&locks, previous.as_deref()).map(|c| format!(" ({c})")).unwrap_or_default();
                frame += &format!(": {count}{changes}\n{}", output::watch_table(&locks, previous.as_deref(), now));
                previous = Some(locks);
                status = 0;
            }
            // Keep watching through a failed refresh (a node restarting).
            Err(err) => {
                frame += &format!(": eslock: {err}");
                status = FAILURE;
            }
        }
        let mut stdout = std::io::stdout().lock();
        let shown = if in_place { writeln!(stdout, "{CLEAR}{frame}") } else { writeln!(stdout, "{frame}\n") };
        // A closed pipe (`eslock watch | head`) ends the watch.
        if shown.and_then(|()| stdout.flush()).is_err() || iterations.is_some_and(|n| refresh >= n) {
            break;
        }
        drop(stdout);
        tokio::select! {
            () = tokio::time::sleep(args.interval) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(status)
}
