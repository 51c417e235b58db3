//! Counters the writer and readers update, and the [`RedbStats`] snapshot built from them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::schema::Meta;

/// A snapshot of a tier's counters, from [`RedbTier::stats`](crate::RedbTier::stats).
///
/// Entry and byte counts are those of the last commit; event counts are since the tier was
/// opened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedbStats {
    /// Entries in the file (expired ones not yet purged included).
    pub entries: u64,
    /// Live bytes: keys plus framed values of those entries, what `max_size` bounds.
    pub live_bytes: u64,
    /// The configured bound on `live_bytes`.
    pub max_size: u64,
    /// The file's size on disk after the last commit.
    pub file_bytes: u64,
    /// Writes queued or committed but not yet settled (see the crate's Consistency section).
    pub pending_writes: u64,
    /// Expired entries removed by purges and by eviction.
    pub purged: u64,
    /// Unexpired entries evicted to keep `live_bytes` under `max_size`.
    pub evicted: u64,
    /// Recency updates applied (a hit on an entry in the older part of the order).
    pub recency_updates: u64,
    /// Entries that failed their checksum on read, and were deleted.
    pub corrupt_entries: u64,
    /// Group commits.
    pub commits: u64,
    /// Of those, durable ones (fsync).
    pub durable_commits: u64,
    /// Operations written by those commits.
    pub committed_ops: u64,
    /// File compactions run.
    pub compactions: u64,
    /// Compactions that failed (redb returned an error; the file stays as it was).
    pub compaction_failures: u64,
    /// Median commit latency (the redb `commit` call).
    pub commit_p50: Duration,
    /// 99th percentile commit latency.
    pub commit_p99: Duration,
    /// Slowest commit.
    pub commit_max: Duration,
    /// Whether redb had to repair the file when this tier opened it (it was not closed cleanly:
    /// a crash, a kill, a drop without [`close`](strata_tier::Tier::close)), or when the writer
    /// reopened it after an I/O error.
    pub repaired: bool,
    /// Commits that failed and were retried (see the crate docs, "Failure").
    pub commit_failures: u64,
}

/// The shared counters.
pub(crate) struct Counters {
    pub entries: AtomicU64,
    pub live_bytes: AtomicU64,
    pub file_bytes: AtomicU64,
    pub purged: AtomicU64,
    pub evicted: AtomicU64,
    pub recency_updates: AtomicU64,
    pub corrupt_entries: AtomicU64,
    pub commits: AtomicU64,
    pub durable_commits: AtomicU64,
    pub committed_ops: AtomicU64,
    pub compactions: AtomicU64,
    pub compaction_failures: AtomicU64,
    pub repaired: AtomicBool,
    pub commit_failures: AtomicU64,
    commit_micros: Mutex<Histogram<u64>>,
}

impl Counters {
    pub(crate) fn new(meta: &Meta, file_bytes: u64) -> Self {
        // Three significant digits over 1 us .. 1 h.
        let histogram = Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .expect("constant histogram bounds are valid");
        Counters {
            entries: AtomicU64::new(meta.entries),
            live_bytes: AtomicU64::new(meta.live_bytes),
            file_bytes: AtomicU64::new(file_bytes),
            purged: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            recency_updates: AtomicU64::new(0),
            corrupt_entries: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            durable_commits: AtomicU64::new(0),
            committed_ops: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            compaction_failures: AtomicU64::new(0),
            repaired: AtomicBool::new(false),
            commit_failures: AtomicU64::new(0),
            commit_micros: Mutex::new(histogram),
        }
    }

    /// Publishes the counters of a commit that just landed.
    pub(crate) fn record_commit(&self, meta: &Meta, ops: u64, durable: bool, took: Duration) {
        self.entries.store(meta.entries, Relaxed);
        self.live_bytes.store(meta.live_bytes, Relaxed);
        self.commits.fetch_add(1, Relaxed);
        self.committed_ops.fetch_add(ops, Relaxed);
        if durable {
            self.durable_commits.fetch_add(1, Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let mut histogram = self
            .commit_micros
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        histogram.saturating_record(micros);
    }

    pub(crate) fn snapshot(&self, max_size: u64, pending_writes: u64) -> RedbStats {
        let (p50, p99, max) = {
            let histogram = self
                .commit_micros
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if histogram.is_empty() {
                (0, 0, 0)
            } else {
                (
                    histogram.value_at_quantile(0.5),
                    histogram.value_at_quantile(0.99),
                    histogram.max(),
                )
            }
        };
        RedbStats {
            entries: self.entries.load(Relaxed),
            live_bytes: self.live_bytes.load(Relaxed),
            max_size,
            file_bytes: self.file_bytes.load(Relaxed),
            pending_writes,
            purged: self.purged.load(Relaxed),
            evicted: self.evicted.load(Relaxed),
            recency_updates: self.recency_updates.load(Relaxed),
            corrupt_entries: self.corrupt_entries.load(Relaxed),
            commits: self.commits.load(Relaxed),
            durable_commits: self.durable_commits.load(Relaxed),
            committed_ops: self.committed_ops.load(Relaxed),
            compactions: self.compactions.load(Relaxed),
            compaction_failures: self.compaction_failures.load(Relaxed),
            commit_p50: Duration::from_micros(p50),
            commit_p99: Duration::from_micros(p99),
            commit_max: Duration::from_micros(max),
            repaired: self.repaired.load(Relaxed),
            commit_failures: self.commit_failures.load(Relaxed),
        }
    }
}
