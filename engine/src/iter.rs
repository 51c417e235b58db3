//! [`Iter`] and [`Keys`], the weakly consistent iterators of [`Cache::iter`](crate::Cache::iter)
//! and [`Cache::keys`](crate::Cache::keys): both walk the table one run (a bucket, or in the split-ordered list the entries between two bucket sentinels) at a time, copying
//! out what they yield, so that no epoch stays pinned between buckets.

use std::hash::{BuildHasher, Hash};

use crate::inner::Inner;
use crate::sync::epoch::{self};

/// Iterator returned by [`Cache::iter`](crate::Cache::iter): clones of the live entries.
pub struct Iter<'a, K, V, S> {
    walk: Walk<'a, K, V, S, (K, V)>,
}

/// Iterator returned by [`Cache::keys`](crate::Cache::keys): clones of the live entries' keys.
pub struct Keys<'a, K, V, S> {
    walk: Walk<'a, K, V, S, K>,
}

impl<'a, K, V, S> Iter<'a, K, V, S> {
    pub(crate) fn new(inner: &'a Inner<K, V, S>) -> Self {
        Iter {
            walk: Walk::new(inner),
        }
    }
}

impl<'a, K, V, S> Keys<'a, K, V, S> {
    pub(crate) fn new(inner: &'a Inner<K, V, S>) -> Self {
        Keys {
            walk: Walk::new(inner),
        }
    }
}

impl<K, V, S> Iterator for Iter<'_, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        self.walk.next(|key, value| (key.clone(), value.clone()))
    }
}

impl<K, V, S> Iterator for Keys<'_, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    type Item = K;

    fn next(&mut self) -> Option<K> {
        self.walk.next(|key, _| key.clone())
    }
}

/// The bucket-by-bucket walk under both iterators, yielding `copy` of each live entry.
struct Walk<'a, K, V, S, T> {
    inner: &'a Inner<K, V, S>,
    /// The bucket whose run comes next, `None` once the walk reached the end.
    run: Option<usize>,
    buffer: Vec<T>,
}

impl<'a, K, V, S, T> Walk<'a, K, V, S, T> {
    fn new(inner: &'a Inner<K, V, S>) -> Self {
        Walk {
            inner,
            run: Some(0),
            buffer: Vec::new(),
        }
    }
}

impl<K, V, S, T> Walk<'_, K, V, S, T>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    fn next(&mut self, copy: impl Fn(&K, &V) -> T) -> Option<T> {
        loop {
            if let Some(item) = self.buffer.pop() {
                return Some(item);
            }
            let bucket = self.run?;
            let guard = epoch::pin();
            let inner = self.inner;
            let buffer = &mut self.buffer;
            self.run = inner.table.for_each_live_in_run(bucket, &guard, |node| {
                if !inner.is_expired(node) {
                    buffer.push(copy(node.key(), node.value()));
                }
            });
        }
    }
}
