//! Tokens whose acquire request was sent more than once. Only such a token
//! can be granted after its lease ended: the engine may still receive a
//! copy of the request from an attempt that timed out. Its release records
//! it as abandoned so that the copy is refused; every other release skips
//! that record, which keeps the lock document small and the release cheap.

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

    /// Whether the release of `token` must record it as abandoned; it is
    /// forgotten here, as a token is released once.
    pub(super) fn take(&self, token: &str) -> bool {
        let mut grants = crate::sync::lock(&self.0);
        grants.tokens.remove(token) || grants.overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_recorded_once_and_overflow_records_all() {
        let grants = ResentGrants::default();
        assert!(!grants.take("a"));
        grants.insert("a");
        assert!(grants.clone().take("a"));
        assert!(!grants.take("a"));
        for i in 0..=CAPACITY {
            grants.insert(&i.to_string());
        }
        assert!(grants.take("never inserted"), "after an overflow every release records");
    }
}
