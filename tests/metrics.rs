//! What eslock reports through the `metrics` facade (feature `metrics`),
//! checked with a recording exporter. One test: the recorder is global.

use std::time::Duration;

use eslock::{LockManager, LockOptions, exclusive};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;

/// One metric in a snapshot: kind, name, sorted labels and value.
type Reading = (MetricKind, String, Vec<(String, String)>, DebugValue);

/// What the recorder holds: counters and gauges as they stand, histogram
/// samples added up over every snapshot (a snapshot drains them).
#[derive(Default)]
struct Seen {
    values: Vec<Reading>,
    samples: std::collections::HashMap<(String, Vec<(String, String)>), usize>,
}

impl Seen {
    fn update(&mut self, snapshotter: &Snapshotter) -> &Self {
        self.values.clear();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<(String, String)> = key.labels().map(|l| (l.key().to_string(), l.value().to_string())).collect();
            labels.sort();
            if let DebugValue::Histogram(values) = &value {
                *self.samples.entry((key.name().to_string(), labels.clone())).or_default() += values.len();
            }
            self.values.push((kind, key.name().to_string(), labels, value));
        }
        self
    }

    fn value(&self, kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        let wanted = sorted(labels);
        self.values.iter().find(|(k, n, l, _)| *k == kind && n == name && *l == wanted).map(|(_, _, _, value)| value)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.value(MetricKind::Counter, name, labels) {
            Some(DebugValue::Counter(count)) => *count,
            _ => 0,
        }
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.value(MetricKind::Gauge, name, labels) {
            Some(DebugValue::Gauge(value)) => Some(value.into_inner()),
            _ => None,
        }
    }

    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        self.samples.get(&(name.to_string(), sorted(labels))).copied().unwrap_or(0)
    }
}

fn sorted(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    labels.sort();
    labels
}

#[exclusive("reports/{day}", manager = manager)]
async fn report(manager: &LockManager, day: u32) -> Result<u32, eslock::Error> {
    Ok(day)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_name_acquisitions_waits_holds_renewals_and_losses() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder of this test binary");
    let manager = LockManager::in_memory();
    let jobs = [("lock", "jobs/{name}")];
    let options = || LockOptions::default().label("jobs/{name}").ttl(Duration::from_millis(300));

    let mut seen = Seen::default();
    let lease = manager.acquire("jobs/a", options()).await.unwrap();
    assert!(manager.acquire("jobs/a", options().wait(Duration::from_millis(100))).await.is_err());
    tokio::time::sleep(Duration::from_millis(350)).await;
    seen.update(&snapshotter);
    assert!(seen.counter("eslock_renewals_total", &[jobs[0], ("outcome", "extended")]) >= 2);
    assert_eq!(seen.gauge("eslock_leases_held", &jobs), Some(1.0));
    // Taken away: the lease notices at its next renewal.
    assert!(manager.force_release("jobs/a").await.unwrap());
    tokio::time::timeout(Duration::from_secs(5), lease.lost()).await.unwrap();
    drop(lease);

    seen.update(&snapshotter);
    assert_eq!(seen.counter("eslock_acquisitions_total", &[jobs[0], ("outcome", "acquired")]), 1);
    assert_eq!(seen.counter("eslock_acquisitions_total", &[jobs[0], ("outcome", "refused")]), 1);
    assert_eq!(seen.counter("eslock_leases_lost_total", &jobs), 1);
    assert_eq!(seen.samples("eslock_acquire_seconds", &jobs), 2);
    assert_eq!(seen.samples("eslock_wait_seconds", &jobs), 1, "only the waiting acquisition");
    assert_eq!(seen.samples("eslock_hold_seconds", &jobs), 1);
    assert_eq!(seen.gauge("eslock_leases_held", &jobs), Some(0.0));

    // Without a label: `other`, or the id when the application opts in.
    manager.with_lock("ad-hoc/1", LockOptions::default(), || async {}).await.unwrap();
    let by_id = LockManager::builder().in_memory().label_metrics_with_lock_ids(true).build();
    by_id.with_lock("ad-hoc/2", LockOptions::default(), || async {}).await.unwrap();
    // #[exclusive] labels with its template, whatever the rendered id.
    assert_eq!(report(&manager, 7).await.unwrap(), 7);
    assert_eq!(report(&manager, 8).await.unwrap(), 8);
    seen.update(&snapshotter);
    assert_eq!(seen.counter("eslock_acquisitions_total", &[("lock", "other"), ("outcome", "acquired")]), 1);
    assert_eq!(seen.counter("eslock_acquisitions_total", &[("lock", "ad-hoc/2"), ("outcome", "acquired")]), 1);
    assert_eq!(seen.counter("eslock_acquisitions_total", &[("lock", "reports/{day}"), ("outcome", "acquired")]), 2);
}
