//! The cases every store must pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use eslock::store::{AcquireOutcome, AcquireRequest, HandOver, Renewal};
use eslock::{Error, LockId, LockManager, LockOptions};
use eslock::rules::{LockIdError, MetadataError};
use futures::future::join_all;
use serde_json::json;

use super::{Backend, LateReplies, assert_acquisition_error, eventually, lock_id, metadata, short, since};

const GENEROUS: Duration = Duration::from_secs(10);

/// An acquired lock is visible with its token, metadata, fencing token and
/// exact TTL, and a release frees it.
pub async fn acquire_store_and_release(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("basic");
    let ttl = Duration::from_secs(20);
    let lease = manager
        .acquire(&id, LockOptions::default().ttl(ttl).metadata(metadata("a")))
        .await
        .unwrap();
    assert_eq!(*lease.lock_id(), id);

    let info = manager.get(&id).await.unwrap().expect("the lock is visible");
    assert_eq!(info.lock_id, id);
    assert_eq!(info.token, lease.token());
    assert_eq!(info.metadata, metadata("a"));
    assert_eq!(info.fencing_token, Some(lease.fencing_token()));
    assert_eq!(info.expires_at.duration_since(info.created_at).unwrap(), ttl);
    assert_eq!(lease.created_at(), info.created_at);

    assert!(lease.release().await.unwrap());
    assert_eq!(manager.get(&id).await.unwrap(), None);
}

/// A released lock is really free: the id can be taken again at once with
/// a fresh token, and a force-release after the last release finds nothing.
pub async fn releasing_twice_is_harmless(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("twice");
    let lease = manager.acquire(&id, LockOptions::default()).await.unwrap();
    let token = lease.token().to_string();
    assert!(lease.release().await.unwrap());
    // A second release of the same lock by its (former) holder: nothing to do.
    let again = manager.acquire(&id, LockOptions::default()).await.unwrap();
    assert_ne!(again.token(), token);
    assert!(again.release().await.unwrap());
    assert!(!manager.force_release(&id).await.unwrap());
    assert_eq!(manager.get(&id).await.unwrap(), None);
}

/// `get` stops reporting a lock once its TTL has run out, and the
/// unrenewed lease knows it is lost.
pub async fn get_hides_expired_lock(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("expired");
    let lease = manager.acquire(&id, short(1000).renew(false)).await.unwrap();
    assert!(manager.get(&id).await.unwrap().is_some());
    assert!(eventually(GENEROUS, || async { manager.get(&id).await.unwrap().is_none() }).await);
    assert!(lease.is_lost(), "an unrenewed lease is lost once its TTL has run out");
}

/// Releasing one id leaves another id's lock held.
pub async fn ids_do_not_interfere(backend: &impl Backend) {
    let manager = backend.manager();
    let (a, b) = (lock_id("a"), lock_id("b"));
    let lease_a = manager.acquire(&a, LockOptions::default()).await.unwrap();
    let lease_b = manager.acquire(&b, LockOptions::default()).await.unwrap();
    assert!(lease_a.release().await.unwrap());
    assert!(manager.get(&b).await.unwrap().is_some());
    assert!(lease_b.release().await.unwrap());
}

/// A held lock is refused to a contender with an acquisition error carrying
/// the holder's metadata and expiry; the holder keeps the lock unchanged.
pub async fn held_lock_is_refused_and_holder_kept(backend: &impl Backend) {
    let (holder, contender) = (backend.manager(), backend.manager());
    let id = lock_id("held");
    let lease = holder.acquire(&id, LockOptions::default().metadata(metadata("holder"))).await.unwrap();

    let err = contender
        .acquire(&id, LockOptions::default().metadata(metadata("contender")))
        .await
        .unwrap_err();
    assert_acquisition_error(&err, &id);
    let Error::Acquisition(acq) = &err else { unreachable!() };
    assert_eq!(acq.holder_metadata, Some(metadata("holder")));
    assert!(acq.holder_expires_at.is_some());

    let info = contender.get(&id).await.unwrap().unwrap();
    assert_eq!(info.token, lease.token());
    assert_eq!(info.metadata, metadata("holder"));
    assert!(lease.release().await.unwrap());
}

/// An expired lock goes to a new holder with a new token and a larger
/// fencing token; the old lease can neither extend nor release it.
pub async fn expired_lock_is_taken_over(backend: &impl Backend) {
    let (old, new) = (backend.manager(), backend.manager());
    let id = lock_id("takeover");
    let stale = old.acquire(&id, short(1000).renew(false).metadata(metadata("old"))).await.unwrap();
    assert!(eventually(GENEROUS, || async { old.get(&id).await.unwrap().is_none() }).await);

    let fresh = new.acquire(&id, LockOptions::default().metadata(metadata("new"))).await.unwrap();
    assert_ne!(fresh.token(), stale.token());
    assert!(fresh.fencing_token() > stale.fencing_token());
    let info = new.get(&id).await.unwrap().unwrap();
    assert_eq!(info.metadata, metadata("new"));

    // The old holder can neither extend nor release what is no longer its lock.
    assert!(!stale.extend(Duration::from_secs(30)).await.unwrap());
    assert!(!stale.release().await.unwrap());
    assert_eq!(new.get(&id).await.unwrap().unwrap().token, fresh.token());

    // The new holder can.
    assert!(fresh.extend(Duration::from_secs(30)).await.unwrap());
    assert!(fresh.release().await.unwrap());
}

/// An acquire that waits gets the lock once the holder releases it.
pub async fn wait_acquires_after_release(backend: &impl Backend) {
    let (holder, waiter) = (backend.manager(), backend.manager());
    let id = lock_id("wait");
    let lease = holder.acquire(&id, LockOptions::default()).await.unwrap();
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        lease.release().await.unwrap()
    });
    let won = waiter.acquire(&id, LockOptions::default().wait(Duration::from_secs(20))).await.unwrap();
    assert!(releaser.await.unwrap());
    assert_eq!(waiter.get(&id).await.unwrap().unwrap().token, won.token());
    assert!(won.release().await.unwrap());
}

/// An acquire whose wait runs out fails no earlier than the wait, with an
/// acquisition error that reports how long it waited.
pub async fn wait_that_runs_out_fails(backend: &impl Backend) {
    let (holder, waiter) = (backend.manager(), backend.manager());
    let id = lock_id("wait-out");
    let lease = holder.acquire(&id, LockOptions::default()).await.unwrap();
    let started = std::time::Instant::now();
    let err = waiter
        .acquire(&id, LockOptions::default().wait(Duration::from_millis(600)))
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_acquisition_error(&err, &id);
    let Error::Acquisition(acq) = &err else { unreachable!() };
    assert!(acq.waited.unwrap() >= Duration::from_millis(600));
    assert!(lease.release().await.unwrap());
}

/// `extend` moves the stored expiry forward, and the lease reports the
/// same expiry as the store.
pub async fn extend_moves_expiry(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("extend");
    let lease = manager.acquire(&id, LockOptions::default().ttl(Duration::from_secs(5))).await.unwrap();
    let before = manager.get(&id).await.unwrap().unwrap().expires_at;
    assert!(lease.extend(Duration::from_secs(60)).await.unwrap());
    let after = manager.get(&id).await.unwrap().unwrap().expires_at;
    assert!(since(before, after) >= Duration::from_secs(50), "{before:?} -> {after:?}");
    assert_eq!(lease.expires_at(), after);
    assert!(lease.release().await.unwrap());
}

/// Extending a lock an operator force-released returns `false` and marks
/// the lease lost; its release is then `false` too.
pub async fn extend_after_lock_gone_is_false(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("extend-gone");
    let lease = manager.acquire(&id, LockOptions::default()).await.unwrap();
    assert!(manager.force_release(&id).await.unwrap());
    assert!(!lease.extend(Duration::from_secs(30)).await.unwrap());
    assert!(lease.is_lost());
    assert!(!lease.release().await.unwrap());
}

/// Of 20 concurrent acquires of one free id exactly one wins; the others
/// get acquisition errors.
pub async fn concurrent_acquires_have_one_winner(backend: &impl Backend) {
    let id = lock_id("race");
    let attempts = (0..20).map(|_| {
        let manager = backend.manager();
        let id = id.clone();
        tokio::spawn(async move { manager.acquire(&id, LockOptions::default()).await })
    });
    let results: Vec<_> = join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    let mut winners = Vec::new();
    for result in results {
        match result {
            Ok(lease) => winners.push(lease),
            Err(err) => assert_acquisition_error(&err, &id),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one contender wins");

    // Every contender's token tried to release: only the winner's succeeds.
    let releases = join_all(winners.into_iter().map(|lease| lease.release())).await;
    assert_eq!(releases.into_iter().filter(|r| *r.as_ref().unwrap()).count(), 1);
}

/// Callers with made-up tokens, going straight to the store, can neither
/// release nor take a held lock; the lease stays trusted.
pub async fn strangers_cannot_release_or_steal(backend: &impl Backend) {
    let holder = backend.manager();
    let id = lock_id("strangers");
    let lease = holder.acquire(&id, LockOptions::default()).await.unwrap();

    // Strangers with made-up tokens race to release the lock and take it.
    let strangers = (0..20).map(|_| {
        let store = backend.raw_store();
        let lock = LockId::new(&id).unwrap();
        tokio::spawn(async move {
            let token = uuid::Uuid::new_v4().to_string();
            let released = store.release(&lock, &token).await.unwrap();
            let request = AcquireRequest { lock_id: lock, token, ttl: Duration::from_secs(30), metadata: json!({}) };
            let acquired = matches!(store.acquire(&request).await.unwrap(), AcquireOutcome::Acquired(_));
            released || acquired
        })
    });
    let succeeded = join_all(strangers).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(succeeded, 0);
    assert_eq!(holder.get(&id).await.unwrap().unwrap().token, lease.token());
    assert!(!lease.is_lost());
    assert!(lease.release().await.unwrap());
}

/// After an operator force-release and a new holder, the old holder's
/// release is `false` and leaves the new lock and its metadata untouched.
pub async fn token_changed_behind_holder(backend: &impl Backend) {
    let (holder, other) = (backend.manager(), backend.manager());
    let id = lock_id("changed");
    let lease = holder.acquire(&id, LockOptions::default()).await.unwrap();
    // An operator frees the lock and someone else takes it.
    assert!(other.force_release(&id).await.unwrap());
    let foreign = other.acquire(&id, LockOptions::default().metadata(metadata("foreign"))).await.unwrap();

    assert!(!lease.release().await.unwrap());
    let info = other.get(&id).await.unwrap().expect("the foreign lock survives");
    assert_eq!(info.token, foreign.token());
    assert_eq!(info.metadata, metadata("foreign"));
    assert!(foreign.release().await.unwrap());
}

/// Across two managers and every way a lock ends (release, force-release,
/// expiry), each lease gets a new token and a larger fencing token.
pub async fn fresh_tokens_and_increasing_fencing(backend: &impl Backend) {
    let (a, b) = (backend.manager(), backend.manager());
    let id = lock_id("fencing");
    let mut tokens = std::collections::HashSet::new();
    let mut last_fencing = 0;
    for round in 0..6 {
        // Alternate managers and the ways a lock ends: release, force, expiry.
        let manager = if round % 2 == 0 { &a } else { &b };
        let lease = manager.acquire(&id, ending(round)).await.unwrap();
        assert!(tokens.insert(lease.token().to_string()), "tokens are fresh");
        assert!(lease.fencing_token() > last_fencing, "fencing tokens increase");
        last_fencing = lease.fencing_token();
        match round % 3 {
            0 => assert!(lease.release().await.unwrap()),
            1 => assert!(manager.force_release(&id).await.unwrap()),
            _ => assert!(eventually(GENEROUS, || async { manager.get(&id).await.unwrap().is_none() }).await),
        }
    }
}

/// The options for round `round` of the fencing tests, which end their
/// leases by release, force-release and expiry in turn: a short unrenewed
/// TTL only where the lease is left to expire (a short TTL elsewhere only
/// makes a slow reply a lost lease).
fn ending(round: usize) -> LockOptions {
    if round % 3 == 2 { short(1000).renew(false) } else { LockOptions::default() }
}

/// Of three concurrent `with_lock` callers only one runs its work and gets
/// its value; the others get acquisition errors, and the lock ends free.
pub async fn with_lock_runs_once_among_callers(backend: &impl Backend) {
    let id = lock_id("with-lock");
    let runs = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let callers = (0..3).map(|n| {
        let manager = backend.manager();
        let (id, runs, refused) = (id.clone(), Arc::clone(&runs), Arc::clone(&refused));
        tokio::spawn(async move {
            let result = manager
                .with_lock(&id, LockOptions::default(), || async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    // Hold the lock until both other callers were refused.
                    assert!(eventually(GENEROUS, || async { refused.load(Ordering::SeqCst) == 2 }).await);
                    n * 10
                })
                .await;
            if result.is_err() {
                refused.fetch_add(1, Ordering::SeqCst);
            }
            result
        })
    });
    let results: Vec<_> = join_all(callers).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let values: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(values.len(), 1);
    let winner = results.iter().position(Result::is_ok).unwrap();
    assert_eq!(*values[0], winner * 10, "the value goes to the caller that ran");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_acquisition_error(err, &id);
    }
    assert_eq!(backend.manager().get(&id).await.unwrap(), None);
}

/// `with_lock` hands back the work's `Err` and releases the lock.
pub async fn with_lock_releases_after_error(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("with-lock-error");
    let outcome: Result<(), String> = manager
        .with_lock(&id, LockOptions::default(), || async { Err("boom".to_string()) })
        .await
        .unwrap();
    assert_eq!(outcome, Err("boom".to_string()));
    assert_eq!(manager.get(&id).await.unwrap(), None);
}

/// A panicking `with_lock` callback still releases the lock before the
/// panic reaches the caller.
pub async fn with_lock_releases_after_panic(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("with-lock-panic");
    let task = {
        let (manager, id) = (manager.clone(), id.clone());
        tokio::spawn(async move {
            manager
                .with_lock(&id, LockOptions::default(), || async {
                    panic!("callback panicked");
                })
                .await
        })
    };
    let joined = task.await;
    assert!(joined.unwrap_err().is_panic());
    // The release completed before the panic went on.
    assert_eq!(manager.get(&id).await.unwrap(), None);
}

/// Dropping a `with_lock` future mid-work releases the lock soon after.
pub async fn with_lock_releases_when_dropped(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("with-lock-dropped");
    let started = Arc::new(tokio::sync::Notify::new());
    let work = {
        let started = Arc::clone(&started);
        manager.with_lock(&id, LockOptions::default(), || async move {
            started.notify_one();
            tokio::time::sleep(Duration::from_secs(600)).await;
        })
    };
    tokio::select! {
        _ = work => panic!("the work cannot finish"),
        () = started.notified() => {}
    }
    // `work` was dropped by select!: the lock must be released soon.
    assert!(eventually(GENEROUS, || async { manager.get(&id).await.unwrap().is_none() }).await);
}

/// Automatic renewal keeps a 1.5 s lease held through 3 s of work: a
/// contender is refused all along.
pub async fn renewal_keeps_short_ttl_alive(backend: &impl Backend) {
    let (holder, contender) = (backend.manager(), backend.manager());
    let id = lock_id("renewal");
    let result = holder
        .with_lock(&id, LockOptions::default().ttl(Duration::from_millis(1500)), || async {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let err = contender.acquire(&id, LockOptions::default()).await.unwrap_err();
                assert_acquisition_error(&err, &id);
            }
            "done"
        })
        .await;
    assert_eq!(result.unwrap(), "done");
}

/// A renewal that finds another holder's token fires `lost()` with a
/// reason naming the token; the lost lease's release leaves the new lock be.
pub async fn renewal_finds_foreign_token_and_fires_lost(backend: &impl Backend) {
    let (holder, other) = (backend.manager(), backend.manager());
    let id = lock_id("lost");
    // Long enough that the first renewal (at 1 s) answers before the trust
    // deadline on a slow machine: its finding, not the deadline, ends the lease.
    let lease = holder.acquire(&id, LockOptions::default().ttl(Duration::from_secs(3))).await.unwrap();
    assert!(other.force_release(&id).await.unwrap());
    let foreign = other.acquire(&id, LockOptions::default()).await.unwrap();
    tokio::time::timeout(GENEROUS, lease.lost()).await.expect("lost() fires");
    assert!(lease.is_lost());
    assert!(lease.lost_reason().unwrap().contains("token"));
    // The foreign lock is untouched by the lost lease's release.
    assert!(!lease.release().await.unwrap());
    assert!(foreign.release().await.unwrap());
}

/// When the lock is taken away mid-work, `with_lock` stops the work and
/// returns `LeaseLost` for that id.
pub async fn with_lock_reports_lost_lease(backend: &impl Backend) {
    let (holder, other) = (backend.manager(), backend.manager());
    let id = lock_id("with-lock-lost");
    let finished = Arc::new(AtomicUsize::new(0));
    let result = holder
        .with_lock(&id, LockOptions::default().ttl(Duration::from_secs(1)), || {
            let (other, id, finished) = (other.clone(), id.clone(), Arc::clone(&finished));
            async move {
                assert!(other.force_release(&id).await.unwrap());
                tokio::time::sleep(Duration::from_secs(30)).await;
                finished.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await;
    match result {
        Err(Error::LeaseLost(lost)) => assert_eq!(lost.lock_id, id),
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    assert_eq!(finished.load(Ordering::SeqCst), 0, "the work was stopped");
}

/// Dropping a lease releases its lock soon after.
pub async fn dropped_lease_is_released(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("dropped");
    let lease = manager.acquire(&id, LockOptions::default()).await.unwrap();
    drop(lease);
    assert!(eventually(GENEROUS, || async { manager.get(&id).await.unwrap().is_none() }).await);
}

/// `list` returns every held lock with its metadata, ordered by id;
/// `force_release` frees a lock once and then reports `false`.
pub async fn list_and_force_release(backend: &impl Backend) {
    let manager = backend.manager();
    let ids = [lock_id("list-b"), lock_id("list-a")];
    let leases = join_all(ids.iter().map(|id| manager.acquire(id, LockOptions::default().metadata(json!({ "id": id })))))
        .await;
    let listed = manager.list().await.unwrap();
    for id in &ids {
        let info = listed.iter().find(|info| &info.lock_id == id).expect("listed");
        assert_eq!(info.metadata, json!({ "id": id }));
    }
    let order: Vec<_> = listed.iter().map(|info| info.lock_id.clone()).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "ordered by lock id");

    assert!(manager.force_release(&ids[0]).await.unwrap());
    assert!(!manager.force_release(&ids[0]).await.unwrap());
    assert!(!manager.list().await.unwrap().iter().any(|info| info.lock_id == ids[0]));
    for lease in leases {
        lease.unwrap().release().await.unwrap();
    }
}

/// Invalid ids, metadata and TTLs are refused with the matching error
/// before any call reaches the store.
pub async fn bad_input_is_refused_before_any_request(backend: &impl Backend) {
    let (manager, calls) = backend.counting_manager();
    let invalid_id = |err: Error| match err {
        Error::InvalidLockId(invalid) => invalid.reason,
        other => panic!("expected InvalidLockId, got {other:?}"),
    };
    let long = "a".repeat(256);
    assert_eq!(invalid_id(manager.acquire("", LockOptions::default()).await.unwrap_err()), LockIdError::Empty);
    assert_eq!(
        invalid_id(manager.acquire(&long, LockOptions::default()).await.unwrap_err()),
        LockIdError::TooLong { len: 256 }
    );
    assert!(matches!(
        invalid_id(manager.acquire("has space", LockOptions::default()).await.unwrap_err()),
        LockIdError::IllegalChar { found: ' ', .. }
    ));
    assert!(matches!(
        invalid_id(manager.acquire("_leading", LockOptions::default()).await.unwrap_err()),
        LockIdError::BadFirstChar { found: '_' }
    ));
    assert!(matches!(invalid_id(manager.get("a b").await.unwrap_err()), LockIdError::IllegalChar { .. }));
    assert!(matches!(invalid_id(manager.force_release("").await.unwrap_err()), LockIdError::Empty));
    let ran = manager.with_lock("bad id", LockOptions::default(), || async { panic!("must not run") }).await;
    assert!(matches!(ran, Err(Error::InvalidLockId(_))));

    let metadata_error = |err: Error| match err {
        Error::InvalidMetadata(invalid) => invalid.reason,
        other => panic!("expected InvalidMetadata, got {other:?}"),
    };
    for not_object in [json!([1, 2]), json!("text"), json!(5), json!(null)] {
        let err = manager.acquire("ok", LockOptions::default().metadata(not_object)).await.unwrap_err();
        assert!(matches!(metadata_error(err), MetadataError::NotAnObject { .. }));
    }
    let huge = LockOptions::default().metadata(json!({ "blob": "x".repeat(20_000) }));
    assert!(matches!(metadata_error(manager.acquire("ok", huge).await.unwrap_err()), MetadataError::TooLarge { .. }));

    let zero = manager.acquire("ok", LockOptions::default().ttl(Duration::ZERO)).await.unwrap_err();
    assert!(matches!(&zero, Error::InvalidOption(invalid) if invalid.option == "ttl"), "{zero:?}");

    // Issue 7.9: what could not be read back is refused: a TTL whose expiry
    // date no parser reads, metadata nested deeper than JSON parsers recurse.
    let ten_thousand_years = Duration::from_secs(10_000 * 365 * 86_400);
    let far = manager.acquire("ok", LockOptions::default().ttl(ten_thousand_years)).await.unwrap_err();
    assert!(matches!(&far, Error::InvalidOption(invalid) if invalid.option == "ttl"), "{far:?}");
    let mut deep = json!("bottom");
    for _ in 0..200 {
        deep = json!({ "next": deep });
    }
    let deep = manager.acquire("ok", LockOptions::default().metadata(deep)).await.unwrap_err();
    assert!(matches!(metadata_error(deep), MetadataError::TooDeep { .. }));

    assert_eq!(calls.load(Ordering::SeqCst), 0, "no request reached the store");
    let _ = SystemTime::now();
}

/// Issue 7.1: a shorter TTL given to `extend` shortens the trust deadline at
/// once; the lease must not stay trusted on the old schedule while another
/// holder takes the lock.
pub async fn shorter_extend_moves_trust_deadline(backend: &impl Backend) {
    let (holder, contender) = (backend.manager(), backend.manager());
    let id = lock_id("extend-shorter");
    let lease = holder.acquire(&id, LockOptions::default().ttl(Duration::from_secs(30)).renew(false)).await.unwrap();
    assert!(lease.extend(Duration::from_millis(800)).await.unwrap());
    let taken = contender.acquire(&id, LockOptions::default().wait(GENEROUS)).await.unwrap();
    assert!(lease.is_lost(), "another holder has the lock: the old lease cannot be trusted");
    tokio::time::timeout(Duration::from_secs(1), lease.lost()).await.expect("lost() has fired");
    assert!(taken.release().await.unwrap());
}

/// A lease's renewals start half-way to its first renewal; a shorter TTL
/// given to `extend` before then must bring them forward, or the lease is
/// lost (long before the old TTL's first renewal) while the work still runs.
pub async fn shorter_extend_right_after_acquire_keeps_renewing(backend: &impl Backend) {
    let (holder, contender) = (backend.manager(), backend.manager());
    let id = lock_id("extend-shorter-early");
    let lease = holder.acquire(&id, LockOptions::default().ttl(Duration::from_secs(30))).await.unwrap();
    // Renewed every 667 ms from here; the 30 s TTL's first would come at 5 s.
    assert!(lease.extend(Duration::from_secs(2)).await.unwrap());
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!lease.is_lost(), "not renewed on the new TTL: {:?}", lease.lost_reason());
        let err = contender.acquire(&id, LockOptions::default()).await.unwrap_err();
        assert_acquisition_error(&err, &id);
    }
    assert!(lease.release().await.unwrap());
}

/// Issue 7.1: a renewal reply that comes back after the user's
/// `extend(short)` must not put the old, longer TTL back, neither in the
/// trust deadline nor in later renewals.
pub async fn late_renewal_reply_cannot_restore_old_ttl(backend: &impl Backend) {
    let old = Duration::from_secs(3);
    let new = Duration::from_millis(600);
    let store = LateReplies {
        inner: backend.raw_store(),
        acquire_delay: Duration::ZERO,
        extend_delay: Duration::from_millis(700),
        slow_ttl: Some(old),
    };
    let holder = LockManager::builder().store(store).build();
    let contender = backend.manager();
    let id = lock_id("late-renewal");
    let lease = holder.acquire(&id, LockOptions::default().ttl(old)).await.unwrap();
    // The first renewal (at TTL/3 = 1 s) is applied at once but answered
    // 700 ms late; the user shortens the TTL while it is in flight.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(lease.extend(new).await.unwrap());
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Whoever gets the lock, the holder must already know it lost it.
        if let Ok(taken) = contender.acquire(&id, LockOptions::default()).await {
            assert!(lease.is_lost(), "two holders: the contender got the lock while the lease was trusted");
            taken.release().await.unwrap();
            return;
        }
        // Renewals ask for the new TTL, not the old one.
        let info = contender.get(&id).await.unwrap().expect("held");
        let left = info.expires_at.duration_since(SystemTime::now()).unwrap_or_default();
        assert!(left <= new + Duration::from_millis(300), "renewed with the old TTL: {left:?} left");
    }
    assert!(lease.release().await.unwrap());
}

/// Issue 7.2: a grant whose reply arrives after the trust deadline is never
/// handed out (neither by `acquire` nor to a `with_lock` callback), and the
/// lock is given back at once rather than held until its TTL.
pub async fn late_acquire_reply_is_never_a_lease(backend: &impl Backend) {
    let ttl = Duration::from_secs(5);
    let late = LateReplies::acquires(backend.raw_store(), Duration::from_millis(4300));
    let other = backend.manager();
    // Set up now, so that only the give-back counts in the wait below.
    other.setup().await.unwrap();
    let id = lock_id("late-acquire");
    match late.acquire(&id, LockOptions::default().ttl(ttl)).await {
        Err(Error::LeaseLost(lost)) => assert_eq!(lost.lock_id, id),
        other => panic!("a late grant must not become a lease: {other:?}"),
    }
    // Given back: free well before the TTL (5 s from the request) runs out.
    let freed = other.acquire(&id, LockOptions::default().wait(Duration::from_millis(500))).await.unwrap();
    assert!(freed.release().await.unwrap());

    let ran = Arc::new(AtomicUsize::new(0));
    let outcome = late
        .with_lock(&id, LockOptions::default().ttl(ttl), || {
            let ran = Arc::clone(&ran);
            async move { ran.fetch_add(1, Ordering::SeqCst) }
        })
        .await;
    assert!(matches!(outcome, Err(Error::LeaseLost(_))), "{outcome:?}");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the callback must not run without a trusted lease");
}

/// Issue 7.3: a callback that blocks past the trust deadline (so neither
/// renewal nor `lost()` could run) still makes `with_lock` report the loss.
pub async fn with_lock_reports_loss_after_blocking_callback(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("blocking-callback");
    let outcome = manager
        .with_lock(&id, short(300).renew(false), || async {
            std::thread::sleep(Duration::from_millis(600));
            "finished"
        })
        .await;
    match outcome {
        Err(Error::LeaseLost(lost)) => assert_eq!(lost.lock_id, id),
        other => panic!("the lease ran out while the callback ran: {other:?}"),
    }
}

/// Issue 7.4: dropping `acquire` or `with_lock` while the acquire request is
/// in flight must not leave the lock held for its TTL.
pub async fn cancelled_acquire_leaves_no_lock(backend: &impl Backend) {
    let late = LateReplies::acquires(backend.raw_store(), Duration::from_millis(500));
    let other = backend.manager();
    let ttl = LockOptions::default().ttl(Duration::from_secs(60));
    let id = lock_id("cancelled-acquire");
    let cancelled = tokio::time::timeout(Duration::from_millis(100), late.acquire(&id, ttl.clone())).await;
    assert!(cancelled.is_err(), "the acquire was still in flight");
    let lease = other.acquire(&id, LockOptions::default().wait(GENEROUS)).await.expect("the abandoned grant was released");
    assert!(lease.release().await.unwrap());

    let cancelled = tokio::time::timeout(Duration::from_millis(100), late.with_lock(&id, ttl, || async {})).await;
    assert!(cancelled.is_err());
    let lease = other.acquire(&id, LockOptions::default().wait(GENEROUS)).await.expect("the abandoned grant was released");
    assert!(lease.release().await.unwrap());
}

/// Issue 7.11: a dropped lease's scheduled release does not make an
/// immediate acquire of the same id in the same process fail.
pub async fn dropped_lease_can_be_acquired_again_at_once(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("drop-reacquire");
    for _ in 0..3 {
        let lease = manager.acquire(&id, LockOptions::default()).await.unwrap();
        drop(lease);
        let again = manager.acquire(&id, LockOptions::default()).await.expect("our own release goes first");
        drop(again);
    }
    assert!(eventually(GENEROUS, || async { manager.get(&id).await.unwrap().is_none() }).await);
}

/// Issue 7.6: fencing tokens strictly increase through release,
/// force-release and expiry, and `get` reports the holder's own token.
pub async fn fencing_survives_release_and_force_release(backend: &impl Backend) {
    let (a, b) = (backend.manager(), backend.manager());
    let id = lock_id("fencing-counter");
    let first = a.acquire(&id, LockOptions::default()).await.unwrap();
    let mut last = first.fencing_token();
    assert!(first.release().await.unwrap());
    for round in 0..6 {
        let manager = if round % 2 == 0 { &a } else { &b };
        let lease = manager.acquire(&id, ending(round)).await.unwrap();
        assert!(lease.fencing_token() > last, "round {round}: {} after {last}", lease.fencing_token());
        assert_eq!(manager.get(&id).await.unwrap().unwrap().fencing_token, Some(lease.fencing_token()));
        last = lease.fencing_token();
        match round % 3 {
            0 => assert!(lease.release().await.unwrap()),
            1 => assert!(manager.force_release(&id).await.unwrap()),
            _ => assert!(eventually(GENEROUS, || async { manager.get(&id).await.unwrap().is_none() }).await),
        }
    }
}

/// An acquire whose caller saw it fail, but which the store applies later
/// (queued in the engine or the network), must not leave a lock that
/// nobody holds: the release sent for its token makes the token refused.
pub async fn an_acquire_applied_after_its_failure_is_refused(backend: &impl Backend) {
    let store = super::AppliedAfterFailure {
        inner: Arc::from(backend.raw_store()),
        delay: Duration::from_millis(300),
        failed_once: Default::default(),
    };
    let manager = LockManager::builder().store(store).build();
    let id = lock_id("applied-late");
    let ttl = LockOptions::default().ttl(Duration::from_secs(60));
    assert!(manager.acquire(&id, ttl.clone()).await.is_err());
    tokio::time::sleep(Duration::from_millis(800)).await;
    let lease = manager.acquire(&id, ttl).await.expect("no lock held by a token nobody has");
    assert!(lease.release().await.unwrap());
}

/// `flush` returns once the releases scheduled by dropped leases are done,
/// so a program can end its runtime without leaving locks held.
pub async fn flush_completes_scheduled_releases(backend: &impl Backend) {
    let (manager, observer) = (backend.manager(), backend.manager());
    let ids: Vec<String> = (0..3).map(|n| lock_id(&format!("flush-{n}"))).collect();
    for id in &ids {
        drop(manager.acquire(id, LockOptions::default().ttl(Duration::from_secs(60))).await.unwrap());
    }
    manager.flush().await;
    for id in &ids {
        assert_eq!(observer.get(id).await.unwrap(), None, "{id} released before flush returned");
    }
}

/// `with_lease` hands the work its lease: the fencing token the store
/// recorded, and a lease that is not lost.
pub async fn with_lease_gives_the_work_its_fencing_token(backend: &impl Backend) {
    let (manager, observer) = (backend.manager(), backend.manager());
    let id = lock_id("with-lease");
    let (seen, stored) = manager
        .with_lease(&id, LockOptions::default(), |lease| {
            let (observer, id) = (observer.clone(), id.clone());
            async move {
                assert!(!lease.is_lost());
                let stored = observer.get(&id).await.unwrap().unwrap().fencing_token;
                (lease.fencing_token(), stored)
            }
        })
        .await
        .unwrap();
    assert_eq!(Some(seen), stored);
    assert_eq!(observer.get(&id).await.unwrap(), None);
}

/// Handles given to the work stop trusting the lease as soon as it is
/// released, dropped or detached: another holder may take it at once.
pub async fn handles_stop_trusting_a_lease_that_ended(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("handle-ended");
    for ending in ["release", "drop", "detach"] {
        let lease = manager.acquire(&id, LockOptions::default().ttl(Duration::from_secs(60))).await.unwrap();
        let handle = lease.handle();
        match ending {
            "release" => assert!(lease.release().await.unwrap()),
            "drop" => drop(lease),
            _ => lease.detach(),
        }
        assert!(handle.is_lost(), "{ending}: the handle still trusts the lease");
        tokio::time::timeout(Duration::from_secs(1), handle.lost()).await.expect("lost() fires at once");
        manager.flush().await;
        if ending == "detach" {
            assert!(manager.force_release(&id).await.unwrap());
        }
    }
}

fn request(id: &str, token: &str, ttl: Duration) -> AcquireRequest {
    AcquireRequest { lock_id: LockId::new(id).unwrap(), token: token.into(), ttl, metadata: json!({}) }
}

/// Issue 10: a hand-over passes the lock from one token to the next in one
/// step, with the next fencing token; the old token holds nothing afterwards.
pub async fn hand_over_passes_the_lock_in_one_step(backend: &impl Backend) {
    let store = backend.raw_store();
    let id = lock_id("hand-over");
    let ttl = Duration::from_secs(20);
    let first = request(&id, "first", ttl);
    let AcquireOutcome::Acquired(held) = store.acquire(&first).await.unwrap() else { panic!("free lock refused") };
    let next = AcquireRequest { metadata: metadata("next"), ..request(&id, "next", ttl) };
    let HandOver::HandedOver(info) = store.hand_over(&first.lock_id, "first", &next).await.unwrap() else {
        panic!("the holder could not hand over")
    };
    assert_eq!(info.token, "next");
    assert_eq!(info.metadata, metadata("next"));
    assert!(info.fencing_token.unwrap() > held.fencing_token.unwrap(), "{info:?} after {held:?}");
    assert_eq!(store.get(&first.lock_id).await.unwrap().unwrap().token, "next");
    // The old token holds nothing any more and can never take the lock back.
    assert!(matches!(store.hand_over(&first.lock_id, "first", &request(&id, "third", ttl)).await.unwrap(), HandOver::NotHeld));
    assert!(!store.release(&first.lock_id, "first").await.unwrap());
    assert!(store.release(&first.lock_id, "next").await.unwrap());
    // Nobody holds it: nothing to hand over.
    assert!(matches!(store.hand_over(&first.lock_id, "next", &request(&id, "fourth", ttl)).await.unwrap(), HandOver::NotHeld));
    assert_eq!(store.get(&first.lock_id).await.unwrap(), None);
}

/// Issue 10: a batch of renewals reports each lease's own outcome.
pub async fn extend_many_keeps_each_outcome(backend: &impl Backend) {
    let store = backend.raw_store();
    let (ours, taken, missing) = (lock_id("many-ours"), lock_id("many-taken"), lock_id("many-missing"));
    let short_ttl = Duration::from_secs(5);
    for (id, token) in [(&ours, "ours"), (&taken, "someone-else")] {
        assert!(matches!(store.acquire(&request(id, token, short_ttl)).await.unwrap(), AcquireOutcome::Acquired(_)));
    }
    let long = Duration::from_secs(60);
    let renewals = [
        Renewal { lock_id: LockId::new(&ours).unwrap(), token: "ours".into(), ttl: long },
        Renewal { lock_id: LockId::new(&taken).unwrap(), token: "ours".into(), ttl: long },
        Renewal { lock_id: LockId::new(&missing).unwrap(), token: "ours".into(), ttl: long },
    ];
    let outcomes = store.extend_many(&renewals).await.unwrap();
    assert_eq!(outcomes.len(), 3);
    let renewed = outcomes[0].as_ref().unwrap().as_ref().expect("our lease renewed");
    assert_eq!(renewed.token, "ours");
    assert!(renewed.expires_at.duration_since(renewed.created_at).unwrap() >= Duration::from_secs(59));
    assert!(outcomes[1].as_ref().unwrap().is_none(), "another holder's lock renewed: {:?}", outcomes[1]);
    assert!(outcomes[2].as_ref().unwrap().is_none(), "a missing lock renewed: {:?}", outcomes[2]);
    let other = store.get(&renewals[1].lock_id).await.unwrap().unwrap();
    assert_eq!(other.expires_at.duration_since(other.created_at).unwrap(), short_ttl, "the other holder's expiry moved");
    assert!(store.extend_many(&[]).await.unwrap().is_empty());
    for (renewal, token) in renewals.iter().zip(["ours", "someone-else"]) {
        assert!(store.release(&renewal.lock_id, token).await.unwrap());
    }
}

/// Issue 10: a release in this process hands the lock straight to a local
/// waiter: the store never shows it free, so no other caller can come in
/// between, and the waiter holds it when the release returns.
pub async fn a_release_hands_over_to_a_local_waiter(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("local-hand-off");
    let lease = manager.acquire(&id, LockOptions::default()).await.unwrap();
    let waiter = tokio::spawn({
        let (manager, id) = (manager.clone(), id.clone());
        async move { manager.acquire(&id, LockOptions::default().wait(GENEROUS).metadata(metadata("waiter"))).await }
    });
    // The waiter has been refused once and waits.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let old_fencing = lease.fencing_token();
    assert!(lease.release().await.unwrap());
    let now = backend.manager().get(&id).await.unwrap().expect("the lock went straight to the waiter, never free");
    assert_eq!(now.metadata, metadata("waiter"));
    let handed = tokio::time::timeout(GENEROUS, waiter).await.unwrap().unwrap().unwrap();
    assert_eq!(handed.token(), now.token);
    assert!(handed.fencing_token() > old_fencing);
    assert!(!handed.is_lost());
    // A held lock is refused to everyone else.
    let err = backend.manager().acquire(&id, LockOptions::default()).await.unwrap_err();
    assert_acquisition_error(&err, &id);
    assert!(handed.release().await.unwrap());
    assert_eq!(manager.get(&id).await.unwrap(), None, "a release with no waiter left frees the lock");
}

/// Issue 10: of several waiters for one id in a process, only the first
/// polls the store; all of them get the lock in turn.
pub async fn only_the_first_local_waiter_polls(backend: &impl Backend) {
    let (waiting, calls) = backend.counting_manager();
    waiting.setup().await.unwrap();
    let holder = backend.manager();
    let id = lock_id("one-poller");
    let lease = holder.acquire(&id, LockOptions::default()).await.unwrap();
    let before = calls.load(Ordering::SeqCst);
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (waiting, id) = (waiting.clone(), id.clone());
            tokio::spawn(async move {
                let lease = waiting.acquire(&id, LockOptions::default().wait(GENEROUS * 3)).await.unwrap();
                let fencing = lease.fencing_token();
                assert!(lease.release().await.unwrap());
                fencing
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let polls = calls.load(Ordering::SeqCst) - before;
    // One attempt each, then the first one's backoff: about a dozen calls.
    // Each waiter polling on its own would make about 35.
    assert!(polls <= 20, "{polls} store calls from 5 waiters in 1.5 s");
    assert!(lease.release().await.unwrap());
    let mut fencing: Vec<u64> = join_all(waiters).await.into_iter().map(Result::unwrap).collect();
    fencing.sort_unstable();
    fencing.dedup();
    assert_eq!(fencing.len(), 5, "every waiter got the lock once");
}

/// Issue 10: the renewals of a manager's leases share store calls, and
/// every lease stays held.
pub async fn renewals_share_requests(backend: &impl Backend) {
    let (manager, calls) = backend.counting_manager();
    let leases = join_all((0..20).map(|i| {
        let manager = manager.clone();
        async move { manager.acquire(lock_id(&format!("batch-{i}")), short(1500)).await.unwrap() }
    }))
    .await;
    let before = calls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let renewals = calls.load(Ordering::SeqCst) - before;
    // One renewal per lease per TTL/3 would be 80 calls.
    assert!(renewals > 0 && renewals <= 20, "{renewals} store calls renewed 20 leases over 2 s");
    let contender = backend.manager();
    for lease in leases {
        assert!(!lease.is_lost(), "{:?}", lease.lost_reason());
        assert_acquisition_error(&contender.acquire(lease.lock_id(), LockOptions::default()).await.unwrap_err(), lease.lock_id().as_str());
        assert!(lease.release().await.unwrap());
    }
}
