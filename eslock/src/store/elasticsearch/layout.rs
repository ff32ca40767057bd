//! Names of the lock index, its alias and its templates.

use crate::error::{Error, Result};

/// The alias of the default layout.
pub(super) const DEFAULT_ALIAS: &str = ".eslock-locks";

/// The alias Kibana's lock manager uses.
pub(super) const KIBANA_ALIAS: &str = ".kibana_locks";

/// Where locks are stored: an alias `NAME`, the concrete index `NAME-000001`,
/// the component template `NAME-component` and the index template
/// `NAME-index-template`. This is the layout of Kibana's lock manager, which
/// [`IndexLayout::kibana`] selects.
///
/// ```
/// use eslock::store::elasticsearch::IndexLayout;
///
/// let layout = IndexLayout::named("myapp-locks");
/// assert_eq!(layout.concrete_index(), "myapp-locks-000001");
/// assert_eq!(IndexLayout::kibana().concrete_index(), ".kibana_locks-000001");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexLayout {
    alias: String,
    concrete_index: String,
}

impl Default for IndexLayout {
    fn default() -> Self {
        Self::named(DEFAULT_ALIAS)
    }
}

impl IndexLayout {
    /// The layout for alias `name` (checked when the store is set up).
    pub fn named(name: impl Into<String>) -> Self {
        let alias = name.into();
        IndexLayout {
            concrete_index: format!("{alias}-000001"),
            alias,
        }
    }

    /// The layout for `{prefix}-locks`.
    pub fn with_prefix(prefix: impl AsRef<str>) -> Self {
        Self::named(format!("{}-locks", prefix.as_ref()))
    }

    /// Kibana's lock index (`.kibana_locks`): share locks with Kibana nodes.
    pub fn kibana() -> Self {
        Self::named(KIBANA_ALIAS)
    }

    /// Whether this is Kibana's lock index, shared with Kibana nodes.
    pub fn is_kibana(&self) -> bool {
        self.alias == KIBANA_ALIAS
    }

    /// The alias.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The concrete index that holds the lock documents.
    pub fn concrete_index(&self) -> &str {
        &self.concrete_index
    }

    /// The component template with the mappings and settings.
    pub fn component_template(&self) -> String {
        format!("{}-component", self.alias)
    }

    /// The index template that applies the component template.
    pub fn index_template(&self) -> String {
        format!("{}-index-template", self.alias)
    }

    /// Index naming rules of Elasticsearch and OpenSearch, checked before any
    /// request so that a bad name is a clear error rather than an HTTP 400.
    pub(crate) fn validate(&self) -> Result<()> {
        let name = &self.alias;
        let problem = if name.is_empty() {
            Some("is empty".to_string())
        } else if name.len() > 200 {
            Some("is longer than 200 bytes".to_string())
        } else if name.starts_with(['-', '_', '+']) {
            Some("starts with `-`, `_` or `+`".to_string())
        } else if name == "." || name == ".." {
            Some("is `.` or `..`".to_string())
        } else if name.chars().any(|c| c.is_ascii_uppercase()) {
            Some("has upper-case letters".to_string())
        } else {
            name.chars()
                .find(|c| matches!(c, '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'))
                .map(|c| format!("contains {c:?}"))
        };
        match problem {
            Some(problem) => Err(Error::invalid_option("index", format!("lock index name {name:?} {problem}"))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let layout = IndexLayout::default();
        assert_eq!(layout.concrete_index(), ".eslock-locks-000001");
        assert_eq!(layout.component_template(), ".eslock-locks-component");
        assert_eq!(layout.index_template(), ".eslock-locks-index-template");
        assert_eq!(IndexLayout::with_prefix("app").alias(), "app-locks");
    }

    #[test]
    fn validation() {
        assert!(IndexLayout::default().validate().is_ok());
        for bad in ["", "Upper", "_x", "a b", "a/b", "a*"] {
            assert!(IndexLayout::named(bad).validate().is_err(), "{bad}");
        }
    }
}
