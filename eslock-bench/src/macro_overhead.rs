//! Item 7: what `#[eslock::exclusive]` costs over the `with_lock` call it
//! expands to, on the in-memory store: nanoseconds per call over many
//! iterations, the two variants interleaved round by round (the first
//! variant of each round alternates), medians over the rounds.

use std::hint::black_box;
use std::time::Instant;

use eslock::{LockManager, LockOptions};

use crate::timing::median;

#[eslock::exclusive("bench", manager = manager)]
async fn with_macro(manager: &LockManager) -> Result<u64, eslock::Error> {
    Ok(black_box(1))
}

async fn by_hand(manager: &LockManager) -> Result<u64, eslock::Error> {
    match manager.with_lock("bench", LockOptions::default(), || async { Ok(black_box(1)) }).await {
        Ok(output) => output,
        Err(err) => Err(err),
    }
}

pub(crate) struct MacroRun {
    pub iterations: usize,
    pub rounds: usize,
    /// Median ns per call, and the min and max over the rounds.
    pub macro_ns: (f64, f64, f64),
    pub hand_ns: (f64, f64, f64),
    /// Median of the per-round ratios macro / hand-written.
    pub ratio: f64,
    /// The interquartile range of the per-round ratios: the noise.
    pub ratio_iqr: (f64, f64),
}

pub(crate) fn run(iterations: usize, rounds: usize) -> MacroRun {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let manager = LockManager::in_memory();
        let time = |use_macro: bool| {
            let manager = manager.clone();
            async move {
                let started = Instant::now();
                for _ in 0..iterations {
                    let value = if use_macro { with_macro(&manager).await } else { by_hand(&manager).await };
                    black_box(value.expect("in-memory lock"));
                }
                started.elapsed().as_nanos() as f64 / iterations as f64
            }
        };
        // Warm-up: allocator, caches, the store's map.
        time(true).await;
        time(false).await;
        let (mut macro_ns, mut hand_ns, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (m, h) = if round % 2 == 0 {
                let m = time(true).await;
                (m, time(false).await)
            } else {
                let h = time(false).await;
                (time(true).await, h)
            };
            macro_ns.push(m);
            hand_ns.push(h);
            ratios.push(m / h);
        }
        let summary = |values: &mut Vec<f64>| {
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(0.0, f64::max);
            (median(values), min, max)
        };
        let macro_ns = summary(&mut macro_ns);
        let hand_ns = summary(&mut hand_ns);
        MacroRun {
            iterations,
            rounds,
            macro_ns,
            hand_ns,
            ratio_iqr: quartiles(&mut ratios),
            ratio: median(&mut ratios),
        }
    })
}

/// The first and third quartiles.
fn quartiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.75))
}
