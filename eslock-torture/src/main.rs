//! `eslock-torture`: the fault suite's command.
//!
//! ```text
//! eslock-torture run [--full] [--scenario NAME]... [--report FILE]   # against ELASTICSEARCH_URL
//! ```
//!
//! Scenarios: contention, skewed-clients, crash, network, engine-clock,
//! node-loss. Without `--scenario`, all of them. Exits 1 when any fails.
//! With `ESLOCK_TORTURE_KEEP` set, each scenario's histories (one JSON line
//! per hold and force-release) stay in the temporary directory it names.
//! `worker` and `hold` are the processes the scenarios start.

use eslock_torture::report;
use eslock_torture::scenarios::{self, Outcome, Scale};

const SCENARIOS: [&str; 6] = ["contention", "skewed-clients", "crash", "network", "engine-clock", "node-loss"];

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worker") => {
            let config = serde_json::from_str(args.get(1).expect("worker config")).expect("worker config is JSON");
            eslock_torture::worker::run(config).await;
        }
        Some("hold") => match &args[1..] {
            [url, index, lock_id, ttl_ms] => {
                scenarios::hold_until_killed(url, index, lock_id, ttl_ms.parse().expect("ttl in ms")).await
            }
            _ => usage("hold URL INDEX LOCK_ID TTL_MS"),
        },
        Some("run") => run(&args[1..]).await,
        _ => usage("run [--full] [--scenario NAME]... [--report FILE]"),
    }
}

fn usage(text: &str) -> ! {
    eprintln!("usage: eslock-torture {text}\nscenarios: {}", SCENARIOS.join(", "));
    std::process::exit(2)
}

async fn run(args: &[String]) {
    let mut scale = Scale::Reduced;
    let mut chosen = Vec::new();
    let mut report_path = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--full" => scale = Scale::Full,
            "--scenario" => chosen.push(rest.next().cloned().unwrap_or_else(|| usage("--scenario NAME"))),
            "--report" => report_path = Some(rest.next().cloned().unwrap_or_else(|| usage("--report FILE"))),
            other => usage(&format!("run: unknown argument {other}")),
        }
    }
    if let Some(unknown) = chosen.iter().find(|name| !SCENARIOS.contains(&name.as_str())) {
        usage(&format!("run: unknown scenario {unknown}"));
    }
    let url = eslock_test_support::engine_url().unwrap_or_else(|| usage("run: set ELASTICSEARCH_URL (scripts/test does)"));
    let mut outcomes: Vec<Outcome> = Vec::new();
    for name in SCENARIOS.iter().filter(|name| chosen.is_empty() || chosen.iter().any(|c| c == *name)) {
        eprintln!("torture: {name} ...");
        let outcome = match *name {
            "contention" => scenarios::contention(&url, scale).await,
            "skewed-clients" => scenarios::skewed_clients(&url, scale).await,
            "crash" => scenarios::crash(&url, scale).await,
            "network" => scenarios::network(&url).await,
            "engine-clock" => scenarios::engine_clock_steps(scale).await,
            _ => scenarios::node_loss(scale).await,
        };
        eprintln!("torture: {name}: {}", if outcome.passed() { "PASS" } else { "FAIL" });
        for (figure, value) in &outcome.figures {
            eprintln!("  {figure}: {value}");
        }
        for failure in &outcome.failures {
            eprintln!("  FAILURE: {failure}");
        }
        outcomes.push(outcome);
    }
    if let Some(path) = report_path {
        let engine = engine_name(&url).await;
        let command = format!("scripts/torture{}", if scale == Scale::Full { " --full" } else { "" });
        std::fs::write(&path, report::markdown(&outcomes, &engine, &command)).expect("report file");
        eprintln!("torture: report written to {path}");
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    println!("torture: {} passed, {failed} failed", outcomes.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}

/// "OpenSearch 2.19.1" or "Elasticsearch 7.10.2", from the engine's root.
async fn engine_name(url: &str) -> String {
    let client = eslock_test_support::client_for(url);
    let (_, root) = eslock_test_support::raw_request(&client, elasticsearch::http::Method::Get, "/", None).await;
    let distribution = root.pointer("/version/distribution").and_then(|d| d.as_str()).unwrap_or("elasticsearch");
    let name = if distribution == "opensearch" { "OpenSearch" } else { "Elasticsearch" };
    format!("{name} {}", root.pointer("/version/number").and_then(|n| n.as_str()).unwrap_or("?"))
}
