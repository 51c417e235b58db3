//! What the tier counts: operations and failures, each node's last round trip, the read pool's
//! use, and the invalidation bus.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Lags above an hour are recorded as an hour (a skewed clock, not a slow bus).
const LAG_MAX_MICROS: u64 = 3_600_000_000;

/// A snapshot of a [`RedisTier`](crate::RedisTier)'s counters.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Calls made to Redis (reads, writes, scans, pings).
    pub operations: u64,
    /// Calls that failed (including timeouts).
    pub failures: u64,
    /// Calls that timed out.
    pub timeouts: u64,
    /// Each node as last checked by [`health`](strata_tier::Tier::health).
    pub nodes: Vec<NodeStats>,
    /// The standalone server's direct read pool (zero in a cluster, whose connection keeps one
    /// multiplexed connection per node).
    pub pool: PoolStats,
    /// The invalidation bus.
    pub bus: BusStats,
}

/// One node's last health check.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NodeStats {
    /// `host:port`.
    pub address: String,
    /// The last `PING` round trip, if it was answered.
    pub round_trip: Option<Duration>,
    /// Why the last check failed, if it did.
    pub error: Option<String>,
}

/// The standalone read pool's use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Connections open.
    pub connections: u32,
    /// Of those, connections idle in the pool.
    pub idle: u32,
    /// The pool's bound.
    pub max: u32,
}

/// The invalidation bus of this tier's subscriptions.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BusStats {
    /// Whether every live subscription is currently subscribed.
    pub subscribed: bool,
    /// Messages published by this tier.
    pub published: u64,
    /// Invalidations from other instances applied to the subscriber.
    pub applied: u64,
    /// This tier's own messages, skipped.
    pub own_skipped: u64,
    /// Messages that could not be decoded (another program on the channel), skipped.
    pub malformed: u64,
    /// Times the subscription was lost (disconnect, unanswered heartbeat).
    pub disconnects: u64,
    /// Times the subscriber cleared its L1 after resubscribing, as it may have missed events.
    pub clears_after_reconnect: u64,
    /// Median delay from publish to apply, by the wall clock (same-host clocks only).
    pub lag_p50: Option<Duration>,
    /// 99th percentile of that delay.
    pub lag_p99: Option<Duration>,
}

/// The live counters behind [`RedisStats`].
pub(crate) struct Counters {
    pub(crate) operations: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) nodes: Mutex<Vec<NodeStats>>,
    pub(crate) published: AtomicU64,
    pub(crate) applied: AtomicU64,
    pub(crate) own_skipped: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    pub(crate) clears_after_reconnect: AtomicU64,
    /// Subscriptions running, and how many of them are subscribed right now.
    pub(crate) subscriptions: AtomicU64,
    pub(crate) subscribed: AtomicU64,
    pub(crate) lag_micros: Mutex<Histogram<u64>>,
    pub(crate) closed: AtomicBool,
}

impl Counters {
    pub(crate) fn new() -> Self {
        Counters {
            operations: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            nodes: Mutex::new(Vec::new()),
            published: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            own_skipped: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            clears_after_reconnect: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
            subscribed: AtomicU64::new(0),
            lag_micros: Mutex::new(
                Histogram::new_with_bounds(1, LAG_MAX_MICROS, 3).expect("valid histogram bounds"),
            ),
            closed: AtomicBool::new(false),
        }
    }

    /// Counts one call and its outcome.
    pub(crate) fn record<T>(&self, result: &Result<T, strata_tier::TierError>) {
        self.operations.fetch_add(1, Relaxed);
        if let Err(error) = result {
            self.failures.fetch_add(1, Relaxed);
            if matches!(error, strata_tier::TierError::Timeout(_)) {
                self.timeouts.fetch_add(1, Relaxed);
            }
        }
    }

    pub(crate) fn record_lag(&self, lag: Duration) {
        let micros = u64::try_from(lag.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, LAG_MAX_MICROS);
        let mut histogram = self.lag_micros.lock().unwrap_or_else(|p| p.into_inner());
        let _ = histogram.record(micros);
    }

    pub(crate) fn bus(&self) -> BusStats {
        let histogram = self.lag_micros.lock().unwrap_or_else(|p| p.into_inner());
        let quantile = |q: f64| {
            (!histogram.is_empty()).then(|| Duration::from_micros(histogram.value_at_quantile(q)))
        };
        BusStats {
            subscribed: self.subscribed.load(Relaxed) == self.subscriptions.load(Relaxed),
            published: self.published.load(Relaxed),
            applied: self.applied.load(Relaxed),
            own_skipped: self.own_skipped.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            disconnects: self.disconnects.load(Relaxed),
            clears_after_reconnect: self.clears_after_reconnect.load(Relaxed),
            lag_p50: quantile(0.5),
            lag_p99: quantile(0.99),
        }
    }
}
