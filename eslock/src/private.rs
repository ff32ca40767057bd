//! Support for the code that `eslock-macros` generates. Not public API.

pub use inventory;
pub use serde_json;

use std::borrow::Borrow;
use std::fmt::Display;

use crate::manager::LockManager;

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

pub use crate::name::placeholders_are_known;
