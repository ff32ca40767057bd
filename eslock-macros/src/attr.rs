//! Reads the syntax of `#[exclusive(...)]` into [`Args`]: which options are
//! given and with what tokens. What the values mean, and whether they are
//! allowed, is `valid.rs`'s business.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, LitStr, Path, Token};

/// The lock as written: a string literal, or a name from `lock_names!`.
pub(crate) enum LockArg {
    Literal(LitStr),
    Named(Path),
}

/// One `key = value` of `metadata(...)`; the key is a name or a string.
pub(crate) struct MetadataArg {
    pub key: String,
    pub key_span: Span,
    pub value: Expr,
}

/// The attribute's arguments.
pub(crate) struct Args {
    pub lock: LockArg,
    pub ttl: Option<LitStr>,
    pub wait: Option<LitStr>,
    pub metadata: Vec<MetadataArg>,
    pub manager: Option<Expr>,
    pub startup: Option<Ident>,
    pub once: Option<Ident>,
}

const OPTIONS: &str = "`ttl = \"30s\"`, `wait = \"2m\"`, `metadata(key = \"value\", ...)`, `manager = <expr>`, `startup`, `once`";

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "#[exclusive] needs a lock id: write #[exclusive(\"my-lock\")] or #[exclusive(MY_LOCK)]",
            ));
        }
        let mut args = Args {
            lock: parse_lock(input)?,
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
                "ttl" => args.ttl = Some(parse_string_option(input, &option)?),
                "wait" => args.wait = Some(parse_string_option(input, &option)?),
                "metadata" => args.metadata = parse_metadata(input)?,
                "manager" => {
                    input.parse::<Token![=]>()?;
                    args.manager = Some(input.parse()?);
                }
                "startup" => args.startup = Some(option),
                "once" => args.once = Some(option),
                _ => {
                    return Err(syn::Error::new(option.span(), format!("unknown option `{name}`; the options are {OPTIONS}")));
                }
            }
        }
        Ok(args)
    }
}

fn parse_lock(input: ParseStream) -> syn::Result<LockArg> {
    if input.peek(LitStr) {
        Ok(LockArg::Literal(input.parse()?))
    } else if input.peek(Ident) && input.peek2(Token![=]) {
        Err(syn::Error::new(input.span(), "the lock id comes first: write #[exclusive(\"my-lock\", ttl = \"30s\")]"))
    } else {
        let path: Path = input
            .parse()
            .map_err(|err| syn::Error::new(err.span(), "expected a lock id string such as \"my-lock\", or a name from lock_names!"))?;
        Ok(LockArg::Named(path))
    }
}

/// `= "..."` after `ttl` or `wait`.
fn parse_string_option(input: ParseStream, option: &Ident) -> syn::Result<LitStr> {
    input.parse::<Token![=]>()?;
    input
        .parse()
        .map_err(|err| syn::Error::new(err.span(), format!("`{option}` takes a duration string such as \"30s\"")))
}

fn parse_metadata(input: ParseStream) -> syn::Result<Vec<MetadataArg>> {
    let content;
    syn::parenthesized!(content in input);
    let mut entries = Vec::new();
    while !content.is_empty() {
        let (key, key_span) = if content.peek(LitStr) {
            let key: LitStr = content.parse()?;
            (key.value(), key.span())
        } else {
            let key: Ident = content.parse().map_err(|err| syn::Error::new(err.span(), "metadata keys are names or strings: metadata(owner = \"me\")"))?;
            (key.to_string(), key.span())
        };
        content.parse::<Token![=]>()?;
        let value: Expr = content.parse()?;
        entries.push(MetadataArg { key, key_span, value });
        if !content.is_empty() {
            content.parse::<Token![,]>()?;
        }
    }
    Ok(entries)
}
