//! Lease TTL bounds: what the lease clock can work with, and what every
//! engine can store and read back as an expiry date.

use std::fmt;
use std::time::Duration;

use crate::format_duration;

/// The smallest accepted TTL: below it, the safety margin and the renewal
/// interval shrink to nothing.
pub const MIN_TTL: Duration = Duration::from_millis(10);

/// The largest accepted TTL: 100 years (36,500 days). Expiry dates then stay
/// within the four-digit years that every engine and date parser reads back.
pub const MAX_TTL: Duration = Duration::from_secs(36_500 * 86_400);

/// Why a TTL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TtlError {
    /// Shorter than [`MIN_TTL`].
    TooShort {
        /// The TTL given.
        ttl: Duration,
    },
    /// Longer than [`MAX_TTL`].
    TooLong {
        /// The TTL given.
        ttl: Duration,
    },
}

impl fmt::Display for TtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TtlError::TooShort { ttl } => {
                write!(f, "ttl must be at least {} ms, got {}", MIN_TTL.as_millis(), format_duration(*ttl))
            }
            TtlError::TooLong { ttl } => write!(
                f,
                "ttl must be at most {} days (100 years), got {}",
                MAX_TTL.as_secs() / 86_400,
                format_duration(*ttl)
            ),
        }
    }
}

impl std::error::Error for TtlError {}

/// Checks a lease TTL against [`MIN_TTL`] and [`MAX_TTL`].
///
/// ```
/// use std::time::Duration;
/// assert!(eslock_rules::check_ttl(Duration::from_secs(30)).is_ok());
/// assert!(eslock_rules::check_ttl(Duration::from_millis(5)).is_err());
/// assert!(eslock_rules::check_ttl(Duration::from_secs(10_000 * 365 * 86_400)).is_err());
/// ```
pub fn check_ttl(ttl: Duration) -> Result<(), TtlError> {
    if ttl < MIN_TTL {
        Err(TtlError::TooShort { ttl })
    } else if ttl > MAX_TTL {
        Err(TtlError::TooLong { ttl })
    } else {
        Ok(())
    }
}
