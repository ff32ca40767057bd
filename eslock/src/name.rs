//! Typed lock names, declared with `eslock::lock_names!`: a complete lock id
//! is a [`LockName`]; a template with `{placeholders}` is a [`LockTemplate`],
//! a different type, so that it cannot be passed where a lock id is expected
//! before its placeholders are filled.

use std::fmt;

use crate::id::LockId;
use crate::error::{Error, Result};

/// A complete lock id declared once with [`lock_names!`](crate::lock_names)
/// and checked at compile time. Use it wherever a lock id is expected.
///
/// ```
/// eslock::lock_names! {
///     pub MIGRATIONS = "migrations";
/// }
///
/// assert_eq!(MIGRATIONS.as_str(), "migrations");
/// assert_eq!(eslock::LockId::new(MIGRATIONS).unwrap().as_str(), "migrations");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockName {
    name: &'static str,
    id: &'static str,
    /// Why the id cannot name a `once` start-up task (its completion marker
    /// would be too long), as the rules say it; checked by the macro.
    pub(crate) once_problem: Option<&'static str>,
}

impl LockName {
    pub(crate) const fn new(name: &'static str, id: &'static str, once_problem: Option<&'static str>) -> Self {
        LockName { name, id, once_problem }
    }

    /// The declared name (`MIGRATIONS`).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The lock id.
    pub const fn as_str(&self) -> &'static str {
        self.id
    }

    /// The lock id, as declared (the same as [`as_str`](Self::as_str);
    /// named like [`LockTemplate::template`]).
    pub const fn template(&self) -> &'static str {
        self.id
    }

    /// The placeholders to fill: none, the id is complete.
    pub const fn placeholders(&self) -> &'static [&'static str] {
        &[]
    }
}

impl AsRef<str> for LockName {
    fn as_ref(&self) -> &str {
        self.id
    }
}

impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id)
    }
}

/// A lock id template with `{placeholders}` (`"reindex/{source}"`) declared
/// once with [`lock_names!`](crate::lock_names) and checked at compile time.
/// It is not a lock id: [`fill`](Self::fill) it first, or give it to
/// `#[exclusive]`, which fills it from the function's parameters.
///
/// ```
/// eslock::lock_names! {
///     pub REINDEX = "reindex/{source}";
/// }
///
/// assert_eq!(REINDEX.placeholders(), ["source"]);
/// let id = REINDEX.fill(|name| (name == "source").then(|| "logs-2024".to_string())).unwrap();
/// assert_eq!(id.as_str(), "reindex/logs-2024");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockTemplate {
    name: &'static str,
    template: &'static str,
    placeholders: &'static [&'static str],
}

impl LockTemplate {
    pub(crate) const fn new(name: &'static str, template: &'static str, placeholders: &'static [&'static str]) -> Self {
        LockTemplate { name, template, placeholders }
    }

    /// The declared name (`REINDEX`).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The template with its `{placeholders}`.
    pub const fn template(&self) -> &'static str {
        self.template
    }

    /// The placeholder names, in order.
    pub const fn placeholders(&self) -> &'static [&'static str] {
        self.placeholders
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

impl fmt::Display for LockTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill() {
        let name = LockTemplate::new("R", "r/{a}", &["a"]);
        assert_eq!(name.fill(|_| Some("1".into())).unwrap().as_str(), "r/1");
        assert!(name.fill(|_| None).is_err());
        assert!(matches!(name.fill(|_| Some("bad value".into())), Err(Error::InvalidLockId(_))));
    }
}
