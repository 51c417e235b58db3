//! Single-flight loading: the `get_or_insert_with` family, one leader per key and its
//! followers sharing the leader's outcome. Every method here is a thin adapter over the one
//! leader/follower core in [`crate::load_core`]; the flights themselves live in
//! [`crate::loader`].

use std::borrow::{Borrow, Cow};
use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use crate::cache::Cache;
use crate::load_core::{certain, fallible, optional};
use crate::loader::Waiting;

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
    ///
    /// ```
    /// # use strata_engine::Cache;
    /// let cache = Cache::<u64, String>::new(100);
    /// assert_eq!(cache.get_or_insert_with(1, || "one".to_string()), "one");
    /// assert_eq!(cache.get_or_insert_with(1, || unreachable!("a hit")), "one");
    /// ```
    pub fn get_or_insert_with(&self, key: K, init: impl FnOnce() -> V) -> V {
        let hash = self.inner.hash(&key);
        let load = || Ok::<_, Infallible>(Some((init(), None)));
        certain(self.load_blocking(hash, Cow::Owned(key), false, load)).value
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with) with a fallible `init`: an error is
    /// returned to its caller and to every caller waiting on the same load (shared behind an
    /// `Arc`, as moka's `try_get_with` does), and nothing is cached; the next call loads again.
    /// A waiting caller whose error type differs from the loader's runs its own load instead.
    ///
    /// ```
    /// # use strata_engine::Cache;
    /// # use std::sync::Arc;
    /// let cache = Cache::<u64, u64>::new(100);
    /// assert_eq!(cache.try_get_or_insert_with(1, || Err("down")), Err(Arc::new("down")));
    /// assert_eq!(cache.try_get_or_insert_with(1, || Ok::<_, &str>(10)), Ok(10));
    /// ```
    pub fn try_get_or_insert_with<E>(
        &self,
        key: K,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        let hash = self.inner.hash(&key);
        let load = || init().map(|value| Some((value, None)));
        fallible(self.load_blocking(hash, Cow::Owned(key), false, load)).map(|got| got.value)
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with) with an `init` that may decline to
    /// produce a value (moka's `optionally_get_with`): `None` is returned to its caller and to
    /// every caller of this method waiting on the same load, nothing is cached, and the next call
    /// loads again. Callers of the other loaders waiting on it retry instead (one of them loads).
    ///
    /// ```
    /// # use strata_engine::Cache;
    /// let cache = Cache::<u64, u64>::new(100);
    /// assert_eq!(cache.optionally_get_or_insert_with(1, || None), None);
    /// assert!(!cache.contains_key(&1), "nothing cached");
    /// assert_eq!(cache.optionally_get_or_insert_with(1, || Some(10)), Some(10));
    /// assert_eq!(cache.get(&1), Some(10));
    /// ```
    pub fn optionally_get_or_insert_with(
        &self,
        key: K,
        init: impl FnOnce() -> Option<V>,
    ) -> Option<V> {
        let hash = self.inner.hash(&key);
        let load = || Ok::<_, Infallible>(init().map(|value| (value, None)));
        optional(self.load_blocking(hash, Cow::Owned(key), true, load)).map(|got| got.value)
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with), looking the key up by reference:
    /// a hit neither clones nor allocates the key; only a miss makes the owned key
    /// (`to_owned`) and loads as `get_or_insert_with` does.
    ///
    /// ```
    /// # use strata_engine::Cache;
    /// let cache = Cache::<String, usize>::new(100);
    /// assert_eq!(cache.get_or_insert_with_by_ref("alpha", || 5), 5); // a miss makes the String
    /// assert_eq!(cache.get_or_insert_with_by_ref("alpha", || unreachable!()), 5); // a hit: none
    /// ```
    pub fn get_or_insert_with_by_ref<Q>(&self, key: &Q, init: impl FnOnce() -> V) -> V
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        let load = || Ok::<_, Infallible>(Some((init(), None)));
        certain(self.load_by_ref_blocking(key, false, load)).value
    }

    /// The fallible form of [`get_or_insert_with_by_ref`](Self::get_or_insert_with_by_ref),
    /// sharing errors as [`try_get_or_insert_with`](Self::try_get_or_insert_with) does.
    pub fn try_get_or_insert_with_by_ref<Q, E>(
        &self,
        key: &Q,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, Arc<E>>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
        E: Send + Sync + 'static,
    {
        let load = || init().map(|value| Some((value, None)));
        fallible(self.load_by_ref_blocking(key, false, load)).map(|got| got.value)
    }

    /// The async form of [`get_or_insert_with`](Self::get_or_insert_with), for any executor.
    /// Waiting callers are woken through their task's waker; if the loading future is dropped
    /// before it finishes, one of the waiting callers takes over. Sync and async callers of one
    /// key share flights: either kind may wait for the other.
    pub async fn get_or_insert_with_async<F>(&self, key: K, init: F) -> V
    where
        F: Future<Output = V>,
    {
        let hash = self.inner.hash(&key);
        let load = || async { Ok::<_, Infallible>(Some((init.await, None))) };
        let loaded = self.load(hash, Cow::Owned(key), Waiting::Wake, false, load);
        certain(loaded.await).value
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
        let hash = self.inner.hash(&key);
        let load = || async { init.await.map(Some) };
        let loaded = self.load(hash, Cow::Owned(key), Waiting::Wake, false, load);
        fallible(loaded.await).map(|got| got.value)
    }

    /// The async form of
    /// [`optionally_get_or_insert_with`](Self::optionally_get_or_insert_with): `None` is shared
    /// with the callers of the `optionally_` loaders waiting on the same load, and not cached.
    pub async fn optionally_get_or_insert_with_async<F>(&self, key: K, init: F) -> Option<V>
    where
        F: Future<Output = Option<V>>,
    {
        let hash = self.inner.hash(&key);
        let load = || async { Ok::<_, Infallible>(init.await.map(|value| (value, None))) };
        let loaded = self.load(hash, Cow::Owned(key), Waiting::Wake, true, load);
        optional(loaded.await).map(|got| got.value)
    }

    /// The async form of [`try_get_or_insert_with_by_ref`](Self::try_get_or_insert_with_by_ref):
    /// a hit neither clones nor allocates the key.
    pub async fn try_get_or_insert_with_by_ref_async<Q, F, E>(
        &self,
        key: &Q,
        init: F,
    ) -> Result<V, Arc<E>>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
        F: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        let load = || async { init.await.map(|value| Some((value, None))) };
        let loaded = self.load_by_ref(key, false, load);
        fallible(loaded.await).map(|got| got.value)
    }
}
