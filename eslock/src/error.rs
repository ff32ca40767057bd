//! Errors: one enum for the crate, with typed details for each failure.

use std::fmt;
use std::time::{Duration, SystemTime};

use eslock_rules::{LockIdError, MetadataError};

use crate::id::LockId;

/// Everything that can go wrong in eslock.
///
/// ```
/// use eslock::{Error, LockManager, LockOptions};
///
/// # tokio_test_block(async {
/// let manager = LockManager::in_memory();
/// let err = manager.acquire("bad id", LockOptions::default()).await.unwrap_err();
/// assert!(matches!(err, Error::InvalidLockId(_)));
/// # });
/// # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The lock is held by someone else (and `wait`, if given, ran out).
    #[error(transparent)]
    Acquisition(#[from] LockAcquisitionError),

    /// The lock id breaks the lock id rules; nothing was sent.
    #[error(transparent)]
    InvalidLockId(#[from] InvalidLockIdError),

    /// The metadata is not a JSON object, or is too large; nothing was sent.
    #[error(transparent)]
    InvalidMetadata(#[from] InvalidMetadataError),

    /// An option is out of range (for example a zero TTL); nothing was sent.
    #[error(transparent)]
    InvalidOption(#[from] InvalidOptionError),

    /// The search engine failed, or answered something eslock cannot use.
    #[error(transparent)]
    Backend(#[from] BackendError),

    /// The lease could no longer be trusted while work ran under it: the
    /// store reported another token, or renewal failed for too long.
    #[error(transparent)]
    LeaseLost(#[from] LeaseLostError),

    /// No process-wide manager was installed with [`crate::install`].
    #[error("no eslock LockManager is installed; call eslock::install(manager) at start-up or pass `manager = ...`")]
    NotConfigured,

    /// The lock index exists with mappings eslock cannot use, and repairing
    /// it would drop live locks.
    #[error(transparent)]
    IncompatibleIndex(#[from] IncompatibleIndexError),
}

/// A lock id that breaks the lock id rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid lock id {id:?}: {reason}")]
pub struct InvalidLockIdError {
    /// The id as given.
    pub id: String,
    /// What is wrong with it.
    #[source]
    pub reason: LockIdError,
}

/// Metadata that is not a JSON object, or too large.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid metadata for lock \"{lock_id}\": {reason}")]
pub struct InvalidMetadataError {
    /// The lock the metadata was meant for.
    pub lock_id: LockId,
    /// What is wrong with it.
    #[source]
    pub reason: MetadataError,
}

/// An option out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid option `{option}`: {reason}")]
pub struct InvalidOptionError {
    /// The option's name (`ttl`, `index`, ...).
    pub option: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// A lease that could no longer be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lease on lock \"{lock_id}\" was lost: {reason}")]
pub struct LeaseLostError {
    /// The lock whose lease was lost.
    pub lock_id: LockId,
    /// Why it was declared lost.
    pub reason: String,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A lock could not be acquired because another holder has it.
///
/// Its message names the lock id and, when the store returned them with the
/// refusal, the holder's metadata and expiry.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use eslock::{Error, LockManager, LockOptions};
/// use serde_json::json;
///
/// let manager = LockManager::in_memory();
/// let _held = manager.acquire("import", LockOptions::default().metadata(json!({ "host": "a" }))).await.unwrap();
/// match manager.acquire("import", LockOptions::default()).await {
///     Err(Error::Acquisition(refused)) => {
///         assert_eq!(refused.lock_id, "import");
///         assert_eq!(refused.holder_metadata, Some(json!({ "host": "a" })));
///         assert!(refused.to_string().starts_with("lock \"import\" is held"));
///     }
///     other => panic!("{other:?}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lock \"{lock_id}\" is held by another holder{}", holder_details(.holder_metadata, .holder_expires_at, .waited))]
pub struct LockAcquisitionError {
    /// The lock that is held.
    pub lock_id: LockId,
    /// The current holder's metadata, when known.
    pub holder_metadata: Option<serde_json::Value>,
    /// When the current holder's lease expires unless renewed, when known.
    pub holder_expires_at: Option<SystemTime>,
    /// How long acquisition waited before giving up (`None`: it did not wait).
    pub waited: Option<Duration>,
}

/// The optional tail of a refusal's message: what is known of the holder.
fn holder_details(metadata: &Option<serde_json::Value>, expires_at: &Option<SystemTime>, waited: &Option<Duration>) -> String {
    let mut details = String::new();
    if let Some(metadata) = metadata {
        details += &format!(" (metadata {metadata})");
    }
    if let Some(expires_at) = expires_at {
        details += &format!(", lease expires at {}", humantime::format_rfc3339_millis(*expires_at));
    }
    if let Some(waited) = waited {
        details += &format!("; gave up after waiting {}", eslock_rules::format_duration(*waited));
    }
    details
}

/// The lock index exists with mappings eslock cannot use, and repairing it
/// would drop live locks (or is not eslock's to do).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lock index \"{index}\" has incompatible mappings ({problems}); {advice}")]
pub struct IncompatibleIndexError {
    /// The concrete index name.
    pub index: String,
    /// What is wrong, field by field.
    pub problems: String,
    /// What the operator can do.
    pub advice: String,
}

/// The store operation that failed (see [`BackendError::operation`]).
///
/// ```
/// assert_eq!(eslock::Operation::ForceRelease.to_string(), "force_release");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Index and template setup.
    Setup,
    /// Acquiring a lock.
    Acquire,
    /// Extending a lease.
    Extend,
    /// Releasing a lock.
    Release,
    /// Reading one lock.
    Get,
    /// Listing locks.
    List,
    /// Deleting a lock regardless of its holder.
    ForceRelease,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Setup => "setup",
            Operation::Acquire => "acquire",
            Operation::Extend => "extend",
            Operation::Release => "release",
            Operation::Get => "get",
            Operation::List => "list",
            Operation::ForceRelease => "force_release",
        })
    }
}

/// A failure of the search engine or of the connection to it, with the
/// operation and lock it concerned.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use eslock::{Error, LockManager, LockOptions, Operation};
///
/// // Nothing listens on port 1: every request fails.
/// let client = eslock::store::elasticsearch::client("http://127.0.0.1:1").unwrap();
/// let manager = LockManager::elasticsearch(client);
/// match manager.acquire("import", LockOptions::default()).await {
///     Err(Error::Backend(failure)) => {
///         eprintln!("{} failed with HTTP {:?}: {}", failure.operation(), failure.status(), failure.reason());
///         assert_eq!(failure.operation(), Operation::Setup);
///     }
///     other => panic!("{other:?}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{operation}{} failed: {reason}", .lock_id.as_ref().map(|id| format!(" of lock \"{id}\"")).unwrap_or_default())]
pub struct BackendError {
    operation: Operation,
    lock_id: Option<LockId>,
    status: Option<u16>,
    reason: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BackendError {
    /// A backend failure of `operation` on `lock_id`, for stores of your own
    /// (the [`LockStore`](crate::store::LockStore) trait): the reason says
    /// what went wrong, in words an operator can act on.
    ///
    /// ```
    /// use eslock::{BackendError, LockId, Operation};
    ///
    /// let lock_id = LockId::new("jobs/a").unwrap();
    /// let error = BackendError::new(Operation::Acquire, Some(&lock_id), "the database is read-only").with_status(503);
    /// assert_eq!(error.to_string(), "acquire of lock \"jobs/a\" failed: the database is read-only");
    /// ```
    pub fn new(operation: Operation, lock_id: Option<&LockId>, reason: impl Into<String>) -> Self {
        BackendError {
            operation,
            lock_id: lock_id.cloned(),
            status: None,
            reason: reason.into(),
            source: None,
        }
    }

    /// The HTTP (or other protocol) status the backend answered with.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The operation that failed.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The lock it concerned, if any.
    pub fn lock_id(&self) -> Option<&LockId> {
        self.lock_id.as_ref()
    }

    /// The HTTP status the engine answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// What went wrong, in words.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl Error {
    pub(crate) fn invalid_metadata(lock_id: &LockId, reason: MetadataError) -> Self {
        InvalidMetadataError { lock_id: lock_id.clone(), reason }.into()
    }

    pub(crate) fn invalid_option(option: &'static str, reason: impl Into<String>) -> Self {
        InvalidOptionError { option, reason: reason.into() }.into()
    }
}
