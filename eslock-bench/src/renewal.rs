//! Item 5: renewal load. A child process holds N leases (TTL 30 s) at once
//! for a while; the parent counts the renewal requests through a proxy.
//! The child reports the leases lost, its CPU time over the window and its
//! resident memory, so the proxy's own work is not counted.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eslock::LockOptions;
use eslock_test_support::proxy::FaultProxy;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::Semaphore;

use crate::timing::{cpu_time, proc_status_kib};

pub(crate) const TTL: Duration = Duration::from_secs(30);

pub(crate) struct RenewalRun {
    pub leases: usize,
    pub window: Duration,
    pub renewals: usize,
    pub lost: usize,
    pub cpu: Duration,
    pub rss_kib: u64,
}

impl RenewalRun {
    pub(crate) fn per_second(&self) -> f64 {
        self.renewals as f64 / self.window.as_secs_f64()
    }
    /// One request per lease per TTL/3.
    pub(crate) fn baseline_per_second(&self) -> f64 {
        self.leases as f64 / (TTL.as_secs_f64() / 3.0)
    }
}

pub(crate) async fn run(url: &str, alias: &str, leases: usize, hold: Duration) -> RenewalRun {
    let proxy = FaultProxy::start(url).await;
    let exe = std::env::current_exe().expect("own executable");
    let mut child = Command::new(exe)
        .args(["child-leases", proxy.url(), alias, &leases.to_string(), &hold.as_secs().to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawning the lease child");
    let mut lines = BufReader::new(child.stdout.take().expect("child stdout")).lines();
    let mut before = None;
    let mut result = None;
    while let Some(line) = lines.next_line().await.expect("child output") {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["ready"] => before = Some(updates(&proxy)),
            ["result", lost, cpu_us, rss_kib, window_us] => {
                let renewals = updates(&proxy) - before.expect("ready before result");
                result = Some(RenewalRun {
                    leases,
                    window: Duration::from_micros(window_us.parse().expect("window")),
                    renewals,
                    lost: lost.parse().expect("lost"),
                    cpu: Duration::from_micros(cpu_us.parse().expect("cpu")),
                    rss_kib: rss_kib.parse().expect("rss"),
                });
            }
            ["done"] => break,
            _ => eprintln!("  child: {line}"),
        }
    }
    let status = child.wait().await.expect("child exit");
    assert!(status.success(), "lease child failed: {status}");
    result.expect("the lease child reported no result")
}

fn updates(proxy: &FaultProxy) -> usize {
    proxy.request_lines().iter().filter(|line| line.contains("/_update/") || line.contains("/_bulk")).count()
}

/// The child: `child-leases URL ALIAS N SECONDS`.
pub(crate) fn child(args: &[String]) {
    let [url, alias, leases, seconds] = args else {
        panic!("child-leases URL ALIAS N SECONDS");
    };
    let leases: usize = leases.parse().expect("N");
    let hold = Duration::from_secs(seconds.parse().expect("SECONDS"));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let manager = eslock_test_support::manager_on(eslock_test_support::client_for(url), alias);
        manager.setup().await.expect("eslock setup");
        // Acquire them quickly (64 at a time), so that the window holds them all.
        let gate = Arc::new(Semaphore::new(64));
        let tasks: Vec<_> = (0..leases)
            .map(|i| {
                let (manager, gate) = (manager.clone(), Arc::clone(&gate));
                tokio::spawn(async move {
                    let _permit = gate.acquire().await.expect("semaphore");
                    manager
                        .acquire(format!("renewal-{}-{i}", std::process::id()), LockOptions::default().ttl(TTL))
                        .await
                        .expect("acquire")
                })
            })
            .collect();
        let mut held = Vec::with_capacity(leases);
        for task in tasks {
            held.push(task.await.expect("acquire task"));
        }
        println!("ready");
        let (cpu_before, started) = (cpu_time(), Instant::now());
        tokio::time::sleep(hold).await;
        let lost = held.iter().filter(|lease| lease.is_lost()).count();
        let cpu = cpu_time() - cpu_before;
        let window = started.elapsed();
        println!("result {lost} {} {} {}", cpu.as_micros(), proc_status_kib("VmRSS"), window.as_micros());
        let releases: Vec<_> = held
            .into_iter()
            .map(|lease| {
                let gate = Arc::clone(&gate);
                tokio::spawn(async move {
                    let _permit = gate.acquire().await.expect("semaphore");
                    lease.release().await
                })
            })
            .collect();
        for release in releases {
            let _ = release.await;
        }
        println!("done");
    });
}
