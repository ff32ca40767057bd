//! What one manager (and its clones) shares with the claims and leases it
//! hands out: the store, this process's unfinished work on each lock id,
//! the renewal batches, the local waiters, and when deferred work starts.

use std::sync::Arc;

use crate::handoff::Waiters;
use crate::pending::PendingWork;
use crate::renewal::Renewals;
use crate::store::LockStore;
use crate::timetable::Timetable;

#[derive(Debug)]
pub(crate) struct Local {
    pub(crate) store: Arc<dyn LockStore>,
    pub(crate) pending: Arc<PendingWork>,
    pub(crate) renewals: Arc<Renewals>,
    pub(crate) waiters: Arc<Waiters>,
    pub(crate) timetable: Timetable,
}

impl Local {
    pub(crate) fn new(store: Arc<dyn LockStore>) -> Arc<Self> {
        Arc::new(Local {
            renewals: Arc::new(Renewals::new(Arc::clone(&store))),
            store,
            pending: Arc::default(),
            waiters: Arc::default(),
            timetable: Timetable::default(),
        })
    }
}
