//! The channel from the async API to the writer thread: operations, their sequence numbers, their
//! replies, and the byte budget that applies back-pressure.
//!
//! Sequence numbers are taken, the overlay is updated and the request is sent under one lock, so
//! the writer receives requests in sequence order. That is what lets `clear` and
//! `delete_matching` settle "every overlay entry older than me" (see `overlay.rs`).

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use strata_tier::{KeyPattern, TierError};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::expiry;
use crate::overlay::{Overlay, Pending};

/// What the writer is asked to do.
#[derive(Debug)]
pub(crate) enum Op {
    /// Store `value` under `key` until `expiry_ms` (0: never); replies [`WRITTEN`], or [`KEPT`]
    /// for a `fill` that found a live entry (a fill is an insert-if-absent).
    Put {
        key: String,
        value: Bytes,
        expiry_ms: u64,
        fill: bool,
    },
    /// Remove `key`; replies 1 if an entry was there, else 0.
    Delete { key: String },
    /// Remove every key the pattern matches; replies the count.
    DeleteMatching { pattern: KeyPattern },
    /// Remove everything.
    Clear,
    /// Commit everything queued before it, durably.
    Flush,
    /// A reader found `key`'s record corrupt: delete it if it still is.
    DropCorrupt { key: String },
}

impl Op {
    /// The bytes of keys and values the operation carries.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Op::Put { key, value, .. } => key.len() + value.len(),
            Op::Delete { key } | Op::DropCorrupt { key } => key.len(),
            Op::DeleteMatching { pattern } => pattern.as_str().len(),
            Op::Clear | Op::Flush => 0,
        }
    }
}

/// A put's reply: the value is stored.
pub(crate) const WRITTEN: u64 = 1;
/// A fill's reply: a live entry was there and is left in place.
pub(crate) const KEPT: u64 = 0;

/// The writer's answer: a count (entries removed), or why the operation failed.
pub(crate) type Reply = oneshot::Sender<Result<u64, TierError>>;

/// One queued operation.
pub(crate) struct Request {
    pub seq: u64,
    pub op: Op,
    /// The batch holding this request must commit durably.
    pub durable: bool,
    pub reply: Option<Reply>,
    /// Held, never read: dropping it (once the request is committed and settled) returns its
    /// bytes to the queue's budget.
    pub _permit: Option<OwnedSemaphorePermit>,
}

/// A recency bump a reader asks for (see `eviction.rs`): best effort, dropped when the writer is
/// behind.
#[derive(Debug)]
pub(crate) struct Touch {
    pub key: String,
    pub tick: u64,
}

/// One operation to submit, with what the caller wants back.
pub(crate) struct Submission {
    pub op: Op,
    pub durable: bool,
    pub reply: Option<Reply>,
}

struct Sender {
    tx: Option<mpsc::Sender<Request>>,
    next_seq: u64,
}

/// The sending side, shared by every API call.
pub(crate) struct Queue {
    sender: Mutex<Sender>,
    budget: Arc<Semaphore>,
    budget_units: u32,
}

/// Bytes per unit of the budget.
const UNIT: usize = 1024;

impl Queue {
    pub(crate) fn new(tx: mpsc::Sender<Request>, queue_bytes: u64) -> Self {
        let units = u32::try_from(queue_bytes / UNIT as u64).unwrap_or(u32::MAX >> 4);
        Queue {
            sender: Mutex::new(Sender {
                tx: Some(tx),
                next_seq: 1,
            }),
            budget: Arc::new(Semaphore::new(units as usize)),
            budget_units: units,
        }
    }

    /// Waits until `bytes` fit in the queue's budget (an operation larger than the whole budget
    /// waits for all of it).
    pub(crate) async fn reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit, TierError> {
        let units = u32::try_from(bytes.div_ceil(UNIT).max(1))
            .unwrap_or(u32::MAX)
            .min(self.budget_units);
        Arc::clone(&self.budget)
            .acquire_many_owned(units)
            .await
            .map_err(|_| TierError::Closed)
    }

    /// Budget units in use (queued and not yet committed).
    pub(crate) fn backlog_fraction(&self) -> f64 {
        let free = self.budget.available_permits() as f64;
        1.0 - free / f64::from(self.budget_units.max(1))
    }

    /// Queues `submissions` in order; the last one queued carries `permit`. Puts and deletes
    /// enter the overlay first. Answers, per submission, whether it was queued: a fill of a key
    /// with a live pending put is not (it would be kept), and answers `false`.
    ///
    /// A fill does not enter the overlay: until its commit decides it, reads keep answering
    /// with what the key held (the fill's caller waits for that commit).
    pub(crate) fn submit(
        &self,
        overlay: &Overlay,
        submissions: Vec<Submission>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Vec<bool>, TierError> {
        let mut sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tx) = sender.tx.clone() else {
            return Err(TierError::Closed);
        };
        let now = expiry::now_ms();
        let mut queued = Vec::with_capacity(submissions.len());
        let mut requests = Vec::with_capacity(submissions.len());
        for submission in submissions {
            match &submission.op {
                Op::Put {
                    key, fill: true, ..
                } => {
                    let pending_live = overlay
                        .get(key)
                        .is_some_and(|pending| pending.visible(now).is_some());
                    if pending_live {
                        queued.push(false);
                        continue;
                    }
                }
                Op::Put {
                    key,
                    value,
                    expiry_ms,
                    fill: false,
                } => {
                    let pending = Pending::Put {
                        value: value.clone(),
                        expiry_ms: *expiry_ms,
                    };
                    overlay.insert(key, sender.next_seq, pending);
                }
                Op::Delete { key } => overlay.insert(key, sender.next_seq, Pending::Delete),
                _ => {}
            }
            queued.push(true);
            requests.push(Request {
                seq: sender.next_seq,
                op: submission.op,
                durable: submission.durable,
                reply: submission.reply,
                _permit: None,
            });
            sender.next_seq += 1;
        }
        if let Some(last) = requests.last_mut() {
            last._permit = permit;
        }
        for request in requests {
            // The writer only hangs up when it stops; the tier then reports itself down.
            tx.send(request).map_err(|_| TierError::Closed)?;
        }
        Ok(queued)
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.budget.is_closed()
    }

    /// Stops accepting operations: later submissions and reservations fail with `Closed`. The
    /// writer commits what is already queued, then sees the channel close and stops.
    pub(crate) fn close(&self) {
        self.budget.close();
        let mut sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        sender.tx = None;
    }
}
