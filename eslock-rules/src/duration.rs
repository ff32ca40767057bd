//! Human duration syntax: `500ms`, `45s`, `2m`, `1h`, `1d`, and sums such as `1m30s`.

use std::fmt;
use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// The string is empty.
    Empty,
    /// A number has no unit after it (`"30"`).
    MissingUnit {
        /// The number without a unit.
        number: String,
    },
    /// A unit that is not one of `ms s m h d`.
    UnknownUnit {
        /// The unit as written.
        unit: String,
    },
    /// Something that is not a number where a number was expected.
    ExpectedNumber {
        /// The text found instead.
        found: String,
    },
    /// The duration does not fit in a `u64` of milliseconds.
    Overflow,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORMS: &str = "write it as a number with a unit: \"500ms\", \"45s\", \"2m\", \"1h\", \"1d\" or \"1m30s\"";
        match self {
            DurationError::Empty => write!(f, "duration is empty; {FORMS}"),
            DurationError::MissingUnit { number } => {
                write!(f, "duration \"{number}\" has no unit; {FORMS}")
            }
            DurationError::UnknownUnit { unit } => {
                write!(f, "unknown duration unit \"{unit}\"; {FORMS}")
            }
            DurationError::ExpectedNumber { found } => {
                write!(f, "expected a number in duration, found \"{found}\"; {FORMS}")
            }
            DurationError::Overflow => write!(f, "duration is too large"),
        }
    }
}

impl std::error::Error for DurationError {}

fn unit_millis(unit: &str) -> Option<u64> {
    Some(match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    })
}

/// Parses a human duration such as `"45s"`, `"2m"` or `"1m30s"`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(eslock_rules::parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert!(eslock_rules::parse_duration("30").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(DurationError::ExpectedNumber {
                found: rest.to_string(),
            });
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after.len() - after.trim_start_matches(|c: char| c.is_ascii_alphabetic()).len();
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit {
                number: number.to_string(),
            });
        }
        let millis = unit_millis(unit).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit.to_string(),
        })?;
        let value: u64 = number.parse().map_err(|_| DurationError::Overflow)?;
        total = value
            .checked_mul(millis)
            .and_then(|v| total.checked_add(v))
            .ok_or(DurationError::Overflow)?;
        rest = after;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration in the syntax [`parse_duration`] accepts (`"1m30s"`).
pub fn format_duration(duration: Duration) -> String {
    let mut millis = duration.as_millis();
    if millis == 0 {
        return "0ms".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400_000u128), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if millis >= size {
            out.push_str(&format!("{}{unit}", millis / size));
            millis %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1s500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(parse_duration("30"), Err(DurationError::MissingUnit { .. })));
        assert!(matches!(parse_duration("3 weeks"), Err(DurationError::MissingUnit { .. })));
        assert!(matches!(parse_duration("3w"), Err(DurationError::UnknownUnit { .. })));
        assert!(matches!(parse_duration("s"), Err(DurationError::ExpectedNumber { .. })));
        assert_eq!(parse_duration("99999999999999999999d"), Err(DurationError::Overflow));
    }

    #[test]
    fn formats_round_trip() {
        for text in ["1m30s", "45s", "250ms", "1d2h3m4s5ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
