//! What every holder did, on one clock shared by every process of the
//! machine (`CLOCK_MONOTONIC`), and the checker that finds what would break
//! a guarantee in it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Nanoseconds on `CLOCK_MONOTONIC`: the same clock in every process here.
pub fn now() -> u64 {
    let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC
    // always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut time) };
    time.tv_sec as u64 * 1_000_000_000 + time.tv_nsec as u64
}

/// One event of the history, one JSON line each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A lock was held.
    Hold(Hold),
    /// An operator force-released a lock: the request was sent at `sent`
    /// and answered at `answered`.
    ForceRelease {
        /// The lock force-released.
        lock_id: String,
        /// When the request was sent.
        sent: u64,
        /// When its answer came back.
        answered: u64,
        /// Whether the store had a lock to release.
        released: bool,
    },
}

/// One acquisition and what its holder did under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    /// The lock held.
    pub lock_id: String,
    /// Who held it (process and task), for the report.
    pub holder: String,
    /// The fencing token the lease got.
    pub fencing_token: u64,
    /// When the holder asked for the lock (before any waiting).
    pub requested: u64,
    /// When the acquisition returned to the holder.
    pub acquired: u64,
    /// The last moment the holder checked that its lease was still trusted
    /// (and it was); `None` when it never confirmed it (lost, cancelled).
    pub trusted_until: Option<u64>,
    /// When the hold ended (release sent, loss seen, or cancellation).
    pub ended: u64,
    /// Whether the holder wrote the shared counter.
    pub wrote: bool,
    /// How the hold ended: `released`, `lost`, `cancelled`, `killed`.
    pub outcome: String,
}

/// What the checker found.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// How many holds the history has.
    pub holds: usize,
    /// How many of them wrote the counter.
    pub writes: usize,
    /// Two trusted holds of one id that overlap (no operator in between).
    pub overlaps: Vec<String>,
    /// Fencing tokens that do not increase: a hold acquired before another
    /// was even requested must have the smaller token.
    pub fencing_violations: Vec<String>,
    /// Writes of the counter that were lost (writes minus final values).
    pub lost_updates: i64,
}

impl Verdict {
    /// No overlap, no fencing violation and no lost update.
    pub fn passed(&self) -> bool {
        self.overlaps.is_empty() && self.fencing_violations.is_empty() && self.lost_updates == 0
    }
}

/// Checks a history. `counters` holds the final value of each id's shared
/// counter; every write added one, so any difference is a lost update.
/// `allow_overlaps` excuses overlaps (scenarios whose faults shorten leases
/// by design, such as an engine clock stepped forward); fencing must hold
/// whatever happens.
pub fn check(events: &[Event], counters: &BTreeMap<String, u64>, allow_overlaps: bool) -> Verdict {
    let mut by_id: BTreeMap<&str, Vec<&Hold>> = BTreeMap::new();
    let mut forced: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for event in events {
        match event {
            Event::Hold(hold) => by_id.entry(&hold.lock_id).or_default().push(hold),
            Event::ForceRelease { lock_id, sent, answered, released: true } => {
                forced.entry(lock_id).or_default().push((*sent, *answered))
            }
            Event::ForceRelease { .. } => {}
        }
    }
    let mut verdict = Verdict::default();
    for (id, holds) in &mut by_id {
        holds.sort_by_key(|hold| hold.acquired);
        verdict.holds += holds.len();
        verdict.writes += holds.iter().filter(|hold| hold.wrote).count();
        // Replies can overtake each other, so the reply order is not the
        // engine's order; but a hold whose reply came before another hold
        // was requested was surely granted first.
        let mut largest_so_far = Vec::with_capacity(holds.len());
        for hold in holds.iter() {
            let previous = largest_so_far.last().copied();
            largest_so_far.push(match previous {
                Some((token, holder)) if token >= hold.fencing_token => (token, holder),
                _ => (hold.fencing_token, hold.holder.as_str()),
            });
        }
        for later in holds.iter() {
            let before = holds.partition_point(|earlier| earlier.acquired < later.requested);
            if let Some(&(token, holder)) = before.checked_sub(1).map(|last| &largest_so_far[last]) {
                if token >= later.fencing_token {
                    verdict.fencing_violations.push(format!(
                        "{id}: {} got {} though {holder} got {token} before it even asked",
                        later.holder, later.fencing_token
                    ));
                }
            }
        }
        if allow_overlaps {
            continue;
        }
        let operator = forced.get(id).map(Vec::as_slice).unwrap_or_default();
        for (n, earlier) in holds.iter().enumerate() {
            let Some(trusted_until) = earlier.trusted_until else { continue };
            for later in holds[n + 1..].iter().take_while(|later| later.acquired < trusted_until) {
                // A force-release that the engine may have applied between
                // the two grants took the lock from a holder that still
                // trusts it: an operator's decision, not a broken lock. The
                // engine granted the smaller fencing token first, whichever
                // holder heard of its grant first (a slow reply may come
                // after the force-release and the next grant).
                let (first, second) = if later.fencing_token < earlier.fencing_token { (later, earlier) } else { (earlier, later) };
                let excused = operator.iter().any(|&(sent, answered)| first.requested <= answered && sent <= second.acquired);
                if !excused {
                    verdict.overlaps.push(format!(
                        "{id}: {} acquired at {} while {} (acquired {}) trusted its lease until {}",
                        later.holder, later.acquired, earlier.holder, earlier.acquired, trusted_until
                    ));
                }
            }
        }
    }
    let counted: u64 = counters.values().sum();
    verdict.lost_updates = verdict.writes as i64 - counted as i64;
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(holder: &str, fencing: u64, acquired: u64, trusted_until: Option<u64>, wrote: bool) -> Event {
        Event::Hold(Hold {
            lock_id: "a".into(),
            holder: holder.into(),
            fencing_token: fencing,
            requested: acquired - 2,
            acquired,
            trusted_until,
            ended: trusted_until.unwrap_or(acquired) + 1,
            wrote,
            outcome: "released".into(),
        })
    }

    fn counters(value: u64) -> BTreeMap<String, u64> {
        BTreeMap::from([("a".to_string(), value)])
    }

    #[test]
    fn a_clean_history_passes() {
        let events = [hold("p1", 1, 10, Some(20), true), hold("p2", 2, 25, Some(30), true)];
        let verdict = check(&events, &counters(2), false);
        assert!(verdict.passed(), "{verdict:?}");
        assert_eq!((verdict.holds, verdict.writes), (2, 2));
    }

    #[test]
    fn overlapping_trusted_holds_fail() {
        let events = [hold("p1", 1, 10, Some(30), true), hold("p2", 2, 20, Some(40), true)];
        let verdict = check(&events, &counters(2), false);
        assert_eq!(verdict.overlaps.len(), 1, "{verdict:?}");
        assert!(!verdict.passed());
        assert!(check(&events, &counters(2), true).passed(), "overlaps can be excused, nothing else");
    }

    #[test]
    fn a_hold_that_never_confirmed_trust_cannot_overlap() {
        let events = [hold("p1", 1, 10, None, false), hold("p2", 2, 20, Some(40), true)];
        assert!(check(&events, &counters(1), false).passed());
    }

    #[test]
    fn an_operator_force_release_excuses_an_overlap() {
        let mut events = vec![hold("p1", 1, 10, Some(30), true), hold("p2", 2, 20, Some(40), true)];
        events.push(Event::ForceRelease { lock_id: "a".into(), sent: 14, answered: 16, released: true });
        assert!(check(&events, &counters(2), false).passed());
        events.push(Event::ForceRelease { lock_id: "a".into(), sent: 25, answered: 26, released: true });
        events.remove(2);
        assert!(!check(&events, &counters(2), false).passed(), "a force-release after the second acquisition excuses nothing");
        events.pop();
        events.push(Event::ForceRelease { lock_id: "a".into(), sent: 2, answered: 5, released: true });
        assert!(!check(&events, &counters(2), false).passed(), "nor one answered before the first was requested");
    }

    #[test]
    fn a_force_release_before_a_slow_grant_reply_excuses_the_overlap() {
        // p1 was granted token 1 (asked at 0), force-released (14-16), and
        // p2 granted token 2 (asked at 18, started at 20); p1's reply was
        // slow, so p1 started working only at 21, while p2 trusted its lease.
        let slow = Hold { requested: 0, ..hold_of(hold("p1", 1, 21, Some(35), false)) };
        let mut events = vec![Event::Hold(slow), hold("p2", 2, 20, Some(30), true)];
        events.push(Event::ForceRelease { lock_id: "a".into(), sent: 14, answered: 16, released: true });
        assert!(check(&events, &counters(1), false).passed(), "{:?}", check(&events, &counters(1), false));
        events.pop();
        assert!(!check(&events, &counters(1), false).passed(), "without the force-release it is an overlap");
        events.push(Event::ForceRelease { lock_id: "a".into(), sent: 22, answered: 23, released: true });
        assert!(!check(&events, &counters(1), false).passed(), "a force-release after the second grant excuses nothing");
    }

    fn hold_of(event: Event) -> Hold {
        match event {
            Event::Hold(hold) => hold,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fencing_tokens_must_increase_in_acquisition_order() {
        let events = [hold("p1", 5, 10, Some(20), false), hold("p2", 5, 25, Some(30), false), hold("p3", 4, 35, Some(40), false)];
        let verdict = check(&events, &counters(0), true);
        assert_eq!(verdict.fencing_violations.len(), 2, "{verdict:?}");
        assert!(!verdict.passed());
    }

    #[test]
    fn replies_that_overtake_each_other_are_not_a_fencing_violation() {
        // p2 asked before p1's reply came: either may have been granted first.
        let events = [hold("p1", 7, 10, None, false), hold("p2", 6, 11, None, false)];
        assert!(check(&events, &counters(0), true).fencing_violations.is_empty());
        let events = [hold("p1", 7, 10, None, false), hold("p2", 6, 13, None, false)];
        assert_eq!(check(&events, &counters(0), true).fencing_violations.len(), 1, "p2 asked after p1 had its lock");
    }

    #[test]
    fn lost_updates_are_counted() {
        let events = [hold("p1", 1, 10, Some(20), true), hold("p2", 2, 25, Some(30), true)];
        let verdict = check(&events, &counters(1), false);
        assert_eq!(verdict.lost_updates, 1);
        assert!(!verdict.passed());
    }

    #[test]
    fn events_round_trip_as_json_lines() {
        let event = hold("p1", 1, 10, Some(20), true);
        let line = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), event);
        assert!(now() > 0);
    }
}
