//! Jittered exponential backoff, shared by waiting for a lock, retrying
//! transient backend errors, and retrying failed renewals.

use std::time::Duration;

use rand::Rng;

/// Delays that double from `initial` up to `max`, each drawn at random from
/// the upper half of the current step so that contenders spread out.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    step: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            step: initial.min(max),
            max,
        }
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        let nanos = step.as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos(rand::rng().random_range(nanos / 2..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_max() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(300));
        let delays: Vec<Duration> = (0..5).map(|_| backoff.next_delay()).collect();
        let bounds = [(50, 100), (100, 200), (150, 300), (150, 300), (150, 300)];
        for (delay, (low, high)) in delays.iter().zip(bounds) {
            assert!(*delay >= Duration::from_millis(low) && *delay <= Duration::from_millis(high), "{delay:?}");
        }
    }
}
