//! `eslock run ID -- COMMAND...`: hold a lock while a child process runs.

use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use eslock::{Error, LockManager, LockOptions};
use serde_json::json;
use tokio::process::{Child, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::args::RunArgs;
use crate::{FAILURE, Fail};

/// The lock is held elsewhere: the command did not run.
pub(crate) const HELD_ELSEWHERE: u8 = 4;
/// The lease was lost while the command ran.
pub(crate) const LEASE_LOST: u8 = 5;

/// The signals passed on to the command.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    fn install() -> Result<Signals, Fail> {
        let install = |kind| signal(kind).map_err(|err| Fail::failed(format!("cannot handle signals: {err}")));
        Ok(Signals {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
            hangup: install(SignalKind::hangup())?,
        })
    }

    /// The next signal's number.
    async fn recv(&mut self) -> i32 {
        tokio::select! {
            Some(()) = self.interrupt.recv() => libc::SIGINT,
            Some(()) = self.terminate.recv() => libc::SIGTERM,
            Some(()) = self.hangup.recv() => libc::SIGHUP,
            else => std::future::pending().await,
        }
    }
}

fn send(child: &Child, signal: i32) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on our own child's pid; it has not been reaped yet
        // (`id()` is `None` once it has), so the pid cannot have been reused.
        unsafe { libc::kill(pid as libc::pid_t, signal) };
    }
}

/// What the lock's metadata says about this holder.
fn metadata(args: &RunArgs) -> serde_json::Value {
    let mut command = args.command.iter().map(|arg| arg.to_string_lossy()).collect::<Vec<_>>().join(" ");
    if command.chars().count() > 200 {
        command = command.chars().take(200).chain("...".chars()).collect();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|name| name.trim().to_string()).ok().or_else(|| std::env::var("HOSTNAME").ok());
    json!({ "host": host, "pid": std::process::id(), "command": command })
}

fn exit_status(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.saturating_add(signal as u8),
        (None, None) => FAILURE,
    }
}

pub(crate) async fn run(manager: &LockManager, args: &RunArgs) -> Result<u8, Fail> {
    let mut signals = Signals::install()?;
    let mut options = LockOptions::default().ttl(args.ttl).metadata(metadata(args));
    if let Some(wait) = args.wait {
        options = options.wait(wait);
    }
    let lease = tokio::select! {
        lease = manager.acquire(&args.lock_id, options) => match lease {
            Ok(lease) => lease,
            Err(Error::Acquisition(held)) => {
                eprintln!("eslock: {held}");
                return Ok(HELD_ELSEWHERE);
            }
            Err(err) => return Err(err.into()),
        },
        // Stopped while waiting for the lock: a grant that comes late is
        // given back by the library; `flush` waits for that.
        number = signals.recv() => {
            manager.flush().await;
            return Ok(128 + number as u8);
        }
    };

    let (program, arguments) = args.command.split_first().expect("clap requires a command");
    let mut child = match Command::new(program).args(arguments).spawn() {
        Ok(child) => child,
        Err(err) => {
            eprintln!("eslock: cannot run {}: {err}", program.to_string_lossy());
            let _ = lease.release().await;
            manager.flush().await;
            return Ok(if err.kind() == ErrorKind::NotFound { 127 } else { 126 });
        }
    };

    let status = loop {
        tokio::select! {
            status = child.wait() => break status.map(exit_status),
            number = signals.recv() => send(&child, number),
            () = lease.lost() => {
                let reason = lease.lost_reason().unwrap_or_else(|| "lease lost".into());
                eprintln!("eslock: lost the lock \"{}\" ({reason}); sending SIGTERM to the command", args.lock_id);
                send(&child, libc::SIGTERM);
                if tokio::time::timeout(args.grace, child.wait()).await.is_err() {
                    eprintln!("eslock: the command is still running after {}; sending SIGKILL", humantime::format_duration(args.grace));
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                }
                break Ok(LEASE_LOST);
            }
        }
    };
    let status = status.map_err(|err| Fail::failed(format!("waiting for the command: {err}")))?;
    let released = lease.release().await;
    manager.flush().await;
    match released {
        // Not ours any more, though no renewal had noticed yet: the command
        // may have run while someone else held the lock.
        Ok(false) if status != LEASE_LOST => {
            eprintln!("eslock: the lock \"{}\" was no longer held when the command ended (force-released or expired)", args.lock_id);
            Ok(LEASE_LOST)
        }
        Ok(_) => Ok(status),
        Err(err) => {
            eprintln!("eslock: could not release the lock \"{}\" ({err}); its TTL will free it", args.lock_id);
            Ok(status)
        }
    }
}
