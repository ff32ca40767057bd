//! Tokens whose acquire request was sent more than once. Only such a token
//! can be granted after its lease ended: the engine may still receive a
//! copy of the request from an attempt that timed out. Its release records
//! it as abandoned so that the copy is refused; every other release skips
//! that record, which keeps the lock document small and the release cheap.
//! A copy made outside this process (by a proxy that retries POST
//! requests) is not seen here: it could hold the lock for nobody until its
//! TTL, never beside another holder.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Beyond this many (leases detached, or never released while the process
/// runs on), every release records its token, as if its acquire was resent.
const CAPACITY: usize = 10_000;

/// The store's set of resent grants, shared by its clones.
#[derive(Debug, Clone, Default)]
pub(super) struct ResentGrants(Arc<Mutex<Grants>>);

#[derive(Debug, Default)]
struct Grants {
    tokens: HashSet<String>,
    overflowed: bool,
}

impl ResentGrants {
    /// `token` was granted by a request that was sent more than once.
    pub(super) fn insert(&self, token: &str) {
        let mut grants = crate::sync::lock(&self.0);
        if grants.tokens.len() >= CAPACITY {
            grants.overflowed = true;
        } else {
            grants.tokens.insert(token.to_string());
        }
    }

    /// Whether the release of `token` must record it as abandoned.
    pub(super) fn contains(&self, token: &str) -> bool {
        let grants = crate::sync::lock(&self.0);
        grants.overflowed || grants.tokens.contains(token)
    }

    /// The engine has recorded `token` as abandoned: no need to remember it.
    /// Only then: a release that failed or was cancelled must record it
    /// when it is tried again.
    pub(super) fn forget(&self, token: &str) {
        crate::sync::lock(&self.0).tokens.remove(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_remembered_until_forgotten_and_overflow_records_all() {
        let grants = ResentGrants::default();
        assert!(!grants.contains("a"));
        grants.insert("a");
        assert!(grants.clone().contains("a"));
        assert!(grants.contains("a"), "asking does not forget");
        grants.forget("a");
        assert!(!grants.contains("a"));
        for i in 0..=CAPACITY {
            grants.insert(&i.to_string());
        }
        assert!(grants.contains("never inserted"), "after an overflow every release records");
    }
}
