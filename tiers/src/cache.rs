//! `TieredCache`: the L1 engine in front of an ordered stack of lower tiers.

use std::collections::BTreeMap;
use std::error::Error;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::join_all;
use strata_engine::{Cache, CacheStats};
use strata_tier::{Health, KeyPattern, Lookup};

use crate::codec::Codec;
use crate::epochs::WriteEpochs;
use crate::error::{CacheError, TierFailure};
use crate::frame::{self, FrameOptions};
use crate::layer::{capped, Layer};
use crate::tier_stats::TierStats;

/// A multi-tier cache: reads go L1 → tier 1 → tier 2 …, hits in a lower tier are promoted
/// into L1 and every tier above with their remaining TTL, writes go through to every tier.
///
/// Cheap to clone (an `Arc`); share one per process. Values live in L1 as `V` (so use
/// `Arc<T>` for values that are expensive to clone) and in lower tiers as framed bytes made by
/// the codec `C` ([`Postcard`](crate::Postcard) for serde types, [`RawBytes`](crate::RawBytes)
/// for [`BytesCache`](crate::BytesCache)).
///
/// All async methods need a Tokio runtime (they use its timer for per-tier timeouts).
pub struct TieredCache<V, C> {
    pub(crate) shared: Arc<Shared<V, C>>,
}

impl<V, C> Clone for TieredCache<V, C> {
    fn clone(&self) -> Self {
        TieredCache {
            shared: Arc::clone(&self.shared),
        }
    }
}

pub(crate) struct Shared<V, C> {
    pub(crate) l1: Cache<String, V>,
    pub(crate) layers: Vec<Layer>,
    pub(crate) codec: C,
    pub(crate) frame: FrameOptions,
    pub(crate) max_value_size: usize,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) memory_ttl: Option<Duration>,
    pub(crate) epochs: WriteEpochs,
    pub(crate) lower_hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) loads: AtomicU64,
}

/// Where a write goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteTarget {
    /// L1 and every lower tier (write-through). The default.
    #[default]
    All,
    /// This process's L1 only.
    L1Only,
    /// Every lower tier, not L1 (for values this process will not read soon).
    SkipL1,
}

/// Per-call choices for [`TieredCache::set_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SetOptions {
    ttl: Option<Duration>,
    target: WriteTarget,
}

impl SetOptions {
    /// The entry's time to live (capped in each tier by that tier's own TTL). Without one, the
    /// cache's `default_ttl` applies.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Where the write goes.
    pub fn target(mut self, target: WriteTarget) -> Self {
        self.target = target;
        self
    }
}

/// What a write did in the lower tiers. A failed tier write is counted and logged, not an
/// error: the value is still cached in the tiers that took it. Check
/// [`is_complete`](Self::is_complete) if a write must reach every tier.
#[derive(Debug, Default)]
#[must_use = "a write may have failed in some tiers"]
pub struct WriteReport {
    /// Tiers that took the write.
    pub written: Vec<String>,
    /// Tiers that did not, and why.
    pub failed: Vec<TierFailure>,
}

impl WriteReport {
    /// Whether every tier written to took the write.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// How many entries an invalidation removed, per tier, where tiers can tell.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InvalidationReport {
    /// Entries removed from this process's L1.
    pub l1: u64,
    /// Entries each lower tier reported removing.
    pub tiers: Vec<(String, u64)>,
}

/// Every level's health: the seed's `{memory, redis, disk}` map, keyed by tier name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// `memory` for L1, then each lower tier by name.
    pub tiers: BTreeMap<String, Health>,
}

impl HealthReport {
    /// Whether every tier is healthy.
    pub fn is_healthy(&self) -> bool {
        self.tiers.values().all(|h| *h == Health::Healthy)
    }

    /// A JSON object mapping each tier to `healthy`, `degraded: …` or `down: …`.
    pub fn to_json(&self) -> serde_json::Value {
        self.tiers
            .iter()
            .map(|(name, health)| (name.clone(), serde_json::Value::String(health.to_string())))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// Counters for the whole stack and each tier.
#[derive(Debug, Clone)]
pub struct TieredStats {
    /// The L1 engine's own counters.
    pub l1: CacheStats,
    /// Reads that missed L1 and hit a lower tier.
    pub lower_hits: u64,
    /// Reads that found nothing in any tier.
    pub misses: u64,
    /// Loader runs by `get_or_load`.
    pub loads: u64,
    /// Each lower tier, top to bottom.
    pub tiers: Vec<TierStats>,
}

impl TieredStats {
    /// Reads answered by some tier over all reads.
    pub fn hit_ratio(&self) -> f64 {
        let hits = self.l1.hits + self.lower_hits;
        let total = hits + self.misses;
        if total == 0 {
            0.0
        } else {
            hits as f64 / total as f64
        }
    }
}

impl<V, C> TieredCache<V, C>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    /// The value under `key`, from the first tier that has it. A miss in every tier is `None`;
    /// a failing tier is skipped (its read counts as degraded), never an error.
    pub async fn get(&self, key: &str) -> Option<V> {
        let shared = &*self.shared;
        if let Some(value) = shared.l1.get(key) {
            return Some(value);
        }
        if shared.layers.is_empty() {
            shared.misses.fetch_add(1, Relaxed);
            return None;
        }
        let epoch = shared.epochs.of(key);
        let seen = epoch.read();
        let Some((value, remaining)) = self.read_lower(key).await else {
            shared.misses.fetch_add(1, Relaxed);
            return None;
        };
        // Fill L1 only if no write to the key began since `seen`, and undo the fill if one
        // began meanwhile: a writer bumps the epoch, writes L1, writes the tiers, bumps again
        // and writes L1 again, so its L1 write lands after any fill that passed the check.
        if epoch.read() == seen {
            let _ = self.insert_l1(key.to_owned(), value.clone(), remaining);
            if epoch.read() != seen {
                shared.l1.remove(key);
            }
        }
        Some(value)
    }

    /// Whether any tier holds `key` (reads through, like [`get`](Self::get)).
    pub async fn contains_key(&self, key: &str) -> bool {
        self.get(key).await.is_some()
    }

    /// The value under `key`, or `loader`'s value, which is then written to every tier.
    ///
    /// Single-flight across the whole stack: concurrent callers in this process that miss the
    /// same key share one lower-tier lookup and one loader run; the others wait for it. If the
    /// loader fails, its caller gets [`CacheError::Loader`], nothing is cached, and a waiting
    /// caller runs its own loader. If the caller running the loader is cancelled, a waiting
    /// caller takes over.
    pub async fn get_or_load<F, Fut, E>(&self, key: &str, loader: F) -> Result<V, CacheError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn Error + Send + Sync + 'static>>,
    {
        let shared = &*self.shared;
        if let Some(value) = shared.l1.get(key) {
            return Ok(value);
        }
        let epoch = shared.epochs.of(key);
        let seen = epoch.read();
        let load = async {
            if let Some((value, remaining)) = self.read_lower(key).await {
                return Ok((value, self.l1_ttl(remaining)));
            }
            shared.misses.fetch_add(1, Relaxed);
            shared.loads.fetch_add(1, Relaxed);
            let value = loader().await.map_err(|e| CacheError::Loader(e.into()))?;
            let ttl = shared.default_ttl;
            let frame = self.frame_value(&value, ttl)?;
            let _report = self.write_lower(key, frame, ttl).await;
            Ok((value, self.l1_ttl(ttl)))
        };
        let value = shared
            .l1
            .try_get_or_insert_with_ttl_async::<_, CacheError>(key.to_owned(), load)
            .await?;
        if epoch.read() != seen {
            // A write or invalidation overlapped this load; what the engine just cached may be
            // older than what the writer wrote. Leave L1 to the writer.
            shared.l1.remove(key);
        }
        Ok(value)
    }

    /// Writes `value` under `key` to every tier, with the default TTL.
    pub async fn set(&self, key: &str, value: V) -> Result<WriteReport, CacheError> {
        self.set_with(key, value, SetOptions::default()).await
    }

    /// Writes `value` under `key` to every tier with its own `ttl`.
    pub async fn set_with_ttl(
        &self,
        key: &str,
        value: V,
        ttl: Duration,
    ) -> Result<WriteReport, CacheError> {
        self.set_with(key, value, SetOptions::default().ttl(ttl))
            .await
    }

    /// Writes `value` under `key` as `options` say. The value is encoded and checked against
    /// `max_value_size` first: a value too large is refused with
    /// [`CacheError::ValueTooLarge`] and nothing is written anywhere.
    pub async fn set_with(
        &self,
        key: &str,
        value: V,
        options: SetOptions,
    ) -> Result<WriteReport, CacheError> {
        let shared = &*self.shared;
        let ttl = options.ttl.or(shared.default_ttl);
        let frame = self.frame_value(&value, ttl)?;
        let to_l1 = options.target != WriteTarget::SkipL1;
        let to_lower = options.target != WriteTarget::L1Only;
        let epoch = shared.epochs.of(key);
        epoch.bump();
        if to_l1 {
            self.insert_l1(key.to_owned(), value.clone(), ttl)?;
        } else {
            shared.l1.remove(key);
        }
        let report = if to_lower {
            self.write_lower(key, frame, ttl).await
        } else {
            WriteReport::default()
        };
        epoch.bump();
        if to_l1 {
            self.insert_l1(key.to_owned(), value, ttl)?;
        } else {
            shared.l1.remove(key);
        }
        Ok(report)
    }

    /// Removes `key` from every tier. Returns whether any tier held it. If any tier fails to
    /// delete, the error lists which ([`CacheError::Invalidation`]): the entry may still be
    /// there, so retry.
    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let shared = &*self.shared;
        let epoch = shared.epochs.of(key);
        epoch.bump();
        let mut found = shared.l1.remove(key).is_some();
        let results = join_all(shared.layers.iter().map(|layer| layer.delete(key))).await;
        epoch.bump();
        found |= shared.l1.remove(key).is_some();
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

    /// Removes every key matching `pattern` (Redis glob rules: `user:*`, `h?llo`, `id:[0-9]`;
    /// see [`KeyPattern`]) from every tier, and no other key.
    pub async fn invalidate_pattern(
        &self,
        pattern: &str,
    ) -> Result<InvalidationReport, CacheError> {
        let pattern = KeyPattern::new(pattern)?;
        let shared = &*self.shared;
        shared.epochs.bump_all();
        let mut l1 = self.remove_matching_l1(&pattern);
        let results = join_all(
            shared
                .layers
                .iter()
                .map(|layer| layer.delete_matching(&pattern)),
        )
        .await;
        shared.epochs.bump_all();
        l1 += self.remove_matching_l1(&pattern);
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

    /// Empties every tier.
    pub async fn clear(&self) -> Result<(), CacheError> {
        let shared = &*self.shared;
        shared.epochs.bump_all();
        shared.l1.clear();
        let results = join_all(shared.layers.iter().map(Layer::clear)).await;
        shared.epochs.bump_all();
        shared.l1.clear();
        let failures: Vec<_> = shared
            .layers
            .iter()
            .zip(results)
            .filter_map(|(layer, result)| result.err().map(|error| failure(layer, error)))
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(CacheError::Invalidation(failures))
        }
    }

    /// Each level's health (`memory` for L1, then each tier by name), checked concurrently,
    /// each within its tier's timeout. A tier whose circuit is open reports at least degraded.
    pub async fn health_check(&self) -> HealthReport {
        let shared = &*self.shared;
        let lower = join_all(shared.layers.iter().map(Layer::health)).await;
        let mut tiers = BTreeMap::new();
        tiers.insert("memory".to_owned(), Health::Healthy);
        for (layer, health) in shared.layers.iter().zip(lower) {
            tiers.insert(layer.name().to_owned(), health);
        }
        HealthReport { tiers }
    }

    /// Counters for L1, the stack and each tier.
    pub fn stats(&self) -> TieredStats {
        let shared = &*self.shared;
        TieredStats {
            l1: shared.l1.stats(),
            lower_hits: shared.lower_hits.load(Relaxed),
            misses: shared.misses.load(Relaxed),
            loads: shared.loads.load(Relaxed),
            tiers: shared.layers.iter().map(Layer::stats).collect(),
        }
    }

    /// The L1 engine, for what the stack does not wrap (its `len`, `iter`, maintenance).
    pub fn l1(&self) -> &Cache<String, V> {
        &self.shared.l1
    }

    /// Encodes and frames a value, refusing it if too large.
    fn frame_value(&self, value: &V, ttl: Option<Duration>) -> Result<Bytes, CacheError> {
        let shared = &*self.shared;
        let payload = shared.codec.encode(value).map_err(CacheError::Encode)?;
        if payload.len() > shared.max_value_size {
            return Err(CacheError::ValueTooLarge {
                size: payload.len(),
                limit: shared.max_value_size,
            });
        }
        let expires_at = ttl.map(|ttl| SystemTime::now() + ttl);
        Ok(frame::encode(&payload, expires_at, &shared.frame))
    }

    fn l1_ttl(&self, remaining: Option<Duration>) -> Option<Duration> {
        capped(remaining, self.shared.memory_ttl)
    }

    /// Puts a value in L1 for its remaining lifetime, capped by `memory_ttl`.
    fn insert_l1(&self, key: String, value: V, ttl: Option<Duration>) -> Result<(), CacheError> {
        let l1 = &self.shared.l1;
        match self.l1_ttl(ttl) {
            Some(ttl) => l1.try_insert_with_ttl(key, value, ttl)?,
            None => l1.try_insert(key, value)?,
        }
        Ok(())
    }

    fn remove_matching_l1(&self, pattern: &KeyPattern) -> u64 {
        let mut removed = 0u64;
        self.shared.l1.retain(|key, _| {
            let hit = pattern.matches(key);
            removed += u64::from(hit);
            !hit
        });
        removed
    }

    async fn write_lower(&self, key: &str, frame: Bytes, ttl: Option<Duration>) -> WriteReport {
        let layers = &self.shared.layers;
        let results = join_all(
            layers
                .iter()
                .map(|layer| layer.set(key, frame.clone(), layer.ttl_for(ttl))),
        )
        .await;
        let mut report = WriteReport::default();
        for (layer, result) in layers.iter().zip(results) {
            match result {
                Ok(()) => report.written.push(layer.name().to_owned()),
                Err(error) => report.failed.push(failure(layer, error)),
            }
        }
        report
    }

    /// Reads the lower tiers top to bottom; on a hit, promotes the entry into every tier above
    /// that answered this read (one that just failed or timed out is not written to, so a hung
    /// tier costs a read one timeout, not two) with its remaining lifetime, and returns it with
    /// that lifetime.
    async fn read_lower(&self, key: &str) -> Option<(V, Option<Duration>)> {
        let shared = &*self.shared;
        let mut answered = Vec::with_capacity(shared.layers.len());
        for (depth, layer) in shared.layers.iter().enumerate() {
            let stored = match layer.get(key).await {
                Lookup::Hit(stored) => stored,
                Lookup::Miss => {
                    answered.push(true);
                    continue;
                }
                Lookup::Degraded(_) => {
                    answered.push(false);
                    continue;
                }
            };
            answered.push(true);
            let decoded = frame::decode(&stored, &shared.frame)
                .map_err(|e| e.to_string())
                .and_then(|frame| {
                    let remaining = frame.remaining(SystemTime::now());
                    match remaining {
                        None => Ok(None),
                        Some(remaining) => shared
                            .codec
                            .decode(frame.payload)
                            .map(|value| Some((value, remaining)))
                            .map_err(|e| e.to_string()),
                    }
                });
            match decoded {
                Ok(Some((value, remaining))) => {
                    shared.lower_hits.fetch_add(1, Relaxed);
                    let above = shared.layers[..depth]
                        .iter()
                        .zip(&answered)
                        .filter_map(|(layer, answered)| answered.then_some(layer));
                    self.promote(key, &stored, remaining, above).await;
                    return Some((value, remaining));
                }
                // Expired in the frame though the tier still had it (clock skew, a tier that
                // rounds TTLs up): a miss.
                Ok(None) => continue,
                Err(reason) => {
                    layer.record_corrupt();
                    tracing::warn!(tier = layer.name(), %key, %reason, "undecodable entry: deleting it");
                    let _ = layer.delete(key).await;
                }
            }
        }
        None
    }

    async fn promote<'a>(
        &self,
        key: &str,
        stored: &Bytes,
        remaining: Option<Duration>,
        above: impl Iterator<Item = &'a Layer>,
    ) {
        join_all(above.map(|layer| async move {
            if layer
                .set(key, stored.clone(), layer.ttl_for(remaining))
                .await
                .is_ok()
            {
                layer.record_promotion();
            }
        }))
        .await;
    }
}

fn failure(layer: &Layer, error: strata_tier::TierError) -> TierFailure {
    TierFailure {
        tier: layer.name().to_owned(),
        error,
    }
}
