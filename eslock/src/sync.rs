//! Locking the crate's short-lived mutexes.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning: every critical section in eslock is a
/// single insert, push, take or removal, so a panic elsewhere while the lock
/// was held cannot have left the data half-changed.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
