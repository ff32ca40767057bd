//! Declarative start-up tasks: functions marked `#[exclusive("id", startup)]`
//! register themselves, and [`run_startup_tasks`] runs each of them once
//! across all the nodes that boot together.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::id::LockId;
use crate::manager::LockManager;
use crate::options::LockOptions;

/// The TTL of a `once` task's completion marker: for all practical purposes
/// permanent; `force_release` the marker to run the task again.
const DONE_MARKER_TTL: Duration = eslock_rules::MAX_TTL;

/// What a task's body returns to the runner: its error rendered as text.
/// Named by generated code as `eslock::__private::TaskFuture`.
pub type TaskFuture = Pin<Box<dyn Future<Output = std::result::Result<(), String>> + Send>>;

/// A registered start-up task. Created by `#[exclusive(.., startup)]`.
///
/// ```
/// #[eslock::exclusive("bootstrap/ilm-policies", startup, once)]
/// async fn install_policies() -> Result<(), eslock::Error> {
///     Ok(())
/// }
///
/// let task = eslock::startup_tasks().into_iter().find(|t| t.lock_id() == "bootstrap/ilm-policies").unwrap();
/// assert!(task.once());
/// assert_eq!(task.done_marker(), "bootstrap/ilm-policies:done");
/// ```
#[derive(Debug)]
pub struct StartupTask {
    name: &'static str,
    lock_id: &'static str,
    once: bool,
    ttl: Option<Duration>,
    wait: Option<Duration>,
    run: fn() -> TaskFuture,
}

impl StartupTask {
    /// Built by generated code through `eslock::__private::startup_task`.
    pub(crate) const fn new(
        name: &'static str,
        lock_id: &'static str,
        once: bool,
        ttl: Option<Duration>,
        wait: Option<Duration>,
        run: fn() -> TaskFuture,
    ) -> Self {
        StartupTask { name, lock_id, once, ttl, wait, run }
    }

    /// The function's path (`module::function`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The lock the task runs under.
    pub fn lock_id(&self) -> &'static str {
        self.lock_id
    }

    /// Whether the task records its completion and is skipped afterwards.
    pub fn once(&self) -> bool {
        self.once
    }

    /// The lock id of the completion marker of a `once` task.
    pub fn done_marker(&self) -> String {
        eslock_rules::done_marker(self.lock_id)
    }
}

inventory::collect!(StartupTask);

/// Every registered start-up task, ordered by lock id.
pub fn startup_tasks() -> Vec<&'static StartupTask> {
    let mut tasks: Vec<&'static StartupTask> = inventory::iter::<StartupTask>.into_iter().collect();
    tasks.sort_by_key(|task| (task.lock_id, task.name));
    tasks
}

/// What happened to one task on this node; see [`run_startup_tasks`] for an example.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartupOutcome {
    /// This node ran the task.
    Ran,
    /// A `once` task that had already completed (here or on another node).
    SkippedDone,
    /// Another node held the task's lock (and the wait, if any, ran out).
    HeldElsewhere,
    /// The task, or the lock around it, failed.
    Failed(String),
}

/// One task's outcome; see [`run_startup_tasks`] for an example.
#[derive(Debug, Clone)]
pub struct StartupReport {
    /// The task's function path.
    pub name: &'static str,
    /// The task's lock id.
    pub lock_id: &'static str,
    /// What happened.
    pub outcome: StartupOutcome,
}

/// Runs every registered start-up task under its lock, one after the other,
/// and reports each outcome. A task held by another node is reported as
/// [`StartupOutcome::HeldElsewhere`] unless `wait_for_held` (or the task's
/// own `wait`) lets this node wait for it; a `once` task that completed
/// elsewhere meanwhile is then [`StartupOutcome::SkippedDone`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[eslock::exclusive("bootstrap/templates-v3", startup, once)]
/// async fn install_templates() -> Result<(), eslock::Error> {
///     Ok(())
/// }
///
/// let manager = eslock::LockManager::in_memory();
/// for report in eslock::run_startup_tasks(&manager, None).await {
///     println!("{}: {:?}", report.lock_id, report.outcome);
/// }
/// # }
/// ```
pub async fn run_startup_tasks(manager: &LockManager, wait_for_held: Option<Duration>) -> Vec<StartupReport> {
    let mut reports = Vec::new();
    for task in startup_tasks() {
        let outcome = match run_task(manager, task, wait_for_held).await {
            Ok(outcome) => outcome,
            Err(Error::Acquisition(_)) => StartupOutcome::HeldElsewhere,
            Err(err) => StartupOutcome::Failed(err.to_string()),
        };
        tracing::debug!(task = task.name, lock_id = task.lock_id, ?outcome, "start-up task");
        reports.push(StartupReport { name: task.name, lock_id: task.lock_id, outcome });
    }
    reports
}

async fn run_task(manager: &LockManager, task: &StartupTask, wait_for_held: Option<Duration>) -> Result<StartupOutcome> {
    // The macro refuses such ids at compile time; this is the same rule.
    if task.once {
        eslock_rules::check_once_lock_id(task.lock_id).map_err(|err| Error::invalid_option("once", err.to_string()))?;
    }
    let done_marker = LockId::new(task.done_marker())?;
    if task.once && manager.get(&done_marker).await?.is_some() {
        return Ok(StartupOutcome::SkippedDone);
    }
    let mut options = LockOptions::default();
    if let Some(ttl) = task.ttl {
        options = options.ttl(ttl);
    }
    if let Some(wait) = task.wait.max(wait_for_held) {
        options = options.wait(wait);
    }
    manager
        .with_lock(task.lock_id, options, || async {
            // Checked again under the lock: another node may have finished
            // while this one waited.
            if task.once && manager.get(&done_marker).await?.is_some() {
                return Ok(StartupOutcome::SkippedDone);
            }
            if let Err(message) = (task.run)().await {
                return Ok(StartupOutcome::Failed(message));
            }
            if task.once {
                let marker = LockOptions::default()
                    .ttl(DONE_MARKER_TTL)
                    .renew(false)
                    .metadata(serde_json::json!({ "task": task.name, "completed": true }));
                manager.acquire(&done_marker, marker).await?.detach();
            }
            Ok(StartupOutcome::Ran)
        })
        .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_op() -> TaskFuture {
        Box::pin(async { Ok(()) })
    }

    #[tokio::test]
    async fn a_once_task_whose_marker_would_be_too_long_is_refused_before_it_runs() {
        // The macro refuses this id at compile time; the runner keeps the same rule.
        let id: &'static str = "a".repeat(eslock_rules::MAX_ONCE_LOCK_ID_LEN + 1).leak();
        let task = StartupTask::new("too_long", id, true, None, None, no_op);
        let outcome = run_task(&LockManager::in_memory(), &task, None).await;
        assert!(matches!(outcome, Err(Error::InvalidOption(_))), "{outcome:?}");

        let longest: &'static str = "a".repeat(eslock_rules::MAX_ONCE_LOCK_ID_LEN).leak();
        let task = StartupTask::new("longest", longest, true, None, None, no_op);
        assert_eq!(run_task(&LockManager::in_memory(), &task, None).await.unwrap(), StartupOutcome::Ran);
    }
}
