//! The input rules that both `eslock` (at run time) and `eslock-macros` (at
//! compile time) enforce: lock id syntax, lock id templates and their
//! placeholders, duration syntax and TTL bounds, metadata limits and the
//! marker ids of `once` start-up tasks. They live here, once, so the two crates can never disagree.
//!
//! This crate has no dependencies so that the proc-macro crate stays light.
//!
//! ```
//! use eslock_rules::{check_lock_id, parse_duration};
//! use std::time::Duration;
//!
//! assert!(check_lock_id("reindex/logs-2024:main").is_ok());
//! assert!(check_lock_id("_private").is_err());
//! assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
//! ```

use std::fmt;
use std::time::Duration;

mod duration;
mod lock_id;
mod once;
mod template;
mod ttl;

pub use duration::{DurationError, format_duration, parse_duration};
pub use lock_id::{LockIdError, MAX_DOCUMENT_ID_BYTES, MAX_LOCK_ID_LEN, check_document_id, check_lock_id, is_lock_id_char};
pub use once::{DONE_MARKER_SUFFIX, MAX_ONCE_LOCK_ID_LEN, OnceLockIdError, check_once_lock_id, done_marker};
pub use template::{Segment, TemplateError, parse_template, placeholders};
pub use ttl::{MAX_TTL, MIN_TTL, TtlError, check_ttl};

/// Largest accepted metadata, as serialized JSON, in bytes.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

/// Longest accepted metadata key, in bytes.
pub const MAX_METADATA_KEY_LEN: usize = 256;

/// Deepest accepted nesting of metadata objects and arrays (the metadata
/// object itself is level 1). Deeper JSON may be stored by the engine but not
/// read back by every JSON parser.
pub const MAX_METADATA_DEPTH: usize = 32;

/// The default lease TTL.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// Why lock metadata was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    /// Metadata must be a JSON object (`{"key": value, ...}`).
    NotAnObject {
        /// The JSON type that was given instead (`"array"`, `"string"`, ...).
        found: &'static str,
    },
    /// The serialized metadata is larger than [`MAX_METADATA_BYTES`].
    TooLarge {
        /// Serialized size in bytes.
        bytes: usize,
    },
    /// A key is empty.
    EmptyKey,
    /// A key is longer than [`MAX_METADATA_KEY_LEN`].
    KeyTooLong {
        /// Length of the key in bytes.
        len: usize,
    },
    /// The same key appears twice.
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// Objects and arrays are nested deeper than [`MAX_METADATA_DEPTH`].
    TooDeep {
        /// The nesting depth found.
        depth: usize,
    },
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::NotAnObject { found } => write!(
                f,
                "lock metadata must be a JSON object such as {{\"owner\": \"worker-1\"}}, not {found}"
            ),
            MetadataError::TooLarge { bytes } => write!(
                f,
                "lock metadata is {bytes} bytes as JSON; the limit is {MAX_METADATA_BYTES} bytes"
            ),
            MetadataError::EmptyKey => write!(f, "lock metadata keys must not be empty"),
            MetadataError::KeyTooLong { len } => write!(
                f,
                "lock metadata key is {len} bytes long; the limit is {MAX_METADATA_KEY_LEN} bytes"
            ),
            MetadataError::DuplicateKey { key } => {
                write!(f, "lock metadata key `{key}` is given more than once")
            }
            MetadataError::TooDeep { depth } => write!(
                f,
                "lock metadata is nested {depth} levels deep; the limit is {MAX_METADATA_DEPTH}"
            ),
        }
    }
}

impl std::error::Error for MetadataError {}

/// Checks one metadata key.
pub fn check_metadata_key(key: &str) -> Result<(), MetadataError> {
    if key.is_empty() {
        return Err(MetadataError::EmptyKey);
    }
    if key.len() > MAX_METADATA_KEY_LEN {
        return Err(MetadataError::KeyTooLong { len: key.len() });
    }
    Ok(())
}

/// Checks how deeply metadata objects and arrays are nested (`depth`
/// counts the metadata object itself as 1).
pub fn check_metadata_depth(depth: usize) -> Result<(), MetadataError> {
    if depth > MAX_METADATA_DEPTH {
        return Err(MetadataError::TooDeep { depth });
    }
    Ok(())
}

/// Checks the serialized size of metadata.
pub fn check_metadata_size(serialized_bytes: usize) -> Result<(), MetadataError> {
    if serialized_bytes > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLarge {
            bytes: serialized_bytes,
        });
    }
    Ok(())
}
