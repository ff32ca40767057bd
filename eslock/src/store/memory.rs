//! The embedded store: locks in this process's memory, with the same
//! semantics as the Elasticsearch store. For examples, single-process
//! programs, and users' own tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{AcquireOutcome, AcquireRequest, LockStore, StoreFuture};
use crate::{LockId, LockInfo};

/// Locks kept in memory; one process only. Clones share the same locks, so
/// several managers built on clones behave like processes sharing a cluster.
///
/// ```
/// use eslock::{LockManager, MemoryStore};
///
/// let store = MemoryStore::new();
/// let a = LockManager::builder().store(store.clone()).build();
/// let b = LockManager::builder().store(store).build();
/// ```
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    locks: HashMap<String, LockInfo>,
    /// Last fencing token handed out by this store, for any lock id.
    last_fencing_token: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-written
        // (every change is a single insert or remove), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// The live lock for `lock_id`, dropping it if it has expired.
    fn live(&mut self, lock_id: &str, now: SystemTime) -> Option<&mut LockInfo> {
        if self.locks.get(lock_id).is_some_and(|lock| lock.is_expired_at(now)) {
            self.locks.remove(lock_id);
        }
        self.locks.get_mut(lock_id)
    }

    /// Same rule as the Elasticsearch store: larger than the last token and
    /// than the clock in microseconds.
    fn next_fencing_token(&mut self, now: SystemTime) -> u64 {
        let micros = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_micros() as u64;
        self.last_fencing_token = (self.last_fencing_token + 1).max(micros);
        self.last_fencing_token
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl LockStore for MemoryStore {
    fn setup(&self) -> StoreFuture<'_, ()> {
        ready(())
    }

    fn acquire<'a>(&'a self, request: &'a AcquireRequest) -> StoreFuture<'a, AcquireOutcome> {
        let now = SystemTime::now();
        let mut state = self.state();
        if let Some(holder) = state.live(request.lock_id.as_str(), now) {
            return ready(AcquireOutcome::Held(Some(holder.clone())));
        }
        let info = LockInfo {
            lock_id: request.lock_id.as_str().to_string(),
            token: request.token.clone(),
            created_at: now,
            expires_at: now + request.ttl,
            metadata: request.metadata.clone(),
            fencing_token: state.next_fencing_token(now),
        };
        state.locks.insert(info.lock_id.clone(), info.clone());
        ready(AcquireOutcome::Acquired(info))
    }

    fn extend<'a>(&'a self, lock_id: &'a LockId, token: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockInfo>> {
        let now = SystemTime::now();
        let mut state = self.state();
        let extended = match state.live(lock_id.as_str(), now) {
            Some(lock) if lock.token == token => {
                lock.expires_at = now + ttl;
                Some(lock.clone())
            }
            _ => None,
        };
        ready(extended)
    }

    fn release<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
        let mut state = self.state();
        let ours = state.locks.get(lock_id.as_str()).is_some_and(|lock| lock.token == token);
        if ours {
            state.locks.remove(lock_id.as_str());
        }
        ready(ours)
    }

    fn get<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, Option<LockInfo>> {
        let found = self.state().live(lock_id.as_str(), SystemTime::now()).map(|lock| lock.clone());
        ready(found)
    }

    fn list(&self) -> StoreFuture<'_, Vec<LockInfo>> {
        let now = SystemTime::now();
        let mut state = self.state();
        state.locks.retain(|_, lock| !lock.is_expired_at(now));
        let mut locks: Vec<LockInfo> = state.locks.values().cloned().collect();
        locks.sort_by(|a, b| a.lock_id.cmp(&b.lock_id));
        ready(locks)
    }

    fn force_release<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, bool> {
        ready(self.state().locks.remove(lock_id.as_str()).is_some())
    }
}
