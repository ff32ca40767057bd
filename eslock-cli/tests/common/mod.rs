//! What the CLI's tests share beyond `eslock-test-support`: the binary.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary, with no `ELASTICSEARCH_*` variables from the test's environment.
pub(crate) fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eslock"));
    command.args(args).stdin(Stdio::null());
    for var in ["ELASTICSEARCH_URL", "ELASTICSEARCH_API_KEY", "ELASTICSEARCH_USERNAME", "ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_CA_CERT"] {
        command.env_remove(var);
    }
    command
}

pub(crate) fn eslock(args: &[&str]) -> Output {
    command(args).output().expect("the binary runs")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Standard output and error together, for messages.
pub(crate) fn all_output(output: &Output) -> String {
    format!("{}{}", text(&output.stdout), text(&output.stderr))
}

/// The engine URL and a fresh lock index, as the first arguments.
pub(crate) fn index_args(url: &str, index: &str) -> Vec<String> {
    ["--url", url, "--index", index].map(String::from).to_vec()
}

/// Polls `check` until it holds, for at most `limit`.
pub(crate) fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
