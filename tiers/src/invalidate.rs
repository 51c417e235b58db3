//! Invalidations: `delete`, `invalidate_pattern`, `clear`, and invalidations made by other
//! processes that a tier delivers (or the application applies) to this process's L1.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

use futures_util::future::join_all;
use strata_tier::{Invalidation, InvalidationSink, KeyPattern};

use crate::cache::{failure, failures, Shared, TieredCache};
use crate::codec::Codec;
use crate::error::CacheError;
use crate::layer::Layer;
use crate::reports::InvalidationReport;

/// Above this many L1 entries, a pattern sweep of L1 runs on the blocking pool rather than on
/// the runtime's worker thread.
const INLINE_SWEEP_LIMIT: usize = 4096;

impl<V, C> TieredCache<V, C>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    /// Removes `key` from every tier. Returns whether any tier held it.
    ///
    /// If a tier fails to delete, the call returns [`CacheError::Invalidation`] naming it,
    /// and that tier skips the key for reads until a later write or delete of it succeeds
    /// there: the old value is not served from it in the meantime. Retry to clean it up.
    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let shared = &*self.shared;
        let write = shared.fences.begin_write(key).await;
        shared.flights.detach(key);
        let mut found = shared.l1.remove(key).is_some();
        let results = join_all(shared.layers.iter().map(|layer| layer.delete(key))).await;
        if !write.finish().await {
            self.fills_unsettled(key);
        }
        // A load that began during the delete may have read the old value from a tier not yet
        // cleaned: later callers must not join it.
        shared.flights.detach(key);
        let mut failures = Vec::new();
        for (layer, result) in shared.layers.iter().zip(results) {
            match result {
                Ok(removed) => found |= removed,
                Err(error) => failures.push(failure(layer, error)),
            }
        }
        if failures.is_empty() {
            Ok(found)
        } else {
            Err(CacheError::Invalidation(failures))
        }
    }

    /// Removes many keys from every tier; each tier gets the whole batch in one call
    /// ([`Tier::delete_many`](crate::Tier::delete_many)). Fails like [`delete`](Self::delete)
    /// if any tier fails any key.
    pub async fn delete_many(&self, keys: &[&str]) -> Result<u64, CacheError> {
        crate::batch::delete_many(self, keys).await
    }

    /// Removes every key matching `pattern` (Redis glob rules: `user:*`, `h?llo`, `id:[0-9]`;
    /// see [`KeyPattern`]) from every tier, and no other key. A literal pattern is a
    /// [`delete`](Self::delete); a prefix pattern (`user:*`) compares prefixes without
    /// allocating; a large L1 is swept on the blocking pool, not on the runtime's worker.
    pub async fn invalidate_pattern(
        &self,
        pattern: &str,
    ) -> Result<InvalidationReport, CacheError> {
        let pattern = KeyPattern::new(pattern)?;
        let shared = &*self.shared;
        if pattern.is_literal() {
            let key = pattern.literal_prefix();
            let in_l1 = shared.l1.contains_key(key);
            self.delete(key).await?;
            return Ok(InvalidationReport {
                l1: u64::from(in_l1),
                tiers: Vec::new(),
            });
        }
        let fence = shared.fences.begin_pattern(Some(pattern.clone()));
        shared.flights.detach_matching(Some(&pattern));
        let l1 = sweep_l1(&self.shared, &pattern).await;
        let results = join_all(
            shared
                .layers
                .iter()
                .map(|layer| layer.delete_matching(&pattern)),
        )
        .await;
        if !fence.finish().await {
            shared
                .layers
                .iter()
                .for_each(|layer| layer.mark_stale_matching(Some(&pattern)));
        }
        shared.flights.detach_matching(Some(&pattern));
        let mut report = InvalidationReport {
            l1,
            tiers: Vec::new(),
        };
        let mut failures = Vec::new();
        for (layer, result) in shared.layers.iter().zip(results) {
            match result {
                Ok(removed) => report.tiers.push((layer.name().to_owned(), removed)),
                Err(error) => failures.push(failure(layer, error)),
            }
        }
        if failures.is_empty() {
            Ok(report)
        } else {
            Err(CacheError::Invalidation(failures))
        }
    }

    /// Empties every tier. A tier that fails to clear is reported and skipped for every read
    /// until a later `clear` succeeds there.
    pub async fn clear(&self) -> Result<(), CacheError> {
        let shared = &*self.shared;
        let fence = shared.fences.begin_pattern(None);
        shared.flights.detach_matching(None);
        shared.l1.clear();
        let results = join_all(shared.layers.iter().map(Layer::clear)).await;
        if !fence.finish().await {
            shared
                .layers
                .iter()
                .for_each(|layer| layer.mark_stale_matching(None));
        }
        shared.flights.detach_matching(None);
        failures(&shared.layers, results).map_err(CacheError::Invalidation)
    }
}

/// Removes L1's entries matching `pattern`; on the blocking pool when L1 is large.
async fn sweep_l1<V, C>(shared: &Arc<Shared<V, C>>, pattern: &KeyPattern) -> u64
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    if shared.l1.len() <= INLINE_SWEEP_LIMIT {
        return remove_matching_l1(shared, pattern);
    }
    let owned = Arc::clone(shared);
    let moved = pattern.clone();
    match tokio::task::spawn_blocking(move || remove_matching_l1(&owned, &moved)).await {
        Ok(removed) => removed,
        // The blocking pool is gone (the runtime is shutting down): sweep here.
        Err(_) => remove_matching_l1(shared, pattern),
    }
}

fn remove_matching_l1<V, C>(shared: &Shared<V, C>, pattern: &KeyPattern) -> u64
where
    V: Clone + Send + Sync + 'static,
{
    let mut removed = 0u64;
    shared.l1.retain(|key, _| {
        let hit = pattern.matches(key);
        removed += u64::from(hit);
        !hit
    });
    removed
}

/// Applies an invalidation made elsewhere to L1 only, through the fences.
pub(crate) fn apply_remote<V, C>(shared: &Shared<V, C>, event: &Invalidation)
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    shared.remote_invalidations.fetch_add(1, Relaxed);
    match event {
        Invalidation::Key(key) => {
            let write = shared.fences.begin_local_write(key);
            shared.flights.detach(key);
            shared.l1.remove(key.as_str());
            drop(write);
        }
        Invalidation::Pattern(pattern) => {
            let fence = shared.fences.begin_pattern(Some(pattern.clone()));
            shared.flights.detach_matching(Some(pattern));
            remove_matching_l1(shared, pattern);
            drop(fence);
        }
        other => {
            if *other != Invalidation::Clear {
                // A kind this build does not know: the safe reading is "everything".
                tracing::warn!(event = %other, "unknown invalidation: clearing L1");
            }
            let fence = shared.fences.begin_pattern(None);
            shared.flights.detach_matching(None);
            shared.l1.clear();
            drop(fence);
        }
    }
}

/// What a tier's invalidation feed calls: applies each event to the cache's L1, for as long as
/// the cache lives.
pub(crate) struct L1Sink<V, C> {
    pub(crate) shared: Weak<Shared<V, C>>,
}

impl<V, C> InvalidationSink for L1Sink<V, C>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    fn invalidate(&self, event: Invalidation) {
        if let Some(shared) = self.shared.upgrade() {
            apply_remote(&shared, &event);
        }
    }
}
