//! The spans eslock opens for each lock operation, as an application's
//! `tracing` subscriber sees them: name, lock id and outcome.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eslock::{LockManager, LockOptions};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Each span's name and its fields (`#id` first, then `field=value`), in
/// the order the spans opened.
type SpanLog = Vec<(String, Vec<String>)>;

/// Every span's name and fields, as `name: field=value ...`.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<SpanLog>>);

struct Fields<'a>(&'a mut Vec<String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{}={:?}", field.name(), value).replace('"', ""));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = vec![format!("#{}", id.into_u64())];
        attributes.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push((attributes.metadata().name().to_string(), fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        let tag = format!("#{}", id.into_u64());
        if let Some((_, fields)) = spans.iter_mut().rev().find(|(_, fields)| fields[0] == tag) {
            values.record(&mut Fields(fields));
        }
    }
}

impl Spans {
    fn has(&self, name: &str, fields: &[&str]) -> bool {
        self.0.lock().unwrap().iter().any(|(n, f)| n == name && fields.iter().all(|want| f.iter().any(|have| have == want)))
    }
}

#[tokio::test]
async fn lock_operations_open_spans_with_lock_id_and_outcome() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let manager = LockManager::in_memory();
    let lease = manager.acquire("jobs/a", LockOptions::default()).await.unwrap();
    assert!(manager.acquire("jobs/a", LockOptions::default().wait(Duration::from_millis(120))).await.is_err());
    assert!(lease.extend(Duration::from_secs(60)).await.unwrap());
    let token = lease.token().to_string();
    assert!(lease.release().await.unwrap());
    manager.with_lock("jobs/b", LockOptions::default(), || async {}).await.unwrap();

    assert!(spans.has("eslock.acquire", &["lock_id=jobs/a", "outcome=acquired"]));
    assert!(spans.has("eslock.acquire", &["lock_id=jobs/a", "outcome=refused"]));
    assert!(spans.has("eslock.wait", &["lock_id=jobs/a"]));
    assert!(spans.has("eslock.extend", &["lock_id=jobs/a", "outcome=extended"]));
    assert!(spans.has("eslock.release", &["lock_id=jobs/a", "outcome=released"]));
    assert!(spans.has("eslock.with_lock", &["lock_id=jobs/b", "outcome=ok"]));
    let all = format!("{:?}", spans.0.lock().unwrap());
    assert!(!all.contains(&token), "tokens stay out of spans");
}
