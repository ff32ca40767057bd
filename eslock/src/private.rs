//! Support for the code that `eslock-macros` generates. Not public API: the
//! hidden constructors live here so that the public types have none.

pub use inventory;
pub use serde_json;

pub use crate::startup::TaskFuture;

use std::borrow::Borrow;
use std::fmt::Display;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::id::LockId;
use crate::manager::LockManager;
use crate::name::{LockName, LockTemplate};
use crate::startup::StartupTask;

/// A complete name from `lock_names!` (checked by the macro).
pub const fn lock_name(name: &'static str, id: &'static str, once_problem: Option<&'static str>) -> LockName {
    LockName::new(name, id, once_problem)
}

/// A template from `lock_names!` (checked by the macro, which also listed
/// its placeholders with the rules).
pub const fn lock_template(name: &'static str, template: &'static str, placeholders: &'static [&'static str]) -> LockTemplate {
    LockTemplate::new(name, template, placeholders)
}

/// A start-up task registered by `#[exclusive(.., startup)]`.
pub const fn startup_task(
    name: &'static str,
    lock_id: &'static str,
    once: bool,
    ttl: Option<Duration>,
    wait: Option<Duration>,
    run: fn() -> TaskFuture,
) -> StartupTask {
    StartupTask::new(name, lock_id, once, ttl, wait, run)
}

/// The lock id of a start-up task given as a `lock_names!` name, or why it
/// cannot be: only a complete [`LockName`] fits (a task has no parameters
/// to fill a template with), and for a `once` task the id must leave room
/// for the completion marker. Generated code panics with the reason in a
/// constant, so that the reason is the compile error.
pub const fn startup_lock_id(name: &LockName, once: bool) -> std::result::Result<&'static str, &'static str> {
    match (once, name.once_problem) {
        (true, Some(problem)) => Err(problem),
        _ => Ok(name.as_str()),
    }
}

/// The lock id of an `#[exclusive(NAME)]` call: either kind of name.
pub trait Declared {
    /// The id, with placeholders filled by `value`.
    fn lock_id(&self, value: &dyn Fn(&str) -> Option<String>) -> Result<LockId>;
}

impl Declared for LockName {
    fn lock_id(&self, _: &dyn Fn(&str) -> Option<String>) -> Result<LockId> {
        LockId::new(self.as_str())
    }
}

impl Declared for LockTemplate {
    fn lock_id(&self, value: &dyn Fn(&str) -> Option<String>) -> Result<LockId> {
        self.fill(value)
    }
}

/// Checks at compile time that every placeholder of a `lock_names!` name is
/// a parameter of the `#[exclusive]` function, and otherwise says which one
/// is not; generated code panics with that in a constant, so that the
/// message is the compile error. `parameter_list` is the macro's rendering
/// of the parameters ("its parameters are: a, b").
pub const fn check_placeholders(
    name: &str,
    template: &str,
    placeholders: &[&str],
    parameters: &[&str],
    parameter_list: &str,
) -> Option<Message> {
    let mut p = 0;
    while p < placeholders.len() {
        if !contains(parameters, placeholders[p]) {
            let message = Message::new()
                .push("placeholder {")
                .push(placeholders[p])
                .push("} of lock name `")
                .push(name)
                .push("` (\"")
                .push(template)
                .push("\") names no parameter of this function; ")
                .push(parameter_list);
            return Some(message);
        }
        p += 1;
    }
    None
}

const fn contains(names: &[&str], wanted: &str) -> bool {
    let mut n = 0;
    while n < names.len() {
        if same(names[n].as_bytes(), wanted.as_bytes()) {
            return true;
        }
        n += 1;
    }
    false
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Text assembled at compile time: a const panic takes a single `&str`.
pub struct Message {
    bytes: [u8; 1024],
    len: usize,
}

impl Message {
    const fn new() -> Self {
        Message { bytes: [0; 1024], len: 0 }
    }

    /// Appends `text` whole, or nothing once full (so the text stays UTF-8).
    const fn push(mut self, text: &str) -> Self {
        let text = text.as_bytes();
        if self.len + text.len() > self.bytes.len() {
            return self;
        }
        let mut i = 0;
        while i < text.len() {
            self.bytes[self.len + i] = text[i];
            i += 1;
        }
        self.len += text.len();
        self
    }

    /// The text.
    pub const fn as_str(&self) -> &str {
        match std::str::from_utf8(self.bytes.split_at(self.len).0) {
            Ok(text) => text,
            Err(_) => "",
        }
    }
}

/// Converts eslock's errors into an `#[exclusive]` function's error type.
/// A trait of its own so that a missing `From<eslock::Error>` reads as what
/// it is instead of rustc's list of every other `From` impl of that type.
#[diagnostic::on_unimplemented(
    message = "`#[exclusive]` cannot return eslock's errors as `{Self}`: `{Self}` does not implement `From<eslock::Error>`",
    label = "this error type has no `From<eslock::Error>`",
    note = "when the lock is held elsewhere (or cannot be taken), the function returns `Err(E::from(eslock::Error))`",
    note = "implement `From<eslock::Error>` for `{Self}`, or return `Result<T, eslock::Error>`"
)]
pub trait FromLockError {
    /// `E::from(error)`.
    fn from_lock_error(error: Error) -> Self;
}

// Not recommended to rustc, so that it reports `FromLockError` (and the
// message above) rather than the `From` bound of this impl.
#[diagnostic::do_not_recommend]
impl<E: From<Error>> FromLockError for E {
    fn from_lock_error(error: Error) -> Self {
        E::from(error)
    }
}

/// `E::from(error)` for the function's error type `E`, inferred from the
/// return type.
pub fn lock_error<E: FromLockError>(error: Error) -> E {
    E::from_lock_error(error)
}

/// The manager named by `manager = <expr>`, as an owned handle (cheap to
/// clone), so the function body may still move or mutably borrow `self`.
pub fn manager_of<M: Borrow<LockManager>>(manager: &M) -> LockManager {
    manager.borrow().clone()
}

/// Formats a parameter for a typed lock name's placeholder when it
/// implements `Display`, and yields `None` when it does not (autoref
/// specialization: the generated code calls `(&&Displayed(&x)).eslock_display()`).
pub struct Displayed<'a, T: ?Sized>(pub &'a T);

/// Chosen when the value implements `Display`.
pub trait ViaDisplay {
    /// The formatted value.
    fn eslock_display(&self) -> Option<String>;
}

impl<T: Display + ?Sized> ViaDisplay for &Displayed<'_, T> {
    fn eslock_display(&self) -> Option<String> {
        Some(self.0.to_string())
    }
}

/// Chosen otherwise.
pub trait ViaFallback {
    /// Nothing.
    fn eslock_display(&self) -> Option<String>;
}

impl<T: ?Sized> ViaFallback for Displayed<'_, T> {
    fn eslock_display(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_that_are_parameters_pass() {
        assert!(check_placeholders("R", "a/{x}-{y}", &["x", "y"], &["y", "x"], "").is_none());
        assert!(check_placeholders("P", "plain", &[], &[], "").is_none());
    }

    #[test]
    fn a_placeholder_that_is_no_parameter_is_named() {
        let message = check_placeholders("R", "a/{x}", &["x"], &["xx"], "it has none").unwrap();
        assert_eq!(message.as_str(), "placeholder {x} of lock name `R` (\"a/{x}\") names no parameter of this function; it has none");
    }
}
