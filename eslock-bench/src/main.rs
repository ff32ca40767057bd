//! `eslock-bench`: the measurements of issue 10 in one run, on one node and
//! one HTTP client configuration. See docs/PERFORMANCE.md and `scripts/bench`.
//!
//! ```text
//! eslock-bench [--quick] [--only cycles,handoff,renewal,growth,macro] [--out FILE] [--command TEXT]
//! ```
//!
//! The engine is the one in `ELASTICSEARCH_URL`. The report is printed and
//! written to `--out` (default `docs/PERFORMANCE.md` when every measurement
//! ran). The `child-*` subcommands are the child processes the benchmark
//! spawns of itself.

mod cycles;
mod engine;
mod growth;
mod handoff;
mod macro_overhead;
mod patterns;
mod renewal;
mod report;
mod timing;

use std::time::{Duration, Instant};

use elasticsearch::Elasticsearch;
use eslock::store::elasticsearch::IndexLayout;

use crate::handoff::{Layout, Waiting};
use crate::patterns::Pattern;
use crate::report::Results;

const SECTIONS: [&str; 5] = ["cycles", "handoff", "renewal", "growth", "macro"];

struct Config {
    quick: bool,
    only: Vec<String>,
    out: Option<String>,
    command: String,
}

impl Config {
    fn parse(args: &[String]) -> Config {
        let mut config = Config { quick: false, only: Vec::new(), out: None, command: String::new() };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => config.quick = true,
                "--only" => config.only = args.next().expect("--only SECTIONS").split(',').map(str::to_string).collect(),
                "--out" => config.out = Some(args.next().expect("--out FILE").clone()),
                "--command" => config.command = args.next().expect("--command TEXT").clone(),
                other => {
                    eprintln!("unknown argument {other:?}\nusage: eslock-bench [--quick] [--only {}] [--out FILE] [--command TEXT]", SECTIONS.join(","));
                    std::process::exit(2);
                }
            }
        }
        for section in &config.only {
            assert!(SECTIONS.contains(&section.as_str()), "unknown section {section:?} (one of {SECTIONS:?})");
        }
        if config.command.is_empty() {
            config.command = std::env::args().collect::<Vec<_>>().join(" ");
        }
        config
    }

    fn runs(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child-handoff") => return handoff::child(&args[2..]),
        Some("child-leases") => return renewal::child(&args[2..]),
        Some("child-list") => return growth::list_child(&args[2..]),
        _ => {}
    }
    let config = Config::parse(&args[1..]);
    let Some(url) = eslock_test_support::engine_url() else {
        eprintln!("eslock-bench: set ELASTICSEARCH_URL (scripts/bench starts a node when it is not set)");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let results = runtime.block_on(run(&config, &url));
    let markdown = report::render(&results);
    println!("{markdown}");
    let out = config.out.clone().or_else(|| config.only.is_empty().then(|| "docs/PERFORMANCE.md".to_string()));
    if let Some(out) = out {
        std::fs::write(&out, &markdown).unwrap_or_else(|err| panic!("writing {out}: {err}"));
        eprintln!("eslock-bench: wrote {out}");
    }
}

async fn run(config: &Config, url: &str) -> Results {
    let started = Instant::now();
    let client = eslock_test_support::client_for(url);
    let pid = std::process::id();
    let mut results = Results {
        mode: if config.quick { "quick" } else { "full" }.into(),
        command: config.command.clone(),
        engine: format!("{} at {url}", engine::describe(&client).await),
        load_before: report::load_average(),
        ..Results::default()
    };
    let aliases: Vec<String> = ["bench", "handoff", "renewal", "growth", "list"].iter().map(|s| format!("eslock-{s}-{pid}")).collect();

    if config.runs("cycles") {
        eprintln!("eslock-bench: 1-3. acquire + release cycles");
        let patterns = [
            Pattern::Eslock(eslock_test_support::manager_on(client.clone(), &aliases[0])),
            Pattern::Kibana { client: client.clone(), index: format!("bench-kibana-{pid}") },
            Pattern::ShedLock { client: client.clone(), index: format!("bench-shedlock-{pid}") },
            Pattern::Floor { client: client.clone(), index: format!("bench-floor-{pid}") },
        ];
        for pattern in &patterns {
            pattern.setup().await;
        }
        let engine_pid = local_port(url).and_then(timing::listening_pid);
        if engine_pid.is_none() {
            eprintln!("  the engine does not run on this machine: no engine CPU per cycle");
        }
        let plan = if config.quick {
            cycles::Plan { callers: vec![1, 16, 64], warmup: Duration::from_millis(300), slices: 3, slice: Duration::from_millis(500), engine_pid }
        } else {
            cycles::Plan { callers: vec![1, 16, 64], warmup: Duration::from_secs(1), slices: 10, slice: Duration::from_secs(1), engine_pid }
        };
        results.cycles = cycles::run_all(&patterns, &plan).await;
        for pattern in &patterns {
            pattern.teardown().await;
        }
    }

    if config.runs("handoff") {
        eprintln!("eslock-bench: 4. hand-off under contention");
        let rounds = if config.quick { 2 } else { 6 };
        for layout in [Layout::OneProcess, Layout::TwoProcesses] {
            for waiting in [Waiting::Eslock, Waiting::Poll100] {
                let run = handoff::run(url, &aliases[1], layout, waiting, rounds, Duration::from_millis(100)).await;
                eprintln!(
                    "  {:<11} {:<17}: p50 {:?} p99 {:?}, {:.1} waiter req/s",
                    layout.label(),
                    waiting.label(),
                    run.samples.p50(),
                    run.samples.p99(),
                    run.requests_per_second()
                );
                results.handoffs.push(run);
            }
        }
    }

    if config.runs("renewal") {
        let (leases, hold) = if config.quick { (100, 10) } else { (1_000, 60) };
        eprintln!("eslock-bench: 5. renewal load ({leases} leases for {hold} s)");
        let run = renewal::run(url, &aliases[2], leases, Duration::from_secs(hold)).await;
        eprintln!("  {} renewals in {:?}, {} lost", run.renewals, run.window, run.lost);
        results.renewal = Some(run);
    }

    if config.runs("growth") {
        eprintln!("eslock-bench: 6. growth");
        let (levels, cycles, budget): (&[u64], usize, u64) =
            if config.quick { (&[1_000, 100_000], 300, 60) } else { (&[1_000, 100_000, 1_000_000], 1_000, 480) };
        results.growth = growth::run(&client, &aliases[3], levels, cycles, Duration::from_secs(budget)).await;
        let list = growth::run_list(&client, url, &aliases[4], 100_000).await;
        eprintln!("  list(): {} of {} live locks in {:?}, peak RSS {} KiB", list.listed, list.live, list.time, list.peak_rss_kib);
        results.list = Some(list);
    }

    if config.runs("macro") {
        eprintln!("eslock-bench: 7. macro overhead");
        let (iterations, rounds) = if config.quick { (20_000, 15) } else { (50_000, 41) };
        let run = tokio::task::spawn_blocking(move || macro_overhead::run(iterations, rounds)).await.expect("macro run");
        eprintln!("  macro {:.0} ns/call, by hand {:.0} ns/call, ratio {:.3}", run.macro_ns.0, run.hand_ns.0, run.ratio);
        results.macro_run = Some(run);
    }

    for alias in &aliases {
        cleanup(&client, alias).await;
    }
    results.load_after = report::load_average();
    results.duration = started.elapsed();
    results
}

/// The port of `url` when its host is this machine.
fn local_port(url: &str) -> Option<u16> {
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest).split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    matches!(host, "127.0.0.1" | "localhost" | "[::1]").then(|| port.parse().ok())?
}

/// Removes a lock index of the benchmark and the templates its setup wrote.
pub(crate) async fn cleanup(client: &Elasticsearch, alias: &str) {
    use elasticsearch::http::Method;
    let layout = IndexLayout::named(alias);
    engine::delete_index(client, layout.concrete_index()).await;
    let _ = engine::send(client, Method::Delete, &format!("/_index_template/{}", layout.index_template()), None).await;
    let _ = engine::send(client, Method::Delete, &format!("/_component_template/{}", layout.component_template()), None).await;
}
