//! Typed lock names, declared with `eslock::lock_names!`.

use std::fmt;

use crate::id::LockId;
use crate::error::{Error, Result};

/// A lock id or lock id template (`"reindex/{source}"`) declared once with
/// [`lock_names!`](crate::lock_names) and checked at compile time.
///
/// ```
/// eslock::lock_names! {
///     pub MIGRATIONS = "migrations";
///     pub REINDEX = "reindex/{source}";
/// }
///
/// assert_eq!(MIGRATIONS.as_ref(), "migrations");
/// let id = REINDEX.fill(|name| (name == "source").then(|| "logs-2024".to_string())).unwrap();
/// assert_eq!(id.as_str(), "reindex/logs-2024");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockName {
    name: &'static str,
    template: &'static str,
}

impl LockName {
    #[doc(hidden)]
    pub const fn __new(name: &'static str, template: &'static str) -> Self {
        LockName { name, template }
    }

    /// The declared name (`MIGRATIONS`).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The id, or the template with `{placeholders}`.
    pub const fn template(&self) -> &'static str {
        self.template
    }

    /// The lock id with every `{placeholder}` replaced by `value(placeholder)`.
    /// A placeholder without a value, or a result that breaks the lock id
    /// rules, is an error.
    pub fn fill(&self, value: impl Fn(&str) -> Option<String>) -> Result<LockId> {
        let segments = eslock_rules::parse_template(self.template)
            .map_err(|err| Error::invalid_option("lock name", format!("{}: {err}", self.name)))?;
        let mut id = String::new();
        for segment in segments {
            match segment {
                eslock_rules::Segment::Literal(text) => id.push_str(&text),
                eslock_rules::Segment::Placeholder(name) => {
                    let filled = value(&name).ok_or_else(|| {
                        let reason = format!("{}: no value for placeholder {{{name}}} in \"{}\"", self.name, self.template);
                        Error::invalid_option("lock name", reason)
                    })?;
                    id.push_str(&filled);
                }
            }
        }
        LockId::new(id)
    }
}

impl AsRef<str> for LockName {
    fn as_ref(&self) -> &str {
        self.template
    }
}

impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.template)
    }
}

/// Whether every `{placeholder}` in `template` is one of `names`; evaluated
/// at compile time by `#[exclusive(NAME)]`.
#[doc(hidden)]
pub const fn placeholders_are_known(template: &str, names: &[&str]) -> bool {
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end] != b'}' {
                end += 1;
            }
            if !is_one_of(bytes, start, end, names) {
                return false;
            }
            i = end;
        }
        i += 1;
    }
    true
}

const fn is_one_of(bytes: &[u8], start: usize, end: usize, names: &[&str]) -> bool {
    let mut n = 0;
    while n < names.len() {
        let name = names[n].as_bytes();
        if name.len() == end - start {
            let mut k = 0;
            while k < name.len() && name[k] == bytes[start + k] {
                k += 1;
            }
            if k == name.len() {
                return true;
            }
        }
        n += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_check() {
        assert!(placeholders_are_known("a/{x}-{y}", &["y", "x"]));
        assert!(placeholders_are_known("plain", &[]));
        assert!(!placeholders_are_known("a/{x}", &["xx"]));
        assert!(!placeholders_are_known("a/{x}", &[]));
    }

    #[test]
    fn fill() {
        let name = LockName::__new("R", "r/{a}");
        assert_eq!(name.fill(|_| Some("1".into())).unwrap().as_str(), "r/1");
        assert!(name.fill(|_| None).is_err());
        assert!(matches!(name.fill(|_| Some("bad value".into())), Err(Error::InvalidLockId(_))));
    }
}
