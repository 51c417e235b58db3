//! Counters: totals and per rule.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// How a response was served (the value of the `x-cache` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// From the cache, fresh or successfully revalidated.
    Hit,
    /// From upstream, the cache had nothing usable.
    Miss,
    /// From the cache although stale (`stale-while-revalidate`, `stale-if-error`).
    Stale,
    /// The cache did not apply (method, path rule, credentials, `no-store`, hostile headers).
    Bypass,
}

impl CacheStatus {
    /// `HIT`, `MISS`, `STALE` or `BYPASS`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
            CacheStatus::Bypass => "BYPASS",
        }
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stale: AtomicU64,
    bypasses: AtomicU64,
}

impl Counters {
    fn count(&self, status: CacheStatus) {
        let counter = match status {
            CacheStatus::Hit => &self.hits,
            CacheStatus::Miss => &self.misses,
            CacheStatus::Stale => &self.stale,
            CacheStatus::Bypass => &self.bypasses,
        };
        counter.fetch_add(1, Relaxed);
    }

    fn snapshot(&self, name: &str) -> RuleStats {
        RuleStats {
            name: name.to_owned(),
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            stale: self.stale.load(Relaxed),
            bypasses: self.bypasses.load(Relaxed),
        }
    }
}

pub(crate) struct Stats {
    /// One set per rule (the totals are their sums: one atomic add per request).
    per_rule: Vec<Counters>,
    pub(crate) revalidations: AtomicU64,
    pub(crate) not_modified: AtomicU64,
    pub(crate) stored: AtomicU64,
    pub(crate) too_large: AtomicU64,
    pub(crate) collapsed: AtomicU64,
    pub(crate) upstream_errors: AtomicU64,
    pub(crate) invalidations: AtomicU64,
    pub(crate) store_errors: AtomicU64,
}

impl Stats {
    pub(crate) fn new(rules: usize) -> Stats {
        Stats {
            per_rule: (0..rules).map(|_| Counters::default()).collect(),
            revalidations: AtomicU64::new(0),
            not_modified: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            too_large: AtomicU64::new(0),
            collapsed: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
        }
    }

    pub(crate) fn count(&self, rule: usize, status: CacheStatus) {
        if let Some(counters) = self.per_rule.get(rule) {
            counters.count(status);
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, names: &[String]) -> HttpCacheStats {
        let rules: Vec<RuleStats> = self
            .per_rule
            .iter()
            .zip(names)
            .map(|(counters, name)| counters.snapshot(name))
            .collect();
        let totals = rules.iter().fold(
            RuleStats {
                name: "total".into(),
                hits: 0,
                misses: 0,
                stale: 0,
                bypasses: 0,
            },
            |mut sum, rule| {
                sum.hits += rule.hits;
                sum.misses += rule.misses;
                sum.stale += rule.stale;
                sum.bypasses += rule.bypasses;
                sum
            },
        );
        HttpCacheStats {
            requests: totals.hits + totals.misses + totals.stale + totals.bypasses,
            hit_ratio: totals.hit_ratio(),
            hits: totals.hits,
            misses: totals.misses,
            stale: totals.stale,
            bypasses: totals.bypasses,
            revalidations: self.revalidations.load(Relaxed),
            not_modified: self.not_modified.load(Relaxed),
            stored: self.stored.load(Relaxed),
            too_large: self.too_large.load(Relaxed),
            collapsed: self.collapsed.load(Relaxed),
            upstream_errors: self.upstream_errors.load(Relaxed),
            invalidations: self.invalidations.load(Relaxed),
            store_errors: self.store_errors.load(Relaxed),
            rules,
        }
    }
}

/// A snapshot of the HTTP cache's counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HttpCacheStats {
    /// Requests the layer saw (hits + misses + stale + bypasses).
    pub requests: u64,
    /// `(hits + stale) / (hits + stale + misses)`; bypasses are not lookups. 0 before any.
    pub hit_ratio: f64,
    /// Served from the cache, fresh or revalidated.
    pub hits: u64,
    /// Sent upstream after a lookup found nothing usable.
    pub misses: u64,
    /// Served stale.
    pub stale: u64,
    /// Not looked up at all.
    pub bypasses: u64,
    /// Conditional requests sent upstream for stale entries.
    pub revalidations: u64,
    /// `304 Not Modified` answers given to clients' conditional requests.
    pub not_modified: u64,
    /// Responses written to the cache.
    pub stored: u64,
    /// Responses streamed through uncached because their body exceeded the cap.
    pub too_large: u64,
    /// Requests served by another request's upstream call.
    pub collapsed: u64,
    /// Upstream calls that failed (a service error or a broken body).
    pub upstream_errors: u64,
    /// Invalidations by unsafe methods and through the purge API.
    pub invalidations: u64,
    /// Writes to the tiers that failed (the response was still served).
    pub store_errors: u64,
    /// The same four counters per rule (`default` first).
    pub rules: Vec<RuleStats>,
}

/// One rule's counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RuleStats {
    /// The rule's name (its glob unless named), or `default`.
    pub name: String,
    /// Hits.
    pub hits: u64,
    /// Misses.
    pub misses: u64,
    /// Stale serves.
    pub stale: u64,
    /// Bypasses.
    pub bypasses: u64,
}

impl RuleStats {
    /// `(hits + stale) / (hits + stale + misses)`, 0 before any lookup.
    pub fn hit_ratio(&self) -> f64 {
        let served = self.hits + self.stale;
        let lookups = served + self.misses;
        if lookups == 0 {
            0.0
        } else {
            served as f64 / lookups as f64
        }
    }
}
