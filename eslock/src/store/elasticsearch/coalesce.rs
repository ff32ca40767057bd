//! Concurrent acquires and releases of one store share requests, without
//! ever waiting for company: while [`MAX_IN_FLIGHT`] lock writes are on
//! their way, the next ones queue, and the first write to come back sends
//! the whole queue as one `_bulk` request (each update keeps its own reply).
//! A lone caller's write goes out at once as a plain update, as before;
//! under load, many writes share one request and one translog sync.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use elasticsearch::http::Method;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::transport::{Context, Engine, Reply, is_transient_status};
use crate::error::{Operation, Result};
use crate::id::LockId;

/// Lock writes on their way at once before the next ones queue.
const MAX_IN_FLIGHT: usize = 2;

/// The most updates one `_bulk` request carries; the rest wait for the next.
const MAX_BATCH: usize = 128;

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

/// A write waiting for the next batch, and where its reply goes.
#[derive(Debug)]
struct Queued {
    operation: Operation,
    lock_id: LockId,
    /// For sending it again alone, should the engine refuse it for now.
    path: String,
    body: String,
    timeout: Duration,
    retry_on_conflict: u32,
    reply: oneshot::Sender<Result<Reply>>,
}

/// How many writes are on their way, and those waiting for the next batch.
#[derive(Debug, Default)]
struct State {
    in_flight: usize,
    queue: Vec<Queued>,
}

/// The lock writes of one store (shared by its clones).
#[derive(Debug, Clone, Default)]
pub(super) struct Coalescer(Arc<Mutex<State>>);

impl Coalescer {
    /// Sends `write` (alone, or in a batch with others) and returns its reply,
    /// read like the reply to a single update.
    pub(super) async fn send(&self, engine: &Engine, bulk_path: &str, write: Write<'_>) -> Result<Reply> {
        let context = write.context;
        // `Err`: this write goes out now, on a slot of its own.
        let queued = {
            let mut state = self.state();
            if state.in_flight < MAX_IN_FLIGHT {
                state.in_flight += 1;
                Err(write)
            } else {
                let (reply, receiver) = oneshot::channel();
                state.queue.push(Queued {
                    operation: write.context.operation,
                    lock_id: write.lock_id.clone(),
                    path: write.path,
                    body: write.body,
                    timeout: write.timeout,
                    retry_on_conflict: write.retry_on_conflict,
                    reply,
                });
                Ok(receiver)
            }
        };
        match queued {
            Ok(receiver) => receiver
                .await
                .unwrap_or_else(|_| Err(context.error("the batch was dropped (the runtime shut down)").into())),
            Err(write) => {
                // Passes the queue on when this write is done, however it ends.
                let _turn = Turn { coalescer: self.clone(), engine: engine.clone(), bulk_path: bulk_path.to_string() };
                engine.send_text_within(context, Method::Post, &write.path, &write.body, write.timeout).await
            }
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        crate::sync::lock(&self.0)
    }

    /// The next batch, or `None` (and one write fewer in flight) when
    /// nothing waits.
    fn next_batch(&self) -> Option<Vec<Queued>> {
        let mut state = self.state();
        if state.queue.is_empty() {
            state.in_flight -= 1;
            return None;
        }
        let take = state.queue.len().min(MAX_BATCH);
        Some(state.queue.drain(..take).collect())
    }
}

/// A write in flight. When it ends (or its caller goes away), the writes
/// queued meanwhile go out in a task of their own, so that no caller's
/// cancellation can strand them.
struct Turn {
    coalescer: Coalescer,
    engine: Engine,
    bulk_path: String,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let Some(first) = self.coalescer.next_batch() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Their reply senders drop: each queued write sees an error.
            drop(first);
            self.coalescer.state().in_flight -= 1;
            return;
        };
        let mut slot = BatchSlot { coalescer: self.coalescer.clone(), held: true };
        let engine = self.engine.clone();
        let bulk_path = std::mem::take(&mut self.bulk_path);
        runtime.spawn(async move {
            let mut batch = Some(first);
            while let Some(writes) = batch {
                send_batch(&engine, &bulk_path, writes).await;
                batch = slot.next_batch();
            }
        });
    }
}

/// The slot of a task that sends batches. Should the task end early (its
/// runtime shut down mid-request), the slot is given back and the writes
/// still queued fail, rather than wait for a batch that never comes.
struct BatchSlot {
    coalescer: Coalescer,
    held: bool,
}

impl BatchSlot {
    /// The next batch; `None` once nothing waits, and the slot is given back.
    fn next_batch(&mut self) -> Option<Vec<Queued>> {
        let batch = self.coalescer.next_batch();
        self.held = batch.is_some();
        batch
    }
}

impl Drop for BatchSlot {
    fn drop(&mut self) {
        if self.held {
            let mut state = self.coalescer.state();
            state.in_flight -= 1;
            let stranded = std::mem::take(&mut state.queue);
            drop(state);
            // Their reply senders drop: each sees an error.
            drop(stranded);
        }
    }
}

/// The `_bulk` lines of one queued update.
fn item_lines(write: &Queued) -> String {
    let action = json!({ "update": { "_id": write.lock_id.as_str(), "retry_on_conflict": write.retry_on_conflict } });
    format!("{action}\n{}\n", write.body)
}

/// Sends `writes` as one request and hands each its own reply.
async fn send_batch(engine: &Engine, bulk_path: &str, writes: Vec<Queued>) {
    let body: String = writes.iter().map(item_lines).collect();
    let timeout = writes.iter().map(|write| write.timeout).min().unwrap_or_default();
    let context = Context { operation: writes[0].operation, lock_id: None };
    let mut reply = engine.send_ndjson(context, bulk_path, &body, timeout).await;
    // Taken out of the reply rather than cloned; an error message shows the rest.
    let mut items = match &mut reply {
        Ok(reply) if reply.is_success() => match reply.body.get_mut("items") {
            Some(Value::Array(items)) if items.len() == writes.len() => Some(std::mem::take(items)),
            _ => None,
        },
        _ => None,
    };
    for (index, write) in writes.into_iter().enumerate() {
        let context = Context { operation: write.operation, lock_id: Some(&write.lock_id) };
        let outcome = match (&reply, items.as_mut()) {
            (Ok(reply), Some(items)) => match item_reply(context, reply, items[index].take()) {
                // Refused for now (a full write queue): alone, with the
                // retries every request has. Sent twice, as far as copies go.
                Ok(item) if is_transient_status(item.status) => engine
                    .send_text_within(context, Method::Post, &write.path, &write.body, write.timeout)
                    .await
                    .map(|reply| Reply { resent: true, ..reply }),
                outcome => outcome,
            },
            // A whole reply that is an error (a missing index, a refusal)
            // reads as the same error to each write.
            (Ok(reply), None) if !reply.is_success() => Ok(Reply { status: reply.status, body: reply.body.clone(), resent: reply.resent }),
            (Ok(reply), None) => Err(context.malformed("one item per update", reply).into()),
            (Err(err), _) => Err(context.error(format!("the batched request failed: {err}")).into()),
        };
        // A caller that stopped waiting has abandoned its write.
        let _ = write.reply.send(outcome);
    }
}

/// One item of a `_bulk` reply, read like the reply to a single update.
fn item_reply(context: Context<'_>, bulk: &Reply, item: Value) -> Result<Reply> {
    let Some(update) = item.get("update") else {
        return Err(context.malformed("an update item", bulk).into());
    };
    let status = update.get("status").and_then(Value::as_u64).and_then(|status| u16::try_from(status).ok());
    let Some(status) = status else {
        return Err(context.malformed("an item status", bulk).into());
    };
    Ok(Reply { status, body: update.clone(), resent: bulk.resent })
}
