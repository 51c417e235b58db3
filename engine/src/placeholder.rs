//! The placeholder guard (quick_cache's `get_value_or_guard`): a caller that misses gets a
//! [`PlaceholderGuard`] instead of running a loader closure, and is the leader of the key's
//! flight until it inserts a value or drops the guard. Concurrent callers of the same key, through
//! any loader or another `get_value_or_guard`, wait for it as for any other leader.

use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use crate::cache::Cache;
use crate::load_core::{run_blocking, Found};
use crate::loader::{Leader, Waiting};

/// The lead of a key's load, held by the caller of [`Cache::get_value_or_guard`] that missed.
///
/// [`insert`](Self::insert) publishes the value to the waiting callers with the rules of a load
/// (see [`Cache::get_or_insert_with`]): it is inserted only where the key is absent (an insert
/// made meanwhile stays), and not at all if a `remove`, `clear` or `retain` of the key ran
/// meanwhile; the waiters get the value either way. Dropping the guard without inserting
/// releases the waiters: they retry, and one of them leads the next load.
///
/// While holding a guard, do not load the same key from this cache on the same thread (a
/// loader, `get_value_or_guard`, the entry API): that call would wait for the guard forever.
#[must_use = "dropping the guard at once abandons the load; insert a value with `insert`"]
pub struct PlaceholderGuard<'a, K: Hash + Eq, V: Clone, S = ahash::RandomState> {
    cache: &'a Cache<K, V, S>,
    hash: u64,
    key: K,
    leader: Leader<'a, K, V>,
}

impl<K: Hash + Eq + fmt::Debug, V: Clone, S> fmt::Debug for PlaceholderGuard<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlaceholderGuard")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<K, V, S> PlaceholderGuard<'_, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The key this guard holds the load of.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// Inserts `value` with the cache's default time to live, and hands it to every caller
    /// waiting on this key. Returns whether it went into the cache as the key's entry: `false`
    /// if an insert made since the guard was taken is kept, a removal made since won, or the
    /// value is heavier than `max_entry_weight`.
    pub fn insert(self, value: V) -> bool {
        let ttl = self.cache.inner.time_to_live;
        self.publish(value, ttl)
    }

    /// Like [`insert`](Self::insert), with its own time to live.
    pub fn insert_with_ttl(self, value: V, ttl: Duration) -> bool {
        self.publish(value, Some(ttl))
    }

    fn publish(self, value: V, ttl: Option<Duration>) -> bool {
        let PlaceholderGuard {
            cache,
            hash,
            key,
            leader,
        } = self;
        cache.store_loaded(hash, key, value, ttl, leader).fresh
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The value for `key`, or, on a miss, a [`PlaceholderGuard`] that makes the caller the
    /// leader of the key's load (quick_cache's `get_value_or_guard`, without its timeout). A
    /// hit neither clones nor allocates the key. While another caller holds the guard (or runs a
    /// loader for the key), this call blocks until that load settles, and returns its value,
    /// or, if the guard was dropped without a value, retries (and may get the guard).
    ///
    /// ```
    /// # use strata_engine::Cache;
    /// let cache = Cache::<String, u64>::new(100);
    /// match cache.get_value_or_guard("a") {
    ///     Ok(_) => unreachable!("empty cache"),
    ///     Err(guard) => assert!(guard.insert(1)),
    /// }
    /// assert_eq!(cache.get_value_or_guard("a").ok(), Some(1));
    /// ```
    pub fn get_value_or_guard<Q>(&self, key: &Q) -> Result<V, PlaceholderGuard<'_, K, V, S>>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        let hash = self.inner.hash(key);
        match self.hit_by_ref(hash, key) {
            Some(value) => Ok(value),
            None => run_blocking(self.value_or_lead(hash, key.to_owned(), Waiting::Block)),
        }
    }

    /// The async form of [`get_value_or_guard`](Self::get_value_or_guard): waiting for another
    /// caller's load is a future woken when it settles.
    pub async fn get_value_or_guard_async<Q>(
        &self,
        key: &Q,
    ) -> Result<V, PlaceholderGuard<'_, K, V, S>>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        let hash = self.inner.hash(key);
        match self.hit_by_ref(hash, key) {
            Some(value) => Ok(value),
            None => {
                self.value_or_lead(hash, key.to_owned(), Waiting::Wake)
                    .await
            }
        }
    }

    /// After a miss: the value of the key's flight (or of the cache), or the lead of a new one.
    async fn value_or_lead(
        &self,
        hash: u64,
        key: K,
        waiting: Waiting,
    ) -> Result<V, PlaceholderGuard<'_, K, V, S>> {
        // No error type and no "nothing" to take from a flight: after a failed or declined load
        // this caller retries, and may lead.
        match self
            .find_or_lead::<Infallible>(hash, &key, waiting, false)
            .await
        {
            Found::Done(Ok(Some(value))) => Ok(value),
            Found::Done(Ok(None)) => unreachable!("None is taken only when accepted"),
            Found::Done(Err(never)) => match *never {},
            Found::Lead(leader) => Err(PlaceholderGuard {
                cache: self,
                hash,
                key,
                leader,
            }),
        }
    }
}
