//! The process-wide manager that `#[exclusive]` uses when no `manager = ...`
//! is given.

use std::sync::OnceLock;

use crate::manager::LockManager;
use crate::error::{Error, Result};

static INSTALLED: OnceLock<LockManager> = OnceLock::new();

/// Installs the process-wide manager, once, at start-up. Returns the manager
/// back if one was already installed.
///
/// ```
/// let manager = eslock::LockManager::in_memory();
/// eslock::install(manager).expect("installed once");
/// assert!(eslock::installed().is_ok());
/// ```
pub fn install(manager: LockManager) -> std::result::Result<(), LockManager> {
    INSTALLED.set(manager)
}

/// The process-wide manager, or [`Error::NotConfigured`] before [`install`].
pub fn installed() -> Result<&'static LockManager> {
    INSTALLED.get().ok_or(Error::NotConfigured)
}
