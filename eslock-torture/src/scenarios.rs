//! The scenarios: each runs workers against a real engine while it injects
//! one kind of fault, then checks the history and reports its figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use eslock::{LockManager, LockOptions};
use eslock_test_support::engine::{SteppedClockNode, faketime_command};
use eslock_test_support::proxy::{FaultProxy, Mode};
use eslock_test_support::unique_name;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::history::{self, Event, Verdict};
use crate::resource::Counter;
use crate::worker::{self, Recorder, WorkerConfig};

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Minutes on a 2-core machine: what the test command runs.
    Reduced,
    /// The published figures: 10,000+ acquisitions and every fault.
    Full,
}

impl Scale {
    fn pick<T>(self, reduced: T, full: T) -> T {
        match self {
            Scale::Reduced => reduced,
            Scale::Full => full,
        }
    }
}

/// One scenario's outcome, for the report.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The scenario's name, the report's heading.
    pub name: &'static str,
    /// The fault injected, in a few words.
    pub injected: String,
    /// What was measured, as (name, value) pairs in report order.
    pub figures: Vec<(String, String)>,
    /// Every broken guarantee or unmet requirement found; empty when it passed.
    pub failures: Vec<String>,
}

impl Outcome {
    fn new(name: &'static str, injected: impl Into<String>) -> Self {
        Outcome { name, injected: injected.into(), figures: Vec::new(), failures: Vec::new() }
    }

    fn figure(&mut self, name: &str, value: impl ToString) {
        self.figures.push((name.to_string(), value.to_string()));
    }

    fn require(&mut self, ok: bool, failure: impl Into<String>) {
        if !ok {
            self.failures.push(failure.into());
        }
    }

    fn verdict(&mut self, verdict: &Verdict) {
        self.figure("acquisitions", verdict.holds);
        self.figure("counter writes", verdict.writes);
        self.figure("overlaps", verdict.overlaps.len());
        self.figure("lost updates", verdict.lost_updates);
        self.figure("fencing violations", verdict.fencing_violations.len());
        self.failures.extend(verdict.overlaps.iter().take(5).map(|o| format!("overlap: {o}")));
        self.failures.extend(verdict.fencing_violations.iter().take(5).map(|f| format!("fencing: {f}")));
        self.require(verdict.lost_updates == 0, format!("{} lost updates", verdict.lost_updates));
    }

    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Where a run keeps its histories and counters.
struct Workspace {
    dir: PathBuf,
}

impl Workspace {
    fn new(name: &str) -> Workspace {
        let dir = std::env::temp_dir().join(unique_name(&format!("eslock-torture-{name}")));
        std::fs::create_dir_all(&dir).expect("work directory");
        Workspace { dir }
    }

    fn events(&self) -> Vec<Event> {
        let mut events = Vec::new();
        for entry in std::fs::read_dir(&self.dir).expect("work directory").flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "jsonl") {
                let text = std::fs::read_to_string(&path).expect("history");
                // A killed worker may leave half a line at the end.
                events.extend(text.lines().filter_map(|line| serde_json::from_str(line).ok()));
            }
        }
        events
    }

    fn counters(&self, ids: &[String]) -> BTreeMap<String, u64> {
        ids.iter().map(|id| (id.clone(), Counter::new(&self.dir, id).value())).collect()
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        // Kept on request, to study a failed run's histories.
        if std::env::var_os("ESLOCK_TORTURE_KEEP").is_some() {
            eprintln!("torture: histories kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A worker process: this program, `worker <config>`, under a wall clock
/// `offset` from ours (libfaketime) when one is given.
fn worker_process(config: &WorkerConfig, clock_offset: Option<&str>) -> tokio::process::Child {
    let exe = std::env::current_exe().expect("own path");
    let mut command = match clock_offset {
        Some(offset) => faketime_command(offset, &exe),
        None => std::process::Command::new(&exe),
    };
    command.arg("worker").arg(serde_json::to_string(config).expect("config"));
    tokio::process::Command::from(command).kill_on_drop(true).spawn().expect("worker process")
}

fn contention_config(name: &str, url: &str, index: &str, ids: &[String], work: &Workspace, attempts_per_task: usize) -> WorkerConfig {
    WorkerConfig {
        name: name.to_string(),
        url: url.to_string(),
        index: index.to_string(),
        ids: ids.to_vec(),
        operator_ids: Vec::new(),
        tasks: 8,
        attempts_per_task,
        ttl_ms: (1_000, 3_000),
        hold_ms_max: 15,
        request_timeout_ms: 5_000,
        dir: work.dir.clone(),
    }
}

/// Runs worker processes to the end while `operator` force-releases the
/// `operator_ids` now and then; returns the elapsed time.
async fn run_workers(
    configs: Vec<(WorkerConfig, Option<&str>)>,
    manager: &LockManager,
    recorder: &Recorder,
    operator_ids: &[String],
) -> Duration {
    let started = Instant::now();
    let mut children: Vec<_> = configs.iter().map(|(config, offset)| worker_process(config, *offset)).collect();
    let operator = async {
        if operator_ids.is_empty() {
            return std::future::pending::<()>().await;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            for id in operator_ids {
                let sent = history::now();
                let released = manager.force_release(id).await.unwrap_or(false);
                recorder.record(&Event::ForceRelease { lock_id: id.clone(), sent, answered: history::now(), released });
            }
        }
    };
    let waited = async {
        for child in &mut children {
            let status = child.wait().await.expect("worker exit");
            assert!(status.success(), "a worker process failed: {status}");
        }
    };
    tokio::select! {
        () = waited => {}
        () = operator => {}
    }
    started.elapsed()
}

fn ids(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}-{n}")).collect()
}

/// 16 contenders in 2 processes on a handful of ids, every way of holding
/// a lock, cancellations, and an operator force-releasing one id.
pub async fn contention(url: &str, scale: Scale) -> Outcome {
    let mut outcome = Outcome::new(
        "contention",
        "16 contenders in 2 processes, 5 lock ids, TTL 1-3 s, hold 0-15 ms; acquire/release, with_lease, with_lock, \
         wait, timeouts around acquire and around the work, and an operator force-releasing one id every 250 ms",
    );
    let work = Workspace::new("contention");
    let index = unique_name("torture-contention");
    let mut lock_ids = ids("c", 4);
    let operator_ids = vec!["operated".to_string()];
    lock_ids.extend(operator_ids.iter().cloned());
    let configs: Vec<_> = ["p1", "p2"]
        .iter()
        .map(|name| {
            let mut config = contention_config(name, url, &index, &lock_ids, &work, scale.pick(80, 1500));
            config.operator_ids = operator_ids.clone();
            (config, None)
        })
        .collect();
    let manager = worker::manager(url, &index, Duration::from_secs(5));
    let recorder = Recorder::new(&work.dir.join("history-operator.jsonl"));
    let elapsed = run_workers(configs, &manager, &recorder, &operator_ids).await;
    let verdict = history::check(&work.events(), &work.counters(&lock_ids), false);
    outcome.verdict(&verdict);
    outcome.figure("run time", format!("{:.1} s", elapsed.as_secs_f64()));
    outcome.figure("acquisitions per second", format!("{:.0}", verdict.holds as f64 / elapsed.as_secs_f64()));
    outcome.require(verdict.holds >= scale.pick(300, 10_000), format!("only {} acquisitions", verdict.holds));
    outcome
}

/// Clients whose wall clock is an hour ahead or behind contend with one
/// whose clock is right: clocks of clients decide nothing.
pub async fn skewed_clients(url: &str, scale: Scale) -> Outcome {
    let mut outcome = Outcome::new("skewed client clocks", "3 processes with wall clocks +0, +1 h and -1 h (libfaketime) contending");
    let work = Workspace::new("skewed");
    let index = unique_name("torture-skewed");
    let lock_ids = ids("s", 3);
    let configs = [("now", None), ("ahead", Some("+3600")), ("behind", Some("-3600"))]
        .into_iter()
        .map(|(name, offset)| {
            let mut config = contention_config(name, url, &index, &lock_ids, &work, scale.pick(40, 200));
            config.tasks = 4;
            (config, offset)
        })
        .collect();
    let manager = worker::manager(url, &index, Duration::from_secs(5));
    let recorder = Recorder::new(&work.dir.join("history-operator.jsonl"));
    let elapsed = run_workers(configs, &manager, &recorder, &[]).await;
    outcome.verdict(&history::check(&work.events(), &work.counters(&lock_ids), false));
    outcome.figure("run time", format!("{:.1} s", elapsed.as_secs_f64()));
    outcome
}

/// The engine's clock steps back and forth while locks are held and
/// contended. A step forward may end leases early (inherent to leases), so
/// overlaps are not counted; fencing tokens must still increase, and the
/// fenced counter must lose nothing.
pub async fn engine_clock_steps(scale: Scale) -> Outcome {
    let mut outcome = Outcome::new(
        "engine clock steps",
        "engine node under libfaketime stepped -10 min, back, -20 min, back while 2 processes contend (fenced writes only)",
    );
    let node = tokio::task::spawn_blocking(SteppedClockNode::start).await.expect("node start");
    let work = Workspace::new("clock");
    let index = unique_name("torture-clock");
    let lock_ids = ids("k", 3);
    let configs = ["p1", "p2"]
        .iter()
        .map(|name| {
            let mut config = contention_config(name, node.url(), &index, &lock_ids, &work, scale.pick(40, 150));
            config.operator_ids = lock_ids.clone();
            (config, None)
        })
        .collect();
    let manager = worker::manager(node.url(), &index, Duration::from_secs(5));
    manager.setup().await.expect("setup");
    let recorder = Recorder::new(&work.dir.join("history-operator.jsonl"));
    let stepping = async {
        for offset in [-600, 0, -1200, 0] {
            tokio::time::sleep(Duration::from_millis(scale.pick(700, 3_000))).await;
            node.step(offset);
        }
        std::future::pending::<()>().await
    };
    let elapsed = tokio::select! {
        elapsed = run_workers(configs, &manager, &recorder, &[]) => elapsed,
        () = stepping => unreachable!(),
    };
    let verdict = history::check(&work.events(), &work.counters(&lock_ids), true);
    outcome.verdict(&verdict);
    outcome.figure("run time", format!("{:.1} s", elapsed.as_secs_f64()));
    outcome
}

/// A holder process killed with SIGKILL mid-hold: another process gets the
/// lock within TTL + 1 s, with a larger fencing token.
pub async fn crash(url: &str, scale: Scale) -> Outcome {
    let ttl = Duration::from_secs(2);
    let mut outcome = Outcome::new("crash", format!("holder process killed with SIGKILL mid-hold (TTL {} s)", ttl.as_secs()));
    let index = unique_name("torture-crash");
    let manager = worker::manager(url, &index, Duration::from_secs(5));
    let mut worst = Duration::ZERO;
    for round in 0..scale.pick(2, 5) {
        let exe = std::env::current_exe().expect("own path");
        let mut holder = tokio::process::Command::new(exe)
            .args(["hold", url, &index, "crash", &ttl.as_millis().to_string()])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("holder process");
        let mut lines = BufReader::new(holder.stdout.take().expect("stdout")).lines();
        let line = lines.next_line().await.ok().flatten().unwrap_or_default();
        let held_fencing: u64 = line.strip_prefix("held ").and_then(|n| n.trim().parse().ok()).unwrap_or(0);
        outcome.require(held_fencing > 0, format!("round {round}: the holder did not report its lock: {line:?}"));
        let killed = Instant::now();
        holder.start_kill().expect("SIGKILL");
        let _ = holder.wait().await;
        match manager.acquire("crash", LockOptions::default().wait(ttl * 5)).await {
            Ok(lease) => {
                let after = killed.elapsed();
                worst = worst.max(after);
                outcome.require(after <= ttl + Duration::from_secs(1), format!("round {round}: next acquisition {after:?} after the kill"));
                outcome.require(lease.fencing_token() > held_fencing, format!("round {round}: fencing token went back"));
                let _ = lease.release().await;
            }
            Err(err) => outcome.failures.push(format!("round {round}: no acquisition after the kill: {err}")),
        }
    }
    outcome.figure("SIGKILL to next acquisition (worst)", format!("{} ms", worst.as_millis()));
    outcome
}

/// The process `crash` kills: holds a lock, says so, and waits.
pub async fn hold_until_killed(url: &str, index: &str, lock_id: &str, ttl_ms: u64) {
    let manager = worker::manager(url, index, Duration::from_secs(5));
    let lease = manager.acquire(lock_id, LockOptions::default().ttl(Duration::from_millis(ttl_ms)).wait(Duration::from_secs(30))).await;
    let lease = lease.expect("the holder gets the lock");
    println!("held {}", lease.fencing_token());
    std::future::pending::<()>().await
}

/// Network faults between one holder and the engine (a proxy of ours):
/// the holder sees `lost()` before another holder can get in, calls fail
/// with typed errors in bounded time, and all works again once healed.
pub async fn network(url: &str) -> Outcome {
    let ttl = Duration::from_secs(2);
    let mut outcome = Outcome::new(
        "network faults",
        "proxy between one holder and the engine: replies delayed 3 s, replies held back, blackhole, connection resets (TTL 2 s, request timeout 500 ms)",
    );
    let index = unique_name("torture-network");
    let direct = worker::manager(url, &index, Duration::from_secs(5));
    direct.setup().await.expect("setup");
    for (name, mode) in [
        ("delayed replies", Mode::DelayReplies(Duration::from_secs(3))),
        ("held replies", Mode::HoldReplies),
        ("blackhole", Mode::Blackhole),
        ("resets", Mode::Reset),
    ] {
        let proxy = FaultProxy::start(url).await;
        let cut_off = worker::manager(proxy.url(), &index, Duration::from_millis(500));
        let id = format!("net-{}", name.replace(' ', "-"));
        let lease = match cut_off.acquire(&id, LockOptions::default().ttl(ttl)).await {
            Ok(lease) => lease,
            Err(err) => {
                outcome.failures.push(format!("{name}: acquire before the fault: {err}"));
                continue;
            }
        };
        let fault = Instant::now();
        proxy.set_mode(mode);
        let lost_at = async {
            lease.lost().await;
            fault.elapsed()
        };
        let other = async {
            let other = direct.acquire(&id, LockOptions::default().wait(Duration::from_secs(15))).await;
            (other, fault.elapsed())
        };
        let call = async {
            let started = Instant::now();
            let result = tokio::time::timeout(Duration::from_secs(20), cut_off.get(&id)).await;
            (result, started.elapsed())
        };
        let (lost_after, (other, other_after), (call_result, call_after)) = tokio::join!(lost_at, other, call);
        outcome.figure(&format!("{name}: fault to lost()"), format!("{} ms", lost_after.as_millis()));
        outcome.figure(&format!("{name}: fault to next holder"), format!("{} ms", other_after.as_millis()));
        outcome.figure(&format!("{name}: failing call returned after"), format!("{} ms", call_after.as_millis()));
        outcome.require(other.is_ok(), format!("{name}: nobody got the lock after the fault"));
        outcome.require(lost_after < other_after, format!("{name}: another holder got in before lost() fired"));
        outcome.require(lost_after <= ttl, format!("{name}: lost() only after {lost_after:?}"));
        let typed = matches!(&call_result, Ok(Err(eslock::Error::Backend(_))) | Ok(Ok(_)));
        outcome.require(typed && call_after < Duration::from_secs(15), format!("{name}: the call gave {call_result:?} after {call_after:?}"));
        if let Ok(other) = other {
            let _ = other.release().await;
        }
        drop(lease);
        proxy.drop_held();
        proxy.set_mode(Mode::Pass);
        let healed = cut_off.acquire(format!("{id}-healed"), LockOptions::default().wait(Duration::from_secs(10))).await;
        match healed {
            Ok(healed) => drop(healed.release().await),
            Err(err) => outcome.failures.push(format!("{name}: not working after the fault healed: {err}")),
        }
    }
    outcome
}

/// A 3-node cluster loses the node with the lock index's primary while locks
/// are held and contended, and gets it back.
pub async fn node_loss(scale: Scale) -> Outcome {
    let mut outcome = Outcome::new(
        "node loss",
        "3-node cluster (one replica): the node holding the lock index's primary is stopped while 2 processes contend, then started again",
    );
    let cluster = Cluster::start(3).await;
    let work = Workspace::new("node-loss");
    let index = unique_name("torture-nodes");
    let lock_ids = ids("n", 3);
    let manager = worker::manager(&cluster.url, &index, Duration::from_secs(5));
    manager.setup().await.expect("setup");
    wait_for_green(&cluster.url, &format!("{index}-000001")).await;
    let configs = ["p1", "p2"]
        .iter()
        .map(|name| {
            let mut config = contention_config(name, &cluster.url, &index, &lock_ids, &work, scale.pick(60, 300));
            config.ttl_ms = (2_000, 4_000);
            (config, None)
        })
        .collect();
    let recorder = Recorder::new(&work.dir.join("history-operator.jsonl"));
    let fault = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let primary = primary_node(&cluster.url, &format!("{index}-000001")).await;
        let stopped = history::now();
        cluster.node(&["stop-node", &primary.to_string()]).await;
        tokio::time::sleep(Duration::from_secs(scale.pick(8, 20))).await;
        cluster.node(&["start-node", &primary.to_string()]).await;
        (primary, stopped, history::now())
    };
    let (elapsed, (primary, stopped, restarted)) = tokio::join!(run_workers(configs, &manager, &recorder, &[]), fault);
    let events = work.events();
    let verdict = history::check(&events, &work.counters(&lock_ids), false);
    outcome.verdict(&verdict);
    // The unavailability window: the longest time without any acquisition
    // from the moment the node stopped.
    let mut acquired: Vec<u64> = events
        .iter()
        .filter_map(|event| match event {
            Event::Hold(hold) if hold.acquired >= stopped => Some(hold.acquired),
            _ => None,
        })
        .collect();
    acquired.sort_unstable();
    let window = acquired.first().map(|first| first - stopped).into_iter().chain(acquired.windows(2).map(|w| w[1] - w[0])).max();
    outcome.figure("stopped node", format!("node{primary} (had the primary)"));
    outcome.figure("node down for", format!("{:.1} s", (restarted - stopped) as f64 / 1e9));
    outcome.figure(
        "unavailability window (longest time without an acquisition)",
        window.map_or("no acquisition after the stop".into(), |w| format!("{} ms", w / 1_000_000)),
    );
    outcome.figure("run time", format!("{:.1} s", elapsed.as_secs_f64()));
    outcome.require(!acquired.is_empty(), "no acquisition after the node stopped");
    outcome
}

/// A cluster of our own, started with `scripts/search-node`, stopped on drop.
struct Cluster {
    name: String,
    /// Every node's URL, separated by commas.
    url: String,
}

impl Cluster {
    async fn start(nodes: usize) -> Cluster {
        let count = nodes;
        let name = unique_name("torture-cluster");
        let output = search_node(&name, &["start", "--nodes", &count.to_string(), "--parent-pid", &std::process::id().to_string()])
            .output()
            .await
            .expect("scripts/search-node");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let url = stdout.lines().last().unwrap_or_default().trim().to_string();
        assert!(output.status.success() && url.starts_with("http"), "cluster start failed: {}", String::from_utf8_lossy(&output.stderr));
        // Every node's address, so that clients go on when one node is down.
        let (_, found) = eslock_test_support::raw_request(&eslock_test_support::client_for(&url), elasticsearch::http::Method::Get, "/_nodes/http", None).await;
        let urls: Vec<String> = found["nodes"]
            .as_object()
            .into_iter()
            .flat_map(|nodes| nodes.values())
            .filter_map(|node| Some(format!("http://{}", node.pointer("/http/publish_address")?.as_str()?)))
            .collect();
        assert_eq!(urls.len(), count, "every node's HTTP address: {urls:?}");
        Cluster { name, url: urls.join(",") }
    }

    async fn node(&self, args: &[&str]) {
        let status = search_node(&self.name, args).status().await.expect("scripts/search-node");
        assert!(status.success(), "search-node {args:?} failed");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(repository().join("scripts/search-node")).args(["stop", "--cluster", &self.name]).status();
    }
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// `scripts/search-node ARGS --cluster CLUSTER [--engine ESLOCK_ENGINE]`.
fn search_node(cluster: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(repository().join("scripts/search-node"));
    command.args(args).args(["--cluster", cluster]);
    if let Ok(engine) = std::env::var("ESLOCK_ENGINE") {
        command.args(["--engine", &engine]);
    }
    command
}

async fn cat_shards(url: &str, index: &str) -> serde_json::Value {
    let client = eslock_test_support::client_for(url);
    let path = format!("/_cat/shards/{index}?format=json&h=prirep,state,node");
    eslock_test_support::raw_request(&client, elasticsearch::http::Method::Get, &path, None).await.1
}

/// Which node (1-based) holds the primary of `index`.
async fn primary_node(url: &str, index: &str) -> usize {
    let shards = cat_shards(url, index).await;
    shards
        .as_array()
        .into_iter()
        .flatten()
        .find(|shard| shard["prirep"] == "p")
        .and_then(|shard| shard["node"].as_str()?.trim_start_matches("node").parse().ok())
        .expect("the primary's node")
}

/// Waits until the index has its replica too, so losing a node loses no data.
async fn wait_for_green(url: &str, index: &str) {
    for _ in 0..120 {
        let shards = cat_shards(url, index).await;
        let started = shards.as_array().into_iter().flatten().filter(|shard| shard["state"] == "STARTED").count();
        if started >= 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the lock index never got its replica");
}
