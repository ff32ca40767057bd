//! Every check of `#[exclusive]` and `lock_names!`, in one place (the shape
//! of thiserror's `valid.rs`): parsing only reads the syntax, and expansion
//! only generates code from the typed description accepted here. The rules
//! themselves (lock ids, templates, durations, TTL bounds, metadata limits,
//! `once` markers) are `eslock-rules`', the crate the runtime checks with.
//!
//! One check cannot run here: a `lock_names!` name is a path whose id the
//! attribute does not see. Its placeholders and `once` marker are checked
//! when the generated code is compiled, by `eslock::__private` functions
//! built on the same rules (see `expand.rs`).

use std::collections::HashMap;
use std::time::Duration;

use eslock_rules::{DurationError, MetadataError, Segment};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprUnary, FnArg, Ident, ItemFn, Lit, LitStr, Pat, Path, ReturnType, Type, UnOp};

use crate::attr::{Args, LockArg, MetadataArg};
use crate::names::{LockNameDecl, LockNames};

/// An `#[exclusive]` function that passed every check.
pub(crate) struct Exclusive {
    pub function: ItemFn,
    pub lock: Lock,
    pub ttl: Option<Duration>,
    pub wait: Option<Duration>,
    pub metadata: Vec<Metadata>,
    pub manager: Option<Expr>,
    pub startup: Option<Startup>,
    /// The function's `Result<T, E>`.
    pub return_type: Type,
    /// The parameters that are plain identifiers (`self` excluded).
    pub parameters: Vec<Ident>,
}

pub(crate) enum Lock {
    /// A literal id or template, parsed into segments.
    Literal { literal: LitStr, segments: Vec<Segment> },
    /// A name from `lock_names!`.
    Named(Path),
}

/// One metadata entry; its value is a literal, negated if `negative`.
pub(crate) struct Metadata {
    pub key: String,
    pub value: Lit,
    pub negative: bool,
}

/// `startup` (and whether `once`).
pub(crate) struct Startup {
    pub once: bool,
}

/// A `lock_names!` line that passed every check.
pub(crate) struct ValidName {
    pub decl: LockNameDecl,
    /// Its placeholders; none for a complete id.
    pub placeholders: Vec<String>,
    /// For a complete id, why it cannot be a `once` start-up task's, if so.
    pub once_problem: Option<String>,
}

/// Gathers every error, so that one compile reports them all.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// The value, or `None` with its error kept.
    fn check<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    fn finish<T>(self, value: impl FnOnce() -> T) -> syn::Result<T> {
        match self.0 {
            Some(errors) => Err(errors),
            None => Ok(value()),
        }
    }
}

pub(crate) fn exclusive(args: Args, function: ItemFn) -> syn::Result<Exclusive> {
    let mut errors = Errors::default();
    let signature = &function.sig;
    if signature.asyncness.is_none() {
        errors.push(syn::Error::new(
            signature.fn_token.span(),
            "#[exclusive] works on `async fn` only: the lock is held across awaits; write `async fn`",
        ));
    }
    let return_type = errors.check(result_type(&signature.output).cloned());
    let parameters = parameter_names(&function);
    let lock = errors.check(lock(args.lock, &parameters));
    let ttl = args.ttl.and_then(|literal| errors.check(ttl(&literal)));
    let wait = args.wait.and_then(|literal| errors.check(duration("wait", &literal)));
    let metadata = errors.check(metadata(args.metadata)).unwrap_or_default();
    let startup = match (args.startup, args.once) {
        (None, Some(once)) => {
            errors.push(syn::Error::new(once.span(), "`once` applies to start-up tasks; write `startup, once`"));
            None
        }
        (None, None) => None,
        (Some(startup), once) => {
            errors.check(startup_task(&function, &startup, lock.as_ref(), once.is_some()));
            Some(Startup { once: once.is_some() })
        }
    };
    errors.finish(|| Exclusive {
        lock: lock.expect("no error, so the lock is valid"),
        return_type: return_type.expect("no error, so the return type is valid"),
        function,
        ttl,
        wait,
        metadata,
        manager: args.manager,
        startup,
        parameters,
    })
}

/// `-> Result<T, E>` (any path ending in `Result`); anything else is an error.
fn result_type(output: &ReturnType) -> syn::Result<&Type> {
    let message = "#[exclusive] functions must return Result<T, E> with E: From<eslock::Error>, \
                   so that a held lock can be returned as an error";
    match output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(path) if path.path.segments.last().is_some_and(|s| s.ident == "Result") => Ok(ty),
            other => Err(syn::Error::new(other.span(), message)),
        },
        ReturnType::Default => Err(syn::Error::new(output.span(), message)),
    }
}

fn parameter_names(function: &ItemFn) -> Vec<Ident> {
    function
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) => Some(ident.ident.clone()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// How a placeholder error names the parameters that a placeholder may
/// name; also used by the generated check of `lock_names!` names.
pub(crate) fn parameter_list(parameters: &[Ident]) -> String {
    if parameters.is_empty() {
        "it has none".to_string()
    } else {
        let names: Vec<String> = parameters.iter().map(Ident::to_string).collect();
        format!("its parameters are: {}", names.join(", "))
    }
}

fn lock(lock: LockArg, parameters: &[Ident]) -> syn::Result<Lock> {
    let literal = match lock {
        LockArg::Named(path) => return Ok(Lock::Named(path)),
        LockArg::Literal(literal) => literal,
    };
    let segments = eslock_rules::parse_template(&literal.value())
        .map_err(|err| syn::Error::new(literal.span(), format!("invalid lock id: {err}")))?;
    for segment in &segments {
        if let Segment::Placeholder(name) = segment {
            if !parameters.iter().any(|parameter| parameter == name) {
                let message = format!("placeholder {{{name}}} names no parameter of this function; {}", parameter_list(parameters));
                return Err(syn::Error::new(literal.span(), message));
            }
        }
    }
    Ok(Lock::Literal { literal, segments })
}

fn duration(option: &str, literal: &LitStr) -> syn::Result<Duration> {
    eslock_rules::parse_duration(&literal.value()).map_err(|err| {
        let message = match err {
            DurationError::MissingUnit { number } => {
                format!("`{option}` needs a unit: write \"{number}s\" for seconds or \"{number}ms\" for milliseconds")
            }
            other => format!("invalid `{option}`: {other}"),
        };
        syn::Error::new(literal.span(), message)
    })
}

/// A duration within the runtime's TTL bounds, so that what compiles also runs.
fn ttl(literal: &LitStr) -> syn::Result<Duration> {
    let ttl = duration("ttl", literal)?;
    eslock_rules::check_ttl(ttl).map_err(|err| syn::Error::new(literal.span(), err.to_string()))?;
    Ok(ttl)
}

fn metadata(entries: Vec<MetadataArg>) -> syn::Result<Vec<Metadata>> {
    let mut valid: Vec<Metadata> = Vec::new();
    // `{}`, then per entry `"key":value,` as JSON; the runtime measures exactly.
    let mut approximate_size = 2;
    for MetadataArg { key, key_span, value } in entries {
        eslock_rules::check_metadata_key(&key).map_err(|err| syn::Error::new(key_span, err.to_string()))?;
        if valid.iter().any(|entry| entry.key == key) {
            return Err(syn::Error::new(key_span, MetadataError::DuplicateKey { key }.to_string()));
        }
        let (value, negative) = literal_value(&value)?;
        approximate_size += key.len() + 4 + json_len(&value);
        eslock_rules::check_metadata_size(approximate_size).map_err(|err| syn::Error::new(key_span, err.to_string()))?;
        valid.push(Metadata { key, value, negative });
    }
    Ok(valid)
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

/// About how many bytes the literal takes as JSON.
fn json_len(literal: &Lit) -> usize {
    match literal {
        Lit::Str(text) => text.value().len() + 2,
        other => quote::ToTokens::to_token_stream(other).to_string().len(),
    }
}

/// The start-up runner calls a task with nothing: no receiver, no
/// arguments, no type arguments. A `once` task's id leaves room for its
/// completion marker.
fn startup_task(function: &ItemFn, startup: &Ident, lock: Option<&Lock>, once: bool) -> syn::Result<()> {
    let marked_here = || syn::Error::new(startup.span(), "marked as a start-up task here");
    let with_mark = |mut error: syn::Error| {
        error.combine(marked_here());
        error
    };
    let signature = &function.sig;
    if let Some(receiver) = signature.receiver() {
        return Err(with_mark(syn::Error::new(
            receiver.self_token.span,
            "a start-up task cannot take `self`: the start-up runner has no value to call it on; \
             make it a free function or an associated function without `self`",
        )));
    }
    if !signature.inputs.is_empty() {
        return Err(with_mark(syn::Error::new(
            signature.inputs.span(),
            "start-up tasks take no arguments: the start-up runner has nothing to pass; read what the task needs from statics or its environment",
        )));
    }
    if !signature.generics.params.is_empty() {
        return Err(with_mark(syn::Error::new(
            signature.generics.params.span(),
            "a start-up task cannot be generic: the start-up runner has no types to choose; write the types out",
        )));
    }
    if let (true, Some(Lock::Literal { literal, .. })) = (once, lock) {
        eslock_rules::check_once_lock_id(&literal.value()).map_err(|err| syn::Error::new(literal.span(), err.to_string()))?;
    }
    Ok(())
}

/// Each id follows the rules; no id and no name is declared twice.
pub(crate) fn lock_names(names: LockNames) -> syn::Result<Vec<ValidName>> {
    let mut errors = Errors::default();
    let mut ids: HashMap<String, Ident> = HashMap::new();
    let mut names_seen: HashMap<String, Ident> = HashMap::new();
    let mut valid = Vec::new();
    for decl in names.0 {
        let id = decl.id.value();
        let placeholders = errors.check(
            eslock_rules::placeholders(&id).map_err(|err| syn::Error::new(decl.id.span(), format!("invalid lock id: {err}"))),
        );
        if let Some(first) = ids.insert(id.clone(), decl.name.clone()) {
            errors.push(syn::Error::new(
                decl.id.span(),
                format!("lock id \"{id}\" is already declared as `{first}`; each name needs its own id"),
            ));
        }
        if let Some(first) = names_seen.insert(decl.name.to_string(), decl.name.clone()) {
            errors.push(syn::Error::new(decl.name.span(), format!("`{first}` is declared twice; rename one of them")));
        }
        if let Some(placeholders) = placeholders {
            // Only a complete id can name a start-up task.
            let once_problem = match placeholders.is_empty() {
                true => eslock_rules::check_once_lock_id(&id).err().map(|err| format!("`{}` cannot name a `once` start-up task: {err}", decl.name)),
                false => None,
            };
            valid.push(ValidName { decl, placeholders, once_problem });
        }
    }
    errors.finish(|| valid)
}
