//! What the stack's operations report: per-tier write outcomes, invalidation counts, health,
//! counters.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use strata_engine::CacheStats;
use strata_tier::Health;

use crate::error::TierFailure;
use crate::tier_stats::TierStats;

/// What a write did in the lower tiers. A failed tier write is counted and logged, not an
/// error: the value is in L1 and the tiers that took it, and the tiers that did not are
/// skipped for that key until a later write of it succeeds there (so they cannot serve the
/// old value). Check [`is_complete`](Self::is_complete) if a write must reach every tier.
#[derive(Debug, Default)]
#[must_use = "a write may have failed in some tiers"]
pub struct WriteReport {
    /// Tiers that took the write.
    pub written: Vec<String>,
    /// Tiers that did not, and why.
    pub failed: Vec<TierFailure>,
}

impl WriteReport {
    /// Whether every tier written to took the write.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// How many entries an invalidation removed, per tier, where tiers can tell.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InvalidationReport {
    /// Entries removed from this process's L1.
    pub l1: u64,
    /// Entries each lower tier reported removing.
    pub tiers: Vec<(String, u64)>,
}

/// Every level's health, keyed by a unique name per level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// `memory` for L1, then each lower tier by its unique name in the stack.
    pub tiers: BTreeMap<String, Health>,
}

impl HealthReport {
    /// Whether every tier is healthy.
    pub fn is_healthy(&self) -> bool {
        self.tiers.values().all(|h| *h == Health::Healthy)
    }

    /// A JSON object mapping each tier to `healthy`, `degraded: …` or `down: …`.
    pub fn to_json(&self) -> serde_json::Value {
        self.tiers
            .iter()
            .map(|(name, health)| (name.clone(), serde_json::Value::String(health.to_string())))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// Counters for the whole stack and each tier.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TieredStats {
    /// The L1 engine's own counters.
    pub l1: CacheStats,
    /// Reads that missed L1 and hit a lower tier.
    pub lower_hits: u64,
    /// Reads that found nothing in any tier.
    pub misses: u64,
    /// Loader runs by `get_or_load`.
    pub loads: u64,
    /// Fills (L1 or tier) dropped or undone because a write of the key overlapped the read.
    pub fills_fenced: u64,
    /// Invalidations received from other processes and applied to L1.
    pub remote_invalidations: u64,
    /// Each lower tier, top to bottom.
    pub tiers: Vec<TierStats>,
}

impl TieredStats {
    /// Reads answered by some tier over all reads.
    pub fn hit_ratio(&self) -> f64 {
        let hits = self.l1.hits + self.lower_hits;
        let total = hits + self.misses;
        if total == 0 {
            0.0
        } else {
            hits as f64 / total as f64
        }
    }
}

/// A value read from a lower tier with what its frame records.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryInfo<V> {
    /// The value.
    pub value: V,
    /// When the entry expires, if it does.
    pub expires_at: Option<SystemTime>,
    /// When it was written by `set` or a loader (promotions keep the original time), if the
    /// frame records it.
    pub stored_at: Option<SystemTime>,
    /// The tier it was read from (`memory` for L1).
    pub tier: String,
}

impl<V> EntryInfo<V> {
    /// The remaining lifetime at `now` (`None` if it never expires).
    pub fn ttl(&self, now: SystemTime) -> Option<Duration> {
        self.expires_at
            .map(|at| at.duration_since(now).unwrap_or_default())
    }

    /// How long ago it was stored (an HTTP `Age`), if known.
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        self.stored_at
            .map(|at| now.duration_since(at).unwrap_or_default())
    }
}
