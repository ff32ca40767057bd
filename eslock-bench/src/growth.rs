//! Item 6: growth. Acquire + release latency as the lock index fills with
//! released-lock documents (bulk-indexed in eslock's document format), and
//! `list()` over many live locks, in a child process so that its peak
//! resident memory is the listing's own.

use std::process::Stdio;
use std::time::{Duration, Instant};

use elasticsearch::Elasticsearch;
use eslock::LockOptions;
use rand::Rng;
use serde_json::json;
use tokio::process::Command;

use crate::engine;
use crate::timing::{Samples, proc_status_kib};

const BULK_BATCH: usize = 5_000;

pub(crate) struct GrowthPoint {
    pub documents: u64,
    pub acquire: Samples,
    pub cycle: Samples,
    pub fill_time: Duration,
}

pub(crate) struct ListRun {
    pub live: u64,
    pub listed: usize,
    pub time: Duration,
    pub rss_before_kib: u64,
    pub peak_rss_kib: u64,
}

/// One lock index per level, filled by `_bulk` with released locks up to
/// that level; then `cycles` acquire + release cycles on random existing ids
/// in each, interleaved in chunks across the levels so that load on the
/// machine falls on every level alike. A level is skipped (and the larger
/// ones) when filling it would take longer than `fill_budget` at the bulk
/// rate seen so far.
pub(crate) async fn run(client: &Elasticsearch, alias_prefix: &str, levels: &[u64], cycles: usize, fill_budget: Duration) -> Vec<GrowthPoint> {
    let mut indices = Vec::new();
    let mut rate = None::<f64>; // documents per second
    for &level in levels {
        if let Some(rate) = rate {
            let estimate = Duration::from_secs_f64(level as f64 / rate);
            if estimate > fill_budget {
                eprintln!("  growth: skipping {level} documents (filling would take ~{estimate:?})");
                break;
            }
        }
        let manager = eslock_test_support::manager_on(client.clone(), &format!("{alias_prefix}-{level}"));
        manager.setup().await.expect("eslock setup");
        let index = manager.index().expect("an Elasticsearch manager").to_string();
        let started = Instant::now();
        let docs = (0..level).map(|n| (format!("g-{n}"), json!({ "fencingToken": n, "expiresAt": "2020-01-01T00:00:00.000Z" })));
        engine::bulk_index(client, &index, docs, BULK_BATCH).await;
        let documents = engine::count(client, &index).await;
        let fill_time = started.elapsed();
        rate = Some(level as f64 / fill_time.as_secs_f64());
        eprintln!("  growth: {documents} documents filled in {fill_time:?}");
        indices.push((manager, GrowthPoint { documents, acquire: Samples::default(), cycle: Samples::default(), fill_time }));
    }
    // Let the engine settle (refreshes and merges after the bulk loads).
    tokio::time::sleep(Duration::from_secs(3)).await;
    const CHUNK: usize = 25;
    let warmup = CHUNK;
    let mut done = 0;
    while done < warmup + cycles {
        for (manager, point) in &mut indices {
            for _ in 0..CHUNK {
                let level = point.documents.max(1);
                let lock_id = format!("g-{}", rand::rng().random_range(0..level));
                let start = Instant::now();
                let lease = manager.acquire(&lock_id, LockOptions::default()).await.expect("growth acquire");
                let acquired = start.elapsed();
                assert!(lease.release().await.expect("growth release"), "growth release");
                if done >= warmup {
                    point.acquire.push(acquired);
                    point.cycle.push(start.elapsed());
                }
            }
        }
        done += CHUNK;
    }
    let mut points = Vec::new();
    for (manager, point) in indices {
        eprintln!(
            "  growth: {} documents: acquire p50 {:?}, cycle p50 {:?} p99 {:?}",
            point.documents,
            point.acquire.p50(),
            point.cycle.p50(),
            point.cycle.p99()
        );
        crate::cleanup(client, manager.index().expect("index").trim_end_matches("-000001")).await;
        points.push(point);
    }
    points
}

/// Bulk-indexes `live` live locks into the index of alias `alias` (set up
/// first) and times `list()` in a child process.
pub(crate) async fn run_list(client: &Elasticsearch, url: &str, alias: &str, live: u64) -> ListRun {
    let manager = eslock_test_support::manager_on(client.clone(), alias);
    manager.setup().await.expect("eslock setup");
    let index = manager.index().expect("an Elasticsearch manager").to_string();
    let docs = (0..live).map(|n| {
        let token = format!("token-{n}");
        let source = json!({
            "token": token, "createdAt": "2025-01-01T00:00:00.000Z", "expiresAt": "2099-01-01T00:00:00.000Z",
            "fencingToken": n, "fencingTokenOwner": token
        });
        (format!("live-{n}"), source)
    });
    engine::bulk_index(client, &index, docs, BULK_BATCH).await;
    engine::count(client, &index).await;
    let exe = std::env::current_exe().expect("own executable");
    let output = Command::new(exe)
        .args(["child-list", url, alias])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .expect("running the list child");
    assert!(output.status.success(), "list child failed: {}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find(|line| line.starts_with("result ")).expect("list child result");
    let fields: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().expect("list child field")).collect();
    let [listed, micros, rss_before_kib, peak_rss_kib] = fields[..] else {
        panic!("list child: {line}");
    };
    ListRun {
        live,
        listed: listed as usize,
        time: Duration::from_micros(micros),
        rss_before_kib,
        peak_rss_kib,
    }
}

/// The child: `child-list URL ALIAS` prints `result LISTED MICROS RSS_BEFORE_KIB PEAK_RSS_KIB`.
pub(crate) fn list_child(args: &[String]) {
    let [url, alias] = args else {
        panic!("child-list URL ALIAS");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let manager = eslock_test_support::manager_on(eslock_test_support::client_for(url), alias);
        manager.setup().await.expect("eslock setup");
        let rss_before = proc_status_kib("VmRSS");
        let started = Instant::now();
        let locks = manager.list().await.expect("list");
        let time = started.elapsed();
        println!("result {} {} {rss_before} {}", locks.len(), time.as_micros(), proc_status_kib("VmHWM"));
    });
}
