//! The entry API: [`Cache::entry`] and [`Cache::entry_by_ref`] select a key, and their
//! `or_insert*` methods return the key's [`Entry`], saying whether this call's value went in.
//! Every method is a single-flight load through [`crate::load_core`].

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use crate::cache::Cache;
use crate::load_core::Got;

/// A key and its value, as returned by the entry API's `or_insert*` methods.
///
/// ```
/// # use strata_engine::Cache;
/// let cache = Cache::<u64, u64>::new(100);
/// let entry = cache.entry(1).or_insert(10);
/// assert!(entry.is_fresh(), "this call inserted it");
/// let entry = cache.entry(1).or_insert(11);
/// assert!(!entry.is_fresh());
/// assert_eq!((*entry.key(), *entry.value()), (1, 10));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<K, V> {
    key: K,
    value: V,
    fresh: bool,
}

impl<K, V> Entry<K, V> {
    /// The entry's key.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The entry's value: the one the cache held, or the one this call loaded.
    pub fn value(&self) -> &V {
        &self.value
    }

    /// The value, consuming the entry.
    pub fn into_value(self) -> V {
        self.value
    }

    /// Whether this call's value was inserted as the key's entry (moka's meaning): `false` when
    /// the value was already cached, came from another caller's load, or was loaded by this
    /// call but not stored (too heavy, an insert or a removal of the key won during the load).
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }
}

/// The entry API, selecting a key by value; see [`Cache::entry`].
#[must_use = "an entry selector does nothing until one of its `or_` methods is called"]
pub struct OwnedKeyEntrySelector<'a, K, V, S> {
    cache: &'a Cache<K, V, S>,
    key: K,
    hash: u64,
}

/// The entry API, selecting a key by reference; see [`Cache::entry_by_ref`].
#[must_use = "an entry selector does nothing until one of its `or_` methods is called"]
pub struct RefKeyEntrySelector<'a, Q: ?Sized, K, V, S> {
    cache: &'a Cache<K, V, S>,
    key: &'a Q,
    hash: u64,
}

impl<K: fmt::Debug, V, S> fmt::Debug for OwnedKeyEntrySelector<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedKeyEntrySelector")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<Q: fmt::Debug + ?Sized, K, V, S> fmt::Debug for RefKeyEntrySelector<'_, Q, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefKeyEntrySelector")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// Selects `key` for the entry API (moka's `entry`): its `or_insert*` methods return the
    /// cached value, or insert one, single-flight like
    /// [`get_or_insert_with`](Self::get_or_insert_with).
    ///
    /// ```
    /// # use strata_engine::Cache;
    /// let cache = Cache::<&str, u64>::new(100);
    /// let entry = cache.entry("a").or_insert_with(|| 1);
    /// assert!(entry.is_fresh());
    /// assert_eq!(entry.into_value(), 1);
    /// assert_eq!(cache.entry("b").or_optionally_insert_with(|| None), None);
    /// ```
    pub fn entry(&self, key: K) -> OwnedKeyEntrySelector<'_, K, V, S> {
        let hash = self.inner.hash(&key);
        OwnedKeyEntrySelector {
            cache: self,
            key,
            hash,
        }
    }

    /// Selects a key by reference for the entry API (moka's `entry_by_ref`). The returned
    /// [`Entry`] owns its key, so every call makes one owned key (`to_owned`), on a hit too; use
    /// [`get_or_insert_with_by_ref`](Self::get_or_insert_with_by_ref) to load without that.
    ///
    /// ```
    /// # use strata_engine::Cache;
    /// let cache = Cache::<String, u64>::new(100);
    /// let entry = cache.entry_by_ref("a").or_insert(1);
    /// assert_eq!(entry.key(), "a");
    /// assert!(entry.is_fresh());
    /// ```
    pub fn entry_by_ref<'a, Q>(&'a self, key: &'a Q) -> RefKeyEntrySelector<'a, Q, K, V, S>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    {
        RefKeyEntrySelector {
            cache: self,
            key,
            hash: self.inner.hash(key),
        }
    }
}

/// One load for an entry selector: `init` as the leader, an [`Entry`] for every caller.
fn load_entry<K, V, S, E>(
    cache: &Cache<K, V, S>,
    hash: u64,
    key: K,
    accept_none: bool,
    init: impl FnOnce() -> Result<Option<V>, E>,
) -> Result<Option<Entry<K, V>>, Arc<E>>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
    E: Send + Sync + 'static,
{
    // Borrowed: the key is cloned only if this call stores its value.
    let load = || init().map(|value| value.map(|value| (value, None)));
    let got = cache.load_blocking(hash, Cow::Borrowed(&key), accept_none, load)?;
    Ok(got.map(|Got { value, fresh }| Entry { key, value, fresh }))
}

/// The `or_` methods, the same for both selectors, each going through the selector's own
/// `load(accept_none, init)`.
macro_rules! or_methods {
    () => {
        /// The cached value, or `default` inserted (through the key's flight: a load in the
        /// air is waited for, and its value returned instead).
        pub fn or_insert(self, default: V) -> Entry<K, V> {
            self.or_insert_with(|| default)
        }

        /// The cached value, or `V::default()` inserted, as [`or_insert`](Self::or_insert).
        pub fn or_default(self) -> Entry<K, V>
        where
            V: Default,
        {
            self.or_insert_with(V::default)
        }

        /// The cached value, or the value of `init` inserted: single-flight, as
        /// [`Cache::get_or_insert_with`].
        pub fn or_insert_with(self, init: impl FnOnce() -> V) -> Entry<K, V> {
            match self.load(false, || Ok::<_, std::convert::Infallible>(Some(init()))) {
                Ok(Some(entry)) => entry,
                Ok(None) => unreachable!("only optionally_ loaders decline"),
                Err(never) => match *never {},
            }
        }

        /// The cached value, or the value of a fallible `init` inserted; an error is shared
        /// with every caller waiting on the same load, as [`Cache::try_get_or_insert_with`].
        pub fn or_try_insert_with<E>(
            self,
            init: impl FnOnce() -> Result<V, E>,
        ) -> Result<Entry<K, V>, Arc<E>>
        where
            E: Send + Sync + 'static,
        {
            self.load(false, || init().map(Some))
                .map(|entry| entry.expect("only optionally_ loaders decline"))
        }

        /// The cached value, or the value of `init` inserted if it yields one; `None` is shared
        /// and not cached, as [`Cache::optionally_get_or_insert_with`].
        pub fn or_optionally_insert_with(
            self,
            init: impl FnOnce() -> Option<V>,
        ) -> Option<Entry<K, V>> {
            match self.load(true, || Ok::<_, std::convert::Infallible>(init())) {
                Ok(entry) => entry,
                Err(never) => match *never {},
            }
        }
    };
}

impl<K, V, S> OwnedKeyEntrySelector<'_, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    or_methods!();

    fn load<E: Send + Sync + 'static>(
        self,
        accept_none: bool,
        init: impl FnOnce() -> Result<Option<V>, E>,
    ) -> Result<Option<Entry<K, V>>, Arc<E>> {
        load_entry(self.cache, self.hash, self.key, accept_none, init)
    }
}

impl<Q, K, V, S> RefKeyEntrySelector<'_, Q, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static + Borrow<Q>,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
    Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
{
    or_methods!();

    fn load<E: Send + Sync + 'static>(
        self,
        accept_none: bool,
        init: impl FnOnce() -> Result<Option<V>, E>,
    ) -> Result<Option<Entry<K, V>>, Arc<E>> {
        // The entry owns its key: made on a hit too.
        load_entry(
            self.cache,
            self.hash,
            self.key.to_owned(),
            accept_none,
            init,
        )
    }
}
