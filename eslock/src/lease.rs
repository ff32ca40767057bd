//! A held lock: renewed in the background while it lives, trusted only until
//! its trust deadline, and released on every exit path.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::error::{BackendError, Operation, Result};
use crate::handoff::{Handoff, Next, Offer};
use crate::local::Local;
use crate::pending::PendingGuard;
use crate::store::{HandOver, LockStore, Renewal};
use crate::telemetry::{self, Label};
use crate::timetable::Entry;
use crate::id::LockId;
use crate::info::LockInfo;

/// A lock held by this process.
///
/// A lease is trusted until its *trust deadline*: the moment the request
/// behind its last successful acquisition or renewal was sent, plus the TTL
/// that request asked for, minus a safety margin of TTL/5, counted on the
/// local monotonic clock. Past it the lease is *lost* — [`LeaseHandle::is_lost`]
/// says so and [`LeaseHandle::lost`] completes — whether or not the background
/// task has run. It is also lost as soon as the store reports that its token
/// no longer holds the lock. A lost lease stays lost.
///
/// While the `Lease` lives, a background task extends it about every TTL/3,
/// retrying failures within the deadline (the task starts half-way to the
/// first renewal: a lease released before never needs one). The task runs
/// on the runtime that acquired the lease: keep that runtime running while
/// the lease is held. Release it with
/// [`Lease::release`]; dropping it instead schedules a release on the current
/// Tokio runtime (with no runtime left, the TTL frees the lock).
///
/// What a lease cannot promise: a process that is paused (a GC pause, a
/// stopped VM) after checking [`LeaseHandle::is_lost`] can still act after its
/// lease ended. Pass [`LeaseHandle::fencing_token`] with every write downstream so
/// the resource itself can refuse a stale holder.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> eslock::Result<()> {
/// use eslock::{LockManager, LockOptions};
///
/// let manager = LockManager::in_memory();
/// let lease = manager.acquire("compaction", LockOptions::default()).await?;
/// // ... pass lease.fencing_token() along with writes downstream ...
/// assert!(!lease.is_lost());
/// assert!(lease.release().await?);
/// # Ok(()) }
/// ```
///
/// `Lease` dereferences to [`LeaseHandle`], where the methods that do not
/// end the lease live (fencing token, `lost`, `extend`, ...).
#[derive(Debug)]
pub struct Lease {
    handle: LeaseHandle,
    released: bool,
}

/// A handle on a held lease, cheap to clone, for the work that runs under
/// it: its fencing token, its `lost` signal, `extend`. It does not own the
/// lock: the [`Lease`] (or [`LockManager::with_lease`](crate::LockManager::with_lease))
/// does, and releases it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> eslock::Result<()> {
/// use eslock::{LockManager, LockOptions};
///
/// let manager = LockManager::in_memory();
/// let token = manager
///     .with_lease("compaction", LockOptions::default(), |lease| async move {
///         // Pass the fencing token along with every write downstream.
///         lease.fencing_token()
///     })
///     .await?;
/// assert!(token > 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LeaseHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    local: Arc<Local>,
    lock_id: LockId,
    token: String,
    fencing_token: u64,
    created_at: SystemTime,
    /// For metrics: the `lock` label, and when the lease started.
    label: Label,
    started: Instant,
    state: watch::Sender<LeaseState>,
    /// One extend request in flight at a time, so replies cannot overtake
    /// each other and put an older TTL back.
    extend_gate: tokio::sync::Mutex<()>,
    /// Whether the background task renews the lease, or only declares it
    /// lost at its deadline.
    renew: bool,
    keep_alive: std::sync::Mutex<KeepAlive>,
    /// The runtime that acquired the lease, where its background task runs
    /// (whichever runtime, if any, a later `extend` comes from).
    runtime: tokio::runtime::Handle,
}

/// The lease's background task ([`keep_alive_task`]).
#[derive(Debug)]
enum KeepAlive {
    /// Not started yet: due at its entry in the manager's timetable.
    Scheduled(Entry),
    Running(AbortHandle),
    /// The lease ended (or is still being set up): no task may start.
    Stopped,
}

/// How often a lease is renewed: a third of its TTL, so that two renewals
/// can fail before the trust deadline (TTL minus TTL/5).
fn renewal_interval(ttl: Duration) -> Duration {
    ttl / 3
}

/// What the lease knows about its standing in the store.
#[derive(Debug, Clone)]
struct LeaseState {
    /// The TTL later renewals ask for.
    ttl: Duration,
    /// The last request the store granted: when it was sent and its TTL.
    granted_sent: Instant,
    granted_ttl: Duration,
    /// An extend request whose reply has not come yet.
    in_flight: Option<(Instant, Duration)>,
    /// The smallest TTL of any extend request whose outcome stays unknown (it
    /// failed or was abandoned): the engine may still apply it, late.
    unsettled_ttl: Option<Duration>,
    expires_at: SystemTime,
    lost: Option<String>,
}

/// When a grant sent at `sent` for `ttl` stops being trusted: the TTL minus
/// a safety margin (TTL/5) for clock drift and travel time.
pub(crate) fn trust_deadline(sent: Instant, ttl: Duration) -> Instant {
    sent + ttl - ttl / 5
}

impl LeaseState {
    /// The trust deadline. The store's expiry is at least the last grant's
    /// send time plus its TTL; a request still in flight, or one whose
    /// outcome is unknown, may be applied later and set a shorter expiry
    /// (its own send time, or the last grant's if later, plus its TTL).
    fn deadline(&self) -> Instant {
        let granted_ttl = self.unsettled_ttl.map_or(self.granted_ttl, |ttl| ttl.min(self.granted_ttl));
        let granted = trust_deadline(self.granted_sent, granted_ttl);
        match self.in_flight {
            Some((sent, ttl)) => granted.min(trust_deadline(sent, ttl)),
            None => granted,
        }
    }

    /// The TTL that paces renewals: never longer than what the deadline uses.
    fn effective_ttl(&self) -> Duration {
        self.unsettled_ttl.map_or(self.ttl, |ttl| ttl.min(self.ttl))
    }
}

/// A lock the store has just granted, not yet handed out as a [`Lease`].
/// Dropped, it releases the lock: whoever stops caring about an acquisition
/// (a cancelled caller, a reply that came too late) cannot leave it held.
#[derive(Debug)]
pub(crate) struct Claim {
    local: Arc<Local>,
    lock_id: LockId,
    info: Option<LockInfo>,
    /// The work that got the grant, still pending until the claim is taken;
    /// `None` for a hand-over, whose waiter must not wait for its own claim.
    guard: Option<PendingGuard>,
}

impl Claim {
    pub(crate) fn new(local: Arc<Local>, lock_id: LockId, info: LockInfo, guard: Option<PendingGuard>) -> Self {
        Claim {
            local,
            lock_id,
            info: Some(info),
            guard,
        }
    }

    pub(crate) fn info(&self) -> &LockInfo {
        self.info.as_ref().expect("a claim holds its lock until taken")
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(info) = self.info.take() {
            let guard = self.guard.take().unwrap_or_else(|| self.local.pending.start(self.lock_id.as_str()));
            // The grant is ours and final: a plain release gives it back.
            schedule_release(Arc::clone(&self.local.store), self.lock_id.clone(), info.token, Giveback::Release, guard);
        }
    }
}

/// A span's `outcome` field for a store answer that is yes, no or an error.
fn outcome(answer: &Result<bool>, yes: &'static str, no: &'static str) -> &'static str {
    match answer {
        Ok(true) => yes,
        Ok(false) => no,
        Err(_) => "failed",
    }
}

/// How a background release gives the lock back.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Giveback {
    /// The token holds the lock: release it.
    Release,
    /// Nobody will use the token again, and a request with it may still be
    /// on its way: release it and have the store refuse it from now on.
    Abandon,
}

/// Gives `token`'s hold on `lock_id` back in the background; `guard` marks
/// the work pending until the store has answered.
pub(crate) fn schedule_release(store: Arc<dyn LockStore>, lock_id: LockId, token: String, how: Giveback, guard: PendingGuard) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!(%lock_id, "no runtime to release the lock; its TTL will free it");
        return;
    };
    runtime.spawn(async move {
        let outcome = match how {
            Giveback::Release => store.release(&lock_id, &token).await,
            Giveback::Abandon => store.abandon(&lock_id, &token).await,
        };
        match outcome {
            Ok(released) => {
                if released {
                    guard.released();
                }
                tracing::debug!(%lock_id, released, "scheduled release done")
            }
            Err(err) => tracing::warn!(%lock_id, error = %err, "scheduled release failed; the TTL will free the lock"),
        }
        drop(guard);
    });
}

impl Lease {
    /// Starts the lease for a claim granted by a request sent at `sent`.
    /// `None` (and the claim released) when the trust deadline has already
    /// passed: such a lease must never be handed out.
    pub(crate) fn start(mut claim: Claim, ttl: Duration, sent: Instant, renew: bool, label: Label) -> Option<Self> {
        if Instant::now() >= trust_deadline(sent, ttl) {
            return None;
        }
        let info = claim.info.take().expect("a claim holds its lock until taken");
        drop(claim.guard.take());
        let (state, _) = watch::channel(LeaseState {
            ttl,
            granted_sent: sent,
            granted_ttl: ttl,
            in_flight: None,
            unsettled_ttl: None,
            expires_at: info.expires_at,
            lost: None,
        });
        let shared = Arc::new(Shared {
            local: Arc::clone(&claim.local),
            lock_id: claim.lock_id.clone(),
            token: info.token,
            fencing_token: info.fencing_token.unwrap_or_default(),
            created_at: info.created_at,
            label,
            started: Instant::now(),
            state,
            extend_gate: tokio::sync::Mutex::new(()),
            renew,
            keep_alive: std::sync::Mutex::new(KeepAlive::Stopped),
            runtime: tokio::runtime::Handle::current(),
        });
        telemetry::lease_started(&shared.label);
        // The task has nothing to do before it may join a renewal batch.
        shared.schedule_keep_alive(sent + renewal_interval(ttl) / 2);
        Some(Lease {
            handle: LeaseHandle { shared },
            released: false,
        })
    }

    /// A handle on this lease for the work under it.
    pub fn handle(&self) -> LeaseHandle {
        self.handle.clone()
    }

    /// Stops renewal without releasing: the lock stays held until its TTL
    /// runs out (for example a marker that must outlive this process).
    pub fn detach(mut self) {
        self.shared.retire("the lease was detached; only its TTL holds the lock now");
        self.released = true;
        tracing::debug!(lock_id = %self.shared.lock_id, "lease detached; its TTL frees the lock");
    }

    /// Stops renewal and releases the lock. `false` when it was no longer
    /// ours (expired and taken over, or force-released).
    pub async fn release(mut self) -> Result<bool> {
        // Handles still held by the work must stop trusting the lease now.
        self.shared.retire("the lease was released");
        let span = tracing::info_span!("eslock.release", lock_id = %self.shared.lock_id, outcome = tracing::field::Empty);
        let released = self.shared.give_back().instrument(span.clone()).await;
        span.record("outcome", outcome(&released, "released", "not_ours"));
        let released = released?;
        // Only a completed request settles it; after an error, Drop tries again.
        self.released = true;
        tracing::debug!(lock_id = %self.shared.lock_id, released, "lock released");
        Ok(released)
    }
}

impl std::ops::Deref for Lease {
    type Target = LeaseHandle;

    fn deref(&self) -> &LeaseHandle {
        &self.handle
    }
}

impl LeaseHandle {

    /// The lock id.
    pub fn lock_id(&self) -> &LockId {
        &self.shared.lock_id
    }

    /// This acquisition's random token.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Strictly increasing across successive acquisitions of this lock id
    /// (after release, force-release, expiry and fail-over, whatever the
    /// clocks do): pass it with downstream writes so they can reject stale
    /// holders.
    pub fn fencing_token(&self) -> u64 {
        self.shared.fencing_token
    }

    /// When the lock was acquired (store clock).
    pub fn created_at(&self) -> SystemTime {
        self.shared.created_at
    }

    /// When the lease expires unless renewed again (store clock), as of the
    /// last successful renewal.
    pub fn expires_at(&self) -> SystemTime {
        self.shared.state.borrow().expires_at
    }

    /// Extends the lease to `ttl` from now, and makes `ttl` the TTL of later
    /// renewals. The trust deadline follows at once: a shorter TTL shortens
    /// it while the request is still in flight. `false` when the lock is no
    /// longer ours, or the lease was already lost (it stays lost).
    pub async fn extend(&self, ttl: Duration) -> Result<bool> {
        crate::options::check_ttl(ttl)?;
        // A new TTL may move the next renewal before the task was due to start.
        self.shared.start_keep_alive();
        let span = tracing::info_span!("eslock.extend", lock_id = %self.shared.lock_id, outcome = tracing::field::Empty);
        let extended = self.shared.extend(Some(ttl)).instrument(span.clone()).await;
        span.record("outcome", outcome(&extended, "extended", "not_ours"));
        extended
    }

    /// Completes when the lease is lost: at its trust deadline at the latest,
    /// even if no renewal task got to run. Never completes for a healthy lease.
    pub async fn lost(&self) {
        self.shared.lost().await
    }

    /// Whether the lease is lost. Computed from the trust deadline now, not
    /// from what the background task last saw.
    pub fn is_lost(&self) -> bool {
        self.shared.check_lost()
    }

    /// Why the lease was lost, if it was.
    pub fn lost_reason(&self) -> Option<String> {
        self.shared.check_lost();
        self.shared.state.borrow().lost.clone()
    }

}

impl Drop for Lease {
    fn drop(&mut self) {
        self.shared.retire("the lease was dropped");
        telemetry::lease_ended(&self.shared.label, self.shared.started.elapsed());
        if self.released {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let guard = shared.local.pending.start(shared.lock_id.as_str());
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(lock_id = %shared.lock_id, "no runtime to release the lock; its TTL will free it");
            return;
        };
        runtime.spawn(async move {
            match shared.give_back().await {
                Ok(released) => tracing::debug!(lock_id = %shared.lock_id, released, "dropped lease released"),
                Err(err) => tracing::warn!(lock_id = %shared.lock_id, error = %err, "releasing a dropped lease failed; the TTL will free the lock"),
            }
            drop(guard);
        });
    }
}

impl Shared {
    /// Gives the lock back: to the first local waiter for it if there is
    /// one, else to the store. Whether it was still ours.
    async fn give_back(self: &Arc<Self>) -> Result<bool> {
        match self.local.waiters.next(&self.lock_id) {
            Next::HandOver(handoff) => {
                // In a task of its own: a caller who stops waiting for the
                // release cannot cut the hand-over off between the store's
                // grant and the waiter (the new token would be lost with it).
                let shared = Arc::clone(self);
                let guard = self.local.pending.start(self.lock_id.as_str());
                let task = tokio::spawn(async move {
                    let handed = shared.hand_over(handoff).await;
                    drop(guard);
                    handed
                });
                match task.await {
                    Ok(handed) => handed,
                    Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                    Err(_) => Err(BackendError::new(Operation::Release, Some(&self.lock_id), "the runtime shut down during the hand-over").into()),
                }
            }
            Next::Release { wake_local_waiters } => {
                let released = self.local.store.release(&self.lock_id, &self.token).await?;
                if released && wake_local_waiters {
                    self.local.pending.released();
                }
                Ok(released)
            }
        }
    }

    /// Passes the lock to a local waiter in one store request, and tells
    /// the waiter what came of it.
    async fn hand_over(&self, Handoff { request, offers }: Handoff) -> Result<bool> {
        let sent = Instant::now();
        let outcome = self.local.store.hand_over(&self.lock_id, &self.token, &request).await;
        let (offer, released) = match outcome {
            Ok(HandOver::HandedOver(info)) => {
                let claim = Claim::new(Arc::clone(&self.local), self.lock_id.clone(), info, None);
                (Offer::Granted { claim: Box::new(claim), sent }, Ok(true))
            }
            Ok(HandOver::Released) => (Offer::TryNow, Ok(true)),
            Ok(HandOver::NotHeld) => (Offer::TryNow, Ok(false)),
            Err(err) => {
                // Unknown outcome: the new token may hold the lock, or get
                // it late. Abandoning it covers both.
                let guard = self.local.pending.start(self.lock_id.as_str());
                schedule_release(Arc::clone(&self.local.store), self.lock_id.clone(), request.token, Giveback::Abandon, guard);
                (Offer::TryNow, Err(err))
            }
        };
        // A waiter gone meanwhile drops the offer, and a dropped claim releases.
        let _ = offers.send(offer);
        released
    }

    fn declare_lost(&self, reason: String) {
        let mut first = false;
        self.state.send_if_modified(|state| {
            first = state.lost.is_none();
            if first {
                state.lost = Some(reason.clone());
                // Counted before anyone waiting on `lost()` can see the loss.
                telemetry::lease_lost(&self.label);
            }
            first
        });
        if first {
            tracing::warn!(lock_id = %self.lock_id, %reason, "lease lost");
        }
    }

    /// Ends the lease for good, as its owner asked: handles see it lost (no
    /// warning, no metric: nothing went wrong), and the background task stops.
    fn retire(&self, reason: &str) {
        self.state.send_if_modified(|state| {
            let first = state.lost.is_none();
            if first {
                state.lost = Some(reason.to_string());
            }
            first
        });
        // After the state: a task starting meanwhile sees the lease lost.
        match std::mem::replace(&mut *crate::sync::lock(&self.keep_alive), KeepAlive::Stopped) {
            KeepAlive::Scheduled(entry) => drop(entry),
            KeepAlive::Running(task) => task.abort(),
            KeepAlive::Stopped => {}
        }
    }

    /// Plans the background task to start at `at` (or on the first extend).
    fn schedule_keep_alive(self: &Arc<Self>, at: Instant) {
        let lease = Arc::downgrade(self);
        let start = Box::new(move || {
            if let Some(shared) = lease.upgrade() {
                shared.start_keep_alive();
            }
        });
        // Locked while scheduling: the entry cannot start before it is recorded.
        let mut keep_alive = crate::sync::lock(&self.keep_alive);
        *keep_alive = KeepAlive::Scheduled(self.local.timetable.schedule(&self.runtime, at, start));
    }

    /// Starts the background task now if it is only scheduled.
    fn start_keep_alive(self: &Arc<Self>) {
        let mut keep_alive = crate::sync::lock(&self.keep_alive);
        if matches!(*keep_alive, KeepAlive::Scheduled(_)) && self.state.borrow().lost.is_none() {
            let task = self.runtime.spawn(keep_alive_task(Arc::clone(self)));
            // Replacing the entry drops it: it is due now, or already taken.
            *keep_alive = KeepAlive::Running(task.abort_handle());
        }
    }

    /// Whether the lease is lost, declaring it so once its deadline has passed.
    fn check_lost(&self) -> bool {
        let (lost, deadline, ttl) = {
            let state = self.state.borrow();
            (state.lost.is_some(), state.deadline(), state.effective_ttl())
        };
        if !lost && Instant::now() >= deadline {
            self.declare_lost(format!("no renewal succeeded within the TTL ({ttl:?}) minus the safety margin"));
            return true;
        }
        lost
    }

    async fn lost(&self) {
        let mut changes = self.state.subscribe();
        loop {
            // Mark the state seen before checking it, so that a change made
            // in between (the lease declared lost) still wakes `changed`.
            let deadline = changes.borrow_and_update().deadline();
            if self.check_lost() {
                return;
            }
            tokio::select! {
                // The sender lives in `self`: `changed` cannot fail while we borrow it.
                _ = changes.changed() => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Sends one extend request (with `ttl`, or the lease's current TTL) and
    /// records what it means for the trust deadline.
    async fn extend(&self, ttl: Option<Duration>) -> Result<bool> {
        let _gate = self.extend_gate.lock().await;
        if self.check_lost() {
            return Ok(false);
        }
        let sent = Instant::now();
        let mut ttl_in_force = ttl.unwrap_or_default();
        self.state.send_modify(|state| {
            if let Some(ttl) = ttl {
                state.ttl = ttl;
            }
            ttl_in_force = state.ttl;
            state.in_flight = Some((sent, state.ttl));
        });
        // Until a reply settles it, the request counts as unsettled: if this
        // future is dropped or fails, the engine may still apply it later.
        let mut unsettled = Unsettled { state: &self.state, ttl: Some(ttl_in_force) };
        let reply = match ttl {
            // Background renewals go out in batches with the manager's other leases.
            None => {
                let renewal = Renewal { lock_id: self.lock_id.clone(), token: self.token.clone(), ttl: ttl_in_force };
                self.local.renewals.extend(renewal).await?
            }
            Some(_) => self.local.store.extend(&self.lock_id, &self.token, ttl_in_force).await?,
        };
        unsettled.ttl = None;
        match reply {
            Some(info) => {
                self.state.send_modify(|state| {
                    state.in_flight = None;
                    // Requests are sent one at a time, but never let an older
                    // grant replace a newer one.
                    if sent >= state.granted_sent {
                        state.granted_sent = sent;
                        state.granted_ttl = ttl_in_force;
                        state.expires_at = info.expires_at;
                    }
                });
                tracing::debug!(lock_id = %self.lock_id, "lease extended");
                Ok(!self.check_lost())
            }
            None => {
                self.state.send_modify(|state| state.in_flight = None);
                self.declare_lost("the store no longer holds this lease's token (expired, taken over or force-released)".into());
                Ok(false)
            }
        }
    }
}

/// An extend request without a reply yet; dropped unsettled (an error, or
/// the future abandoned), its TTL keeps bounding the trust deadline.
struct Unsettled<'a> {
    state: &'a watch::Sender<LeaseState>,
    ttl: Option<Duration>,
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        if let Some(ttl) = self.ttl {
            self.state.send_modify(|state| {
                state.in_flight = None;
                state.unsettled_ttl = Some(state.unsettled_ttl.map_or(ttl, |known| known.min(ttl)));
            });
        }
    }
}

/// The background task: renews the lease (unless it was acquired without
/// renewal) and declares it lost when its trust deadline passes.
async fn keep_alive_task(shared: Arc<Shared>) {
    let renew = shared.renew;
    let mut changes = shared.state.subscribe();
    let mut batches = shared.local.renewals.gathering();
    let mut backoff: Option<Backoff> = None;
    loop {
        let (deadline, next_renewal, half_way) = {
            // Seen before checked: a change in between wakes `changed` below.
            let state = changes.borrow_and_update();
            let interval = renewal_interval(state.effective_ttl());
            let next = match backoff.as_mut() {
                // After a failure, retry sooner, but never wait longer than the interval.
                Some(backoff) => Instant::now() + backoff.next_delay().min(interval),
                None => state.granted_sent + interval,
            };
            (state.deadline(), next, state.granted_sent + interval / 2)
        };
        if shared.check_lost() {
            return;
        }
        let wake = if renew { next_renewal.min(deadline) } else { deadline };
        tokio::select! {
            // A user's extend changed the schedule: compute it again.
            _ = changes.changed() => continue,
            () = tokio::time::sleep_until(wake) => {}
            // A batch is gathering: join it once half-way to the next
            // renewal, so that renewals line up into one request per tick.
            Ok(()) = batches.changed(), if renew && backoff.is_none() => {
                if Instant::now() < half_way {
                    continue;
                }
            }
        }
        if !renew || shared.check_lost() {
            continue;
        }
        let remaining = shared.state.borrow().deadline().saturating_duration_since(Instant::now());
        let renewed = tokio::time::timeout(remaining, shared.extend(None)).await;
        telemetry::renewal(&shared.label, matches!(renewed, Ok(Ok(true))));
        match renewed {
            Ok(Ok(true)) => backoff = None,
            Ok(Ok(false)) => return,
            Ok(Err(err)) => {
                tracing::warn!(lock_id = %shared.lock_id, error = %err, "lease renewal failed; retrying");
                backoff.get_or_insert_with(|| Backoff::new(Duration::from_millis(50), Duration::from_secs(2)));
            }
            Err(_) => {
                tracing::warn!(lock_id = %shared.lock_id, "lease renewal did not answer before the trust deadline");
            }
        }
    }
}
