//! Item 4: hand-off under contention. One holder, 8 waiters on the same
//! lock, all arrived while it is held; each waiter takes the lock once,
//! holds it briefly and releases it. Measured: the time from a release
//! (when the releasing call starts) to the next holder's acquisition
//! (when its call returns), on CLOCK_MONOTONIC, which child processes
//! share; and the requests the waiters send, counted by a TCP proxy that
//! all processes go through.

use std::process::Stdio;
use std::time::Duration;

use eslock::{Error, LockManager, LockOptions};
use eslock_test_support::proxy::FaultProxy;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::timing::{Samples, mono_ns};

pub(crate) const WAITERS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// `LockOptions::wait`.
    Eslock,
    /// The baseline: a fixed 100 ms sleep between non-waiting attempts.
    Poll100,
}

impl Waiting {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Waiting::Eslock => "eslock wait",
            Waiting::Poll100 => "100 ms retry loop",
        }
    }
    fn arg(self) -> &'static str {
        match self {
            Waiting::Eslock => "eslock",
            Waiting::Poll100 => "poll100",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// All waiters in the holder's process.
    OneProcess,
    /// Half of the waiters in the holder's process, half in a child.
    TwoProcesses,
}

impl Layout {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Layout::OneProcess => "1 process",
            Layout::TwoProcesses => "2 processes",
        }
    }
}

pub(crate) struct HandoffRun {
    pub layout: Layout,
    pub waiting: Waiting,
    pub samples: Samples,
    /// Requests the waiters sent (lock updates minus one release per hand-off).
    pub waiter_requests: usize,
    pub window: Duration,
    /// Hand-offs where a holder acquired before the previous one released
    /// (must be zero).
    pub overlaps: usize,
}

impl HandoffRun {
    pub(crate) fn requests_per_second(&self) -> f64 {
        self.waiter_requests as f64 / self.window.as_secs_f64()
    }
    pub(crate) fn requests_per_handoff(&self) -> f64 {
        self.waiter_requests as f64 / self.samples.len().max(1) as f64
    }
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Acquired(u64),
    Releasing(u64),
}

/// Runs `rounds` rounds of one holder + [`WAITERS`] waiters.
pub(crate) async fn run(url: &str, alias: &str, layout: Layout, waiting: Waiting, rounds: usize, hold: Duration) -> HandoffRun {
    let proxy = FaultProxy::start(url).await;
    let manager = manager_for(proxy.url(), alias).await;
    let mut result = HandoffRun {
        layout,
        waiting,
        samples: Samples::default(),
        waiter_requests: 0,
        window: Duration::ZERO,
        overlaps: 0,
    };
    for round in 0..rounds {
        let lock = format!("handoff-{}-{}-{round}-{}", waiting.arg(), layout.label().replace(' ', ""), std::process::id());
        let holder = manager.acquire(&lock, LockOptions::default()).await.expect("holder acquire");
        let local_waiters = match layout {
            Layout::OneProcess => WAITERS,
            Layout::TwoProcesses => WAITERS / 2,
        };
        // The child first, and ready (set up) before anyone waits.
        let mut child = match layout {
            Layout::OneProcess => None,
            Layout::TwoProcesses => Some(spawn_child(proxy.url(), alias, &lock, WAITERS - local_waiters, hold, waiting).await),
        };
        let tasks: Vec<_> = (0..local_waiters)
            .map(|_| tokio::spawn(waiter(manager.clone(), lock.clone(), hold, waiting)))
            .collect();
        // Every waiter has arrived and found the lock held.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let updates_before = lock_updates(&proxy);
        let start = mono_ns();
        let mut events = vec![Event::Releasing(start)];
        assert!(holder.release().await.expect("holder release"), "holder release");
        for task in tasks {
            events.extend(task.await.expect("waiter task"));
        }
        if let Some((child, lines)) = child.as_mut() {
            while let Some(line) = lines.next_line().await.expect("child output") {
                match line.split_once(' ') {
                    Some(("acq", t)) => events.push(Event::Acquired(t.parse().expect("acq time"))),
                    Some(("rel", t)) => events.push(Event::Releasing(t.parse().expect("rel time"))),
                    _ if line == "done" => break,
                    _ => eprintln!("  child: {line}"),
                }
            }
            let status = child.wait().await.expect("child exit");
            assert!(status.success(), "hand-off child failed: {status}");
        }
        let updates = lock_updates(&proxy) - updates_before;
        let (samples, overlaps, end) = handoff_latencies(events);
        // Each participant (holder and waiters) released once.
        result.waiter_requests += updates.saturating_sub(WAITERS + 1);
        result.window += Duration::from_nanos(end - start);
        result.overlaps += overlaps;
        result.samples.extend(samples);
    }
    result
}

/// Release-to-acquisition latencies from the events of every process; the
/// number of overlapping holds; and the time of the last acquisition.
fn handoff_latencies(mut events: Vec<Event>) -> (Samples, usize, u64) {
    let time = |event: &Event| match *event {
        Event::Acquired(t) | Event::Releasing(t) => t,
    };
    events.sort_by_key(time);
    let mut samples = Samples::default();
    let (mut last_release, mut overlaps, mut end) = (None, 0, 0);
    for event in events {
        match event {
            Event::Releasing(t) => last_release = Some(t),
            Event::Acquired(t) => {
                match last_release.take() {
                    Some(released) => samples.push_nanos(t - released),
                    None => overlaps += 1,
                }
                end = t;
            }
        }
    }
    (samples, overlaps, end)
}

/// Lock requests forwarded so far: `_update` (acquire, renew, release, hand-over) and `_bulk` (batched renewals).
fn lock_updates(proxy: &FaultProxy) -> usize {
    proxy.request_lines().iter().filter(|line| line.contains("/_update/") || line.contains("/_bulk")).count()
}

async fn manager_for(url: &str, alias: &str) -> LockManager {
    let manager = eslock_test_support::manager_on(eslock_test_support::client_for(url), alias);
    manager.setup().await.expect("eslock setup");
    manager
}

/// One waiter: acquire (waiting as told), hold, release.
async fn waiter(manager: LockManager, lock: String, hold: Duration, waiting: Waiting) -> Vec<Event> {
    let lease = match waiting {
        Waiting::Eslock => manager
            .acquire(&lock, LockOptions::default().wait(Duration::from_secs(600)))
            .await
            .expect("waiting acquire"),
        Waiting::Poll100 => loop {
            match manager.acquire(&lock, LockOptions::default()).await {
                Ok(lease) => break lease,
                Err(Error::Acquisition(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(err) => panic!("acquire: {err}"),
            }
        },
    };
    let acquired = mono_ns();
    tokio::time::sleep(hold).await;
    let releasing = mono_ns();
    assert!(lease.release().await.expect("waiter release"), "waiter release");
    vec![Event::Acquired(acquired), Event::Releasing(releasing)]
}

type ChildLines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

async fn spawn_child(url: &str, alias: &str, lock: &str, waiters: usize, hold: Duration, waiting: Waiting) -> (tokio::process::Child, ChildLines) {
    let exe = std::env::current_exe().expect("own executable");
    let mut child = Command::new(exe)
        .args(["child-handoff", url, alias, lock, &waiters.to_string(), &hold.as_millis().to_string(), waiting.arg()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawning the hand-off child");
    let mut lines = BufReader::new(child.stdout.take().expect("child stdout")).lines();
    while let Some(line) = lines.next_line().await.expect("child output") {
        if line == "ready" {
            return (child, lines);
        }
    }
    panic!("the hand-off child ended before it was ready");
}

/// The child: `child-handoff URL ALIAS LOCK WAITERS HOLD_MS eslock|poll100`.
pub(crate) fn child(args: &[String]) {
    let [url, alias, lock, waiters, hold_ms, waiting] = args else {
        panic!("child-handoff URL ALIAS LOCK WAITERS HOLD_MS eslock|poll100");
    };
    let waiters: usize = waiters.parse().expect("waiters");
    let hold = Duration::from_millis(hold_ms.parse().expect("hold"));
    let waiting = if waiting == "eslock" { Waiting::Eslock } else { Waiting::Poll100 };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let manager = manager_for(url, alias).await;
        println!("ready");
        let tasks: Vec<_> = (0..waiters)
            .map(|_| tokio::spawn(waiter(manager.clone(), lock.clone(), hold, waiting)))
            .collect();
        for task in tasks {
            for event in task.await.expect("waiter task") {
                match event {
                    Event::Acquired(t) => println!("acq {t}"),
                    Event::Releasing(t) => println!("rel {t}"),
                }
            }
        }
        manager.flush().await;
        println!("done");
    });
}
