//! Concurrent acquires and releases of one store share requests, without
//! ever waiting for company: while [`MAX_IN_FLIGHT`] lock writes are on
//! their way, the next ones queue, and when one of those returns, the first
//! writer in the queue takes its slot and sends the whole queue as one
//! `_bulk` request (each update keeps its own reply). A lone caller's write
//! goes out at once as a plain update; under load, many writes share one
//! request and one translog sync. A queue that already makes a
//! [`FULL_BATCH`] does not wait for a slot to come back (up to
//! [`MAX_IN_FLIGHT_FULL`] requests): otherwise the engine's cores idle
//! while the requests on their way travel back and forth. Any slot that
//! comes back goes to the queue first.
//!
//! Every write is sent by its own caller's task (no task is spawned, so a
//! store serves callers on any runtime), and no write depends on another
//! for long: one that waits in the queue longer than its patience leaves it
//! and goes alone, and one whose batch is lost with its sender (that caller
//! gave up) or refused for now by the engine is sent again alone, counted as
//! resent (a copy of it may be on its way).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use elasticsearch::http::Method;
use serde_json::Value;
use tokio::sync::oneshot;

use super::bulk::update_lines;
use super::transport::{Context, Engine, Reply, is_transient_status};
use crate::error::Result;
use crate::id::LockId;

/// Lock writes on their way at once before the next ones queue.
const MAX_IN_FLIGHT: usize = 2;

/// Queued writes (the new one included) that go out at once as one batch,
/// without waiting for a slot, while fewer than [`MAX_IN_FLIGHT_FULL`]
/// requests are on their way.
const FULL_BATCH: usize = 4;

/// Requests on their way at most, counting those sent as full batches.
const MAX_IN_FLIGHT_FULL: usize = 4;

/// The most updates one `_bulk` request carries; the rest wait for the next.
const MAX_BATCH: usize = 128;

/// The longest a write waits in the queue (never more than a quarter of its
/// time limit) before it goes alone.
const MAX_PATIENCE: Duration = Duration::from_secs(1);

/// One scripted update: where it goes alone, and its body.
pub(super) struct Write<'a> {
    pub context: Context<'a>,
    pub lock_id: &'a LockId,
    /// The `_update` path with its query, for a write sent alone.
    pub path: String,
    pub body: String,
    pub timeout: Duration,
    pub retry_on_conflict: u32,
}

/// A write waiting in the queue, and how to reach its writer.
#[derive(Debug)]
struct Queued {
    id: u64,
    lock_id: LockId,
    body: String,
    timeout: Duration,
    retry_on_conflict: u32,
    /// Dropped without a delivery: the writer sends its write alone.
    delivery: oneshot::Sender<Delivery>,
}

/// What a queued writer receives.
#[derive(Debug)]
enum Delivery {
    /// Its reply, from a batch someone else sent.
    Reply(Reply),
    /// A slot: it sends the queue, its own write first.
    Lead(Slot),
}

/// How many writes are on their way, and those waiting for a slot.
#[derive(Debug, Default)]
struct State {
    in_flight: usize,
    queue: Vec<Queued>,
    next_id: u64,
}

/// The lock writes of one store (shared by its clones).
#[derive(Debug, Clone, Default)]
pub(super) struct Coalescer(Arc<Mutex<State>>);

impl State {
    /// Whether the writers still waiting in the queue and a new write make
    /// a [`FULL_BATCH`] that may take one more slot.
    fn makes_full_batch(&mut self) -> bool {
        if self.in_flight >= MAX_IN_FLIGHT_FULL || self.queue.len() + 1 < FULL_BATCH {
            return false;
        }
        self.queue.retain(|queued| !queued.delivery.is_closed());
        self.queue.len() + 1 >= FULL_BATCH
    }

    /// Up to `max` queued writes whose writers still wait, oldest first.
    fn take_queued(&mut self, max: usize) -> Vec<Queued> {
        self.queue.retain(|queued| !queued.delivery.is_closed());
        let take = self.queue.len().min(max);
        self.queue.drain(..take).collect()
    }
}

/// Where a leader's own write goes in its batch: in the order the writes
/// came, so that two writes of one lock id apply in that order.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// The leader was first in the queue.
    First,
    /// The leader came after the writes it takes with it.
    Last,
}

/// What a new write does.
enum Turn {
    /// It takes a slot and leads, with the queue it took at the same time.
    Lead(Vec<Queued>),
    /// It waits in the queue as write `id`.
    Wait(u64, oneshot::Receiver<Delivery>),
}

impl Coalescer {
    /// Sends `write` (alone, or in a batch with others) and returns its reply,
    /// read like the reply to a single update.
    pub(super) async fn send(&self, engine: &Engine, bulk_path: &str, write: Write<'_>) -> Result<Reply> {
        let turn = {
            let mut state = self.state();
            if state.in_flight < MAX_IN_FLIGHT || state.makes_full_batch() {
                state.in_flight += 1;
                // Taken in the same step as the slot, so that no other
                // writer leads these writes too (or leads none).
                Turn::Lead(state.take_queued(MAX_BATCH - 1))
            } else {
                let (sender, receiver) = oneshot::channel();
                let id = state.next_id;
                state.next_id += 1;
                state.queue.push(Queued {
                    id,
                    lock_id: write.lock_id.clone(),
                    body: write.body.clone(),
                    timeout: write.timeout,
                    retry_on_conflict: write.retry_on_conflict,
                    delivery: sender,
                });
                Turn::Wait(id, receiver)
            }
        };
        let (id, mut delivery) = match turn {
            Turn::Lead(others) => return self.lead(engine, bulk_path, Slot::new(self), &write, others, Place::Last).await,
            Turn::Wait(id, delivery) => (id, delivery),
        };
        let patience = (write.timeout / 4).min(MAX_PATIENCE);
        let delivered = match tokio::time::timeout(patience, &mut delivery).await {
            Ok(delivered) => delivered,
            Err(_) => {
                // Out of patience: leave the queue and go alone, unless a
                // batch or a slot is already on its way to this writer.
                if self.leave(id) {
                    return alone(engine, &write, false).await;
                }
                delivery.await
            }
        };
        match delivered {
            Ok(Delivery::Reply(reply)) => Ok(reply),
            Ok(Delivery::Lead(slot)) => {
                let others = self.state().take_queued(MAX_BATCH - 1);
                self.lead(engine, bulk_path, slot, &write, others, Place::First).await
            }
            // Its batch went with a writer who gave up, or the engine
            // refused it for now: alone, as a copy may be on its way.
            Err(_) => alone(engine, &write, true).await,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        crate::sync::lock(&self.0)
    }

    /// Takes the write `id` out of the queue; `false` when it was no longer there.
    fn leave(&self, id: u64) -> bool {
        let mut state = self.state();
        let position = state.queue.iter().position(|queued| queued.id == id);
        position.map(|position| state.queue.remove(position)).is_some()
    }

    /// Sends `write` on `slot`, with the queued writes `others` as one
    /// batch when there are any.
    async fn lead(&self, engine: &Engine, bulk_path: &str, slot: Slot, write: &Write<'_>, others: Vec<Queued>, place: Place) -> Result<Reply> {
        if others.is_empty() {
            let reply = alone(engine, write, false).await;
            drop(slot);
            return reply;
        }
        let reply = send_batch(engine, bulk_path, write, others, place).await;
        drop(slot);
        match reply {
            Some(reply) => reply,
            None => alone(engine, write, true).await,
        }
    }
}

/// A slot for one write (or batch) on its way. Dropped (the write done, its
/// writer gone, or a `Lead` never received), it goes to the first queued
/// writer still waiting, or back to the pool.
#[derive(Debug)]
struct Slot {
    coalescer: Coalescer,
    /// `false` for a slot that came back undelivered: already accounted for.
    held: bool,
}

impl Slot {
    fn new(coalescer: &Coalescer) -> Self {
        Slot { coalescer: coalescer.clone(), held: true }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let mut state = self.coalescer.state();
        while !state.queue.is_empty() {
            let next = state.queue.remove(0);
            match next.delivery.send(Delivery::Lead(Slot::new(&self.coalescer))) {
                Ok(()) => return,
                // That writer gave up: the slot came back with the message,
                // and passes on to the next one here.
                Err(Delivery::Lead(mut slot)) => slot.held = false,
                Err(Delivery::Reply(_)) => {}
            }
        }
        state.in_flight -= 1;
    }
}

/// Sends `write` alone, with the retries every request has.
async fn alone(engine: &Engine, write: &Write<'_>, resent: bool) -> Result<Reply> {
    let reply = engine.send_text_within(write.context, Method::Post, &write.path, &write.body, write.timeout).await?;
    Ok(Reply { resent: reply.resent || resent, ..reply })
}

/// Sends `write` (at `place`) and `others` as one request and hands each
/// of `others` its reply (or drops it, to send alone). `write`'s own reply;
/// `None` when it must go alone (refused for now).
async fn send_batch(engine: &Engine, bulk_path: &str, write: &Write<'_>, others: Vec<Queued>, place: Place) -> Option<Result<Reply>> {
    let own_lines = update_lines(write.lock_id, &write.body, write.retry_on_conflict);
    let mut body = String::new();
    if let Place::First = place {
        body.push_str(&own_lines);
    }
    for other in &others {
        body.push_str(&update_lines(&other.lock_id, &other.body, other.retry_on_conflict));
    }
    if let Place::Last = place {
        body.push_str(&own_lines);
    }
    let timeout = others.iter().map(|other| other.timeout).fold(write.timeout, Duration::min);
    let context = write.context;
    let mut reply = match engine.send_ndjson(context, bulk_path, &body, timeout).await {
        Ok(reply) => reply,
        // The others learn nothing: each goes alone, counted as resent.
        Err(err) => return Some(Err(context.error(format!("the batched request failed: {err}")).into())),
    };
    if !reply.is_success() {
        // A reply that is an error as a whole (a missing index, a refusal)
        // reads as the same error to each write.
        for other in others {
            let _ = other.delivery.send(Delivery::Reply(Reply { status: reply.status, body: reply.body.clone(), resent: reply.resent }));
        }
        return Some(Ok(reply));
    }
    // Taken out of the reply rather than cloned; an error message shows the rest.
    let mut items = match reply.body.get_mut("items") {
        Some(Value::Array(items)) if items.len() == others.len() + 1 => std::mem::take(items),
        _ => return Some(Err(context.malformed("one item per update", &reply).into())),
    };
    let own_item = match place {
        Place::First => items.remove(0),
        Place::Last => items.remove(others.len()),
    };
    let own = item_reply(context, write.lock_id, &reply, own_item);
    for (other, item) in others.into_iter().zip(items) {
        let context = Context { operation: context.operation, lock_id: Some(&other.lock_id) };
        // An unreadable item: its writer goes alone (dropping the sender).
        if let Ok(Some(item)) = item_reply(context, &other.lock_id, &reply, item) {
            let _ = other.delivery.send(Delivery::Reply(item));
        }
    }
    own.transpose()
}

/// One item of a `_bulk` reply, read like the reply to a single update of
/// `lock_id`; `None` when the engine refused it for now.
fn item_reply(context: Context<'_>, lock_id: &LockId, bulk: &Reply, item: Value) -> Result<Option<Reply>> {
    // Moved out of the item, not cloned: it becomes the write's reply.
    let update = match item {
        Value::Object(mut item) => item.remove("update"),
        _ => None,
    };
    let Some(update) = update else {
        return Err(context.malformed("an update item", bulk).into());
    };
    if update.get("_id").and_then(Value::as_str) != Some(lock_id.as_str()) {
        return Err(context.malformed("an item for this lock id", bulk).into());
    }
    let status = update.get("status").and_then(Value::as_u64).and_then(|status| u16::try_from(status).ok());
    let Some(status) = status else {
        return Err(context.malformed("an item status", bulk).into());
    };
    if is_transient_status(status) {
        return Ok(None);
    }
    Ok(Some(Reply { status, body: update, resent: bulk.resent }))
}
