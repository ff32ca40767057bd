//! eslock's fault suite: workers in several processes contend for locks on a
//! real engine while faults are injected; every hold is recorded on one
//! machine-wide monotonic clock, and the history is checked for overlapping
//! holds, lost updates of a counter the locks protect, and fencing tokens
//! that do not increase. `report` writes the figures to
//! `docs/RELIABILITY.md`.

pub mod history;
pub mod report;
pub mod resource;
pub mod scenarios;
pub mod worker;
