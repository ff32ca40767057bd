//! The validated lock id type.

use std::fmt;

use crate::error::{Error, InvalidLockIdError, Result};

/// A lock id that follows the lock id rules: 1 to 255 characters from
/// `A-Z a-z 0-9 _ . : / -`, starting with a letter or digit.
///
/// Every API that takes a lock id accepts `impl AsRef<str>` and validates it
/// before sending anything; build a `LockId` yourself to validate early.
///
/// ```
/// use eslock::LockId;
///
/// let id = LockId::new("reindex/logs:2024").unwrap();
/// assert_eq!(id.as_str(), "reindex/logs:2024");
/// assert!(LockId::new("_hidden").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockId(String);

impl LockId {
    /// Validates `id`.
    pub fn new(id: impl AsRef<str>) -> Result<Self> {
        let id = id.as_ref();
        eslock_rules::check_lock_id(id).map_err(|reason| InvalidLockIdError { id: id.to_string(), reason })?;
        Ok(LockId(id.to_string()))
    }

    /// An id another program wrote into a store it shares with eslock
    /// (Kibana's lock ids are free strings): checked only against what a
    /// store can hold ([`eslock_rules::check_document_id`]). For stores that
    /// read such locks back ([`LockStore::accepts_foreign_ids`]); eslock
    /// never acquires them.
    ///
    /// ```
    /// use eslock::LockId;
    ///
    /// assert!(LockId::new("Kibana task: reindex").is_err());
    /// assert_eq!(LockId::foreign("Kibana task: reindex").unwrap(), "Kibana task: reindex");
    /// assert!(LockId::foreign("").is_err());
    /// ```
    ///
    /// [`LockStore::accepts_foreign_ids`]: crate::store::LockStore::accepts_foreign_ids
    pub fn foreign(id: impl AsRef<str>) -> Result<Self> {
        let id = id.as_ref();
        eslock_rules::check_document_id(id).map_err(|reason| InvalidLockIdError { id: id.to_string(), reason })?;
        Ok(LockId(id.to_string()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for LockId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for LockId {
    type Error = Error;

    fn try_from(id: &str) -> Result<Self> {
        LockId::new(id)
    }
}

impl TryFrom<String> for LockId {
    type Error = Error;

    fn try_from(id: String) -> Result<Self> {
        LockId::new(id)
    }
}

// Comparisons with plain strings, so that `info.lock_id == "jobs/a"` reads
// as it would with a `String`.
impl PartialEq<str> for LockId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for LockId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for LockId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}
