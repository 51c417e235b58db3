//! The caches being compared, behind one small trait so every workload is written once and monomorphised
//! per cache (no dynamic dispatch inside a measured loop).
//!
//! Each adapter uses the cache the way its documentation shows a user doing it: default hasher, default
//! options, `u64` keys and values. Default hashers differ: Strata's engine uses ahash, moka std's SipHash,
//! quick_cache foldhash, TinyUFO ahash; the hashbrown baseline uses ahash, like Strata.

use std::time::Duration;

/// Anything that answers `u64` lookups from several threads: every cache, and the hashbrown baseline.
pub trait Lookup: Sync {
    /// Name used in tables.
    const NAME: &'static str;

    /// The value for `key`, if resident.
    fn get(&self, key: u64) -> Option<u64>;
}

/// A concurrent bounded cache of `u64 -> u64`.
pub trait Contender: Lookup + Sized {
    /// A cache bounded to `capacity` entries.
    fn with_capacity(capacity: usize) -> Self;

    /// Inserts or replaces `key`.
    fn insert(&self, key: u64, value: u64);

    /// Entries resident now, after any pending internal bookkeeping has been applied.
    fn resident(&self) -> usize;

    /// Deferred housekeeping that the trace replay runs every so often so that moka's admission keeps up;
    /// a no-op for the others (they are measured exactly as a user calls them).
    fn run_pending_tasks(&self) {}
}

/// Strata's L1 engine.
pub struct Strata(strata_engine::Cache<u64, u64>);

impl Strata {
    /// A Strata cache whose entries all carry a time-to-live of `ttl`.
    pub fn with_ttl(capacity: usize, ttl: Duration) -> Self {
        Self(
            strata_engine::Cache::builder()
                .max_capacity(capacity as _)
                .time_to_live(ttl)
                .build(),
        )
    }
}

impl Lookup for Strata {
    const NAME: &'static str = "strata";

    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
}

impl Contender for Strata {
    fn with_capacity(capacity: usize) -> Self {
        Self(
            strata_engine::Cache::builder()
                .max_capacity(capacity as _)
                .build(),
        )
    }

    #[inline]
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }

    fn resident(&self) -> usize {
        self.0.len()
    }
}

/// Strata's L1 engine bounded by weight (every entry weighs 1) instead of by count, built as a
/// moka user would (`max_capacity` with a weigher): the table is not sized from an entry count
/// and must grow as the cache fills.
pub struct StrataWeighted(strata_engine::Cache<u64, u64>);

impl Lookup for StrataWeighted {
    const NAME: &'static str = "strata (weight-bounded)";

    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
}

impl Contender for StrataWeighted {
    fn with_capacity(capacity: usize) -> Self {
        Self(
            strata_engine::Cache::builder()
                .max_capacity(capacity as _)
                .weigher(|_, _| 1)
                .build(),
        )
    }

    #[inline]
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }

    fn resident(&self) -> usize {
        self.0.len()
    }
}

/// `moka::sync::Cache` (TinyLFU admission, LRU eviction, maintenance run on the callers' threads).
pub struct Moka(moka::sync::Cache<u64, u64>);

impl Moka {
    /// A moka cache whose entries all carry a time-to-live of `ttl`.
    pub fn with_ttl(capacity: usize, ttl: Duration) -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(capacity as u64)
                .time_to_live(ttl)
                .build(),
        )
    }
}

impl Lookup for Moka {
    const NAME: &'static str = "moka";

    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
}

impl Contender for Moka {
    fn with_capacity(capacity: usize) -> Self {
        Self(moka::sync::Cache::new(capacity as u64))
    }

    #[inline]
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }

    fn resident(&self) -> usize {
        self.0.run_pending_tasks();
        self.0.entry_count() as usize
    }

    fn run_pending_tasks(&self) {
        self.0.run_pending_tasks();
    }
}

/// `quick_cache::sync::Cache` (sharded, a lock per shard, CLOCK-Pro-like policy).
pub struct QuickCache(quick_cache::sync::Cache<u64, u64>);

impl Lookup for QuickCache {
    const NAME: &'static str = "quick_cache";

    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
}

impl Contender for QuickCache {
    fn with_capacity(capacity: usize) -> Self {
        Self(quick_cache::sync::Cache::new(capacity))
    }

    #[inline]
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }

    fn resident(&self) -> usize {
        self.0.len()
    }
}

/// Cloudflare's `TinyUFO` (pingora): S3-FIFO queues with TinyLFU admission, lock-free. It has no entry
/// count, so the adapter keeps one: `put`s minus the evictions they report (which include a new key its
/// admission turned away). The benches only `put` keys it does not hold, so that is the entry count.
pub struct TinyUfo {
    cache: tinyufo::TinyUfo<u64, u64>,
    resident: std::sync::atomic::AtomicIsize,
}

impl Lookup for TinyUfo {
    const NAME: &'static str = "TinyUFO";

    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        self.cache.get(&key)
    }
}

impl Contender for TinyUfo {
    fn with_capacity(capacity: usize) -> Self {
        // Weight 1 per entry, so the weight limit is the entry count; the second argument sizes the
        // ghost queue and the frequency sketch, as its documentation asks, to the expected entry count.
        Self {
            cache: tinyufo::TinyUfo::new(capacity, capacity),
            resident: std::sync::atomic::AtomicIsize::new(0),
        }
    }

    #[inline]
    fn insert(&self, key: u64, value: u64) {
        let evicted = self.cache.put(key, value, 1);
        // Only the memory and trace runs read the count; a relaxed add is all it costs elsewhere.
        self.resident.fetch_add(
            1 - evicted.len() as isize,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn resident(&self) -> usize {
        self.resident
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(0) as usize
    }
}

/// The limit: a plain `hashbrown` map with ahash, unbounded, read-only once built. Only meaningful for
/// single-threaded lookups of resident keys.
pub struct Hashbrown(pub hashbrown::HashMap<u64, u64, ahash::RandomState>);

impl Hashbrown {
    /// A map holding `key -> key` for every key of `keys`, presized to `capacity`.
    pub fn filled(capacity: usize, keys: impl IntoIterator<Item = u64>) -> Self {
        let mut map =
            hashbrown::HashMap::with_capacity_and_hasher(capacity, ahash::RandomState::new());
        for key in keys {
            map.insert(key, key);
        }
        Self(map)
    }
}

impl Lookup for Hashbrown {
    const NAME: &'static str = "hashbrown";

    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key).copied()
    }
}
