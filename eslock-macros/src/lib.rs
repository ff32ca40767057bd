//! Attribute and function-like macros for [eslock](https://docs.rs/eslock):
//! `#[exclusive]`, `lock_names!` and declarative start-up tasks.
//!
//! Use them through the `eslock` crate (`eslock::exclusive`,
//! `eslock::lock_names`), which re-exports them; the generated code refers
//! to `::eslock`.
//!
//! The lock id, duration and metadata rules are `eslock-rules`, the same
//! crate the runtime validates with, so the compile-time and run-time checks
//! cannot disagree.
//!
//! Layout (as `tracing-attributes` and `thiserror`): `attr` and `names`
//! read the syntax, `valid` holds every check, `expand` generates code.

use proc_macro::TokenStream;

mod attr;
mod expand;
mod names;
mod valid;

/// Runs an `async fn` only while it holds a cluster-wide lock.
///
/// ```
/// #[eslock::exclusive("reindex/{source}", ttl = "45s", wait = "2m", metadata(team = "search"))]
/// async fn reindex(source: &str) -> Result<u64, eslock::Error> {
///     // runs on one process at a time per `source`
///     Ok(0)
/// }
/// ```
///
/// The function must be `async` and return `Result<T, E>` with
/// `E: From<eslock::Error>`: when the lock is held elsewhere the body does not
/// run and the function returns `Err(E::from(Error::Acquisition(..)))`.
/// Attributes, docs, visibility and the signature are kept as written.
///
/// The first argument is a lock id string, with `{param}` placeholders filled
/// from the function's parameters (`Display`), or a name declared with
/// `lock_names!`. Options:
///
/// - `ttl = "45s"`, `wait = "2m"`: durations (`ms`, `s`, `m`, `h`, `d`),
///   parsed at compile time;
/// - `metadata(key = literal, ...)`: the JSON object stored with the lock;
/// - `manager = <expr>`: the `LockManager` to use (`&self.locks`); without
///   it, the one installed with `eslock::install`, or `Error::NotConfigured`;
/// - `startup`: register the function as a start-up task for
///   `eslock::run_startup_tasks` (a free or associated function without
///   `self`, arguments or type parameters); `once`: record its completion
///   (a marker lock `<id>:done`, so the id may have at most 250 characters)
///   so later boots skip it.
///
/// Every problem is a compile error on the offending token; the function is
/// still emitted as written beside the error.
#[proc_macro_attribute]
pub fn exclusive(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    let valid = syn::parse::<attr::Args>(args)
        .and_then(|args| Ok((args, syn::parse2(item.clone())?)))
        .and_then(|(args, function)| valid::exclusive(args, function));
    match valid {
        Ok(valid) => expand::exclusive(valid).into(),
        // The item as written beside the error (as tokio and tracing do):
        // IDEs keep the body, and callers get no "cannot find function".
        Err(error) => {
            let mut output = error.into_compile_error();
            output.extend(item);
            output.into()
        }
    }
}

/// Declares typed lock names, checked at compile time.
///
/// ```
/// eslock::lock_names! {
///     pub MIGRATIONS = "migrations";
///     pub REINDEX = "reindex/{source}";
/// }
///
/// #[eslock::exclusive(REINDEX)]
/// async fn reindex(source: &str) -> Result<(), eslock::Error> { Ok(()) }
/// ```
///
/// A complete id becomes an `eslock::LockName`, usable wherever a lock id is
/// expected; an id with `{placeholders}` becomes an `eslock::LockTemplate`,
/// which is not a lock id until filled (by `#[exclusive]` from the
/// function's parameters, or with `LockTemplate::fill`). Invalid ids and ids
/// declared twice are compile errors; a misspelled name does not resolve, and
/// a placeholder that names no parameter of the `#[exclusive]` function is a
/// compile error naming both.
#[proc_macro]
pub fn lock_names(input: TokenStream) -> TokenStream {
    match syn::parse::<names::LockNames>(input).and_then(valid::lock_names) {
        Ok(names) => expand::lock_names(names).into(),
        Err(error) => error.into_compile_error().into(),
    }
}
