//! The embedded store: locks in this process's memory, with the same
//! semantics as the Elasticsearch store. For examples, single-process
//! programs, and users' own tests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::{AcquireOutcome, AcquireRequest, HandOver, LockStore, StoreFuture};
use crate::id::LockId;
use crate::info::LockInfo;

/// Locks kept in memory; one process only. Clones share the same locks, so
/// several managers built on clones behave like processes sharing a cluster.
///
/// Expiry is decided on Tokio's clock, the clock leases count on, so tests
/// with paused time (`tokio::time::pause`) see locks expire as they would.
///
/// ```
/// use eslock::{LockManager, MemoryStore};
///
/// let store = MemoryStore::new();
/// let a = LockManager::builder().store(store.clone()).build();
/// let b = LockManager::builder().store(store).build();
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            state: Arc::new(Mutex::new(State {
                locks: HashMap::new(),
                abandoned: HashMap::new(),
                last_fencing_token: 0,
                clock: Clock::new(),
            })),
        }
    }
}

#[derive(Debug)]
struct State {
    locks: HashMap<String, Held>,
    /// Per lock id, the last tokens released while not holding it: never
    /// granted later (the Elasticsearch store's rule, for in-flight acquires).
    abandoned: HashMap<String, VecDeque<String>>,
    /// Last fencing token handed out by this store, for any lock id; never
    /// reset, so tokens of every id keep increasing without a clock.
    last_fencing_token: u64,
    clock: Clock,
}

/// A lock and its expiry on Tokio's clock.
#[derive(Debug)]
struct Held {
    info: LockInfo,
    expires: Instant,
}

/// Tokio's clock, shown as wall-clock times in [`LockInfo`].
#[derive(Debug)]
struct Clock {
    started: Instant,
    started_wall: SystemTime,
}

impl Clock {
    fn new() -> Self {
        Clock {
            started: Instant::now(),
            started_wall: SystemTime::now(),
        }
    }

    fn wall(&self, at: Instant) -> SystemTime {
        self.started_wall + at.saturating_duration_since(self.started)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }
}

impl State {
    /// The live lock for `lock_id`, dropping it if it has expired.
    fn live(&mut self, lock_id: &str, now: Instant) -> Option<&mut Held> {
        if self.locks.get(lock_id).is_some_and(|held| held.expires <= now) {
            self.locks.remove(lock_id);
        }
        self.locks.get_mut(lock_id)
    }

    /// Removes the lock if `token` holds it; whether it did. A released
    /// token is never granted again, nor (with `abandon`) one that did not
    /// hold the lock: the Elasticsearch store's rule for acquire requests
    /// still on their way.
    fn release(&mut self, lock_id: &str, token: &str, abandon: bool) -> bool {
        let ours = self.locks.get(lock_id).is_some_and(|held| held.info.token == token);
        if ours {
            self.locks.remove(lock_id);
        }
        let tokens = self.abandoned.entry(lock_id.to_string()).or_default();
        if (ours || abandon) && !tokens.iter().any(|known| known == token) {
            tokens.push_back(token.to_string());
            if tokens.len() > ABANDONED_TOKENS_KEPT {
                tokens.pop_front();
            }
        }
        ours
    }

    /// Whether `request`'s token was given up on: it may never take the lock.
    fn is_abandoned(&self, request: &AcquireRequest) -> bool {
        self.abandoned.get(request.lock_id.as_str()).is_some_and(|tokens| tokens.contains(&request.token))
    }

    /// Gives the lock to `request.token` (the caller checked it is free).
    fn grant(&mut self, request: &AcquireRequest, now: Instant) -> LockInfo {
        let wall = self.clock.wall(now);
        let expires = now + request.ttl;
        let info = LockInfo {
            lock_id: request.lock_id.clone(),
            token: request.token.clone(),
            created_at: wall,
            expires_at: self.clock.wall(expires),
            metadata: request.metadata.clone(),
            fencing_token: Some(self.next_fencing_token(wall)),
        };
        self.locks.insert(info.lock_id.to_string(), Held { info: info.clone(), expires });
        info
    }

    /// Larger than the last token; the wall clock in microseconds is only a
    /// floor, so tokens stay near the Elasticsearch store's.
    fn next_fencing_token(&mut self, now: SystemTime) -> u64 {
        let micros = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_micros() as u64;
        self.last_fencing_token = (self.last_fencing_token + 1).max(micros);
        self.last_fencing_token
    }
}

/// How many abandoned tokens are remembered per lock id.
const ABANDONED_TOKENS_KEPT: usize = 64;

fn ready<'a, T: Send + 'a>(value: T) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl LockStore for MemoryStore {
    fn setup(&self) -> StoreFuture<'_, ()> {
        ready(())
    }

    fn acquire<'a>(&'a self, request: &'a AcquireRequest) -> StoreFuture<'a, AcquireOutcome> {
        let now = Instant::now();
        let mut state = self.state();
        let abandoned = state.is_abandoned(request);
        let holder = state.live(request.lock_id.as_str(), now).map(|held| held.info.clone());
        if abandoned || holder.is_some() {
            return ready(AcquireOutcome::Held(holder));
        }
        ready(AcquireOutcome::Acquired(state.grant(request, now)))
    }

    fn hand_over<'a>(&'a self, lock_id: &'a LockId, token: &'a str, next: &'a AcquireRequest) -> StoreFuture<'a, HandOver> {
        // Under one lock of the state: nobody can come in between.
        let mut state = self.state();
        if !state.release(lock_id.as_str(), token, false) {
            return ready(HandOver::NotHeld);
        }
        // A late copy of a hand-over given up on: the release alone.
        if state.is_abandoned(next) {
            return ready(HandOver::Released);
        }
        ready(HandOver::HandedOver(state.grant(next, Instant::now())))
    }

    fn extend<'a>(&'a self, lock_id: &'a LockId, token: &'a str, ttl: Duration) -> StoreFuture<'a, Option<LockInfo>> {
        let now = Instant::now();
        let mut state = self.state();
        let expires_at = state.clock.wall(now + ttl);
        let extended = match state.live(lock_id.as_str(), now) {
            Some(held) if held.info.token == token => {
                held.expires = now + ttl;
                held.info.expires_at = expires_at;
                Some(held.info.clone())
            }
            _ => None,
        };
        ready(extended)
    }

    fn release<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
        ready(self.state().release(lock_id.as_str(), token, false))
    }

    fn abandon<'a>(&'a self, lock_id: &'a LockId, token: &'a str) -> StoreFuture<'a, bool> {
        ready(self.state().release(lock_id.as_str(), token, true))
    }

    fn get<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, Option<LockInfo>> {
        let found = self.state().live(lock_id.as_str(), Instant::now()).map(|held| held.info.clone());
        ready(found)
    }

    fn list(&self) -> StoreFuture<'_, Vec<LockInfo>> {
        let now = Instant::now();
        let mut state = self.state();
        state.locks.retain(|_, held| held.expires > now);
        let mut locks: Vec<LockInfo> = state.locks.values().map(|held| held.info.clone()).collect();
        locks.sort_by(|a, b| a.lock_id.cmp(&b.lock_id));
        ready(locks)
    }

    fn force_release<'a>(&'a self, lock_id: &'a LockId) -> StoreFuture<'a, bool> {
        let mut state = self.state();
        let holder = state.locks.get(lock_id.as_str()).map(|held| held.info.token.clone());
        ready(holder.is_some_and(|token| state.release(lock_id.as_str(), &token, false)))
    }
}
