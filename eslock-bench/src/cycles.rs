//! Items 1-3: acquire + release cycles, uncontended (every caller has its
//! own lock ids), at several concurrencies, for eslock, the peers' patterns
//! and the floor. Runs are interleaved pattern by pattern so that noise
//! from the machine falls on all of them alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::patterns::Pattern;
use crate::timing::{Samples, cpu_time, process_cpu_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ids {
    /// A fresh lock id for every cycle (a new document each time).
    Distinct,
    /// Each caller reuses one lock id (the document is taken over again).
    Repeated,
}

impl Ids {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Ids::Distinct => "distinct",
            Ids::Repeated => "repeated",
        }
    }
}

pub(crate) struct CycleRun {
    pub pattern: &'static str,
    pub ids: Ids,
    pub callers: usize,
    pub cycles: usize,
    pub failed: usize,
    pub elapsed: Duration,
    pub samples: Samples,
    /// CPU time of this process and of the engine node (when it runs on
    /// this machine) over the whole run, warm-up included, and the cycles
    /// completed in that time.
    pub cost: Cost,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Cost {
    pub client: Duration,
    pub engine: Option<Duration>,
    pub cycles: usize,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.client += other.client;
        self.engine = self.engine.zip(other.engine).map(|(a, b)| a + b);
        self.cycles += other.cycles;
    }

    /// Client CPU time per cycle.
    pub(crate) fn client_per_cycle(&self) -> Duration {
        self.client / self.cycles.max(1) as u32
    }

    /// Engine CPU time per cycle, when the engine's process was measured.
    pub(crate) fn engine_per_cycle(&self) -> Option<Duration> {
        self.engine.map(|engine| engine / self.cycles.max(1) as u32)
    }
}

impl CycleRun {
    pub(crate) fn per_second(&self) -> f64 {
        self.cycles as f64 / self.elapsed.as_secs_f64()
    }
}

pub(crate) struct Plan {
    pub callers: Vec<usize>,
    /// Before each (ids, callers) configuration, per pattern, not recorded.
    pub warmup: Duration,
    /// The measured time per pattern is `slices` x `slice`, the patterns
    /// taking turns slice by slice.
    pub slices: usize,
    pub slice: Duration,
    /// The engine node's process, for its CPU time per cycle.
    pub engine_pid: Option<u32>,
}

/// Every pattern at every (ids, callers). The patterns take turns in short
/// slices, so that a change of load on the machine (a disk busy with another
/// job's fsyncs) falls on all of them alike.
pub(crate) async fn run_all(patterns: &[Pattern], plan: &Plan) -> Vec<CycleRun> {
    let mut runs = Vec::new();
    for ids in [Ids::Distinct, Ids::Repeated] {
        for &callers in &plan.callers {
            let mut merged: Vec<Option<CycleRun>> = patterns.iter().map(|_| None).collect();
            for slice in 0..plan.slices {
                // A short warm-up per slice re-fills the connection pool.
                let warmup = if slice == 0 { plan.warmup } else { Duration::from_millis(100) };
                // Each slice starts with the next pattern, so that the work a
                // pattern leaves the engine (merges after ShedLock's
                // refreshes) falls on each of the others in turn.
                for turn in 0..patterns.len() {
                    let index = (slice + turn) % patterns.len();
                    let run = run_one(&patterns[index], ids, callers, warmup, plan.slice, plan.engine_pid).await;
                    match &mut merged[index] {
                        slot @ None => *slot = Some(run),
                        Some(total) => {
                            total.cycles += run.cycles;
                            total.failed += run.failed;
                            total.elapsed += run.elapsed;
                            total.samples.extend(run.samples);
                            total.cost.add(run.cost);
                        }
                    }
                }
            }
            for run in merged.into_iter().flatten() {
                eprintln!(
                    "  {:<22} {:<8} {:>2} callers: {:>7.0} cycles/s  p50 {:?}  p99 {:?}  failed {}  CPU/cycle client {:?} engine {:?}",
                    run.pattern,
                    ids.label(),
                    callers,
                    run.per_second(),
                    run.samples.p50(),
                    run.samples.p99(),
                    run.failed,
                    run.cost.client_per_cycle(),
                    run.cost.engine_per_cycle()
                );
                runs.push(run);
            }
        }
    }
    runs
}

/// `callers` concurrent tasks doing cycles for `warmup` (not recorded), then
/// for `measure`.
pub(crate) async fn run_one(pattern: &Pattern, ids: Ids, callers: usize, warmup: Duration, measure: Duration, engine_pid: Option<u32>) -> CycleRun {
    let (client_before, engine_before) = (cpu_time(), engine_pid.and_then(process_cpu_time));
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run_id = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pattern = Arc::new(pattern.clone());
    let started = Instant::now();
    let measure_from = started + warmup;
    let measure_until = measure_from + measure;
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let pattern = Arc::clone(&pattern);
            tokio::spawn(async move {
                let mut samples = Samples::default();
                let (mut cycles, mut failed, mut all_cycles) = (0, 0, 0);
                let mut seq = 0u64;
                loop {
                    let now = Instant::now();
                    if now >= measure_until {
                        break;
                    }
                    let lock_id = match ids {
                        Ids::Distinct => format!("r{run_id}-c{caller}-{seq}"),
                        Ids::Repeated => format!("r{run_id}-c{caller}"),
                    };
                    seq += 1;
                    let outcome = pattern.cycle(&lock_id).await;
                    all_cycles += usize::from(outcome.is_ok());
                    if now >= measure_from {
                        match outcome {
                            Ok(()) => {
                                cycles += 1;
                                samples.push(now.elapsed());
                            }
                            Err(err) => {
                                if failed == 0 {
                                    eprintln!("  {} cycle failed: {err}", pattern.name());
                                }
                                failed += 1;
                            }
                        }
                    }
                }
                (samples, cycles, failed, all_cycles, Instant::now())
            })
        })
        .collect();
    let mut run = CycleRun {
        pattern: pattern.name(),
        ids,
        callers,
        cycles: 0,
        failed: 0,
        elapsed: measure,
        samples: Samples::default(),
        cost: Cost::default(),
    };
    let mut last_end = measure_until;
    for task in tasks {
        let (samples, cycles, failed, all_cycles, ended) = task.await.expect("cycle task");
        run.cost.cycles += all_cycles;
        run.samples.extend(samples);
        run.cycles += cycles;
        run.failed += failed;
        last_end = last_end.max(ended);
    }
    // Cycles started before the end count, so the window runs to the last one's end.
    run.elapsed = last_end - measure_from;
    run.cost.client = cpu_time().saturating_sub(client_before);
    run.cost.engine = engine_before.zip(engine_pid.and_then(process_cpu_time)).map(|(before, after)| after.saturating_sub(before));
    run
}
