//! [`Cache`]: the public API over the table, the S3-FIFO queues, TTLs, statistics and loaders.

use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use crate::builder::CacheBuilder;
use crate::clock::{self, Clock, Ticks};
use crate::error::InsertError;
use crate::ghost::Ghost;
use crate::listener::{EvictionCause, Listener};
use crate::loader::{FlightWait, Flights, Gate, Leader, Outcome, Role, SharedError};
use crate::main_queue::MainQueue;
use crate::node::{self, Node, DEQUEUED, IN_MAIN};
use crate::policy::{self, MainVisit, SmallExit, Victim};
use crate::shard::{signed, Bounds, Shard, Shards};
use crate::stats::{CacheStats, Event, StatsRecorder};
use crate::sync::epoch::{self, Guard, Owned, Shared};
use crate::sync::Ordering;
use crate::table::{Inserted, Table};

pub(crate) type Weigher<K, V> = Box<dyn Fn(&K, &V) -> u32 + Send + Sync>;

/// Pushes a new entry into a full small queue tries this many times (popping in between) before
/// placing the entry straight in main.
const SMALL_PUSH_ATTEMPTS: usize = 4;

/// Slots of a freshly grown main ring that the growing writer tries for its own entry (the
/// other writers' hands may be filling them already).
const GROWN_SLOTS_TRIED: usize = 8;

/// What [`Inner::grow_main`] did.
enum Growth {
    /// The ring grew and the entry took one of the new slots.
    Placed,
    /// The ring grew (this thread or another), but the entry still needs a slot.
    Grown,
    /// The ring cannot grow: it has a slot for every entry the count bound admits.
    Full,
}

/// Everything [`CacheBuilder::build`] decided.
pub(crate) struct Config<K, V, S> {
    pub(crate) expected_entries: usize,
    pub(crate) max_entries: u64,
    pub(crate) max_weight: u64,
    pub(crate) max_entry_weight: u64,
    pub(crate) weigher: Option<Weigher<K, V>>,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) listener: Option<Listener<K, V>>,
    pub(crate) clock: Clock,
    pub(crate) hasher: S,
}

/// A concurrent in-memory cache: lock-free reads and writes, S3-FIFO eviction, per-entry TTL,
/// bounds by entry count and/or weight, and single-flight loading.
///
/// Cloning a `Cache` is cheap and gives another handle to the same cache. See the
/// [crate documentation](crate) for the consistency it guarantees.
pub struct Cache<K, V, S = ahash::RandomState> {
    inner: Arc<Inner<K, V, S>>,
}

struct Inner<K, V, S> {
    table: Table<K, V>,
    /// The eviction queues and counters, split by key hash (see [`crate::shard`]).
    shards: Shards<Node<K, V>>,
    ghost: Ghost,
    hasher: S,
    /// The cache's bounds; each shard enforces its part of them.
    max_entries: u64,
    max_weight: u64,
    max_entry_weight: u64,
    weigher: Option<Weigher<K, V>>,
    time_to_live: Option<Duration>,
    ticks: Ticks,
    listener: Option<Listener<K, V>>,
    stats: StatsRecorder,
    flights: Flights<K, V>,
}

/// What an insert did.
enum Stored {
    /// Linked as the key's entry.
    Linked,
    /// An only-if-absent insert found the key present and left it.
    Kept,
    /// A load's insert found its flight cancelled by a removal, and inserted nothing.
    Cancelled,
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
            .field("entries", &self.inner.count())
            .field("weight", &self.inner.total_weight())
            .field("max_entries", &self.inner.max_entries)
            .field("max_weight", &self.inner.max_weight)
            .field("shards", &self.inner.shards.len())
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
        Cache {
            inner: Arc::new(Inner {
                table: Table::new(expected),
                shards,
                ghost: Ghost::new(policy::main_share(expected)),
                hasher: config.hasher,
                max_entries: config.max_entries,
                max_weight: config.max_weight,
                max_entry_weight: config.max_entry_weight,
                weigher: config.weigher,
                time_to_live: config.time_to_live,
                ticks: Ticks::new(config.clock),
                listener: config.listener,
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
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(key);
        let guard = epoch::pin();
        let value = inner
            .read(hash, key, &guard, true)
            .map(|node| node.value.clone());
        inner.stats.record(if value.is_some() {
            Event::Hit
        } else {
            Event::Miss
        });
        value
    }

    /// Whether `key` has a live, unexpired entry. Counts neither a hit nor a miss and does not
    /// mark the entry as used.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(key);
        let guard = epoch::pin();
        inner.read(hash, key, &guard, false).is_some()
    }

    /// The time left before `key`'s entry expires: `Some(None)` for an entry without a TTL,
    /// `None` when there is no live entry.
    pub fn time_to_live_of<Q>(&self, key: &Q) -> Option<Option<Duration>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(key);
        let guard = epoch::pin();
        let node = inner.read(hash, key, &guard, false)?;
        let deadline = node::expire_tick(node.meta.load(Ordering::Relaxed));
        Some((deadline != 0).then(|| inner.ticks.remaining(deadline)))
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
        let hash = self.inner.hasher.hash_one(&key);
        self.inner.insert(hash, key, value, self.inner.time_to_live)
    }

    /// Like [`insert_with_ttl`](Self::insert_with_ttl), but tells why an entry was refused.
    pub fn try_insert_with_ttl(&self, key: K, value: V, ttl: Duration) -> Result<(), InsertError> {
        let hash = self.inner.hasher.hash_one(&key);
        self.inner.insert(hash, key, value, Some(ttl))
    }

    /// Removes `key`'s entry and returns its value (`None` if absent or already expired).
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(key);
        // Before the table: a load in flight must not put back what this removes.
        inner.flights.cancel(hash, key);
        let guard = epoch::pin();
        let removed = inner.table.remove(hash, key, &guard, |_| true)?;
        // SAFETY: returned by the table under `guard`, so valid until it drops.
        let node = unsafe { removed.deref() };
        let expired = inner.is_expired(node.meta.load(Ordering::Relaxed));
        let cause = if expired {
            EvictionCause::Expired
        } else {
            EvictionCause::Removed
        };
        inner.account_removal(node, cause);
        inner.trim_small(inner.shards.of_hash(hash), &guard);
        (!expired).then(|| node.value.clone())
    }

    /// Number of live entries (expired entries not yet reclaimed included). Exact when no other
    /// thread is writing.
    pub fn len(&self) -> usize {
        self.inner.count() as usize
    }

    /// Whether [`len`](Self::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total weight of the live entries (their count, without a weigher).
    pub fn weighted_size(&self) -> u64 {
        self.inner.total_weight()
    }

    /// Removes every entry, telling the listener with [`EvictionCause::Removed`], and forgets
    /// the ghost fingerprints of recently evicted keys.
    pub fn clear(&self) {
        self.retain(|_, _| false);
        self.inner.ghost.clear();
    }

    /// Keeps only the entries for which `keep` returns `true`; the others are removed (cause
    /// [`EvictionCause::Removed`]). Entries inserted concurrently may or may not be visited.
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        let inner = &*self.inner;
        // Loads in flight may be of keys this removes: none of them keeps its value.
        inner.flights.cancel_all();
        for index in 0..inner.table.bucket_count() {
            let guard = epoch::pin();
            let mut removed_any = false;
            inner.table.for_each_live(index, &guard, |node| {
                if !keep(&node.key, &node.value) && node.mark_removed(&guard) {
                    inner.account_removal(node, EvictionCause::Removed);
                    removed_any = true;
                }
            });
            if removed_any {
                inner.table.purge_marked(index, &guard);
            }
        }
    }

    /// A weakly consistent iterator over clones of the live, unexpired entries: it sees every
    /// entry that stays in the cache for the whole iteration, at most once per key, and may or may
    /// not see entries inserted or removed meanwhile. It pins no memory between buckets.
    pub fn iter(&self) -> Iter<'_, K, V, S>
    where
        K: Clone,
        V: Clone,
    {
        Iter {
            inner: &self.inner,
            bucket: 0,
            buffer: Vec::new(),
        }
    }

    /// Removes expired entries from the whole table now, telling the listener
    /// ([`EvictionCause::Expired`]); returns how many it removed. Expired entries are otherwise
    /// reclaimed lazily, when a read finds them or the eviction hand passes them; call this from
    /// a timer or a background thread to release their memory sooner.
    pub fn run_pending_maintenance(&self) -> usize {
        let inner = &*self.inner;
        let mut removed = 0;
        for index in 0..inner.table.bucket_count() {
            let guard = epoch::pin();
            let now = inner.ticks.now();
            let mut marked = false;
            inner.table.for_each_live(index, &guard, |node| {
                let deadline = node::expire_tick(node.meta.load(Ordering::Relaxed));
                if clock::is_expired(deadline, now) && node.mark_removed(&guard) {
                    inner.account_removal(node, EvictionCause::Expired);
                    removed += 1;
                    marked = true;
                }
            });
            if marked {
                inner.table.purge_marked(index, &guard);
            }
        }
        removed
    }

    /// A snapshot of the counters: hits, misses, inserts, evictions, expirations, rejections,
    /// entries and weight.
    pub fn stats(&self) -> CacheStats {
        let inner = &*self.inner;
        inner.stats.snapshot(inner.count(), inner.total_weight())
    }
}

/// Loading (single-flight): concurrent callers that miss the same key run one loader between
/// them, and the others wait for its outcome (see the crate docs' *Consistency* section).
impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The value for `key`, computing and inserting it with `init` if absent. Concurrent callers
    /// that miss the same key run one `init` between them; the others block until it is done
    /// and return what the cache then holds (the value, or a newer one written since), or the
    /// loaded value itself if it is not in the cache (too heavy to store, or removed since).
    ///
    /// The loaded value is inserted only where the key is still absent: an insert made during
    /// the load is kept, and a `remove`, `clear` or `retain` that runs during the load wins
    /// (the callers still get the loaded value, but it is not cached). If `init` panics, the
    /// panic propagates to its caller and the waiting callers retry (one of them runs its own
    /// `init`).
    ///
    /// `init` must not itself load the same key from this cache: the call would wait for its
    /// own flight forever (as with moka's and quick_cache's loaders).
    pub fn get_or_insert_with(&self, key: K, init: impl FnOnce() -> V) -> V {
        match self.try_get_or_insert_with(key, || Ok::<V, Infallible>(init())) {
            Ok(value) => value,
            Err(never) => match *never {},
        }
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with) with a fallible `init`: an error is
    /// returned to its caller and to every caller waiting on the same load (shared behind an
    /// `Arc`, as moka's `try_get_with` does), and nothing is cached; the next call loads again.
    /// A waiting caller whose error type differs from the loader's runs its own load instead.
    pub fn try_get_or_insert_with<E>(
        &self,
        key: K,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(&key);
        let leader = loop {
            if let Some(value) = self.get_hashed(hash, &key) {
                return Ok(value);
            }
            match inner.flights.join(hash, &key) {
                Role::Leader(leader) => break leader,
                Role::Follower(flight, late) => {
                    if let Some(result) = self.follow(hash, &key, flight.wait(), late) {
                        return result;
                    }
                }
            }
        };
        // A value may have landed between our miss and our joining.
        if let Some(value) = self.peek_hashed(hash, &key) {
            leader.publish();
            leader.complete(value.clone(), true);
            return Ok(value);
        }
        match init() {
            Ok(value) => Ok(self.store_loaded(hash, key, value, inner.time_to_live, leader)),
            Err(error) => Err(fail(leader, error)),
        }
    }

    /// The async form of [`get_or_insert_with`](Self::get_or_insert_with), for any executor.
    /// Waiting callers are woken through their task's waker; if the loading future is dropped
    /// before it finishes, one of the waiting callers takes over.
    pub async fn get_or_insert_with_async<F>(&self, key: K, init: F) -> V
    where
        F: Future<Output = V>,
    {
        let result = self
            .try_get_or_insert_with_async(key, async { Ok::<V, Infallible>(init.await) })
            .await;
        match result {
            Ok(value) => value,
            Err(never) => match *never {},
        }
    }

    /// The async form of [`try_get_or_insert_with`](Self::try_get_or_insert_with).
    pub async fn try_get_or_insert_with_async<F, E>(&self, key: K, init: F) -> Result<V, Arc<E>>
    where
        F: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        self.try_get_or_insert_with_ttl_async(key, async { init.await.map(|value| (value, None)) })
            .await
    }

    /// Like [`try_get_or_insert_with_async`](Self::try_get_or_insert_with_async), for loaders
    /// that also decide the entry's time to live (a value read from a slower tier keeps its
    /// remaining lifetime): `init` yields the value and its TTL, `None` meaning the cache's
    /// default.
    pub async fn try_get_or_insert_with_ttl_async<F, E>(&self, key: K, init: F) -> Result<V, Arc<E>>
    where
        F: Future<Output = Result<(V, Option<Duration>), E>>,
        E: Send + Sync + 'static,
    {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(&key);
        let leader = loop {
            if let Some(value) = self.get_hashed(hash, &key) {
                return Ok(value);
            }
            let (flight, late) = match inner.flights.join(hash, &key) {
                Role::Leader(leader) => break leader,
                Role::Follower(flight, late) => (flight, late),
            };
            let outcome = (FlightWait { flight }).await;
            if let Some(result) = self.follow(hash, &key, outcome, late) {
                return result;
            }
        };
        if let Some(value) = self.peek_hashed(hash, &key) {
            leader.publish();
            leader.complete(value.clone(), true);
            return Ok(value);
        }
        match init.await {
            Ok((value, ttl)) => {
                let ttl = ttl.or(inner.time_to_live);
                Ok(self.store_loaded(hash, key, value, ttl, leader))
            }
            Err(error) => Err(fail(leader, error)),
        }
    }

    /// What a follower returns for its flight's outcome; `None` to try again. `late`: it
    /// joined after the leader published (see `loader`'s module docs).
    fn follow<E>(
        &self,
        hash: u64,
        key: &K,
        outcome: Outcome<V>,
        late: bool,
    ) -> Option<Result<V, Arc<E>>>
    where
        E: Send + Sync + 'static,
    {
        match outcome {
            // Joined after the value went in: only what the cache holds now is safe.
            Outcome::Value { .. } if late => self.peek_hashed(hash, key).map(Ok),
            // Joined before: the loaded value was current at some point during this call;
            // what the cache holds now may be newer.
            Outcome::Value {
                value,
                stored: true,
            } => Some(Ok(self.peek_hashed(hash, key).unwrap_or(value))),
            Outcome::Value {
                value,
                stored: false,
            } => Some(Ok(value)),
            Outcome::Failed(error) => error.downcast::<E>().ok().map(Err),
            Outcome::Abandoned => None,
        }
    }

    /// The leader's insert of a loaded value: only where the key is absent, and taken back
    /// out if a removal cancelled the flight meanwhile (see `loader`'s module docs).
    fn store_loaded(
        &self,
        hash: u64,
        key: K,
        value: V,
        ttl: Option<Duration>,
        leader: Leader<'_, K, V>,
    ) -> V {
        let inner = &*self.inner;
        leader.publish();
        let stored = match inner.insert_as(hash, key, value.clone(), ttl, Some(&leader)) {
            Ok(Stored::Linked) => true,
            // An insert made during the load stays; followers read it.
            Ok(Stored::Kept) => true,
            // A removal during the load wins; too heavy to store. Every caller still gets the
            // value.
            Ok(Stored::Cancelled) | Err(_) => false,
        };
        leader.complete(value.clone(), stored);
        value
    }

    fn get_hashed(&self, hash: u64, key: &K) -> Option<V> {
        let inner = &*self.inner;
        let guard = epoch::pin();
        let value = inner.read(hash, key, &guard, true).map(|n| n.value.clone());
        inner.stats.record(if value.is_some() {
            Event::Hit
        } else {
            Event::Miss
        });
        value
    }

    fn peek_hashed(&self, hash: u64, key: &K) -> Option<V> {
        let guard = epoch::pin();
        self.inner
            .read(hash, key, &guard, false)
            .map(|n| n.value.clone())
    }
}

/// Shares a loader's error with the flight's followers and returns it to the leader's caller.
fn fail<K: Hash + Eq, V: Clone, E: Send + Sync + 'static>(
    leader: Leader<'_, K, V>,
    error: E,
) -> Arc<E> {
    let error = Arc::new(error);
    let shared: SharedError = error.clone();
    leader.fail(shared);
    error
}

/// The counters, readable without the cache's trait bounds (`Debug` uses them).
impl<K, V, S> Inner<K, V, S> {
    /// Live entries, summed over the shards (a shard's counter dips below zero when an eviction
    /// uncounts an entry before its insert has counted it; the sum reads as zero then).
    fn count(&self) -> u64 {
        self.shards.total(|counters| &counters.entries)
    }

    fn total_weight(&self) -> u64 {
        if self.weigher.is_some() {
            self.shards.total(|counters| &counters.weight)
        } else {
            self.count()
        }
    }

    // Without a weigher every entry weighs 1: a shard's weight is its entry count and its small
    // queue's weight that queue's length, so the weight counters are left untouched (two fewer
    // shared read-modify-writes per insert and per eviction).

    fn shard_count(shard: &Shard<Node<K, V>>) -> u64 {
        signed(shard.counters.entries.load(Ordering::Relaxed))
    }

    fn shard_weight(&self, shard: &Shard<Node<K, V>>) -> u64 {
        if self.weigher.is_some() {
            signed(shard.counters.weight.load(Ordering::Relaxed))
        } else {
            Self::shard_count(shard)
        }
    }

    fn over_capacity(&self, shard: &Shard<Node<K, V>>) -> bool {
        Self::shard_count(shard) > shard.max_entries || self.shard_weight(shard) > shard.max_weight
    }

    fn add_weight(&self, shard: &Shard<Node<K, V>>, weight: u64) {
        if self.weigher.is_some() {
            shard.counters.weight.fetch_add(weight, Ordering::AcqRel);
        }
    }

    fn sub_weight(&self, shard: &Shard<Node<K, V>>, weight: u64) {
        if self.weigher.is_some() {
            shard.counters.weight.fetch_sub(weight, Ordering::Relaxed);
        }
    }

    fn small_queue_weight(&self, shard: &Shard<Node<K, V>>) -> u64 {
        match (&self.weigher, &shard.small) {
            (Some(_), _) => shard.counters.small_weight.load(Ordering::Relaxed),
            (None, Some(small)) => small.len() as u64,
            (None, None) => 0,
        }
    }

    fn add_small_weight(&self, shard: &Shard<Node<K, V>>, weight: u64) {
        if self.weigher.is_some() {
            shard
                .counters
                .small_weight
                .fetch_add(weight, Ordering::Relaxed);
        }
    }

    fn sub_small_weight(&self, shard: &Shard<Node<K, V>>, weight: u64) {
        if self.weigher.is_some() {
            shard
                .counters
                .small_weight
                .fetch_sub(weight, Ordering::Relaxed);
        }
    }
}

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    #[inline]
    fn weigh(&self, key: &K, value: &V) -> u64 {
        match &self.weigher {
            None => 1,
            Some(weigher) => u64::from(weigher(key, value)),
        }
    }

    #[inline]
    fn is_expired(&self, meta: u64) -> bool {
        let deadline = node::expire_tick(meta);
        deadline != 0 && clock::is_expired(deadline, self.ticks.now())
    }

    /// Finds `key`'s live node; an expired one is removed on the way and reads as absent.
    #[inline]
    fn read<'g, Q>(
        &self,
        hash: u64,
        key: &Q,
        guard: &'g Guard,
        touch: bool,
    ) -> Option<&'g Node<K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let node = self.table.find(hash, key, guard)?;
        let meta = node.meta.load(Ordering::Relaxed);
        if self.is_expired(meta) {
            if node.mark_removed(guard) {
                self.account_removal(node, EvictionCause::Expired);
                self.table.purge_marked(self.table.bucket_of(hash), guard);
            }
            return None;
        }
        if touch {
            node.touch();
        }
        Some(node)
    }

    fn insert(
        &self,
        hash: u64,
        key: K,
        value: V,
        ttl: Option<Duration>,
    ) -> Result<(), InsertError> {
        self.insert_as(hash, key, value, ttl, None).map(|_| ())
    }

    /// Inserts. With a `gate` (a load's leader), only where the key is absent
    /// ([`Stored::Kept`] otherwise), and only if the gate lets it through
    /// ([`Stored::Cancelled`] otherwise); the node is linked while the gate is held.
    fn insert_as(
        &self,
        hash: u64,
        key: K,
        value: V,
        ttl: Option<Duration>,
        gate: Option<&dyn Gate>,
    ) -> Result<Stored, InsertError> {
        let weight = self.weigh(&key, &value);
        if weight > self.max_entry_weight {
            self.stats.record(Event::Rejection);
            return Err(InsertError::TooHeavy {
                weight,
                limit: self.max_entry_weight,
            });
        }
        let deadline = ttl.map_or(0, |ttl| self.ticks.deadline(ttl));
        let shard = self.shards.of_hash(hash);
        let guard = epoch::pin();
        let new = Owned::new(Node::new(key, value, hash, deadline, 0)).into_shared(&guard);
        let entered = match gate.map(|gate| gate.enter()) {
            Some(None) => {
                // SAFETY: `new` was never handed to the table, so no other thread has seen it
                // and it is still solely ours to free.
                drop(unsafe { new.into_owned() });
                return Ok(Stored::Cancelled);
            }
            Some(Some(entered)) => Some(entered),
            None => None,
        };
        // A load keeps a live entry in place (an insert made during it), not an expired one.
        let keep =
            |old: &Node<K, V>| gate.is_some() && !self.is_expired(old.meta.load(Ordering::Relaxed));
        // SAFETY: `new` was just allocated under `guard` and nobody else has seen it; its key
        // hashes to `hash`.
        let inserted = unsafe { self.table.insert(hash, new, keep, &guard) };
        drop(entered);
        match inserted {
            Inserted::Kept => {
                // SAFETY: the table did not link `new` (`Kept`), so no other thread has seen it
                // and it is still solely ours to free.
                drop(unsafe { new.into_owned() });
                return Ok(Stored::Kept);
            }
            Inserted::New => {
                // A key the ghost remembers was evicted too soon: it skips the small queue.
                self.enqueue(shard, new, weight, self.ghost.contains(hash), &guard);
                // Counted only once queued, with AcqRel: of two racing writers, the one that
                // counts last sees the full total and, through the acquire, the other's entry
                // ready in its queue, so it always finds something to evict and the bound holds
                // once writers stop (a loom model found the Relaxed, count-first order losing
                // this). An eviction may now uncount the entry first: the counters are signed.
                shard.counters.entries.fetch_add(1, Ordering::AcqRel);
                self.add_weight(shard, weight);
            }
            Inserted::Replaced(old) => {
                // SAFETY: returned by the table under `guard`.
                let old = unsafe { old.deref() };
                let old_weight = self.weigh(&old.key, &old.value);
                // An overwrite counts as a use: the new node will leave the small queue for main.
                // SAFETY: `new` is linked and still ours to describe; nobody has read its
                // frequency yet that this could confuse.
                unsafe { new.deref() }.touch();
                self.trim_small(shard, &guard);
                self.enqueue(shard, new, weight, false, &guard);
                self.add_weight(shard, weight);
                self.sub_weight(shard, old_weight);
                if let Some(listener) = &self.listener {
                    listener(&old.key, &old.value, EvictionCause::Replaced);
                }
            }
        }
        self.stats.record(Event::Insert);
        self.evict_while_over(shard, &guard);
        Ok(Stored::Linked)
    }

    /// Gives a node that was just linked its queue reference in its shard: main, the small
    /// queue, or none at all in an unbounded cache (which never evicts).
    fn enqueue(
        &self,
        shard: &Shard<Node<K, V>>,
        node: Shared<'_, Node<K, V>>,
        weight: u64,
        to_main: bool,
        guard: &Guard,
    ) {
        // The entry is counted after this: judge the bounds as they will be then.
        let may_evict = || {
            Self::shard_count(shard) + 1 > shard.max_entries
                || self.shard_weight(shard) + weight > shard.max_weight
        };
        match (&shard.small, &shard.main) {
            (Some(small), Some(_)) if !to_main => {
                self.add_small_weight(shard, weight);
                for _ in 0..SMALL_PUSH_ATTEMPTS {
                    if small.push(node.as_raw().cast_mut()).is_ok() {
                        return;
                    }
                    self.pop_small(shard, guard, false);
                }
                // Other writers keep the ring full: place the entry in main instead.
                self.sub_small_weight(shard, weight);
                self.promote(shard, node, may_evict(), guard);
            }
            (_, Some(_)) => self.promote(shard, node, may_evict(), guard),
            // SAFETY: no queue exists, so none holds the node: give up that reference.
            _ => unsafe { node::release(node, DEQUEUED | IN_MAIN, guard) },
        }
    }

    /// Called by writes that leave a dead entry behind (a replacement, a removal) and evict
    /// nothing. While a shard fills, its small ring has room for every entry; once the shard has
    /// been full, eviction keeps the small FIFO at about its share, but these writes do not
    /// evict, so their dead entries would pile up in the queues to a ring's worth (the shard's
    /// entries) beyond the bounds. Past twice the share, such a write takes one step of the
    /// small FIFO: it releases the dead entries at the head and moves the first live one on to
    /// main, whose hand takes the first free or dead slot it meets (releasing a dead one). The
    /// cache is within its bounds here, so nothing is evicted for it.
    fn trim_small(&self, shard: &Shard<Node<K, V>>, guard: &Guard) {
        if shard.counters.filled.load(Ordering::Relaxed)
            && self.small_queue_weight(shard)
                >= policy::SMALL_SLACK.saturating_mul(shard.small_target)
        {
            self.pop_small(shard, guard, false);
        }
    }

    /// Runs eviction steps while the cache is over a bound: first up to a budget of steps by the
    /// policy, then forced ones that evict whatever the hands meet, so that every insert leaves
    /// the cache within its bounds. Forced steps go on while they find entries to evict (one heavy
    /// entry may need many light victims; each such step removes one entry, so this ends), and
    /// stop after a budget of steps that find none (entries over the bound that other writers are
    /// still linking: those writers evict for themselves once they count them). A queue with
    /// nothing ready hands the step to the other one.
    fn evict_while_over(&self, shard: &Shard<Node<K, V>>, guard: &Guard) {
        if !self.over_capacity(shard) {
            return;
        }
        if !shard.counters.filled.load(Ordering::Relaxed) {
            shard.counters.filled.store(true, Ordering::Relaxed);
        }
        for _ in 0..policy::EVICTION_BUDGET {
            self.eviction_step(shard, guard, false);
            if !self.over_capacity(shard) {
                return;
            }
        }
        let mut idle = 0;
        while idle < policy::EVICTION_BUDGET && self.over_capacity(shard) {
            if !self.eviction_step(shard, guard, true) {
                idle += 1;
            }
        }
    }

    /// One eviction step from the queue the policy names, or from the other if that one has
    /// nothing ready. Returns whether either met a live entry.
    fn eviction_step(&self, shard: &Shard<Node<K, V>>, guard: &Guard, forced: bool) -> bool {
        match policy::next_victim(self.small_queue_weight(shard), shard.small_target) {
            Victim::Small => {
                self.pop_small(shard, guard, forced) || self.main_step(shard, guard, forced)
            }
            Victim::Main => {
                self.main_step(shard, guard, forced) || self.pop_small(shard, guard, forced)
            }
        }
    }

    /// Takes the small queue's oldest live entry and promotes or evicts it (`forced`: evicts it
    /// even if it was read). Entries that died while queued (replaced or removed since) free
    /// nothing: they are released on the way without counting as the step, so that a hot key's
    /// overwrites cannot use up an insert's eviction budget. One call pops at most
    /// [`policy::DEAD_PER_STEP`] entries and returns `false` if none of them was live (the caller
    /// then turns to main).
    fn pop_small(&self, shard: &Shard<Node<K, V>>, guard: &Guard, forced: bool) -> bool {
        let Some(small) = &shard.small else {
            return false;
        };
        for _ in 0..policy::DEAD_PER_STEP {
            let Some(ptr) = small.pop() else {
                return false;
            };
            let shared = Shared::from(ptr.cast_const());
            // SAFETY: a pointer in the queue is one of the node's two references, so the node is
            // alive, and popping made that reference ours.
            let node = unsafe { shared.deref() };
            self.sub_small_weight(shard, self.weigh(&node.key, &node.value));
            if !node.is_live(guard) {
                // SAFETY: we popped the queue's reference and do not use `node` after this.
                unsafe { node::release(shared, DEQUEUED, guard) };
                continue;
            }
            let meta = node.meta.load(Ordering::Relaxed);
            if self.is_expired(meta) {
                self.evict(node, EvictionCause::Expired, guard);
            } else if !forced
                && policy::small_exit(meta, self.over_capacity(shard)) == SmallExit::Promote
            {
                // Main judges the entry afresh: it must be read again there to be spared.
                while node.cool() > 0 {}
                self.promote(shard, shared, self.over_capacity(shard), guard);
                return true;
            } else if let Some(hash) = self.evict(node, EvictionCause::Evicted, guard) {
                self.ghost.insert(hash);
            }
            // SAFETY: we popped the queue's reference and do not use `node` after this.
            unsafe { node::release(shared, DEQUEUED, guard) };
            return true;
        }
        false
    }

    /// Places `node`, whose queue reference the caller holds, in the main CLOCK: in a free slot
    /// or, if `may_evict` (the cache is, or is about to be, over a bound), the slot of a cold
    /// victim the hand evicts. If the ring is full of live entries while the cache has room, the
    /// ring grows. Past a bounded number of steps it evicts whatever it meets.
    fn promote(
        &self,
        shard: &Shard<Node<K, V>>,
        node: Shared<'_, Node<K, V>>,
        may_evict: bool,
        guard: &Guard,
    ) {
        let Some(main) = &shard.main else { return };
        // SAFETY: the caller holds a queue reference, so the node is alive.
        unsafe { node.deref() }
            .meta
            .fetch_or(IN_MAIN, Ordering::Relaxed);
        let mut grown = false;
        for step in 0..policy::PROMOTE_STEPS {
            if step == policy::PROMOTE_STEPS / 2 && !may_evict {
                // Half the steps passed only live entries the cache has room for: the ring is
                // full, so it grows (if its count bound allows), and the hand looks on.
                match Self::grow_main(shard, main, node) {
                    Growth::Placed => return,
                    Growth::Grown => grown = true,
                    Growth::Full => {}
                }
            }
            let forced = step >= policy::PROMOTE_STEPS / 2 && !grown;
            let slot = main.advance();
            let current = slot.load(Ordering::Acquire);
            // SAFETY: a non-null slot holds a queue reference, so the node is alive; if another
            // hand takes it meanwhile, it is retired no earlier than `guard` drops.
            let vacated = current.is_null()
                || self.visit_main(unsafe { &*current }, may_evict, forced, guard);
            if vacated
                && slot
                    .compare_exchange(
                        current,
                        node.as_raw().cast_mut(),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
            {
                if !current.is_null() {
                    // SAFETY: our CAS took the slot's reference to `current` from the queue.
                    unsafe { node::release(Shared::from(current.cast_const()), DEQUEUED, guard) };
                }
                return;
            }
        }
        // Other hands kept winning the slots. A cache with room grows its ring once more rather
        // than lose the entry; otherwise the entry cannot be placed, so it is evicted.
        if !may_evict && matches!(Self::grow_main(shard, main, node), Growth::Placed) {
            return;
        }
        // SAFETY: the caller's reference keeps the node alive.
        let entry = unsafe { node.deref() };
        self.evict(entry, EvictionCause::Evicted, guard);
        // SAFETY: the node never entered main; we give up the caller's queue reference.
        unsafe { node::release(node, DEQUEUED, guard) };
    }

    /// Doubles `shard`'s main ring, unless it already has a slot for every entry the count
    /// bound admits, and places `node` (whose queue reference the caller holds) in one of the
    /// first new slots that no other hand has filled yet.
    fn grow_main(
        shard: &Shard<Node<K, V>>,
        main: &MainQueue<Node<K, V>>,
        node: Shared<'_, Node<K, V>>,
    ) -> Growth {
        let len = main.len();
        if len as u64 >= shard.max_entries {
            return Growth::Full;
        }
        if let Some(slots) = main.grow(len) {
            let placed = slots.iter().take(GROWN_SLOTS_TRIED).any(|slot| {
                slot.compare_exchange(
                    std::ptr::null_mut(),
                    node.as_raw().cast_mut(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            });
            if placed {
                return Growth::Placed;
            }
        }
        if main.len() > len {
            Growth::Grown
        } else {
            Growth::Full
        }
    }

    /// Moves the main CLOCK hand to the next live entry: an expired or cold one is evicted and its
    /// slot freed; a warm one is spared and cooled (`forced`: evicted all the same). Free slots
    /// and dead entries (whose slots it frees) free no capacity, so passing them does not end
    /// the step; it passes at most a few of them, or when `forced` up to a whole revolution: a
    /// ring sized for more entries than a weight bound admits is mostly free, and a forced step
    /// must still reach an entry. Returns `false` if it met no live entry.
    fn main_step(&self, shard: &Shard<Node<K, V>>, guard: &Guard, forced: bool) -> bool {
        let Some(main) = &shard.main else {
            return false;
        };
        let limit = if forced {
            main.len()
        } else {
            policy::FREE_SLOTS_PER_STEP
        };
        let mut passed = 0;
        loop {
            let slot = main.advance();
            let current = slot.load(Ordering::Acquire);
            if !current.is_null() {
                // SAFETY: as in `promote`.
                let occupant = unsafe { &*current };
                let live = occupant.is_live(guard);
                if !self.visit_main(occupant, true, forced, guard) {
                    return true;
                }
                if slot
                    .compare_exchange(
                        current,
                        std::ptr::null_mut(),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
                {
                    // SAFETY: our CAS took the slot's reference.
                    unsafe { node::release(Shared::from(current.cast_const()), DEQUEUED, guard) };
                }
                if live {
                    return true;
                }
            }
            passed += 1;
            if passed >= limit {
                return false;
            }
        }
    }

    /// The main hand passes `occupant` (see [`policy::main_visit`]). Returns whether its slot may
    /// be taken: the entry was already dead, or expired or was evicted just now.
    fn visit_main(
        &self,
        occupant: &Node<K, V>,
        may_evict: bool,
        forced: bool,
        guard: &Guard,
    ) -> bool {
        if !occupant.is_live(guard) {
            return true;
        }
        let meta = occupant.meta.load(Ordering::Relaxed);
        if self.is_expired(meta) {
            self.evict(occupant, EvictionCause::Expired, guard);
            return true;
        }
        match policy::main_visit(meta, may_evict, forced) {
            MainVisit::Leave => false,
            MainVisit::Spare => {
                occupant.cool();
                false
            }
            MainVisit::Evict => {
                self.evict(occupant, EvictionCause::Evicted, guard);
                true
            }
        }
    }

    /// Removes a live node from the table for the policy (eviction or expiry). Returns the key's
    /// hash if this call did it (`None` if someone removed or replaced the node first).
    fn evict(&self, node: &Node<K, V>, cause: EvictionCause, guard: &Guard) -> Option<u64> {
        if !node.mark_removed(guard) {
            return None;
        }
        self.account_removal(node, cause);
        let hash = self.hasher.hash_one(&node.key);
        self.table.purge_marked(self.table.bucket_of(hash), guard);
        Some(hash)
    }

    /// Bookkeeping for a node this thread just marked removed: counters, statistics, listener.
    fn account_removal(&self, node: &Node<K, V>, cause: EvictionCause) {
        let shard = self.shards.of_meta(node.meta.load(Ordering::Relaxed));
        shard.counters.entries.fetch_sub(1, Ordering::Relaxed);
        self.sub_weight(shard, self.weigh(&node.key, &node.value));
        match cause {
            EvictionCause::Evicted => self.stats.record(Event::Eviction),
            EvictionCause::Expired => self.stats.record(Event::Expiration),
            EvictionCause::Removed | EvictionCause::Replaced => {}
        }
        if let Some(listener) = &self.listener {
            listener(&node.key, &node.value, cause);
        }
    }
}

impl<K, V, S> Drop for Inner<K, V, S> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can reach the table; the queues are drained next.
        unsafe { self.table.free_linked() };
        for shard in self.shards.iter() {
            let small = shard
                .small
                .iter()
                .flat_map(|q| std::iter::from_fn(|| q.pop()));
            let main = shard.main.iter().flat_map(MainQueue::drain);
            for ptr in small.chain(main) {
                // SAFETY: every queued pointer is a node that the table walk skipped (it had no
                // DEQUEUED bit) and that was never retired (the queue still held a reference);
                // each node is in at most one queue slot.
                drop(unsafe { Owned::from_raw(ptr) });
            }
        }
    }
}

/// Iterator returned by [`Cache::iter`].
pub struct Iter<'a, K, V, S> {
    inner: &'a Inner<K, V, S>,
    bucket: usize,
    buffer: Vec<(K, V)>,
}

impl<K, V, S> Iterator for Iter<'_, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        loop {
            if let Some(entry) = self.buffer.pop() {
                return Some(entry);
            }
            if self.bucket >= self.inner.table.bucket_count() {
                return None;
            }
            let guard = epoch::pin();
            let inner = self.inner;
            let buffer = &mut self.buffer;
            inner.table.for_each_live(self.bucket, &guard, |node| {
                if !inner.is_expired(node.meta.load(Ordering::Relaxed)) {
                    buffer.push((node.key.clone(), node.value.clone()));
                }
            });
            self.bucket += 1;
        }
    }
}

#[cfg(all(test, not(strata_loom)))]
mod tests {
    use super::*;

    /// A hot key overwritten while the cache fills leaves a run of dead entries at the head of
    /// the small queue. One step releases a bounded number of them, not the whole run.
    #[test]
    fn a_small_queue_step_releases_a_bounded_number_of_dead_entries() {
        let cache = Cache::<u64, u64>::new(1000);
        let overwrites = 2 * policy::DEAD_PER_STEP;
        for i in 0..=overwrites as u64 {
            cache.insert(0, i);
        }
        let inner = &*cache.inner;
        let shard = inner.shards.of_hash(inner.hasher.hash_one(0u64));
        let small = shard
            .small
            .as_ref()
            .expect("a bounded cache has a small queue");
        // Every overwrite left its predecessor queued; the live entry is the newest.
        assert_eq!(small.len(), overwrites + 1);

        let guard = epoch::pin();
        assert!(
            !inner.pop_small(shard, &guard, false),
            "no live entry within the bound"
        );
        assert_eq!(small.len(), overwrites + 1 - policy::DEAD_PER_STEP);
        assert!(!inner.pop_small(shard, &guard, false));
        assert_eq!(small.len(), 1);
        // The next step reaches the live entry and promotes or evicts it: the queue is empty.
        assert!(inner.pop_small(shard, &guard, false));
        assert_eq!(small.len(), 0);
        assert_eq!(cache.get(&0), Some(overwrites as u64));
    }
}
