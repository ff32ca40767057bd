//! The public entry point: `LockManager`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use elasticsearch::Elasticsearch;
use futures_util::FutureExt;
use tracing::field::Empty;
use tracing::{Instrument, Span};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::error::{Error, LeaseLostError, LockAcquisitionError, Result};
use crate::handoff::{IDLE_POLLING, Offer, Place};
use crate::id::LockId;
use crate::info::LockInfo;
use crate::lease::{Claim, Giveback, Lease, LeaseHandle, schedule_release};
use crate::local::Local;
use crate::options::{LockOptions, ResolvedOptions};
use crate::pending::PendingGuard;
use crate::telemetry::{self, Acquisition};
use crate::store::elasticsearch::{Connection, ElasticsearchStore};
use crate::store::memory::MemoryStore;
use crate::store::{AcquireOutcome, AcquireRequest, LockStore};

/// The longest pause between two polls of a waiting acquisition.
const MAX_WAIT_BACKOFF: Duration = Duration::from_secs(2);

/// Acquires, inspects and releases distributed locks. Cheap to clone; clones
/// share the store.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> eslock::Result<()> {
/// use eslock::{LockManager, LockOptions};
///
/// let manager = LockManager::in_memory();
/// let rows = manager
///     .with_lock("reindex/logs", LockOptions::default(), || async {
///         // Only one process at a time gets here.
///         42
///     })
///     .await?;
/// assert_eq!(rows, 42);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LockManager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn LockStore>,
    default_ttl: Duration,
    setup_done: OnceCell<()>,
    /// What the leases of this manager share with it.
    local: Arc<Local>,
    /// Whether metrics may carry rendered lock ids as labels.
    label_ids: bool,
}

/// An acquire request whose outcome is not known yet. Dropped while still
/// pending (its caller went away, or the request failed), it abandons the
/// token: released if the engine granted it, refused if the request (or a
/// copy of it) arrives later.
struct InFlight {
    store: Arc<dyn LockStore>,
    request: AcquireRequest,
    /// Marks the id's work pending; taken once the outcome is known.
    guard: Option<PendingGuard>,
}

impl InFlight {
    /// The outcome is known: nothing to abandon. The id's pending mark.
    fn settle(&mut self) -> Option<PendingGuard> {
        self.guard.take()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            let token = std::mem::take(&mut self.request.token);
            schedule_release(Arc::clone(&self.store), self.request.lock_id.clone(), token, Giveback::Abandon, guard);
        }
    }
}

/// What one acquisition attempt found.
enum Attempt {
    Granted(Claim),
    Held(Option<LockInfo>),
}

/// Why an attempt did not end in a lease.
enum Refusal {
    /// Another holder has the lock (their lock, when the store returned it).
    Held(Option<LockInfo>),
    /// The grant arrived after its trust deadline and was given back.
    TooLate,
}

impl Refusal {
    /// How long until the holder's lease runs out, as the store's reply
    /// said, plus a little: a hint for when to try again, so that a waiter
    /// takes over an expiring lock at once rather than at its next backoff
    /// step. Only timing rests on it. An expiry already past by our clock
    /// (it is ahead of the cluster's) is no hint at all.
    fn expires_in(&self) -> Duration {
        match self {
            Refusal::Held(Some(holder)) => match holder.expires_at.duration_since(std::time::SystemTime::now()) {
                Ok(left) if !left.is_zero() => left + Duration::from_millis(rand::random_range(5..30)),
                _ => Duration::MAX,
            },
            Refusal::Held(None) | Refusal::TooLate => Duration::MAX,
        }
    }

    fn into_error(self, lock_id: &LockId, waited: Option<Duration>) -> Error {
        match self {
            Refusal::Held(holder) => {
                tracing::debug!(lock_id = %lock_id, "lock held by another holder");
                LockAcquisitionError {
                    lock_id: lock_id.clone(),
                    holder_metadata: holder.as_ref().map(|h| h.metadata.clone()),
                    holder_expires_at: holder.as_ref().map(|h| h.expires_at),
                    waited,
                }
                .into()
            }
            Refusal::TooLate => LeaseLostError {
                lock_id: lock_id.clone(),
                reason: "the acquire reply came after the lease's trust deadline (TTL minus the safety margin) had passed; \
                         the lock was given back"
                    .into(),
            }
            .into(),
        }
    }
}

impl LockManager {
    /// A manager that keeps locks in the cluster behind `client`, in the
    /// default index layout (`.eslock-locks`). For another index, a request
    /// timeout or Kibana's lock index, build the store with
    /// [`ElasticsearchStore::builder`] and pass it to
    /// [`LockManagerBuilder::store`].
    pub fn elasticsearch(client: Elasticsearch) -> Self {
        Self::builder().elasticsearch(client).build()
    }

    /// A manager on the cluster the environment names, or on the in-memory
    /// store when it names none: for programs that run both against a
    /// cluster and, in development and tests, on their own.
    ///
    /// Reads `ELASTICSEARCH_URL` (one URL, or several separated by commas)
    /// and the credentials in `ELASTICSEARCH_API_KEY`, or
    /// `ELASTICSEARCH_USERNAME` and `ELASTICSEARCH_PASSWORD`, and a private
    /// CA in `ELASTICSEARCH_CA_CERT` ([`Connection::from_env`]); the store
    /// uses the default index layout. Without `ELASTICSEARCH_URL`, locks
    /// live in this process's memory.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> eslock::Result<()> {
    /// use eslock::{LockManager, LockOptions};
    ///
    /// let manager = LockManager::from_env()?;
    /// match manager.index() {
    ///     Some(index) => println!("locks in the cluster's index {index}"),
    ///     None => println!("locks in memory (set ELASTICSEARCH_URL to use a cluster)"),
    /// }
    /// let lease = manager.acquire("docs/from-env", LockOptions::default()).await?;
    /// assert!(lease.release().await?);
    /// # Ok(()) }
    /// ```
    ///
    /// [`Connection::from_env`]: crate::store::elasticsearch::Connection::from_env
    pub fn from_env() -> Result<Self> {
        Ok(match Connection::from_env()? {
            Some(connection) => Self::elasticsearch(connection.client()?),
            None => Self::in_memory(),
        })
    }

    /// A manager with the embedded in-memory store: locks shared by the
    /// managers cloned from this one, within this process.
    pub fn in_memory() -> Self {
        Self::builder().in_memory().build()
    }

    /// Configures a manager: its store and default TTL.
    pub fn builder() -> LockManagerBuilder {
        LockManagerBuilder::default()
    }

    /// Prepares the store (for Elasticsearch: templates and index). Idempotent
    /// and safe to run from many processes at once; every operation also runs
    /// it lazily, once per manager.
    pub async fn setup(&self) -> Result<()> {
        self.inner.store.setup().await?;
        let _ = self.inner.setup_done.set(());
        Ok(())
    }

    async fn ensure_setup(&self) -> Result<()> {
        self.inner.setup_done.get_or_try_init(|| self.inner.store.setup()).await?;
        Ok(())
    }

    /// The concrete index name (Elasticsearch store only).
    pub fn index(&self) -> Option<&str> {
        self.inner.store.index()
    }

    /// The TTL used when [`LockOptions::ttl`] is not given.
    pub fn default_ttl(&self) -> Duration {
        self.inner.default_ttl
    }

    /// Acquires `lock_id` and returns a [`Lease`] that renews itself until it
    /// is released or dropped.
    ///
    /// A held lock is an immediate [`Error::Acquisition`](crate::Error::Acquisition), unless
    /// [`LockOptions::wait`] is given: then acquisition retries with jittered
    /// exponential backoff until it wins or the wait has passed.
    pub async fn acquire(&self, lock_id: impl AsRef<str>, options: LockOptions) -> Result<Lease> {
        let lock_id = LockId::new(lock_id)?;
        let options = options.resolve(&lock_id, self.inner.default_ttl, self.inner.label_ids)?;
        let span = tracing::info_span!("eslock.acquire", lock_id = %lock_id, outcome = Empty, fencing_token = Empty, waited_ms = Empty);
        async {
            let started = Instant::now();
            let acquired = async {
                self.ensure_setup().await?;
                self.acquire_resolved(lock_id, &options, started).await
            }
            .await;
            let took = started.elapsed();
            let outcome = match &acquired {
                Ok(lease) => {
                    Span::current().record("fencing_token", lease.fencing_token());
                    Acquisition::Acquired
                }
                Err(Error::Acquisition(_)) => Acquisition::Refused,
                Err(Error::LeaseLost(_)) => Acquisition::Late,
                Err(_) => Acquisition::Failed,
            };
            let span = Span::current();
            span.record("outcome", outcome.as_str());
            let waited = options.wait.map(|_| took);
            if let Some(waited) = waited {
                span.record("waited_ms", waited.as_millis() as u64);
            }
            telemetry::acquisition(&options.label, outcome, took, waited);
            acquired
        }
        .instrument(span)
        .await
    }

    async fn acquire_resolved(&self, lock_id: LockId, options: &ResolvedOptions, started: Instant) -> Result<Lease> {
        let mut backoff = Backoff::new(Duration::from_millis(50), MAX_WAIT_BACKOFF);
        // Our place among this process's waiters for the id, once we wait.
        let mut place: Option<Place> = None;
        loop {
            // After a run of hand-overs between this process's waiters, they
            // leave the lock to waiters elsewhere for a moment.
            if let (Some(wait), Some(until)) = (options.wait, self.inner.local.waiters.yielding(&lock_id)) {
                tokio::time::sleep_until(until.min(started + wait)).await;
            }
            // Our own unfinished work on this id (a release scheduled by a
            // dropped lease, an acquire whose caller went away) goes first.
            self.inner.local.pending.settled(lock_id.as_str()).await;
            // Subscribed before the attempt: a local release after its reply
            // still wakes the wait below.
            let mut local_release = self.inner.local.pending.releases();
            if let Some(place) = &place {
                place.polling();
            }
            let sent = Instant::now();
            let holder = match self.attempt(&lock_id, options).await? {
                Attempt::Granted(claim) => {
                    let info = claim.info();
                    tracing::debug!(lock_id = %lock_id, fencing_token = ?info.fencing_token, token = %info.token, "lock acquired");
                    match Lease::start(claim, options.ttl, sent, options.renew, options.label.clone()) {
                        Some(lease) => return Ok(lease),
                        // The reply came after the lease's trust deadline: the
                        // claim is released, and the lease never handed out.
                        None => Refusal::TooLate,
                    }
                }
                Attempt::Held(holder) => Refusal::Held(holder),
            };
            let waited = started.elapsed();
            let remaining = match options.wait {
                Some(wait) if waited < wait => wait - waited,
                _ => return Err(holder.into_error(&lock_id, options.wait.map(|_| waited))),
            };
            let place = place.get_or_insert_with(|| self.inner.local.waiters.join(&lock_id, options.ttl, options.metadata.clone()));
            let span = tracing::debug_span!("eslock.wait", lock_id = %lock_id, waited_ms = waited.as_millis() as u64);
            let offer = Self::wait_turn(place, &mut local_release, &mut backoff, &holder, remaining).instrument(span).await;
            if let Some(Offer::Granted { claim, sent }) = offer {
                tracing::debug!(lock_id = %lock_id, "lock handed over by a release in this process");
                // A hand-over that came too late is released with its claim;
                // the wait goes on.
                if let Some(lease) = Lease::start(*claim, options.ttl, sent, options.renew, options.label.clone()) {
                    return Ok(lease);
                }
            }
        }
    }

    /// Waits until this waiter should try again, or a release in this
    /// process offers it the lock. The first local waiter polls the store
    /// (after its backoff, or at once when a local lock is released); the
    /// others wait for an offer or for their turn, and poll only when
    /// nobody in the queue did for [`IDLE_POLLING`] (a first waiter whose
    /// future nobody polls must not hold them up). At most `remaining`.
    async fn wait_turn(
        place: &mut Place,
        local_release: &mut tokio::sync::watch::Receiver<u64>,
        backoff: &mut Backoff,
        holder: &Refusal,
        remaining: Duration,
    ) -> Option<Offer> {
        let deadline = Instant::now() + remaining;
        loop {
            let first = place.is_first();
            let mut turns = place.turns();
            let wake = Instant::now() + if first { backoff.next_delay().min(holder.expires_in()) } else { IDLE_POLLING };
            tokio::select! {
                () = tokio::time::sleep_until(wake.min(deadline)) => {
                    if first || wake >= deadline || place.polling_is_idle() {
                        return None;
                    }
                }
                // A lock of this process was released: try now.
                Ok(()) = local_release.changed(), if first => return None,
                // Someone left the queue: poll at once if this waiter is first now.
                Ok(()) = turns.changed(), if !first => {
                    if place.is_first() {
                        return None;
                    }
                }
                offer = place.offer() => return Some(offer),
            }
        }
    }

    /// One acquisition attempt. A caller who stops waiting (a timeout, a
    /// dropped future) cannot leave the lock held: the request in flight is
    /// then abandoned (see [`InFlight`]), and a grant nobody takes is
    /// released with its claim.
    async fn attempt(&self, lock_id: &LockId, options: &ResolvedOptions) -> Result<Attempt> {
        let local = &self.inner.local;
        let mut in_flight = InFlight {
            store: Arc::clone(&local.store),
            request: AcquireRequest {
                lock_id: lock_id.clone(),
                token: uuid::Uuid::new_v4().to_string(),
                ttl: options.ttl,
                metadata: options.metadata.clone(),
            },
            guard: Some(local.pending.start(lock_id.as_str())),
        };
        match local.store.acquire(&in_flight.request).await {
            Ok(AcquireOutcome::Acquired(info)) => Ok(Attempt::Granted(Claim::new(Arc::clone(local), lock_id.clone(), info, in_flight.settle()))),
            Ok(AcquireOutcome::Held(holder)) => {
                in_flight.settle();
                Ok(Attempt::Held(holder))
            }
            // The outcome is unknown: the engine may have granted the lock
            // before the reply was lost, or may still get the request.
            // Dropping `in_flight` abandons the token, which covers both.
            Err(err) => Err(err),
        }
    }

    /// Runs `work` while holding `lock_id` and returns its value.
    ///
    /// When the lock is held elsewhere, returns [`Error::Acquisition`](crate::Error::Acquisition) without
    /// running `work`. The lock is released when `work` returns, when it
    /// panics (the panic then continues), and when the returned future is
    /// dropped. If the lease is lost while `work` runs, `work` is stopped
    /// (its future dropped) and [`Error::LeaseLost`](crate::Error::LeaseLost) is returned: another
    /// process may already hold the lock.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> eslock::Result<()> {
    /// use std::time::Duration;
    /// use eslock::{LockManager, LockOptions};
    ///
    /// let manager = LockManager::in_memory();
    /// let options = LockOptions::default().ttl(Duration::from_secs(60));
    /// let outcome: Result<u32, std::io::Error> =
    ///     manager.with_lock("migrations", options, || async { Ok(3) }).await?;
    /// assert_eq!(outcome.unwrap(), 3);
    /// # Ok(()) }
    /// ```
    pub async fn with_lock<F, Fut, T>(&self, lock_id: impl AsRef<str>, options: LockOptions, work: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.with_lease(lock_id, options, |_| work()).await
    }

    /// [`with_lock`](Self::with_lock), with a [`LeaseHandle`] for the work:
    /// its fencing token to pass along with writes downstream, its `lost`
    /// signal, `extend`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> eslock::Result<()> {
    /// use eslock::{LockManager, LockOptions};
    ///
    /// let manager = LockManager::in_memory();
    /// let written = manager
    ///     .with_lease("ledger", LockOptions::default(), |lease| async move {
    ///         // e.g. UPDATE ... WHERE fencing_token < $1, with lease.fencing_token()
    ///         lease.fencing_token() > 0
    ///     })
    ///     .await?;
    /// assert!(written);
    /// # Ok(()) }
    /// ```
    pub async fn with_lease<F, Fut, T>(&self, lock_id: impl AsRef<str>, options: LockOptions, work: F) -> Result<T>
    where
        F: FnOnce(LeaseHandle) -> Fut,
        Fut: Future<Output = T>,
    {
        let span = tracing::info_span!("eslock.with_lock", lock_id = %lock_id.as_ref(), outcome = Empty);
        let outcome = self.run_under_lease(lock_id, options, work).instrument(span.clone()).await;
        span.record(
            "outcome",
            match &outcome {
                Ok(_) => "ok",
                Err(Error::Acquisition(_)) => "refused",
                Err(Error::LeaseLost(_)) => "lost",
                Err(_) => "failed",
            },
        );
        outcome
    }

    async fn run_under_lease<F, Fut, T>(&self, lock_id: impl AsRef<str>, options: LockOptions, work: F) -> Result<T>
    where
        F: FnOnce(LeaseHandle) -> Fut,
        Fut: Future<Output = T>,
    {
        let lease = self.acquire(lock_id, options).await?;
        let handle = lease.handle();
        // Catch a panic so the release completes before the panic goes on.
        let work = AssertUnwindSafe(async move { work(handle).await }).catch_unwind();
        let outcome = tokio::select! {
            // Loss first: once the deadline has passed, the work is not
            // polled again (it would run on an untrusted lease).
            biased;
            () = lease.lost() => None,
            outcome = work => Some(outcome),
        };
        // Asked again after the callback: one that never yielded kept
        // `lost()` from firing, but its deadline may have passed meanwhile.
        let lost_reason = if lease.is_lost() { lease.lost_reason() } else { None };
        let lock_id = lease.lock_id().clone();
        if let Err(err) = lease.release().await {
            tracing::warn!(lock_id = %lock_id, error = %err, "release after with_lock failed; the TTL will free the lock");
        }
        match (outcome, lost_reason) {
            (Some(Err(panic)), _) => std::panic::resume_unwind(panic),
            (Some(Ok(value)), None) => Ok(value),
            (_, reason) => Err(LeaseLostError {
                lock_id,
                reason: reason.unwrap_or_else(|| "lease lost".into()),
            }
            .into()),
        }
    }

    /// The id of a lock to inspect or remove: eslock's rules, or, in a store
    /// shared with programs that use other ids (Kibana), any id it can hold.
    fn existing_lock_id(&self, lock_id: impl AsRef<str>) -> Result<LockId> {
        LockId::new(&lock_id).or_else(|strict| match self.inner.store.accepts_foreign_ids() {
            true => LockId::foreign(lock_id),
            false => Err(strict),
        })
    }

    /// Waits until every release this manager scheduled in the background
    /// is done: those of dropped leases, and of acquisitions whose caller
    /// went away. Call it before the Tokio runtime shuts down (at the end of
    /// `main`), since a runtime that ends drops the tasks still pending, and
    /// their locks then stay held until their TTL.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> eslock::Result<()> {
    /// let manager = eslock::LockManager::in_memory();
    /// let lease = manager.acquire("report", eslock::LockOptions::default()).await?;
    /// drop(lease); // schedules the release
    /// manager.flush().await;
    /// assert_eq!(manager.get("report").await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn flush(&self) {
        self.inner.local.pending.all_settled().await
    }

    /// The lock `lock_id`, or `None` when it is absent or expired. Sees every
    /// acquisition and release that completed before the call, from any process.
    pub async fn get(&self, lock_id: impl AsRef<str>) -> Result<Option<LockInfo>> {
        let lock_id = self.existing_lock_id(lock_id)?;
        self.ensure_setup().await?;
        self.inner.store.get(&lock_id).await
    }

    /// Every lock that has not expired, ordered by lock id.
    pub async fn list(&self) -> Result<Vec<LockInfo>> {
        self.ensure_setup().await?;
        self.inner.store.list().await
    }

    /// Deletes `lock_id` whoever holds it (an operator action: the holder's
    /// lease is lost at its next renewal). Whether there was a lock.
    pub async fn force_release(&self, lock_id: impl AsRef<str>) -> Result<bool> {
        let lock_id = self.existing_lock_id(lock_id)?;
        self.ensure_setup().await?;
        let released = self.inner.store.force_release(&lock_id).await?;
        tracing::debug!(lock_id = %lock_id, released, "lock force-released");
        Ok(released)
    }
}

/// Configures a [`LockManager`]: the store, the default TTL, metrics
/// labels. Each store owns its own settings (for Elasticsearch, the index
/// layout and request timeout: [`ElasticsearchStore::builder`]).
///
/// ```
/// use std::time::Duration;
/// use eslock::{ElasticsearchStore, LockManager};
///
/// let client = eslock::store::elasticsearch::client("http://localhost:9200")?;
/// let store = ElasticsearchStore::builder(client)
///     .index_prefix("billing")           // index billing-locks-000001
///     .build();
/// let manager = LockManager::builder()
///     .store(store)
///     .default_ttl(Duration::from_secs(60))
///     .build();
/// assert_eq!(manager.index(), Some("billing-locks-000001"));
/// # Ok::<(), eslock::Error>(())
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct LockManagerBuilder {
    store: Option<Arc<dyn LockStore>>,
    default_ttl: Option<Duration>,
    label_ids: bool,
}

impl LockManagerBuilder {
    /// Store locks in the cluster behind `client`, in the default index
    /// layout: [`ElasticsearchStore::new`].
    pub fn elasticsearch(self, client: Elasticsearch) -> Self {
        self.store(ElasticsearchStore::new(client))
    }

    /// Store locks in this process's memory (the default when no store is chosen).
    pub fn in_memory(self) -> Self {
        self.store(MemoryStore::new())
    }

    /// Use this store: an [`ElasticsearchStore`] of your own configuration,
    /// or a store of your own.
    pub fn store(mut self, store: impl LockStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// TTL for acquisitions that do not set one (30 s by default). A TTL
    /// that is too small is reported by the first acquisition that uses it.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Label metrics (feature `metrics`) with each rendered lock id when an
    /// acquisition gives no [`LockOptions::label`]. Off by default: with
    /// many distinct ids, metrics back ends suffer from the number of series.
    pub fn label_metrics_with_lock_ids(mut self, enabled: bool) -> Self {
        self.label_ids = enabled;
        self
    }

    /// Builds the manager.
    pub fn build(self) -> LockManager {
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        LockManager {
            inner: Arc::new(Inner {
                local: Local::new(Arc::clone(&store)),
                store,
                default_ttl: self.default_ttl.unwrap_or(eslock_rules::DEFAULT_TTL),
                setup_done: OnceCell::new(),
                label_ids: self.label_ids,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_thread_safe() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        fn sendable<T: Send + Sync>() {}
        shareable::<LockManager>();
        sendable::<Lease>();
        sendable::<Error>();
    }

    #[tokio::test]
    async fn builder_defaults() {
        let manager = LockManager::builder().default_ttl(Duration::from_secs(5)).build();
        assert_eq!(manager.default_ttl(), Duration::from_secs(5));
        assert_eq!(manager.index(), None);
        let es = LockManager::builder().elasticsearch(Elasticsearch::default()).in_memory().build();
        assert_eq!(es.index(), None, "the last store chosen wins");
        assert_eq!(LockManager::elasticsearch(Elasticsearch::default()).index(), Some(".eslock-locks-000001"));
    }
}
