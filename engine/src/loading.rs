//! Single-flight loading: the `get_or_insert_with` family, one leader per key and its
//! followers sharing the leader's outcome (the flights themselves live in [`crate::loader`]).

use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use crate::cache::Cache;
use crate::inner::{Mode, Stored};
use crate::loader::{FlightWait, Leader, Outcome, Role, SharedError};
use crate::stats::Event;
use crate::sync::epoch::{self};

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
        let hash = inner.hash(&key);
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
        let hash = inner.hash(&key);
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
        let stored = match inner.insert_as(hash, key, value.clone(), ttl, Mode::Load(&leader)) {
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
        let value = inner
            .read(hash, key, &guard, true)
            .map(|n| n.value().clone());
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
            .map(|n| n.value().clone())
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
