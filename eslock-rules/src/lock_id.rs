//! Lock id syntax.

use std::fmt;

/// Longest accepted lock id, in characters (all accepted characters are ASCII).
pub const MAX_LOCK_ID_LEN: usize = 255;

/// Longest id, in bytes, that Elasticsearch accepts for a document: the
/// bound of [`check_document_id`].
pub const MAX_DOCUMENT_ID_BYTES: usize = 512;

/// Why a lock id was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockIdError {
    /// The id is empty.
    Empty,
    /// The id is longer than [`MAX_LOCK_ID_LEN`].
    TooLong {
        /// Length of the id in characters.
        len: usize,
    },
    /// The id starts with something other than a letter or digit.
    BadFirstChar {
        /// The first character.
        found: char,
    },
    /// A foreign document id (see [`check_document_id`]) is longer than
    /// [`MAX_DOCUMENT_ID_BYTES`].
    DocumentIdTooLong {
        /// Length of the id in bytes.
        bytes: usize,
    },
    /// The id contains a character outside `A-Z a-z 0-9 _ . : / -`.
    IllegalChar {
        /// The offending character.
        found: char,
        /// Its position (in characters).
        position: usize,
    },
}

impl fmt::Display for LockIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockIdError::Empty => write!(f, "lock id is empty; give a name such as \"migrations\""),
            LockIdError::DocumentIdTooLong { bytes } => write!(
                f,
                "lock id is {bytes} bytes long; documents ids are at most {MAX_DOCUMENT_ID_BYTES} bytes"
            ),
            LockIdError::TooLong { len } => write!(
                f,
                "lock id is {len} characters long; the limit is {MAX_LOCK_ID_LEN}"
            ),
            LockIdError::BadFirstChar { found } => write!(
                f,
                "lock id starts with {found:?}; it must start with a letter or digit"
            ),
            LockIdError::IllegalChar { found, position } => write!(
                f,
                "lock id contains {found:?} at position {position}; allowed are letters, digits and `_ . : / -`"
            ),
        }
    }
}

impl std::error::Error for LockIdError {}

/// Whether `c` may appear in a lock id.
pub fn is_lock_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-')
}

/// Checks a lock id: 1 to 255 characters from `A-Z a-z 0-9 _ . : / -`,
/// starting with a letter or digit.
///
/// ```
/// assert!(eslock_rules::check_lock_id("bootstrap/templates-v3").is_ok());
/// assert!(eslock_rules::check_lock_id("has space").is_err());
/// ```
pub fn check_lock_id(id: &str) -> Result<(), LockIdError> {
    let mut chars = id.chars();
    let first = chars.next().ok_or(LockIdError::Empty)?;
    if let Some((position, found)) = id.chars().enumerate().find(|(_, c)| !is_lock_id_char(*c)) {
        return Err(LockIdError::IllegalChar { found, position });
    }
    if !first.is_ascii_alphanumeric() {
        return Err(LockIdError::BadFirstChar { found: first });
    }
    let len = id.chars().count();
    if len > MAX_LOCK_ID_LEN {
        return Err(LockIdError::TooLong { len });
    }
    Ok(())
}

/// The looser rule for ids that other programs wrote into a shared lock
/// index (Kibana's ids are free strings, spaces included): any non-empty
/// text of at most [`MAX_DOCUMENT_ID_BYTES`] bytes. Only reading and
/// force-releasing such locks accepts it; eslock's own locks follow
/// [`check_lock_id`].
///
/// ```
/// assert!(eslock_rules::check_document_id("Kibana task: reindex").is_ok());
/// assert!(eslock_rules::check_document_id("").is_err());
/// ```
pub fn check_document_id(id: &str) -> Result<(), LockIdError> {
    if id.is_empty() {
        return Err(LockIdError::Empty);
    }
    if id.len() > MAX_DOCUMENT_ID_BYTES {
        return Err(LockIdError::DocumentIdTooLong { bytes: id.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_allowed_character() {
        assert_eq!(check_lock_id("aZ09_.:/-"), Ok(()));
        assert_eq!(check_lock_id("7"), Ok(()));
        assert_eq!(check_lock_id(&"a".repeat(255)), Ok(()));
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(check_lock_id(""), Err(LockIdError::Empty));
        assert_eq!(check_lock_id(&"a".repeat(256)), Err(LockIdError::TooLong { len: 256 }));
        assert_eq!(check_lock_id("_x"), Err(LockIdError::BadFirstChar { found: '_' }));
        assert_eq!(check_lock_id("-x"), Err(LockIdError::BadFirstChar { found: '-' }));
        assert_eq!(
            check_lock_id("a b"),
            Err(LockIdError::IllegalChar { found: ' ', position: 1 })
        );
        assert_eq!(
            check_lock_id("caf\u{e9}"),
            Err(LockIdError::IllegalChar { found: '\u{e9}', position: 3 })
        );
    }
}
