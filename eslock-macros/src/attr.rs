//! Parses `#[exclusive(...)]` into a typed [`ExclusiveArgs`]. Every problem is
//! a `syn::Error` spanned on the offending token; the rules themselves come
//! from `eslock-rules`, shared with the runtime.

use std::time::Duration;

use eslock_rules::{DurationError, MetadataError, Segment, check_metadata_key, check_metadata_size, parse_duration, parse_template};
use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, LitStr, Path, Token, UnOp};

/// The lock an `#[exclusive]` function takes.
pub enum LockSpec {
    /// A literal id or template, already parsed into segments.
    Literal { literal: LitStr, segments: Vec<Segment> },
    /// A typed name from `lock_names!`.
    Named(Path),
}

/// One `key = literal` of `metadata(...)`.
pub struct MetadataEntry {
    pub key: String,
    pub value: Lit,
    pub negative: bool,
}

/// The parsed attribute.
pub struct ExclusiveArgs {
    pub lock: LockSpec,
    pub ttl: Option<Duration>,
    pub wait: Option<Duration>,
    pub metadata: Vec<MetadataEntry>,
    pub manager: Option<Expr>,
    pub startup: Option<Span>,
    pub once: Option<Span>,
}

const OPTIONS: &str = "`ttl = \"30s\"`, `wait = \"2m\"`, `metadata(key = \"value\", ...)`, `manager = <expr>`, `startup`, `once`";

impl Parse for ExclusiveArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "#[exclusive] needs a lock id: write #[exclusive(\"my-lock\")] or #[exclusive(MY_LOCK)]",
            ));
        }
        let lock = parse_lock(input)?;
        let mut args = ExclusiveArgs {
            lock,
            ttl: None,
            wait: None,
            metadata: Vec::new(),
            manager: None,
            startup: None,
            once: None,
        };
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let option: Ident = input.parse().map_err(|err| syn::Error::new(err.span(), format!("expected an option: {OPTIONS}")))?;
            let name = option.to_string();
            if seen.contains(&name) {
                return Err(syn::Error::new(option.span(), format!("option `{name}` is given more than once; keep one")));
            }
            seen.push(name.clone());
            match name.as_str() {
                "ttl" => {
                    let ttl = parse_duration_option(input, &option)?;
                    if ttl.1.is_zero() {
                        return Err(syn::Error::new(ttl.0.span(), "ttl must be more than zero; write for example ttl = \"30s\""));
                    }
                    // The runtime's own bounds, so that what compiles also runs.
                    eslock_rules::check_ttl(ttl.1).map_err(|err| syn::Error::new(ttl.0.span(), err.to_string()))?;
                    args.ttl = Some(ttl.1);
                }
                "wait" => args.wait = Some(parse_duration_option(input, &option)?.1),
                "metadata" => args.metadata = parse_metadata(input)?,
                "manager" => {
                    input.parse::<Token![=]>()?;
                    args.manager = Some(input.parse()?);
                }
                "startup" => args.startup = Some(option.span()),
                "once" => args.once = Some(option.span()),
                _ => {
                    return Err(syn::Error::new(option.span(), format!("unknown option `{name}`; the options are {OPTIONS}")));
                }
            }
        }
        if let (Some(once), None) = (args.once, args.startup) {
            return Err(syn::Error::new(once, "`once` applies to start-up tasks; write `startup, once`"));
        }
        Ok(args)
    }
}

fn parse_lock(input: ParseStream) -> syn::Result<LockSpec> {
    if input.peek(LitStr) {
        let literal: LitStr = input.parse()?;
        let segments = parse_template(&literal.value()).map_err(|err| syn::Error::new(literal.span(), format!("invalid lock id: {err}")))?;
        Ok(LockSpec::Literal { literal, segments })
    } else if input.peek(Ident) && input.peek2(Token![=]) {
        Err(syn::Error::new(input.span(), "the lock id comes first: write #[exclusive(\"my-lock\", ttl = \"30s\")]"))
    } else {
        let path: Path = input
            .parse()
            .map_err(|err| syn::Error::new(err.span(), "expected a lock id string such as \"my-lock\", or a name from lock_names!"))?;
        Ok(LockSpec::Named(path))
    }
}

fn parse_duration_option(input: ParseStream, option: &Ident) -> syn::Result<(LitStr, Duration)> {
    input.parse::<Token![=]>()?;
    let literal: LitStr = input
        .parse()
        .map_err(|err| syn::Error::new(err.span(), format!("`{option}` takes a duration string such as \"30s\"")))?;
    let duration = parse_duration(&literal.value()).map_err(|err| {
        let message = match err {
            DurationError::MissingUnit { number } => {
                format!("`{option}` needs a unit: write \"{number}s\" for seconds or \"{number}ms\" for milliseconds")
            }
            other => format!("invalid `{option}`: {other}"),
        };
        syn::Error::new(literal.span(), message)
    })?;
    Ok((literal, duration))
}

fn parse_metadata(input: ParseStream) -> syn::Result<Vec<MetadataEntry>> {
    let content;
    syn::parenthesized!(content in input);
    let mut entries: Vec<MetadataEntry> = Vec::new();
    let mut approximate_size = 2;
    while !content.is_empty() {
        let (key, key_span) = if content.peek(LitStr) {
            let key: LitStr = content.parse()?;
            (key.value(), key.span())
        } else {
            let key: Ident = content.parse().map_err(|err| syn::Error::new(err.span(), "metadata keys are names or strings: metadata(owner = \"me\")"))?;
            (key.to_string(), key.span())
        };
        check_metadata_key(&key).map_err(|err| syn::Error::new(key_span, err.to_string()))?;
        if entries.iter().any(|entry| entry.key == key) {
            return Err(syn::Error::new(key_span, MetadataError::DuplicateKey { key }.to_string()));
        }
        content.parse::<Token![=]>()?;
        let value: Expr = content.parse()?;
        let (value, negative) = literal_value(&value)?;
        approximate_size += key.len() + 4 + json_len(&value);
        check_metadata_size(approximate_size).map_err(|err| syn::Error::new(key_span, err.to_string()))?;
        entries.push(MetadataEntry { key, value, negative });
        if !content.is_empty() {
            content.parse::<Token![,]>()?;
        }
    }
    Ok(entries)
}

/// Metadata values are literals: strings, numbers (optionally negative) and booleans.
fn literal_value(value: &Expr) -> syn::Result<(Lit, bool)> {
    let not_literal = || {
        syn::Error::new(
            value.span(),
            "metadata values must be literals (a string, number or bool), checked at compile time; \
             for computed values use LockOptions::metadata with manager.with_lock",
        )
    };
    match value {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Str(_) | Lit::Int(_) | Lit::Float(_) | Lit::Bool(_) => Ok((lit.clone(), false)),
            _ => Err(not_literal()),
        },
        Expr::Unary(ExprUnary { op: UnOp::Neg(_), expr, .. }) => match &**expr {
            Expr::Lit(ExprLit { lit: lit @ (Lit::Int(_) | Lit::Float(_)), .. }) => Ok((lit.clone(), true)),
            _ => Err(not_literal()),
        },
        _ => Err(not_literal()),
    }
}

/// About how many bytes the literal takes as JSON (the runtime checks exactly).
fn json_len(literal: &Lit) -> usize {
    match literal {
        Lit::Str(text) => text.value().len() + 2,
        other => quote::ToTokens::to_token_stream(other).to_string().len(),
    }
}
