//! [`Iter`], the weakly consistent iterator of [`Cache::iter`](crate::Cache::iter).

use std::hash::{BuildHasher, Hash};

use crate::inner::Inner;
use crate::sync::epoch::{self};

/// Iterator returned by [`Cache::iter`].
pub struct Iter<'a, K, V, S> {
    pub(crate) inner: &'a Inner<K, V, S>,
    /// The bucket whose run comes next, `None` once the walk reached the end.
    pub(crate) run: Option<usize>,
    pub(crate) buffer: Vec<(K, V)>,
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
            let bucket = self.run?;
            let guard = epoch::pin();
            let inner = self.inner;
            let buffer = &mut self.buffer;
            self.run = inner.table.for_each_live_in_run(bucket, &guard, |node| {
                if !inner.is_expired(node) {
                    buffer.push((node.key().clone(), node.value().clone()));
                }
            });
        }
    }
}
