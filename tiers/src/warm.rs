//! Warming: filling the cache from a source before traffic arrives.

use futures_util::stream::{self, Stream, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::cache::TieredCache;
use crate::codec::Codec;
use crate::error::CacheError;

/// What a warm-up did.
#[derive(Debug, Default)]
pub struct WarmReport {
    /// Entries written to every tier.
    pub loaded: u64,
    /// Entries written to L1 and some, not all, lower tiers.
    pub partial: u64,
    /// Entries refused (too large, unencodable), with the first few errors.
    pub refused: u64,
    /// Up to ten of the refusals, for the log.
    pub errors: Vec<(String, CacheError)>,
}

impl<V, C> TieredCache<V, C>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    /// Writes every `(key, value)` the stream yields to every tier, at most `concurrency`
    /// writes at a time, and reports how many landed.
    pub async fn warm<S, K>(&self, source: S, concurrency: usize) -> WarmReport
    where
        S: Stream<Item = (K, V)>,
        K: AsRef<str>,
    {
        let loaded = AtomicU64::new(0);
        let partial = AtomicU64::new(0);
        let refused = AtomicU64::new(0);
        let errors = Mutex::new(Vec::new());
        source
            .for_each_concurrent(concurrency.max(1), |(key, value)| {
                let (loaded, partial, refused, errors) = (&loaded, &partial, &refused, &errors);
                async move {
                    let key = key.as_ref();
                    match self.set(key, value).await {
                        Ok(report) if report.is_complete() => loaded.fetch_add(1, Relaxed),
                        Ok(_) => partial.fetch_add(1, Relaxed),
                        Err(error) => {
                            let mut errors = errors.lock().unwrap_or_else(|p| p.into_inner());
                            if errors.len() < 10 {
                                errors.push((key.to_owned(), error));
                            }
                            refused.fetch_add(1, Relaxed)
                        }
                    };
                }
            })
            .await;
        WarmReport {
            loaded: loaded.into_inner(),
            partial: partial.into_inner(),
            refused: refused.into_inner(),
            errors: errors.into_inner().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// [`warm`](Self::warm) from an iterator.
    pub async fn warm_from_iter<I, K>(&self, source: I, concurrency: usize) -> WarmReport
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
    {
        self.warm(stream::iter(source), concurrency).await
    }
}
