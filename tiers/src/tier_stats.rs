//! Per-tier counters and latency histograms.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::breaker::BreakerState;

/// What happened to one operation against a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Hit,
    Miss,
    /// A read answered with a degraded miss, or a write or invalidation that failed.
    Error,
    Timeout,
    /// Skipped because the circuit was open.
    Skipped,
    /// A write that succeeded.
    Written,
}

#[derive(Debug)]
pub(crate) struct TierCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    skipped: AtomicU64,
    writes: AtomicU64,
    write_failures: AtomicU64,
    promotions: AtomicU64,
    corrupt: AtomicU64,
    /// Latency in microseconds of every operation that reached the tier.
    latency: Mutex<Histogram<u64>>,
}

impl TierCounters {
    pub(crate) fn new() -> Self {
        TierCounters {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
            promotions: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            // 1 us to 1 hour at 2 significant digits: a few KiB per tier.
            latency: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid histogram bounds"),
            ),
        }
    }

    pub(crate) fn record(&self, outcome: Outcome, is_write: bool, elapsed: Option<Duration>) {
        let counter = match (outcome, is_write) {
            (Outcome::Hit, _) => &self.hits,
            (Outcome::Miss, _) => &self.misses,
            (Outcome::Written, _) => &self.writes,
            (Outcome::Error, false) => &self.errors,
            (Outcome::Error, true) => &self.write_failures,
            (Outcome::Timeout, true) => {
                self.write_failures.fetch_add(1, Relaxed);
                &self.timeouts
            }
            (Outcome::Timeout, false) => &self.timeouts,
            (Outcome::Skipped, _) => &self.skipped,
        };
        counter.fetch_add(1, Relaxed);
        if let Some(elapsed) = elapsed {
            self.record_latency(elapsed);
        }
    }

    /// The latency of one operation that reached the tier (a batch counts once).
    pub(crate) fn record_latency(&self, elapsed: Duration) {
        {
            let micros = u64::try_from(elapsed.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            let mut histogram = self.latency.lock().unwrap_or_else(|p| p.into_inner());
            histogram.saturating_record(micros);
        }
    }

    pub(crate) fn record_promotion(&self) {
        self.promotions.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_corrupt(&self) {
        self.corrupt.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(
        &self,
        name: &str,
        breaker: BreakerState,
        write_breaker: BreakerState,
    ) -> TierStats {
        let latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let quantile = |q: f64| {
            (!latency.is_empty()).then(|| Duration::from_micros(latency.value_at_quantile(q)))
        };
        TierStats {
            name: name.to_owned(),
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            errors: self.errors.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            writes: self.writes.load(Relaxed),
            write_failures: self.write_failures.load(Relaxed),
            promotions: self.promotions.load(Relaxed),
            corrupt: self.corrupt.load(Relaxed),
            operations: latency.len(),
            latency_p50: quantile(0.5),
            latency_p99: quantile(0.99),
            breaker,
            write_breaker,
        }
    }
}

/// One lower tier's counters, as [`TieredCache::stats`](crate::TieredCache::stats) reports them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TierStats {
    /// The tier's name.
    pub name: String,
    /// Reads that found an entry (and decoded it).
    pub hits: u64,
    /// Reads that found nothing, or something expired or undecodable.
    pub misses: u64,
    /// Reads answered degraded (the tier failed), timeouts excluded.
    pub errors: u64,
    /// Operations that hit the per-tier timeout.
    pub timeouts: u64,
    /// Operations skipped because a circuit breaker was open, and reads skipped because the
    /// tier may hold a stale value of the key (a write to it failed).
    pub skipped: u64,
    /// Writes (set, promotion, delete, invalidation) that succeeded.
    pub writes: u64,
    /// Writes (set, promotion, delete, invalidation) that failed or timed out.
    pub write_failures: u64,
    /// Entries copied into this tier from a tier below it.
    pub promotions: u64,
    /// Entries read from this tier that failed to decode (counted as misses, and deleted).
    pub corrupt: u64,
    /// Operations timed (every one that reached the tier).
    pub operations: u64,
    /// Median operation latency, if any operation was timed.
    pub latency_p50: Option<Duration>,
    /// 99th-percentile operation latency, if any operation was timed.
    pub latency_p99: Option<Duration>,
    /// The read circuit breaker's state when the snapshot was taken.
    pub breaker: BreakerState,
    /// The write circuit breaker's state (writes and invalidations are judged apart from
    /// reads, so a slow writer does not take healthy reads out of service).
    pub write_breaker: BreakerState,
}

impl TierStats {
    /// Hits over reads that reached the tier.
    pub fn hit_ratio(&self) -> f64 {
        let reads = self.hits + self.misses + self.errors;
        if reads == 0 {
            0.0
        } else {
            self.hits as f64 / reads as f64
        }
    }
}
