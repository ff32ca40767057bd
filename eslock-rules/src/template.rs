//! Lock id templates such as `"reindex/{source}"`: literal text plus
//! `{name}` placeholders filled from function arguments.

use std::fmt;

use crate::lock_id::{LockIdError, MAX_LOCK_ID_LEN, check_lock_id, is_lock_id_char};

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Text copied into the id as is.
    Literal(String),
    /// `{name}`: replaced by the value of `name`.
    Placeholder(String),
}

/// Why a lock id template was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// A `{` without its closing `}`.
    Unclosed {
        /// Byte offset of the `{`.
        offset: usize,
    },
    /// A `}` without an opening `{`.
    UnmatchedClose {
        /// Byte offset of the `}`.
        offset: usize,
    },
    /// `{}` or a name that is not a Rust identifier.
    BadPlaceholder {
        /// The text between the braces.
        name: String,
    },
    /// The literal text breaks the lock id rules (for a template without
    /// placeholders: the id is invalid).
    InvalidId(LockIdError),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Unclosed { offset } => write!(
                f,
                "`{{` at byte {offset} is not closed; write placeholders as {{name}}"
            ),
            TemplateError::UnmatchedClose { offset } => write!(
                f,
                "`}}` at byte {offset} has no opening `{{`; write placeholders as {{name}}"
            ),
            TemplateError::BadPlaceholder { name } => write!(
                f,
                "placeholder {{{name}}} must name a function parameter, such as {{source}}"
            ),
            TemplateError::InvalidId(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for TemplateError {}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Parses a lock id or lock id template and checks everything that can be
/// checked before the placeholders are known. A template without placeholders
/// must be a valid lock id.
///
/// ```
/// use eslock_rules::{Segment, parse_template};
/// assert_eq!(
///     parse_template("reindex/{source}").unwrap(),
///     vec![Segment::Literal("reindex/".into()), Segment::Placeholder("source".into())]
/// );
/// assert!(parse_template("reindex/{source").is_err());
/// ```
pub fn parse_template(template: &str) -> Result<Vec<Segment>, TemplateError> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut iter = template.char_indices();
    while let Some((offset, c)) = iter.next() {
        match c {
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for (_, c) in iter.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                if !closed {
                    return Err(TemplateError::Unclosed { offset });
                }
                if !is_identifier(&name) {
                    return Err(TemplateError::BadPlaceholder { name });
                }
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(Segment::Placeholder(name));
            }
            '}' => return Err(TemplateError::UnmatchedClose { offset }),
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }

    let has_placeholder = segments.iter().any(|s| matches!(s, Segment::Placeholder(_)));
    if !has_placeholder {
        check_lock_id(template).map_err(TemplateError::InvalidId)?;
        return Ok(segments);
    }
    // Check the literal text now; the placeholders' values are checked once known.
    let mut position = 0;
    for segment in &segments {
        match segment {
            Segment::Literal(text) => {
                if let Some((offset, found)) = text.chars().enumerate().find(|(_, c)| !is_lock_id_char(*c)) {
                    return Err(TemplateError::InvalidId(LockIdError::IllegalChar { found, position: position + offset }));
                }
                position += text.chars().count();
            }
            Segment::Placeholder(_) => position += 1,
        }
    }
    if let Some(Segment::Literal(text)) = segments.first() {
        let found = text.chars().next().expect("literal segments are never empty");
        if !found.is_ascii_alphanumeric() {
            return Err(TemplateError::InvalidId(LockIdError::BadFirstChar { found }));
        }
    }
    // Each placeholder adds at least one character.
    if position > MAX_LOCK_ID_LEN {
        return Err(TemplateError::InvalidId(LockIdError::TooLong { len: position }));
    }
    Ok(segments)
}

/// The placeholder names of a lock id template, in order (a name used twice
/// appears twice); none for a plain lock id.
///
/// ```
/// assert_eq!(eslock_rules::placeholders("copy/{source}/{target}").unwrap(), ["source", "target"]);
/// assert!(eslock_rules::placeholders("plain-id").unwrap().is_empty());
/// ```
pub fn placeholders(template: &str) -> Result<Vec<String>, TemplateError> {
    let segments = parse_template(template)?;
    Ok(segments
        .into_iter()
        .filter_map(|segment| match segment {
            Segment::Placeholder(name) => Some(name),
            Segment::Literal(_) => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_are_one_literal() {
        assert_eq!(parse_template("migrations"), Ok(vec![Segment::Literal("migrations".into())]));
        assert!(matches!(parse_template("_x"), Err(TemplateError::InvalidId(_))));
        assert!(matches!(parse_template(""), Err(TemplateError::InvalidId(LockIdError::Empty))));
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            parse_template("{a}-{b_2}"),
            Ok(vec![
                Segment::Placeholder("a".into()),
                Segment::Literal("-".into()),
                Segment::Placeholder("b_2".into()),
            ])
        );
        assert_eq!(parse_template("x/{}"), Err(TemplateError::BadPlaceholder { name: "".into() }));
        assert_eq!(parse_template("x/{a b}"), Err(TemplateError::BadPlaceholder { name: "a b".into() }));
        assert_eq!(parse_template("x/{a"), Err(TemplateError::Unclosed { offset: 2 }));
        assert_eq!(parse_template("x/a}"), Err(TemplateError::UnmatchedClose { offset: 3 }));
        assert_eq!(
            parse_template("x y/{a}"),
            Err(TemplateError::InvalidId(LockIdError::IllegalChar { found: ' ', position: 1 }))
        );
        assert_eq!(parse_template("_/{a}"), Err(TemplateError::InvalidId(LockIdError::BadFirstChar { found: '_' })));
    }
}
