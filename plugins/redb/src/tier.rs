//! [`RedbTier`]: the `Tier` implementation, the API handle over the shared state, the read tasks
//! and the writer thread.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use strata_tier::{
    async_trait, Capabilities, Health, KeyPattern, Lookup, Stored, Tier, TierError, TierWrite,
    WriteIntent,
};
use tokio::sync::{oneshot, watch};

use crate::builder::RedbTierBuilder;
use crate::config::{Config, WriteAck};
use crate::error::{copy_tier_error, RedbTierError};
use crate::eviction::wants_touch;
use crate::expiry::{expiry_for, now_ms};
use crate::open::open_file;
use crate::overlay::Overlay;
use crate::queue::{Op, Queue, Submission, Touch, KEPT};
use crate::reader::{self, Found};
use crate::record::HEADER_LEN;
use crate::schema::entry_bytes;
use crate::shared::Shared;
use crate::stats::{Counters, RedbStats};
use crate::verify::{self, IntegrityReport};
use crate::writer::{panic_message, Writer};

/// Recency updates that may wait for the writer; readers drop further ones.
const TOUCH_QUEUE: usize = 4096;

/// A cache tier in one redb file. See the [crate docs](crate) for its design and its
/// consistency guarantees.
///
/// Dropping it stops the writer thread after it has committed (durably) what was queued; the
/// file is released shortly after. [`Tier::close`] does the same and waits for it.
pub struct RedbTier {
    shared: Arc<Shared>,
    /// `close` was called (the first call reports how it went; later ones are no-ops).
    closed: AtomicBool,
}

impl RedbTier {
    /// A builder for a tier stored in the file at `path` (created if missing, with its parent
    /// directories).
    pub fn builder(path: impl Into<PathBuf>) -> RedbTierBuilder {
        RedbTierBuilder::new(path.into())
    }

    pub(crate) fn open(config: Config) -> Result<Self, RedbTierError> {
        let opened = open_file(&config)?;
        let (db, meta) = (opened.db, opened.meta);
        let file_bytes = std::fs::metadata(&config.path).map_or(0, |m| m.len());
        let (requests_tx, requests_rx) = mpsc::channel();
        let (touches_tx, touches_rx) = mpsc::sync_channel(TOUCH_QUEUE);
        let queue = Queue::new(requests_tx, config.queue_bytes);
        let path = config.path.clone();
        let shared = Arc::new(Shared {
            db: RwLock::new(Some(db)),
            overlay: Overlay::new(),
            queue,
            touches: touches_tx,
            counters: Counters::new(&meta, file_bytes),
            next_tick: AtomicU64::new(meta.next_tick),
            down: Mutex::new(None),
            retrying: Mutex::new(None),
            faults: Default::default(),
            finished: watch::Sender::new(false),
            config,
        });
        shared.counters.repaired.store(opened.repaired, Relaxed);
        Writer::new(Arc::clone(&shared), requests_rx, touches_rx, meta)
            .spawn()
            .map_err(|source| RedbTierError::Io { path, source })?;
        Ok(RedbTier {
            shared,
            closed: AtomicBool::new(false),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.shared.config.path
    }

    /// The tier's counters (cheap: no I/O).
    pub fn stats(&self) -> RedbStats {
        self.shared.counters.snapshot(
            self.shared.config.max_size,
            self.shared.overlay.len() as u64,
        )
    }

    /// The largest entry `set` accepts, in bytes of key plus framed value (see
    /// [`RedbTierBuilder::max_entry_size`]); a value must be smaller by its key's bytes (four
    /// times) and 88 bytes of framing.
    pub fn max_entry_size(&self) -> u64 {
        self.shared.config.entry_limit()
    }

    /// Waits until everything queued before the call is committed durably.
    pub async fn flush(&self) -> Result<(), TierError> {
        self.invalidate(Op::Flush).await.map(drop)
    }

    /// Checks every record's checksum, the indexes and the counters (reads the whole file, on
    /// the blocking pool). Writes that are queued but not yet committed are not included.
    pub async fn verify(&self) -> Result<IntegrityReport, TierError> {
        let shared = Arc::clone(&self.shared);
        run_blocking(move || {
            let guard = shared.db();
            let db = guard.as_ref().ok_or(TierError::Closed)?;
            catch_redb_panic(|| verify::verify(db))
        })
        .await?
    }

    /// Reads `keys` from the file (on the blocking pool).
    async fn read_disk(&self, keys: Vec<String>) -> Result<(Vec<String>, Vec<Found>), TierError> {
        let shared = Arc::clone(&self.shared);
        run_blocking(move || {
            let now = now_ms();
            let guard = shared.db();
            let db = guard.as_ref().ok_or(TierError::Closed)?;
            let found = catch_redb_panic(|| reader::read(db, &keys, now))?;
            Ok((keys, found))
        })
        .await?
    }

    /// Turns what the file holds for `key` into the answer, asking for a recency update or a
    /// corrupt record's deletion on the way.
    fn answer(&self, key: String, found: Found) -> Lookup {
        match found {
            Found::Hit { value, tick } => {
                let counters = &self.shared.counters;
                let next_tick = self.shared.next_tick.load(Relaxed);
                if wants_touch(tick, next_tick, counters.entries.load(Relaxed)) {
                    // Best effort: a full queue drops the update.
                    let _ = self.shared.touches.try_send(Touch { key, tick });
                }
                Lookup::Hit(value)
            }
            Found::Miss => Lookup::Miss,
            Found::Corrupt(reason) => {
                self.shared.counters.corrupt_entries.fetch_add(1, Relaxed);
                let error = TierError::Corrupt(format!("entry {key:?}: {reason}"));
                // The writer deletes it if it is still corrupt; if the queue is closed, the tier
                // is closing anyway.
                let _ = self.shared.queue.submit(
                    &self.shared.overlay,
                    vec![Submission {
                        op: Op::DropCorrupt { key },
                        durable: false,
                        reply: None,
                    }],
                    None,
                );
                Lookup::Degraded(error)
            }
        }
    }

    /// Checks a write and makes its operation; returns the bytes it charges the queue.
    fn put(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        fill: bool,
        now: u64,
    ) -> Result<(Op, usize), TierError> {
        let limit = self.shared.config.entry_limit();
        let charged = entry_bytes(key, HEADER_LEN + value.len());
        if charged > limit {
            let overhead = charged - value.len() as u64;
            return Err(TierError::TooLarge {
                size: value.len(),
                limit: usize::try_from(limit.saturating_sub(overhead)).unwrap_or(usize::MAX),
            });
        }
        let op = Op::Put {
            key: key.to_owned(),
            value,
            expiry_ms: expiry_for(ttl, now),
            fill,
        };
        Ok((op, usize::try_from(charged).unwrap_or(usize::MAX)))
    }

    /// The submission of a put, and what to wait for: a reply under the configured ack, and
    /// always for a fill (only its commit can tell whether it was kept).
    fn put_submission(&self, op: Op) -> (Submission, Option<Waiter>) {
        let fill = matches!(op, Op::Put { fill: true, .. });
        let (reply, waiter) = if fill || self.shared.config.ack != WriteAck::Enqueued {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(Waiter(rx)))
        } else {
            (None, None)
        };
        let submission = Submission {
            op,
            durable: self.shared.config.ack == WriteAck::Durable,
            reply,
        };
        (submission, waiter)
    }

    /// Queues `ops` (puts) in one submission charged `bytes`, and waits for each answer.
    async fn put_all(&self, ops: Vec<Op>, bytes: usize) -> Vec<Result<Stored, TierError>> {
        let permit = match self.shared.queue.reserve(bytes).await {
            Ok(permit) => permit,
            Err(error) => return ops.iter().map(|_| Err(copy_tier_error(&error))).collect(),
        };
        let (submissions, waiters): (Vec<_>, Vec<_>) =
            ops.into_iter().map(|op| self.put_submission(op)).unzip();
        let queued = match self
            .shared
            .queue
            .submit(&self.shared.overlay, submissions, Some(permit))
        {
            Ok(queued) => queued,
            Err(error) => {
                return waiters
                    .iter()
                    .map(|_| Err(copy_tier_error(&error)))
                    .collect()
            }
        };
        let mut results = Vec::with_capacity(queued.len());
        for (queued, waiter) in queued.into_iter().zip(waiters) {
            results.push(match (queued, waiter) {
                (false, _) => Ok(Stored::Kept),
                (true, None) => Ok(Stored::Written),
                (true, Some(waiter)) => waiter.wait().await.map(|code| {
                    if code == KEPT {
                        Stored::Kept
                    } else {
                        Stored::Written
                    }
                }),
            });
        }
        results
    }

    /// Queues operations that each wait for their durable commit, and waits for each. An
    /// invalidation never waits for the queue's byte budget (only `set` does): a backlog of
    /// large writes must not hold up a delete.
    async fn invalidate_all(&self, ops: Vec<Op>) -> Vec<Result<u64, TierError>> {
        if let Err(error) = self.check_serving() {
            return ops.iter().map(|_| Err(copy_tier_error(&error))).collect();
        }
        let (submissions, waiters): (Vec<_>, Vec<_>) = ops
            .into_iter()
            .map(|op| {
                let (tx, rx) = oneshot::channel();
                let submission = Submission {
                    op,
                    durable: true,
                    reply: Some(tx),
                };
                (submission, Waiter(rx))
            })
            .unzip();
        if let Err(error) = self
            .shared
            .queue
            .submit(&self.shared.overlay, submissions, None)
        {
            return waiters
                .iter()
                .map(|_| Err(copy_tier_error(&error)))
                .collect();
        }
        let mut results = Vec::with_capacity(waiters.len());
        for waiter in waiters {
            results.push(waiter.wait().await);
        }
        results
    }

    /// [`invalidate_all`](Self::invalidate_all) of one operation.
    async fn invalidate(&self, op: Op) -> Result<u64, TierError> {
        self.invalidate_all(vec![op])
            .await
            .pop()
            .unwrap_or(Err(TierError::Closed))
    }

    fn check_serving(&self) -> Result<(), TierError> {
        self.shared.unavailable().map_or(Ok(()), Err)
    }
}

/// A pending reply from the writer.
struct Waiter(oneshot::Receiver<Result<u64, TierError>>);

impl Waiter {
    async fn wait(self) -> Result<u64, TierError> {
        // A dropped sender means the writer stopped without answering.
        self.0.await.map_err(|_| TierError::Closed)?
    }
}

#[async_trait]
impl Tier for RedbTier {
    fn name(&self) -> &str {
        "redb"
    }

    /// A fill is an insert-if-absent, decided in the writer's transaction.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE.with_fill_if_absent()
    }

    async fn get(&self, key: &str) -> Lookup {
        if let Some(error) = self.shared.unavailable() {
            return Lookup::Degraded(error);
        }
        if let Some(pending) = self.shared.overlay.get(key) {
            return pending.visible(now_ms()).into();
        }
        match self.read_disk(vec![key.to_owned()]).await {
            Ok((mut keys, mut found)) => match (keys.pop(), found.pop()) {
                (Some(key), Some(found)) => self.answer(key, found),
                _ => Lookup::Miss,
            },
            Err(error) => Lookup::Degraded(error),
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Vec<Lookup> {
        if let Some(error) = self.shared.unavailable() {
            return keys
                .iter()
                .map(|_| Lookup::Degraded(copy_tier_error(&error)))
                .collect();
        }
        let now = now_ms();
        let mut answers: Vec<Option<Lookup>> = Vec::with_capacity(keys.len());
        let mut on_disk = Vec::new();
        for key in keys {
            match self.shared.overlay.get(key) {
                Some(pending) => answers.push(Some(pending.visible(now).into())),
                None => {
                    answers.push(None);
                    on_disk.push((*key).to_owned());
                }
            }
        }
        if !on_disk.is_empty() {
            match self.read_disk(on_disk).await {
                Ok((keys, found)) => {
                    let mut from_disk = keys
                        .into_iter()
                        .zip(found)
                        .map(|(key, found)| self.answer(key, found));
                    for answer in answers.iter_mut().filter(|a| a.is_none()) {
                        *answer = from_disk.next();
                    }
                }
                Err(error) => {
                    for answer in answers.iter_mut().filter(|a| a.is_none()) {
                        *answer = Some(Lookup::Degraded(copy_tier_error(&error)));
                    }
                }
            }
        }
        answers
            .into_iter()
            .map(|answer| answer.unwrap_or(Lookup::Miss))
            .collect()
    }

    async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        intent: WriteIntent,
    ) -> Result<Stored, TierError> {
        self.check_serving()?;
        let fill = matches!(intent, WriteIntent::Fill);
        let (op, bytes) = self.put(key, value, ttl, fill, now_ms())?;
        self.put_all(vec![op], bytes)
            .await
            .pop()
            .unwrap_or(Err(TierError::Closed))
    }

    async fn set_many(&self, writes: Vec<TierWrite>) -> Vec<Result<Stored, TierError>> {
        if let Err(error) = self.check_serving() {
            return writes
                .iter()
                .map(|_| Err(copy_tier_error(&error)))
                .collect();
        }
        let now = now_ms();
        let mut results: Vec<Option<Result<Stored, TierError>>> = Vec::with_capacity(writes.len());
        let mut ops = Vec::with_capacity(writes.len());
        let mut bytes = 0usize;
        for write in writes {
            let fill = matches!(write.intent, WriteIntent::Fill);
            match self.put(&write.key, write.value, write.ttl, fill, now) {
                Ok((op, charged)) => {
                    bytes = bytes.saturating_add(charged);
                    ops.push(op);
                    results.push(None);
                }
                // An oversize item fails alone.
                Err(error) => results.push(Some(Err(error))),
            }
        }
        if !ops.is_empty() {
            let mut stored = self.put_all(ops, bytes).await.into_iter();
            for slot in results.iter_mut().filter(|slot| slot.is_none()) {
                *slot = stored.next();
            }
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or(Err(TierError::Closed)))
            .collect()
    }

    async fn delete(&self, key: &str) -> Result<bool, TierError> {
        let op = Op::Delete {
            key: key.to_owned(),
        };
        Ok(self.invalidate(op).await? > 0)
    }

    async fn delete_many(&self, keys: &[&str]) -> Vec<Result<bool, TierError>> {
        let ops = keys
            .iter()
            .map(|key| Op::Delete {
                key: (*key).to_owned(),
            })
            .collect();
        self.invalidate_all(ops)
            .await
            .into_iter()
            .map(|removed| removed.map(|n| n > 0))
            .collect()
    }

    async fn delete_matching(&self, pattern: &KeyPattern) -> Result<u64, TierError> {
        let op = Op::DeleteMatching {
            pattern: pattern.clone(),
        };
        self.invalidate(op).await
    }

    async fn clear(&self) -> Result<(), TierError> {
        self.invalidate(Op::Clear).await.map(drop)
    }

    /// Stops accepting operations, lets the writer commit what is queued and make it durable,
    /// closes the file and waits for all of it. Later operations fail with
    /// [`TierError::Closed`]; reads answer degraded misses. The first call answers an error if
    /// the final commit failed (acknowledged writes may be lost); later calls answer `Ok`.
    async fn close(&self) -> Result<(), TierError> {
        let first = !self.closed.swap(true, std::sync::atomic::Ordering::AcqRel);
        self.shared.queue.close();
        let mut finished = self.shared.finished.subscribe();
        // The sender lives in `shared`, which we hold, so this only ends when the writer is done.
        let _ = finished.wait_for(|done| *done).await;
        match self.shared.permanently_down() {
            Some(reason) if first => Err(TierError::Unavailable(reason)),
            _ => Ok(()),
        }
    }

    async fn health(&self) -> Health {
        match self.shared.unavailable() {
            Some(TierError::Closed) => return Health::Down("closed".to_owned()),
            Some(TierError::Unavailable(reason)) => return Health::Down(reason),
            Some(error) => return Health::Down(error.to_string()),
            None => {}
        }
        let counters = &self.shared.counters;
        let max_size = self.shared.config.max_size;
        let live = counters.live_bytes.load(Relaxed);
        if live > max_size {
            return Health::Degraded(format!(
                "live data of {live} bytes is over max_size ({max_size}); eviction is behind"
            ));
        }
        let file = counters.file_bytes.load(Relaxed);
        let file_bound = 2 * self.shared.config.compaction_threshold();
        if file > file_bound {
            return Health::Degraded(format!(
                "file of {file} bytes is over its bound of {file_bound} ({} compactions failed)",
                counters.compaction_failures.load(Relaxed)
            ));
        }
        let backlog = self.shared.queue.backlog_fraction();
        if backlog > 0.9 {
            return Health::Degraded(format!(
                "write queue {:.0}% full; sets are waiting for the writer",
                backlog * 100.0
            ));
        }
        Health::Healthy
    }
}

impl Drop for RedbTier {
    fn drop(&mut self) {
        self.shared.queue.close();
    }
}

impl fmt::Debug for RedbTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbTier")
            .field("path", &self.shared.config.path)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Runs `f` on tokio's blocking pool, or inline when there is no runtime (then this thread is no
/// runtime worker).
async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TierError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(f).await.map_err(TierError::backend),
        Err(_) => Ok(f()),
    }
}

/// Runs a redb read, turning its errors and panics into `TierError`s.
fn catch_redb_panic<T>(f: impl FnOnce() -> Result<T, redb::Error>) -> Result<T, TierError> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(TierError::backend),
        Err(panic) => Err(TierError::Corrupt(format!(
            "redb panicked while reading: {}",
            panic_message(panic.as_ref())
        ))),
    }
}

#[cfg(test)]
#[path = "tier_tests.rs"]
mod tests;
