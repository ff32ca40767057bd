//! The cases every store must pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use eslock::store::{AcquireOutcome, AcquireRequest};
use eslock::{Error, LockId, LockOptions};
use eslock::rules::{LockIdError, MetadataError};
use futures::future::join_all;
use serde_json::json;

use super::{Backend, assert_acquisition_error, eventually, lock_id, metadata, short, since};

const GENEROUS: Duration = Duration::from_secs(10);

pub async fn acquire_store_and_release(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("basic");
    let ttl = Duration::from_secs(20);
    let lease = manager
        .acquire(&id, LockOptions::default().ttl(ttl).metadata(metadata("a")))
        .await
        .unwrap();
    assert_eq!(lease.lock_id(), id);

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

pub async fn get_hides_expired_lock(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("expired");
    let lease = manager.acquire(&id, short(300).renew(false)).await.unwrap();
    assert!(manager.get(&id).await.unwrap().is_some());
    assert!(eventually(GENEROUS, || async { manager.get(&id).await.unwrap().is_none() }).await);
    assert!(lease.is_lost(), "an unrenewed lease is lost once its TTL has run out");
}

pub async fn ids_do_not_interfere(backend: &impl Backend) {
    let manager = backend.manager();
    let (a, b) = (lock_id("a"), lock_id("b"));
    let lease_a = manager.acquire(&a, LockOptions::default()).await.unwrap();
    let lease_b = manager.acquire(&b, LockOptions::default()).await.unwrap();
    assert!(lease_a.release().await.unwrap());
    assert!(manager.get(&b).await.unwrap().is_some());
    assert!(lease_b.release().await.unwrap());
}

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
    assert_eq!(acq.holder_metadata(), Some(&metadata("holder")));
    assert!(acq.holder_expires_at().is_some());

    let info = contender.get(&id).await.unwrap().unwrap();
    assert_eq!(info.token, lease.token());
    assert_eq!(info.metadata, metadata("holder"));
    assert!(lease.release().await.unwrap());
}

pub async fn expired_lock_is_taken_over(backend: &impl Backend) {
    let (old, new) = (backend.manager(), backend.manager());
    let id = lock_id("takeover");
    let stale = old.acquire(&id, short(300).renew(false).metadata(metadata("old"))).await.unwrap();
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
    assert!(acq.waited().unwrap() >= Duration::from_millis(600));
    assert!(lease.release().await.unwrap());
}

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

pub async fn extend_after_lock_gone_is_false(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("extend-gone");
    let lease = manager.acquire(&id, LockOptions::default()).await.unwrap();
    assert!(manager.force_release(&id).await.unwrap());
    assert!(!lease.extend(Duration::from_secs(30)).await.unwrap());
    assert!(lease.is_lost());
    assert!(!lease.release().await.unwrap());
}

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

pub async fn fresh_tokens_and_increasing_fencing(backend: &impl Backend) {
    let (a, b) = (backend.manager(), backend.manager());
    let id = lock_id("fencing");
    let mut tokens = std::collections::HashSet::new();
    let mut last_fencing = 0;
    for round in 0..6 {
        // Alternate managers and the ways a lock ends: release, force, expiry.
        let manager = if round % 2 == 0 { &a } else { &b };
        let lease = manager.acquire(&id, short(400).renew(false)).await.unwrap();
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

pub async fn renewal_keeps_short_ttl_alive(backend: &impl Backend) {
    let (holder, contender) = (backend.manager(), backend.manager());
    let id = lock_id("renewal");
    let result = holder
        .with_lock(&id, LockOptions::default().ttl(Duration::from_secs(1)), || async {
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

pub async fn renewal_finds_foreign_token_and_fires_lost(backend: &impl Backend) {
    let (holder, other) = (backend.manager(), backend.manager());
    let id = lock_id("lost");
    let lease = holder.acquire(&id, LockOptions::default().ttl(Duration::from_secs(1))).await.unwrap();
    assert!(other.force_release(&id).await.unwrap());
    let foreign = other.acquire(&id, LockOptions::default()).await.unwrap();
    tokio::time::timeout(GENEROUS, lease.lost()).await.expect("lost() fires");
    assert!(lease.is_lost());
    assert!(lease.lost_reason().unwrap().contains("token"));
    // The foreign lock is untouched by the lost lease's release.
    assert!(!lease.release().await.unwrap());
    assert!(foreign.release().await.unwrap());
}

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

pub async fn dropped_lease_is_released(backend: &impl Backend) {
    let manager = backend.manager();
    let id = lock_id("dropped");
    let lease = manager.acquire(&id, LockOptions::default()).await.unwrap();
    drop(lease);
    assert!(eventually(GENEROUS, || async { manager.get(&id).await.unwrap().is_none() }).await);
}

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

    assert_eq!(calls.load(Ordering::SeqCst), 0, "no request reached the store");
    let _ = SystemTime::now();
}
