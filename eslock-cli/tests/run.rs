//! `eslock run ID -- COMMAND...` against the real engine: the lock is held
//! while the command runs and released after, the command's status comes
//! back, a held lock is status 4 (and the command never runs), signals reach
//! the command, and a lost lease stops it with status 5. Also `release`'s
//! question on a terminal, asked about a lock that `run` holds.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{all_output, command, eslock, eventually, index_args, text};
use eslock_test_support::{required_engine_url, unique_name};
use eslock::{LockManager, LockOptions};
use serde_json::Value;

struct Setup {
    args: Vec<String>,
    manager: LockManager,
}

fn setup() -> Setup {
    let url = required_engine_url();
    let index = unique_name("cli-run");
    let manager = eslock_test_support::manager_on(eslock_test_support::client_for(&url), &index);
    Setup { args: index_args(&url, &index), manager }
}

impl Setup {
    fn eslock(&self, extra: &[&str]) -> std::process::Output {
        eslock(&[self.args.iter().map(String::as_str).collect::<Vec<_>>(), extra.to_vec()].concat())
    }

    fn spawn(&self, extra: &[&str]) -> Child {
        command(&[self.args.iter().map(String::as_str).collect::<Vec<_>>(), extra.to_vec()].concat())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The lock as `eslock get --json` shows it, if held.
    fn get(&self, lock_id: &str) -> Option<Value> {
        let got = self.eslock(&["--json", "get", lock_id]);
        got.status.success().then(|| serde_json::from_slice(&got.stdout).unwrap())
    }
}

fn wait_for_exit(child: Child) -> (Option<i32>, String) {
    let output = child.wait_with_output().unwrap();
    (output.status.code(), text(&output.stderr))
}

fn temp_file(what: &str) -> String {
    std::env::temp_dir().join(unique_name(what)).to_str().unwrap().to_string()
}

#[test]
fn the_lock_is_held_while_the_command_runs_and_released_after() {
    let s = setup();
    let started = Instant::now();
    let child = s.spawn(&["run", "--ttl", "10s", "job/nightly", "--", "sh", "-c", "sleep 2; exit 7"]);
    assert!(eventually(Duration::from_secs(5), || s.get("job/nightly").is_some()), "the lock is taken");
    let held = s.get("job/nightly").expect("held while the command runs");
    assert_eq!(held["metadata"]["command"], "sh -c sleep 2; exit 7");
    assert_eq!(held["metadata"]["pid"], child.id());
    assert!(held["metadata"]["host"].is_string());
    assert!(held["fencing_token"].as_u64().is_some());

    // Someone else asking meanwhile: status 4, and their command never runs.
    let marker = temp_file("cli-run-never");
    let refused = s.eslock(&["run", "job/nightly", "--", "touch", &marker]);
    assert_eq!(refused.status.code(), Some(4), "{}", all_output(&refused));
    assert!(text(&refused.stderr).contains("job/nightly") && text(&refused.stderr).contains("held"), "{}", all_output(&refused));
    assert!(!std::path::Path::new(&marker).exists());

    let (status, stderr) = wait_for_exit(child);
    assert_eq!(status, Some(7), "the command's status comes back: {stderr}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(s.get("job/nightly"), None, "released once the command exited");
    assert_eq!(s.eslock(&["run", "job/nightly", "--", "true"]).status.code(), Some(0));
}

#[tokio::test]
async fn a_held_lock_is_status_4_unless_the_wait_outlasts_it() {
    let s = setup();
    let lease = s.manager.acquire("job/held", LockOptions::default()).await.unwrap();
    let held = tokio::task::spawn_blocking({
        let args = s.args.clone();
        move || eslock(&[args.iter().map(String::as_str).collect::<Vec<_>>(), vec!["run", "job/held", "--", "true"]].concat())
    })
    .await
    .unwrap();
    assert_eq!(held.status.code(), Some(4), "{}", all_output(&held));

    let args = s.args.clone();
    let waiting = tokio::task::spawn_blocking(move || {
        eslock(&[args.iter().map(String::as_str).collect::<Vec<_>>(), vec!["run", "--wait", "20s", "job/held", "--", "sh", "-c", "exit 3"]].concat())
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(lease.release().await.unwrap());
    let waited = waiting.await.unwrap();
    assert_eq!(waited.status.code(), Some(3), "ran after the wait, with the command's status: {}", all_output(&waited));
    s.manager.flush().await;
}

/// A signal to `eslock run` (SIGTERM from a supervisor, SIGINT from Ctrl-C)
/// reaches the command, and the lock is released once it has exited.
fn signal_reaches_the_command_and_the_lock_is_released(signal: i32, name: &str) {
    let s = setup();
    let marker = temp_file(&format!("cli-run-{name}"));
    let lock_id = format!("job/{name}");
    let script = format!("trap 'echo got-{name} > {marker}; kill $!; exit 9' {name}; sleep 30 & wait");
    let child = s.spawn(&["run", &lock_id, "--", "sh", "-c", &script]);
    assert!(eventually(Duration::from_secs(5), || s.get(&lock_id).is_some()));
    std::thread::sleep(Duration::from_millis(200)); // the shell has set its trap
    unsafe_kill(child.id(), signal);
    let (status, stderr) = wait_for_exit(child);
    assert_eq!(status, Some(9), "eslock exits with the command's status: {stderr}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), format!("got-{name}"));
    assert_eq!(s.get(&lock_id), None, "released after the command exited");
    let _ = std::fs::remove_file(marker);
}

#[test]
fn sigterm_reaches_the_command_and_the_lock_is_released() {
    signal_reaches_the_command_and_the_lock_is_released(libc::SIGTERM, "TERM");
}

#[test]
fn ctrl_c_reaches_the_command_and_the_lock_is_released() {
    signal_reaches_the_command_and_the_lock_is_released(libc::SIGINT, "INT");
}

#[test]
fn a_lost_lease_stops_the_command_with_status_5() {
    let s = setup();
    let marker = temp_file("cli-run-lost");
    let script = format!("trap 'echo stopped > {marker}; kill $!; exit 0' TERM; sleep 30 & wait");
    let child = s.spawn(&["run", "--ttl", "3s", "job/lost", "--", "sh", "-c", &script]);
    assert!(eventually(Duration::from_secs(5), || s.get("job/lost").is_some()));
    assert!(s.eslock(&["release", "job/lost"]).status.success());
    let started = Instant::now();
    let (status, stderr) = wait_for_exit(child);
    assert_eq!(status, Some(5), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(stderr.contains("lost the lock \"job/lost\""), "{stderr}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "stopped", "the command got SIGTERM");
    let _ = std::fs::remove_file(marker);

    // Force-released, and the command ends before a renewal notices: the
    // release at the end finds the lock gone, and says so with status 5.
    let child = s.spawn(&["run", "--ttl", "60s", "job/lost", "--", "sleep", "2"]);
    assert!(eventually(Duration::from_secs(5), || s.get("job/lost").is_some()));
    assert!(s.eslock(&["release", "job/lost"]).status.success());
    let (status, stderr) = wait_for_exit(child);
    assert_eq!(status, Some(5), "{stderr}");
    assert!(stderr.contains("no longer held"), "{stderr}");
}

/// On a terminal, `release` shows the holder and asks (`script` gives it one).
#[test]
fn release_asks_on_a_terminal() {
    let s = setup();
    let child = s.spawn(&["run", "job/asked", "--", "sleep", "30"]);
    assert!(eventually(Duration::from_secs(5), || s.get("job/asked").is_some()));
    let release = |answer: &str| {
        let line = [env!("CARGO_BIN_EXE_eslock")].into_iter().chain(s.args.iter().map(String::as_str)).chain(["release", "job/asked"]).collect::<Vec<_>>().join(" ");
        let mut script = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script(1) from util-linux");
        std::thread::sleep(Duration::from_millis(1500));
        use std::io::Write;
        writeln!(script.stdin.take().unwrap(), "{answer}").unwrap();
        let output = script.wait_with_output().unwrap();
        (output.status.code(), text(&output.stdout))
    };
    let (status, shown) = release("n");
    assert_eq!(status, Some(1), "{shown}");
    assert!(shown.contains("sleep 30") && shown.contains("[y/N]") && shown.contains("not released"), "{shown}");
    assert!(s.get("job/asked").is_some());
    let (status, shown) = release("y");
    assert_eq!(status, Some(0), "{shown}");
    assert_eq!(s.get("job/asked"), None);
    unsafe_kill(child.id(), libc::SIGTERM);
    let _ = wait_for_exit(child);
}

#[test]
fn a_command_that_cannot_start_releases_the_lock() {
    let s = setup();
    let missing = s.eslock(&["run", "job/missing", "--", "/nonexistent/eslock-test-command"]);
    assert_eq!(missing.status.code(), Some(127), "{}", all_output(&missing));
    assert!(text(&missing.stderr).contains("cannot run"));
    assert_eq!(s.get("job/missing"), None);
    let bad_id = s.eslock(&["run", "bad id", "--", "true"]);
    assert_eq!(bad_id.status.code(), Some(3));
    assert!(text(&bad_id.stderr).contains("invalid lock id"));
}

fn unsafe_kill(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a child this test spawned and has not reaped.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
}
