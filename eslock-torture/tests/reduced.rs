//! The fault suite at reduced size, one test per scenario, against the
//! engine in `ELASTICSEARCH_URL` (`scripts/test` starts one). The full-size
//! run is `scripts/torture --full`.

use std::process::Command;

/// Scenarios start processes and nodes of their own: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn scenario(name: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    assert!(eslock_test_support::engine_url().is_some(), "ELASTICSEARCH_URL is not set: run scripts/test");
    let output = Command::new(env!("CARGO_BIN_EXE_eslock-torture")).args(["run", "--scenario", name]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(output.status.success(), "scenario {name} failed:\n{stderr}");
}

#[test]
fn contention() {
    scenario("contention");
}

#[test]
fn skewed_client_clocks() {
    scenario("skewed-clients");
}

#[test]
fn crash() {
    scenario("crash");
}

#[test]
fn network_faults() {
    scenario("network");
}

#[test]
fn engine_clock_steps() {
    scenario("engine-clock");
}

#[test]
fn node_loss() {
    scenario("node-loss");
}
