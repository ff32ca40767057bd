//! The completion marker of a `once` start-up task: a lock whose id is the
//! task's lock id plus [`DONE_MARKER_SUFFIX`]. The marker is a lock id too, so
//! the task's own id must leave room for the suffix.

use std::fmt;

use crate::MAX_LOCK_ID_LEN;

/// What a `once` task's completion marker adds to its lock id.
pub const DONE_MARKER_SUFFIX: &str = ":done";

/// Longest lock id, in characters, that a `once` start-up task may have: the
/// marker id must still fit in [`MAX_LOCK_ID_LEN`].
pub const MAX_ONCE_LOCK_ID_LEN: usize = MAX_LOCK_ID_LEN - DONE_MARKER_SUFFIX.len();

/// Why a lock id cannot be the id of a `once` start-up task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnceLockIdError {
    /// Length of the lock id in characters.
    pub len: usize,
}

impl fmt::Display for OnceLockIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lock id is {} characters long; a `once` start-up task records its completion under \
             \"<lock id>{DONE_MARKER_SUFFIX}\", which must be a lock id too, so its lock id may have at most {MAX_ONCE_LOCK_ID_LEN} characters",
            self.len
        )
    }
}

impl std::error::Error for OnceLockIdError {}

/// Checks that a valid lock id leaves room for the completion marker.
/// `const` so that generated code can check a declared name at compile time.
///
/// ```
/// assert!(eslock_rules::check_once_lock_id("migrations").is_ok());
/// assert!(eslock_rules::check_once_lock_id(&"a".repeat(251)).is_err());
/// ```
pub const fn check_once_lock_id(lock_id: &str) -> Result<(), OnceLockIdError> {
    // Valid lock ids are ASCII: bytes are characters.
    if lock_id.len() > MAX_ONCE_LOCK_ID_LEN {
        return Err(OnceLockIdError { len: lock_id.len() });
    }
    Ok(())
}

/// The lock id of a `once` task's completion marker.
///
/// ```
/// assert_eq!(eslock_rules::done_marker("bootstrap/templates"), "bootstrap/templates:done");
/// ```
pub fn done_marker(lock_id: &str) -> String {
    format!("{lock_id}{DONE_MARKER_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_lock_id;

    #[test]
    fn the_longest_once_id_has_a_valid_marker() {
        let longest = "a".repeat(MAX_ONCE_LOCK_ID_LEN);
        assert_eq!(check_once_lock_id(&longest), Ok(()));
        assert_eq!(check_lock_id(&done_marker(&longest)), Ok(()));

        let too_long = "a".repeat(MAX_ONCE_LOCK_ID_LEN + 1);
        assert_eq!(check_once_lock_id(&too_long), Err(OnceLockIdError { len: 251 }));
        assert!(check_lock_id(&done_marker(&too_long)).is_err());
    }
}
