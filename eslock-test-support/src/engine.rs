//! Wall clocks that tests control, through libfaketime (Debian package
//! `faketime`): a search node whose clock a test steps while it runs, and
//! child processes whose clock is off by a fixed offset. Monotonic clocks
//! stay real in both, so timeouts and timers behave.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment that keeps monotonic clocks real under libfaketime (the
/// second name is the one used before libfaketime 0.9.8).
const REAL_MONOTONIC: [(&str, &str); 2] = [("FAKETIME_DONT_FAKE_MONOTONIC", "1"), ("DONT_FAKE_MONOTONIC", "1")];

/// The libfaketime library: `$LIBFAKETIME`, else where Debian installs it.
///
/// # Panics
/// When it is not there.
pub fn libfaketime() -> PathBuf {
    let path = std::env::var_os("LIBFAKETIME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(format!("/usr/lib/{}-linux-gnu/faketime/libfaketime.so.1", std::env::consts::ARCH))
    });
    assert!(
        path.is_file(),
        "libfaketime not found at {} (install the Debian package faketime, or set LIBFAKETIME)",
        path.display()
    );
    path
}

/// A command that runs `program` with a wall clock `offset` from the real one,
/// in libfaketime's relative format: `"+3600"` or `"-90"` (seconds), `"+1h"`,
/// `"-10m"`, `"+2d"`. Add arguments and environment as with any `Command`;
/// for example re-run the current test binary (`std::env::current_exe()`)
/// with a test name to run that test under a skewed clock.
pub fn faketime_command(offset: &str, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env("LD_PRELOAD", libfaketime()).env("FAKETIME", offset).envs(REAL_MONOTONIC);
    command
}

/// A one-node cluster of its own (`scripts/search-node start --faketime`)
/// whose wall clock the test steps while it runs, of the engine named by
/// `ESLOCK_ENGINE` (`opensearch`, `elasticsearch` or `opensearch3`; set by
/// `scripts/test` to the engine of the current run), else OpenSearch 2.19: painless
/// scripts' `System.currentTimeMillis()` reads the real time shifted by the
/// current offset. The node stops when this is dropped, or when the test
/// process exits.
pub struct SteppedClockNode {
    cluster: String,
    url: String,
    clock_file: PathBuf,
}

impl SteppedClockNode {
    /// Starts the node with no offset; blocks until it is healthy (about
    /// 5-20 s).
    ///
    /// # Panics
    /// When the node does not start; the message has the launcher's output.
    pub fn start() -> SteppedClockNode {
        let cluster = crate::unique_name("stepped-clock");
        let clock_file = std::env::temp_dir().join(format!("{cluster}.faketime"));
        let node = SteppedClockNode { cluster, url: String::new(), clock_file };
        node.reset();
        let output = node
            .search_node("start")
            .args(engine_arg())
            .arg("--faketime")
            .arg(&node.clock_file)
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .output()
            .expect("running scripts/search-node");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let url = stdout.lines().last().unwrap_or_default().trim();
        assert!(
            output.status.success() && url.starts_with("http"),
            "scripts/search-node start --cluster {} --faketime failed ({}):\n{stdout}{}",
            node.cluster,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let mut node = node;
        node.url = url.to_string();
        node
    }

    /// The node's HTTP URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The cluster name, for `scripts/search-node stop-node 1 --cluster NAME` and the like.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Sets the node's wall clock to the real time plus `offset_seconds`
    /// (negative: behind). Takes effect at once, also in running scripts.
    pub fn step(&self, offset_seconds: i64) {
        // Replaced whole (write, then rename), so the node never reads half a file.
        let partial = self.clock_file.with_extension("partial");
        std::fs::write(&partial, format!("{offset_seconds:+}\n"))
            .and_then(|()| std::fs::rename(&partial, &self.clock_file))
            .unwrap_or_else(|err| panic!("writing {}: {err}", self.clock_file.display()));
    }

    /// Back to the real time.
    pub fn reset(&self) {
        self.step(0);
    }

    fn search_node(&self, command: &str) -> Command {
        let mut search_node = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/search-node"));
        search_node.arg(command).arg("--cluster").arg(&self.cluster);
        search_node
    }
}

/// `--engine E` when `ESLOCK_ENGINE` names one, so that the node is of the
/// engine the rest of the run uses; else nothing (the script's default).
fn engine_arg() -> Vec<String> {
    match std::env::var("ESLOCK_ENGINE") {
        Ok(engine) if !engine.trim().is_empty() => vec!["--engine".to_string(), engine.trim().to_string()],
        _ => Vec::new(),
    }
}

impl Drop for SteppedClockNode {
    fn drop(&mut self) {
        // Also when `start` panicked: a half-started node is stopped too.
        let _ = self.search_node("stop").output();
        let _ = std::fs::remove_file(&self.clock_file);
    }
}
