//! [`Cache`]: the public handle and its reads, writes, iteration and maintenance.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use crate::builder::CacheBuilder;
use crate::clock::{self, Ticks};
use crate::error::InsertError;
use crate::ghost::Ghost;
use crate::inner::{Config, Inner, Mode, Stored};
use crate::iter::{Iter, Keys};
use crate::listener::EvictionCause;
use crate::loader::Flights;
use crate::node::{self};
use crate::policy::{self};
use crate::shard::{Bounds, Shards};
use crate::stats::{CacheStats, Event, StatsRecorder};
use crate::sync::epoch::{self};
use crate::sync::Ordering;
use crate::table::Table;
use crate::weights::Weights;

/// A concurrent in-memory cache: lock-free reads and writes, S3-FIFO eviction, per-entry TTL,
/// bounds by entry count and/or weight, and single-flight loading.
///
/// Cloning a `Cache` is cheap and gives another handle to the same cache. See the
/// [crate documentation](crate) for the consistency it guarantees.
pub struct Cache<K, V, S = ahash::RandomState> {
    pub(crate) inner: Arc<Inner<K, V, S>>,
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// A cache of at most `max_capacity` entries, with default settings otherwise.
    pub fn new(max_capacity: u64) -> Self {
        Self::builder().max_capacity(max_capacity).build()
    }

    /// A builder for every setting (capacity, weight, TTL, listener, hasher).
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder::default()
    }
}

impl<K, V, S> Clone for Cache<K, V, S> {
    fn clone(&self) -> Self {
        Cache {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V, S> fmt::Debug for Cache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("entries", &Weights::total_count(&self.inner.shards))
            .field("weight", &self.inner.weights.total(&self.inner.shards))
            .field("max_entries", &self.inner.max_entries)
            .field("max_weight", &self.inner.max_weight)
            .field("shards", &self.inner.shards.len())
            .field("buckets", &self.inner.table.bucket_count())
            .finish_non_exhaustive()
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    pub(crate) fn from_config(config: Config<K, V, S>) -> Self {
        let expected = config.expected_entries;
        let shards = Shards::new(&Bounds {
            max_entries: config.max_entries,
            max_weight: config.max_weight,
            max_entry_weight: config.max_entry_weight,
            weighted: config.weigher.is_some(),
            expected_entries: expected,
        });
        let ghost = Ghost::new(policy::main_share(expected), shards.len());
        Cache {
            inner: Arc::new(Inner {
                table: Table::new(config.max_entries, expected),
                shards,
                ghost,
                hasher: config.hasher,
                max_entries: config.max_entries,
                max_weight: config.max_weight,
                max_entry_weight: config.max_entry_weight,
                weights: Weights::new(config.weigher.is_some()),
                weigher: config.weigher,
                time_to_live: config.time_to_live,
                idle_units: config.time_to_idle.map(clock::idle_units),
                ticks: Ticks::new(config.clock),
                listener: config.listener,
                listener_disabled: std::sync::atomic::AtomicBool::new(false),
                stats: StatsRecorder::new(),
                flights: Flights::new(),
            }),
        }
    }

    /// The value for `key`, if present and not expired. Takes no lock; on a hit the only shared
    /// write is the entry's frequency counter, and only while it is below its maximum.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.get_hashed(self.inner.hash(key), key)
    }

    /// [`get`](Self::get) with the key's hash already computed (the loaders' lookups too).
    pub(crate) fn get_hashed<Q>(&self, hash: u64, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
        V: Clone,
    {
        let inner = &*self.inner;
        let guard = epoch::pin();
        let value = inner
            .read(hash, key, &guard, true)
            .map(|node| node.value().clone());
        inner.stats.record(if value.is_some() {
            Event::Hit
        } else {
            Event::Miss
        });
        value
    }

    /// The value for `key`, if present and not expired, without marking the entry as used (so
    /// a peek does not keep it from eviction) and without counting a hit or a miss in
    /// [`stats`](Self::stats); [`get`](Self::get) does both.
    ///
    /// ```
    /// # use strata_engine::Cache;
    /// let cache = Cache::<u64, u64>::new(100);
    /// cache.insert(1, 10);
    /// assert_eq!(cache.peek(&1), Some(10));
    /// assert_eq!(cache.peek(&2), None);
    /// assert_eq!((cache.stats().hits, cache.stats().misses), (0, 0));
    /// ```
    pub fn peek<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let inner = &*self.inner;
        let hash = inner.hash(key);
        let guard = epoch::pin();
        inner
            .read(hash, key, &guard, false)
            .map(|node| node.value().clone())
    }

    /// Whether `key` has a live, unexpired entry. Counts neither a hit nor a miss and does not
    /// mark the entry as used.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &*self.inner;
        let hash = inner.hash(key);
        let guard = epoch::pin();
        inner.read(hash, key, &guard, false).is_some()
    }

    /// The time left before `key`'s entry expires, by its time to live or, if it is not read
    /// again, its time to idle (whichever ends first): `Some(None)` for an entry with neither,
    /// `None` when there is no live entry. Does not count as a read.
    pub fn time_to_live_of<Q>(&self, key: &Q) -> Option<Option<Duration>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &*self.inner;
        let hash = inner.hash(key);
        let guard = epoch::pin();
        let node = inner.read(hash, key, &guard, false)?;
        let deadline = node::expire_tick(node.meta.load(Ordering::Relaxed));
        let by_ttl = (deadline != 0).then(|| inner.ticks.remaining(deadline));
        let by_idle = inner.idle_units.map(|limit| {
            let idle =
                clock::idle_unit(inner.ticks.now()).wrapping_sub(node.idle.load(Ordering::Relaxed));
            clock::idle_duration(limit.saturating_sub(idle))
        });
        Some(match (by_ttl, by_idle) {
            (Some(ttl), Some(idle)) => Some(ttl.min(idle)),
            (ttl, idle) => ttl.or(idle),
        })
    }

    /// Inserts or replaces `key`'s value, with the cache's default time to live. An entry
    /// heavier than `max_entry_weight` is not stored and is counted in
    /// [`CacheStats::rejections`]; use [`try_insert`](Self::try_insert) to get the error.
    pub fn insert(&self, key: K, value: V) {
        let _ = self.try_insert(key, value);
    }

    /// Inserts or replaces `key`'s value with its own time to live.
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) {
        let _ = self.try_insert_with_ttl(key, value, ttl);
    }

    /// Like [`insert`](Self::insert), but tells why an entry was refused.
    pub fn try_insert(&self, key: K, value: V) -> Result<(), InsertError> {
        let hash = self.inner.hash(&key);
        self.inner.insert(hash, key, value, self.inner.time_to_live)
    }

    /// Like [`insert_with_ttl`](Self::insert_with_ttl), but tells why an entry was refused.
    pub fn try_insert_with_ttl(&self, key: K, value: V, ttl: Duration) -> Result<(), InsertError> {
        let hash = self.inner.hash(&key);
        self.inner.insert(hash, key, value, Some(ttl))
    }

    /// Inserts `key`'s value only if the key has no live entry, with the cache's default time to
    /// live; returns whether it inserted. A live entry is kept as it is; an expired one is
    /// replaced. An entry heavier than `max_entry_weight` is not stored (`false`, counted in
    /// [`CacheStats::rejections`]). It takes no part in single flight: it neither waits for a
    /// load of the key nor is undone by one (a load in the air keeps what this inserted).
    ///
    /// ```
    /// # use strata_engine::Cache;
    /// let cache = Cache::<u64, u64>::new(100);
    /// assert!(cache.insert_if_absent(1, 10));
    /// assert!(!cache.insert_if_absent(1, 11));
    /// assert_eq!(cache.get(&1), Some(10));
    /// ```
    pub fn insert_if_absent(&self, key: K, value: V) -> bool {
        self.try_insert_if_absent(key, value).unwrap_or(false)
    }

    /// Like [`insert_if_absent`](Self::insert_if_absent), but tells why an entry was refused:
    /// `Ok(true)` inserted, `Ok(false)` a live entry was kept.
    pub fn try_insert_if_absent(&self, key: K, value: V) -> Result<bool, InsertError> {
        let inner = &*self.inner;
        let hash = inner.hash(&key);
        let ttl = inner.time_to_live;
        match inner.insert_as(hash, key, value, ttl, Mode::IfAbsent)? {
            Stored::Linked => Ok(true),
            Stored::Kept | Stored::Cancelled => Ok(false),
        }
    }

    /// Removes `key`'s entry and returns its value (`None` if absent or already expired).
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.remove_with(key, V::clone)
    }

    /// Removes `key`'s entry, without returning its value (moka's name; see
    /// [`remove`](Self::remove)).
    ///
    /// ```
    /// # use strata_engine::Cache;
    /// let cache = Cache::<u64, u64>::new(100);
    /// cache.insert(1, 10);
    /// cache.invalidate(&1);
    /// assert_eq!(cache.get(&1), None);
    /// ```
    pub fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_with(key, |_| ());
    }

    /// Removes `key`'s entry; `read` of its value if it was live.
    fn remove_with<Q, R>(&self, key: &Q, read: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &*self.inner;
        let hash = inner.hash(key);
        // Before the table: a load in flight must not put back what this removes.
        inner.flights.cancel(hash, key);
        let guard = epoch::pin();
        let removed = inner.table.remove(hash, key, &guard, |_| true)?;
        // SAFETY: returned by the table under `guard`, so valid until it drops.
        let node = unsafe { removed.deref() };
        let expired = inner.is_expired(node);
        let cause = if expired {
            EvictionCause::Expired
        } else {
            EvictionCause::Removed
        };
        inner.account_removal(node, cause);
        inner.trim_small(inner.shards.of_hash(hash), &guard);
        (!expired).then(|| read(node.value()))
    }

    /// Number of live entries (expired entries not yet reclaimed included). Exact when no other
    /// thread is writing.
    pub fn len(&self) -> usize {
        Weights::total_count(&self.inner.shards) as usize
    }

    /// [`len`](Self::len) as moka names it.
    pub fn entry_count(&self) -> u64 {
        Weights::total_count(&self.inner.shards)
    }

    /// Whether [`len`](Self::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total weight of the live entries (their count, without a weigher).
    pub fn weighted_size(&self) -> u64 {
        self.inner.weights.total(&self.inner.shards)
    }

    /// Removes every entry, telling the listener with [`EvictionCause::Removed`], and forgets
    /// the ghost fingerprints of recently evicted keys.
    pub fn clear(&self) {
        self.retain(|_, _| false);
        self.inner.ghost.clear();
    }

    /// [`clear`](Self::clear) as moka names it.
    pub fn invalidate_all(&self) {
        self.clear();
    }

    /// Keeps only the entries for which `keep` returns `true`; the others are removed (cause
    /// [`EvictionCause::Removed`]). Entries inserted concurrently may or may not be visited.
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        let inner = &*self.inner;
        // Loads in flight may be of keys this removes: none of them keeps its value.
        inner.flights.cancel_all();
        inner.remove_where(|node, _| {
            (!keep(node.key(), node.value())).then_some(EvictionCause::Removed)
        });
        // Hand this thread's deferred drops (the removed values among them) to the collector now.
        epoch::pin().flush();
    }

    /// A weakly consistent iterator over clones of the live, unexpired entries: it sees every
    /// entry that stays in the cache for the whole iteration, at most once per key, and may or may
    /// not see entries inserted or removed meanwhile. It pins no memory between buckets.
    pub fn iter(&self) -> Iter<'_, K, V, S>
    where
        K: Clone,
        V: Clone,
    {
        Iter::new(&self.inner)
    }

    /// A weakly consistent iterator over clones of the live, unexpired entries' keys, with the
    /// guarantees of [`iter`](Self::iter).
    ///
    /// ```
    /// # use strata_engine::Cache;
    /// let cache = Cache::<u64, u64>::new(100);
    /// cache.insert(1, 10);
    /// cache.insert(2, 20);
    /// let mut keys: Vec<u64> = cache.keys().collect();
    /// keys.sort_unstable();
    /// assert_eq!(keys, [1, 2]);
    /// ```
    pub fn keys(&self) -> Keys<'_, K, V, S>
    where
        K: Clone,
    {
        Keys::new(&self.inner)
    }

    /// Removes expired entries from the whole table now, telling the listener
    /// ([`EvictionCause::Expired`]); returns how many it removed. Expired entries are otherwise
    /// reclaimed lazily, when a read finds them or the eviction hand passes them; call this from
    /// a timer or a background thread to release their memory sooner.
    pub fn run_pending_maintenance(&self) -> usize {
        let inner = &*self.inner;
        inner.remove_where(|node, now| {
            inner
                .is_expired_at(node, now)
                .then_some(EvictionCause::Expired)
        })
    }

    /// moka's name for this engine's pending work: [`run_pending_maintenance`]
    /// (expired entries removed now) and then a flush of this thread's share of the epoch
    /// collector, so that memory the cache retired on this thread is freed sooner (once no thread
    /// can still read it; other threads' retired memory waits for their own activity).
    ///
    /// [`run_pending_maintenance`]: Self::run_pending_maintenance
    pub fn run_pending_tasks(&self) {
        self.run_pending_maintenance();
        epoch::pin().flush();
    }

    /// A snapshot of the counters: hits, misses, inserts, evictions, expirations, rejections,
    /// entries and weight.
    pub fn stats(&self) -> CacheStats {
        let inner = &*self.inner;
        inner.stats.snapshot(
            Weights::total_count(&inner.shards),
            inner.weights.total(&inner.shards),
        )
    }
}
