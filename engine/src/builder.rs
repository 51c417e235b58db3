//! [`CacheBuilder`]: every knob of a [`Cache`], with safe defaults.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::time::Duration;

use crate::cache::Cache;
use crate::clock::Clock;
use crate::inner::{Config, Weigher};
use crate::listener::{EvictionCause, Listener};

/// Entries a cache is sized for when neither `max_capacity` nor `initial_capacity` says how many
/// to expect (a cache bounded by weight only, or unbounded). The table grows past it.
const DEFAULT_INITIAL_CAPACITY: usize = 1024;
/// Most entries the queues are sized for from `max_capacity` alone; ask for more with
/// `initial_capacity`. (The table starts at up to a million buckets and grows.)
const MAX_IMPLIED_ENTRIES: u64 = 1 << 24;
/// A weighted cache's default `max_entry_weight`: this fraction of `max_weight`, so that the
/// weight can be split among shards.
const DEFAULT_ENTRY_SHARE: u64 = 64;

/// Builds a [`Cache`]. Start with [`Cache::builder`].
///
/// ```
/// use std::time::Duration;
/// use strata_engine::Cache;
///
/// let cache: Cache<String, Vec<u8>> = Cache::builder()
///     .max_weight(64 * 1024 * 1024)
///     .weigher(|key: &String, value: &Vec<u8>| (key.len() + value.len()) as u32)
///     .max_entry_weight(1024 * 1024)
///     .time_to_live(Duration::from_secs(300))
///     .build();
/// assert!(cache.is_empty());
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct CacheBuilder<K, V, S = ahash::RandomState> {
    max_capacity: Option<u64>,
    max_weight: Option<u64>,
    max_entry_weight: Option<u64>,
    weigher: Option<Weigher<K, V>>,
    time_to_live: Option<Duration>,
    time_to_idle: Option<Duration>,
    listener: Option<Listener<K, V>>,
    initial_capacity: Option<usize>,
    clock: Clock,
    hasher: S,
    _types: PhantomData<fn(K, V)>,
}

impl<K, V> Default for CacheBuilder<K, V> {
    fn default() -> Self {
        CacheBuilder {
            max_capacity: None,
            max_weight: None,
            max_entry_weight: None,
            weigher: None,
            time_to_live: None,
            time_to_idle: None,
            listener: None,
            initial_capacity: None,
            clock: Clock::default(),
            hasher: ahash::RandomState::new(),
            _types: PhantomData,
        }
    }
}

impl<K, V, S> fmt::Debug for CacheBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("max_capacity", &self.max_capacity)
            .field("max_weight", &self.max_weight)
            .field("max_entry_weight", &self.max_entry_weight)
            .field("weigher", &self.weigher.is_some())
            .field("time_to_live", &self.time_to_live)
            .field("time_to_idle", &self.time_to_idle)
            .field("eviction_listener", &self.listener.is_some())
            .field("initial_capacity", &self.initial_capacity)
            .finish_non_exhaustive()
    }
}

impl<K, V, S> CacheBuilder<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// Most entries the cache keeps. Without it (and without `max_weight`) nothing is evicted.
    ///
    /// With a [`weigher`](Self::weigher) and no [`max_weight`](Self::max_weight), this is the
    /// bound on the total weight instead, as in moka (`max_capacity(64 << 20).weigher(len)` keeps
    /// 64 MiB of values), and the entry count is unbounded.
    pub fn max_capacity(mut self, entries: u64) -> Self {
        self.max_capacity = Some(entries);
        self
    }

    /// Most total weight the cache keeps, as measured by the [`weigher`](Self::weigher) (every
    /// entry weighs 1 without one). May be combined with `max_capacity`; both bounds hold.
    pub fn max_weight(mut self, weight: u64) -> Self {
        self.max_weight = Some(weight);
        self
    }

    /// Most one entry may weigh. Heavier entries are refused with
    /// [`InsertError::TooHeavy`](crate::InsertError) by `try_insert` (and dropped, counted as a
    /// rejection, by `insert`). Defaults to a 64th of `max_weight` with a weigher (the weight is
    /// split among up to 16 shards, each of which must hold any entry the cache admits, four
    /// times over; a larger limit means fewer shards), and to `max_weight` without one.
    pub fn max_entry_weight(mut self, weight: u64) -> Self {
        self.max_entry_weight = Some(weight);
        self
    }

    /// How much an entry weighs. Called once per insert, before anything is stored (the entry
    /// keeps the weight); if it panics, the panic reaches the inserting caller and nothing is
    /// stored.
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Box::new(weigher));
        self
    }

    /// Time to live of entries inserted without their own (see
    /// [`insert_with_ttl`](Cache::insert_with_ttl)).
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.time_to_live = Some(ttl);
        self
    }

    /// Time to idle: an entry not read (by `get` or a loader's hit; `peek` and `contains_key` do
    /// not count) for this long expires, whatever its time to live; whichever of the two ends
    /// first ends the entry. Its resolution is 4 ms: an entry may idle out up to 8 ms early,
    /// never late; at most about 99 days. Each read then writes the entry's last-read time when
    /// it moved by a unit, which costs hot keys a shared write every 4 ms.
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.time_to_idle = Some(tti);
        self
    }

    /// Called with every entry that leaves the cache other than by the cache being dropped, on
    /// the thread that removed it, right after the removal. It must not call back into the cache
    /// for the same key from that thread with a loader (it would wait on itself).
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(&K, &V, EvictionCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// How many entries to size the table and the eviction queues for. Defaults to
    /// `max_capacity` (up to 16 Mi), else 1024. A cache holding many more entries than this
    /// still keeps as many as its bounds allow (the table and the main queue grow), but its
    /// small FIFO, with a slot for each of these entries, cannot keep every
    /// new entry while the cache fills, nor the small FIFO's twentieth of the capacity once the
    /// cache holds more than twenty times this, which weakens scan resistance. Set it to the
    /// expected entry count for a cache bounded by weight alone.
    pub fn initial_capacity(mut self, entries: usize) -> Self {
        self.initial_capacity = Some(entries);
        self
    }

    /// The clock for TTLs: [`Clock::mock`] in tests.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The hasher for keys. Defaults to aHash with random keys.
    pub fn hasher<S2: BuildHasher>(self, hasher: S2) -> CacheBuilder<K, V, S2> {
        CacheBuilder {
            max_capacity: self.max_capacity,
            max_weight: self.max_weight,
            max_entry_weight: self.max_entry_weight,
            weigher: self.weigher,
            time_to_live: self.time_to_live,
            time_to_idle: self.time_to_idle,
            listener: self.listener,
            initial_capacity: self.initial_capacity,
            clock: self.clock,
            hasher,
            _types: PhantomData,
        }
    }

    /// Builds the cache.
    pub fn build(self) -> Cache<K, V, S> {
        let weighted = self.weigher.is_some();
        // moka's convention: with a weigher, a lone `max_capacity` bounds the weight.
        let (max_capacity, max_weight) = match (weighted, self.max_capacity, self.max_weight) {
            (true, Some(capacity), None) => (None, Some(capacity)),
            (_, capacity, weight) => (capacity, weight),
        };
        let expected = self.initial_capacity.unwrap_or_else(|| match max_capacity {
            Some(entries) => entries.clamp(1, MAX_IMPLIED_ENTRIES) as usize,
            None => DEFAULT_INITIAL_CAPACITY,
        });
        let max_entries = max_capacity.unwrap_or(u64::MAX);
        let max_weight = max_weight.unwrap_or(u64::MAX);
        let default_limit = if weighted {
            (max_weight / DEFAULT_ENTRY_SHARE).max(1)
        } else {
            max_weight
        };
        let entry_limit = self
            .max_entry_weight
            .unwrap_or(default_limit)
            .min(max_weight);
        Cache::from_config(Config {
            expected_entries: expected.max(1),
            max_entries,
            max_weight,
            max_entry_weight: entry_limit,
            weigher: self.weigher,
            time_to_live: self.time_to_live,
            time_to_idle: self.time_to_idle,
            listener: self.listener,
            clock: self.clock,
            hasher: self.hasher,
        })
    }
}
