//! The writer thread: the only place that writes the file.
//!
//! It waits for requests, takes every request already queued (up to `max_batch` requests and
//! `max_batch_bytes`) and applies them in order in one write transaction, a *group commit*,
//! together with any recency updates readers asked for, a purge when one is due, and eviction
//! when live bytes exceed `max_size`.
//! Then it commits, publishes the counters, settles the overlay and answers the requests.
//!
//! * **Durability.** A batch commits durably (fsync) if the tier is configured
//!   `Durability::EveryCommit`, if any request in it asked for it (durable acks, invalidations,
//!   `flush`), or if the oldest non-durable commit is older than the periodic interval, or if the
//!   non-durable commits since the last durable one wrote a quarter of `max_size` (each write
//!   counted as at least two pages). A durable
//!   commit makes every earlier commit durable too. (redb cannot reuse the pages of the last
//!   durable state until the next durable commit, so the byte limit bounds the file's growth
//!   under heavy writes.)
//! * **Failure.** A failed commit is retried at once in a fresh transaction, then with a backoff
//!   that doubles from 10 ms up to [`MAX_BACKOFF`], the same batch each time, so no acknowledged
//!   write is dropped. While it fails the tier is down (`Health::Down`, new operations fail with
//!   `Unavailable`, reads are degraded misses, so no read returns a value that a pending
//!   invalidation removes); the first commit that lands makes it serve again. An I/O error
//!   leaves redb's handle refusing every later operation, so before retrying the writer
//!   reopens the file (redb repairs it); if commits that were not yet durable may have been
//!   lost by that, the first commit after it empties the tier, so that no older value comes
//!   back. Once the tier is closing, a failing batch gets [`ATTEMPTS_WHILE_CLOSING`] attempts,
//!   then fails. A redb panic turns the tier down for good.
//! * **Compaction.** After a commit, if the file has grown past `max_size` plus the compaction
//!   slack (see the crate docs), the writer takes the file exclusively and runs redb's
//!   `compact`, which moves pages down and truncates the file; reads wait meanwhile.
//! * **Shutdown.** When the tier is closed or dropped, the channel closes; the writer commits what
//!   was queued, makes it durable, closes the file and signals `finished`.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use std::{fmt, io, thread};

use strata_tier::TierError;

use crate::config::Durability;
use crate::error::copy_tier_error;
use crate::eviction::{self, Evicted};
use crate::expiry;
use crate::open::open_file;
use crate::purge::{self, Purged};
use crate::queue::{Op, Request, Touch, KEPT, WRITTEN};
use crate::schema::{self, Meta};
use crate::shared::Shared;
use crate::store::Tables;

/// Recency updates applied per commit at most; the rest wait for the next one.
const TOUCHES_PER_COMMIT: usize = 256;
/// redb's page size.
const PAGE: u64 = 4096;
/// How long the writer sleeps at most when idle (it applies pending recency updates then).
const IDLE_WAKE: Duration = Duration::from_millis(200);

/// The longest wait between two attempts at a failing commit.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Attempts a failing batch gets once the tier is closing.
pub(crate) const ATTEMPTS_WHILE_CLOSING: u32 = 4;

/// Why a transaction did not commit.
enum Failure {
    Redb(redb::Error),
    /// Reopening the file after an I/O error failed.
    Reopen(String),
    Panic(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Redb(error) => write!(f, "{error}"),
            Failure::Reopen(error) => write!(f, "reopening the file failed: {error}"),
            Failure::Panic(message) => write!(f, "redb panicked: {message}"),
        }
    }
}

impl Failure {
    fn retryable(&self) -> bool {
        !matches!(self, Failure::Panic(_))
    }

    /// redb's handle is unusable after this (it latches I/O errors): reopen the file.
    fn needs_reopen(&self) -> bool {
        matches!(
            self,
            Failure::Reopen(_)
                | Failure::Redb(
                    redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
                )
        )
    }
}

/// The wait before attempt `attempt` (1-based) at a failing commit: none for the first retry,
/// then 10 ms doubling up to [`MAX_BACKOFF`].
fn backoff(attempt: u32) -> Duration {
    if attempt <= 1 {
        return Duration::ZERO;
    }
    let shift = (attempt - 2).min(16);
    (Duration::from_millis(10) * (1u32 << shift)).min(MAX_BACKOFF)
}

/// What a committed transaction did.
struct Outcome {
    meta: Meta,
    replies: Vec<u64>,
    purged: Purged,
    evicted: Evicted,
    touched: u64,
    took: Duration,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    requests: Receiver<Request>,
    touches: Receiver<Touch>,
    /// The counters as of the last commit.
    meta: Meta,
    /// When the oldest commit not yet made durable landed.
    undurable_since: Option<Instant>,
    /// Bytes written by commits not yet made durable.
    undurable_bytes: u64,
    next_purge: Instant,
    /// The last purge stopped at its limit.
    purge_more: bool,
    last_compaction: Option<Instant>,
    /// The file's size right after the last compaction: the next one waits until the file has
    /// grown a quarter of `max_size` past it, so a file that compaction cannot shrink below the
    /// threshold is not compacted over and over.
    compacted_size: u64,
    /// The file was reopened after an I/O error and commits that were not durable may be lost:
    /// the next transaction empties the tier first.
    clear_first: bool,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        requests: Receiver<Request>,
        touches: Receiver<Touch>,
        meta: Meta,
    ) -> Self {
        let next_purge = Instant::now() + shared.config.purge_interval;
        Writer {
            shared,
            requests,
            touches,
            meta,
            undurable_since: None,
            undurable_bytes: 0,
            next_purge,
            // Entries may have expired while the file was closed.
            purge_more: true,
            last_compaction: None,
            compacted_size: 0,
            clear_first: false,
        }
    }

    pub(crate) fn spawn(self) -> io::Result<JoinHandle<()>> {
        thread::Builder::new()
            .name("strata-redb-writer".into())
            .spawn(move || self.run())
    }

    fn run(mut self) {
        let max_batch = self.shared.config.max_batch;
        let max_bytes = self.shared.config.batch_bytes();
        // A request taken from the channel that did not fit the last batch.
        let mut carried: Option<Request> = None;
        loop {
            let wait = self.next_wake().saturating_duration_since(Instant::now());
            let mut batch = Vec::new();
            let first = match carried.take() {
                Some(request) => Some(request),
                None => match self.requests.recv_timeout(wait) {
                    Ok(request) => Some(request),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            let mut bytes = 0u64;
            if let Some(request) = first {
                bytes += request.op.bytes() as u64;
                batch.push(request);
            }
            while batch.len() < max_batch && bytes < max_bytes {
                match self.requests.try_recv() {
                    Ok(request) => {
                        let size = request.op.bytes() as u64;
                        if bytes + size > max_bytes {
                            carried = Some(request);
                            break;
                        }
                        bytes += size;
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            self.step(batch);
        }
        self.finish();
    }

    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        if self.purge_more {
            return now;
        }
        let mut wake = (now + IDLE_WAKE).min(self.next_purge);
        if let (Some(since), Durability::Periodic(interval)) =
            (self.undurable_since, self.shared.config.durability)
        {
            wake = wake.min(since + interval);
        }
        wake
    }

    /// One group commit (or nothing, if nothing is due).
    fn step(&mut self, batch: Vec<Request>) {
        if let Some(reason) = self.shared.permanently_down() {
            fail(batch, &TierError::Unavailable(reason));
            return;
        }
        let started = Instant::now();
        let purge = self.purge_more || started >= self.next_purge;
        let touches: Vec<Touch> = self.touches.try_iter().take(TOUCHES_PER_COMMIT).collect();
        let durable_due = match (self.shared.config.durability, self.undurable_since) {
            (Durability::Periodic(interval), Some(since)) => {
                since.elapsed() >= interval
                    || self.undurable_bytes >= self.shared.config.undurable_bytes_limit()
            }
            _ => false,
        };
        if batch.is_empty() && touches.is_empty() && !purge && !durable_due {
            return;
        }
        let durable = durable_due
            || self.shared.config.durability == Durability::EveryCommit
            || batch.iter().any(|request| request.durable);

        let mut attempt = 0u32;
        let mut closing_attempts = 0u32;
        let result = loop {
            let now = expiry::now_ms();
            let durable = durable || self.clear_first;
            let attempt_result = panic::catch_unwind(AssertUnwindSafe(|| {
                self.transact(&batch, &touches, purge, durable, now)
            }));
            let failure = match attempt_result {
                Ok(Ok(outcome)) => break Ok((outcome, durable)),
                Ok(Err(error)) => Failure::Redb(error),
                Err(panic) => Failure::Panic(panic_message(panic.as_ref())),
            };
            if self.shared.queue.is_closed() {
                closing_attempts += 1;
            }
            if !failure.retryable() || closing_attempts >= ATTEMPTS_WHILE_CLOSING {
                break Err(failure);
            }
            attempt += 1;
            self.shared.counters.commit_failures.fetch_add(1, Relaxed);
            self.shared.set_retrying(Some(format!(
                "a commit to {} failed: {failure}; retrying (attempt {attempt})",
                self.path()
            )));
            thread::sleep(backoff(attempt));
            if failure.needs_reopen() {
                if let Err(error) = self.reopen() {
                    self.shared.set_retrying(Some(format!(
                        "a commit to {} failed: {failure}; {}; retrying (attempt {attempt})",
                        self.path(),
                        Failure::Reopen(error)
                    )));
                }
            }
        };
        if purge {
            self.next_purge = started + self.shared.config.purge_interval;
        }
        match result {
            Ok((outcome, durable)) => {
                self.clear_first = false;
                self.shared.set_retrying(None);
                self.landed(batch, outcome, durable);
            }
            Err(failure) => {
                let reason = format!("a commit to {} failed: {failure}", self.path());
                self.shared.set_down(reason.clone());
                fail(batch, &TierError::Unavailable(reason));
                return;
            }
        }
        self.maybe_compact();
    }

    /// Replaces redb's handle, which refuses every operation after an I/O error, by a fresh
    /// one (redb repairs the file as after a crash). Commits that were not durable may be gone
    /// then, so the next transaction empties the tier (see the module docs).
    fn reopen(&mut self) -> Result<(), String> {
        let mut guard = self
            .shared
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = guard.take() {
            // Its own clean shutdown may fail after an I/O error; the reopen repairs then.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(old)));
        }
        let opened = open_file(&self.shared.config).map_err(|error| error.to_string())?;
        *guard = Some(opened.db);
        drop(guard);
        if opened.repaired {
            self.shared.counters.repaired.store(true, Relaxed);
        }
        if self.undurable_since.is_some() || opened.meta != self.meta {
            self.clear_first = true;
        }
        // Keep ticks increasing even if the file went back to an older state.
        let next_tick = self.meta.next_tick.max(opened.meta.next_tick);
        self.meta = opened.meta;
        self.meta.next_tick = next_tick;
        self.undurable_since = None;
        self.undurable_bytes = 0;
        Ok(())
    }

    /// Applies a batch in one write transaction and commits it.
    fn transact(
        &self,
        batch: &[Request],
        touches: &[Touch],
        purge: bool,
        durable: bool,
        now: u64,
    ) -> Result<Outcome, redb::Error> {
        let config = &self.shared.config;
        let guard = self.shared.db();
        let db = guard.as_ref().ok_or(redb::Error::DatabaseClosed)?;
        let mut txn = db.begin_write()?;
        txn.set_durability(if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        })?;
        let mut meta = self.meta;
        let mut replies = vec![0; batch.len()];
        let mut purged = Purged::default();
        let mut touched = 0;
        let evicted;
        {
            if self.clear_first {
                schema::delete_entry_tables(&txn)?;
                meta.live_bytes = 0;
                meta.entries = 0;
            }
            let mut tables = Tables::open(&txn)?;
            for (request, reply) in batch.iter().zip(&mut replies) {
                match &request.op {
                    Op::Put {
                        key,
                        value,
                        expiry_ms,
                        fill,
                    } => {
                        *reply = if *fill && tables.is_live(key, now)? {
                            KEPT
                        } else {
                            tables.put(&mut meta, key, value, *expiry_ms, now)?;
                            WRITTEN
                        };
                    }
                    Op::Delete { key } => *reply = u64::from(tables.remove(&mut meta, key, now)?),
                    Op::DeleteMatching { pattern } => {
                        *reply = tables.remove_matching(&mut meta, pattern, now)?;
                    }
                    Op::Clear => {
                        *reply = meta.entries;
                        drop(tables);
                        schema::delete_entry_tables(&txn)?;
                        meta.live_bytes = 0;
                        meta.entries = 0;
                        tables = Tables::open(&txn)?;
                    }
                    Op::Flush => {}
                    Op::DropCorrupt { key } => {
                        *reply = u64::from(tables.remove_if_corrupt(&mut meta, key, now)?);
                    }
                }
            }
            for touch in touches {
                touched += u64::from(tables.touch(&mut meta, touch, now)?);
            }
            if purge {
                purged = purge::purge_expired(&mut tables, &mut meta, now, config.purge_batch)?;
            }
            evicted = eviction::enforce_bound(
                &mut tables,
                &mut meta,
                now,
                config.max_size,
                config.eviction_target(),
            )?;
            tables.store_meta(&meta)?;
        }
        self.shared.faults.before_commit()?;
        let commit_started = Instant::now();
        txn.commit()?;
        Ok(Outcome {
            meta,
            replies,
            purged,
            evicted,
            touched,
            took: commit_started.elapsed(),
        })
    }

    /// Publishes a landed commit, settles the overlay and answers the batch.
    fn landed(&mut self, batch: Vec<Request>, outcome: Outcome, durable: bool) {
        let counters = &self.shared.counters;
        self.meta = outcome.meta;
        self.purge_more = outcome.purged.more;
        self.undurable_since = if durable {
            None
        } else {
            self.undurable_since.or(Some(Instant::now()))
        };
        if durable {
            self.undurable_bytes = 0;
        } else {
            // Copy-on-write: each write rewrites at least a page in the values table and in an
            // index, whatever its size, so small writes count as two pages.
            self.undurable_bytes += batch
                .iter()
                .map(|r| (r.op.bytes() as u64).max(2 * PAGE))
                .sum::<u64>();
        }
        counters.record_commit(&self.meta, batch.len() as u64, durable, outcome.took);
        counters
            .purged
            .fetch_add(outcome.purged.removed + outcome.evicted.expired, Relaxed);
        counters.evicted.fetch_add(outcome.evicted.evicted, Relaxed);
        counters.recency_updates.fetch_add(outcome.touched, Relaxed);
        self.shared.publish_tick(self.meta.next_tick);
        self.refresh_file_size();

        let overlay = &self.shared.overlay;
        for (request, count) in batch.into_iter().zip(outcome.replies) {
            match &request.op {
                Op::Put { key, .. } | Op::Delete { key } => overlay.settle(key, request.seq),
                Op::DeleteMatching { pattern } => {
                    overlay.settle_older(request.seq, |key| pattern.matches(key));
                }
                Op::Clear => overlay.settle_older(request.seq, |_| true),
                Op::Flush | Op::DropCorrupt { .. } => {}
            }
            if let Some(reply) = request.reply {
                // The caller may have stopped waiting (its future was dropped); nothing to do.
                let _ = reply.send(Ok(count));
            }
            // `request._permit` drops here, returning its bytes to the queue's budget.
        }
    }

    fn refresh_file_size(&self) {
        if let Ok(metadata) = std::fs::metadata(&self.shared.config.path) {
            self.shared
                .counters
                .file_bytes
                .store(metadata.len(), Relaxed);
        }
    }

    /// Compacts the file if it has grown past its threshold (see the field `compacted_size`).
    fn maybe_compact(&mut self) {
        let config = &self.shared.config;
        let file_bytes = self.shared.counters.file_bytes.load(Relaxed);
        let threshold = config
            .compaction_threshold()
            .max(self.compacted_size + config.max_size / 4);
        if file_bytes <= threshold {
            return;
        }
        if self
            .last_compaction
            .is_some_and(|at| at.elapsed() < config.min_compaction_interval)
        {
            return;
        }
        let result = {
            let mut guard = self
                .shared
                .db
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(db) = guard.as_mut() else {
                return;
            };
            panic::catch_unwind(AssertUnwindSafe(|| db.compact()))
        };
        match result {
            Ok(Ok(_)) => {
                self.shared.counters.compactions.fetch_add(1, Relaxed);
                // compact() commits durably.
                self.undurable_since = None;
                self.undurable_bytes = 0;
            }
            // No read can be in flight (we hold the file exclusively), so a failure here is an
            // I/O error: the commits before it stand, and the next commit will tell. Counted, and
            // reported by `health` while the file stays over its bound.
            Ok(Err(_)) => {
                self.shared
                    .counters
                    .compaction_failures
                    .fetch_add(1, Relaxed);
            }
            Err(panic) => self.shared.set_down(format!(
                "compacting {} panicked: {}",
                self.path(),
                panic_message(panic.as_ref())
            )),
        }
        self.last_compaction = Some(Instant::now());
        self.refresh_file_size();
        self.compacted_size = self.shared.counters.file_bytes.load(Relaxed);
    }

    /// The channel closed: make everything durable, close the file, signal.
    fn finish(mut self) {
        if self.undurable_since.is_some() && self.shared.permanently_down().is_none() {
            let flush = Request {
                seq: 0,
                op: Op::Flush,
                durable: true,
                reply: None,
                _permit: None,
            };
            self.purge_more = false;
            self.next_purge = Instant::now() + self.shared.config.purge_interval;
            self.step(vec![flush]);
        }
        let database = self
            .shared
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(database) = database {
            // Errors here mean the clean-shutdown flag was not written; the next open repairs.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || database.close()));
        }
        self.shared.finished.send_replace(true);
    }

    fn path(&self) -> String {
        self.shared.config.path.display().to_string()
    }
}

/// Answers every request of a batch that did not commit with `error`.
fn fail(batch: Vec<Request>, error: &TierError) {
    for request in batch {
        if let Some(reply) = request.reply {
            let _ = reply.send(Err(copy_tier_error(error)));
        }
    }
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a non-string panic".to_owned()
    }
}
