//! `TieredCache`: the L1 engine in front of an ordered stack of lower tiers; its public API.

use std::collections::BTreeMap;
use std::error::Error;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::join_all;
use strata_engine::Cache;
use strata_tier::{Health, Invalidation, Subscription};

use crate::codec::Codec;
use crate::error::{CacheError, TierFailure};
use crate::fence::Fences;
use crate::flight::{Flights, Role, SharedError};
use crate::frame::{self, FrameOptions};
use crate::layer::{capped, Layer};
use crate::reports::{EntryInfo, HealthReport, TieredStats, WriteReport};

/// A multi-tier cache: reads go L1 → tier 1 → tier 2 …, hits in a lower tier are promoted
/// into L1 and every tier above with their remaining TTL, writes go through to every tier.
///
/// Cheap to clone (an `Arc`); share one per process. Values live in L1 as `V` (so use
/// `Arc<T>` for values that are expensive to clone) and in lower tiers as framed bytes made by
/// the codec `C` ([`Postcard`](crate::Postcard) for serde types, [`RawBytes`](crate::RawBytes)
/// for [`BytesCache`](crate::BytesCache)).
///
/// All async methods need a Tokio runtime (they use its timer for per-tier timeouts). Call
/// [`close`](Self::close) before the process exits so that tiers flush what they acknowledged;
/// dropping the last handle without it closes nothing (a tier's own `Drop` decides what is
/// kept, and a disk tier may lose its last unflushed writes).
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
    /// `memory_max_entries(0)`: L1 is off, reads and writes go straight to the tiers.
    pub(crate) l1_disabled: bool,
    pub(crate) fences: Fences,
    pub(crate) flights: Flights<V>,
    pub(crate) subscriptions: Mutex<Vec<Subscription>>,
    pub(crate) closed: AtomicBool,
    pub(crate) lower_hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) loads: AtomicU64,
    pub(crate) fills_fenced: AtomicU64,
    pub(crate) remote_invalidations: AtomicU64,
}

/// Where a write goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
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
    /// cache's `default_ttl` applies. A lifetime too long to represent (`Duration::MAX`) means
    /// no expiry.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Where the write goes.
    pub fn target(mut self, target: WriteTarget) -> Self {
        self.target = target;
        self
    }

    pub(crate) fn ttl_or(&self, default: Option<Duration>) -> Option<Duration> {
        self.ttl.or(default)
    }

    pub(crate) fn target_of(&self) -> WriteTarget {
        self.target
    }
}

/// When an entry written now with `ttl` expires: `None` for no TTL, and also for a TTL too
/// long to represent (saturating, never a panic).
pub(crate) fn expiry(ttl: Option<Duration>, now: SystemTime) -> Option<SystemTime> {
    ttl.and_then(|ttl| now.checked_add(ttl))
        // Frames hold milliseconds in a u64; anything past that is "never" as well.
        .filter(|at| {
            at.duration_since(SystemTime::UNIX_EPOCH)
                .is_ok_and(|d| d.as_millis() < u128::from(u64::MAX))
        })
}

/// An entry's remaining lifetime at `now` (`None` for none); `Err` if it has expired.
pub(crate) fn remaining(
    expires_at: Option<SystemTime>,
    now: SystemTime,
) -> Result<Option<Duration>, ()> {
    match expires_at {
        None => Ok(None),
        Some(at) => match at.duration_since(now) {
            Ok(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(()),
        },
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
        // The L1 hit path does nothing else: no clock, no TTL lookup, no allocation.
        if let Some(value) = self.shared.l1.get(key) {
            return Some(value);
        }
        self.get_lower(key).await.map(|entry| entry.value)
    }

    /// Like [`get`](Self::get), with the entry's expiry, the time it was stored (from the
    /// frame; `None` for an L1 hit) and the tier that answered.
    pub async fn get_entry(&self, key: &str) -> Option<EntryInfo<V>> {
        let shared = &*self.shared;
        if let Some(value) = shared.l1.get(key) {
            let expires_at = shared
                .l1
                .time_to_live_of(key)
                .flatten()
                .and_then(|left| SystemTime::now().checked_add(left));
            return Some(EntryInfo {
                value,
                expires_at,
                stored_at: None,
                tier: "memory".to_owned(),
            });
        }
        self.get_lower(key).await
    }

    /// A read that missed L1: the lower tiers, with the fill of L1.
    async fn get_lower(&self, key: &str) -> Option<EntryInfo<V>> {
        let shared = &*self.shared;
        if shared.layers.is_empty() {
            shared.misses.fetch_add(1, Relaxed);
            return None;
        }
        let ticket = shared.fences.begin_read(key);
        let Some(found) = self.read_lower(key, &ticket, None).await.found else {
            shared.misses.fetch_add(1, Relaxed);
            return None;
        };
        self.fill_l1(&ticket, key, &found.value, found.expires_at);
        Some(EntryInfo {
            value: found.value,
            expires_at: found.expires_at,
            stored_at: found.stored_at,
            tier: shared.layers[found.depth].name().to_owned(),
        })
    }

    /// Whether any tier holds `key` (reads through, like [`get`](Self::get)).
    pub async fn contains_key(&self, key: &str) -> bool {
        self.get(key).await.is_some()
    }

    /// The value under `key`, or `loader`'s value, which is then written to L1 and to every
    /// tier that answered the read.
    ///
    /// Single-flight across the whole stack: concurrent callers in this process that miss the
    /// same key share one lower-tier lookup and one loader run, and all get its outcome. If the
    /// loader fails, every caller of that flight gets the same [`CacheError::Loader`] (the
    /// error is shared, behind an `Arc`) and nothing is cached; the next call loads again. A
    /// value that cannot be stored (too large, not encodable) is still returned to every
    /// caller. If the caller running the loader is cancelled, a waiting caller takes over with
    /// its own loader. A `set`, `delete` or invalidation of the key that starts during the load
    /// wins: the loaded value is returned to the flight's callers but not cached, and callers
    /// arriving after the write began start a new flight.
    pub async fn get_or_load<F, Fut, E>(&self, key: &str, loader: F) -> Result<V, CacheError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn Error + Send + Sync + 'static>>,
    {
        let ttl = self.shared.default_ttl;
        let loader = || async { loader().await.map_err(|e| SharedError::from(e.into())) };
        self.single_flight(key, ttl, loader, SharedError::clone, |e| Some(e.clone()))
            .await
            .map_err(CacheError::Loader)
    }

    /// The single flight behind `get_or_load` (and `#[cached]`): concurrent callers that miss
    /// `key` share one [`load`](Self::load). A failure reaches the flight's followers as the
    /// `SharedError` that `share` makes of it, and each follower turns it back into its own
    /// error type with `recover` (or, if it cannot, loads for itself).
    pub(crate) async fn single_flight<E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        loader: F,
        share: impl Fn(&E) -> SharedError,
        recover: impl Fn(&SharedError) -> Option<E>,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let shared = &*self.shared;
        let mut loader = Some(loader);
        loop {
            if let Some(value) = shared.l1.get(key) {
                return Ok(value);
            }
            match shared.flights.join(key) {
                Role::Follower(flight) => match flight.wait().await {
                    Some(Ok(value)) => return Ok(value),
                    Some(Err(error)) => match recover(&error) {
                        Some(error) => return Err(error),
                        // Another caller's error type (another function on the same key).
                        None => continue,
                    },
                    // The leader was cancelled: try again, perhaps as the leader.
                    None => continue,
                },
                Role::Leader(leader) => {
                    let loader = loader.take().expect("one flight is led per call");
                    let outcome = self.load(key, ttl, loader).await;
                    leader.complete(outcome.as_ref().map(V::clone).map_err(&share));
                    return outcome;
                }
            }
        }
    }

    /// The leader's part of a single flight: the lower tiers, then the loader, whose value is
    /// stored with `ttl` in L1 and every tier that answered the read (fills, through fences).
    /// A value that cannot be stored is still returned.
    pub(crate) async fn load<F, Fut, E>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let shared = &*self.shared;
        // A flight that just finished may have filled L1.
        if let Some(value) = shared.l1.get(key) {
            return Ok(value);
        }
        let ticket = shared.fences.begin_read(key);
        let read = self.read_lower(key, &ticket, None).await;
        if let Some(found) = read.found {
            self.fill_l1(&ticket, key, &found.value, found.expires_at);
            return Ok(found.value);
        }
        shared.misses.fetch_add(1, Relaxed);
        shared.loads.fetch_add(1, Relaxed);
        let value = loader().await?;
        let expires_at = expiry(ttl, SystemTime::now());
        match self.frame_value(&value, expires_at) {
            Ok(frame) => {
                self.fill_l1(&ticket, key, &value, expires_at);
                // Only the tiers that answered this read: one that just failed or timed out
                // would cost another timeout.
                let targets = shared
                    .layers
                    .iter()
                    .zip(&read.answered)
                    .filter_map(|(layer, answered)| answered.then_some(layer));
                self.fill_tiers(&ticket, key, &frame, expires_at, targets)
                    .await;
            }
            Err(error) => {
                tracing::warn!(%key, %error, "loaded value not cached");
            }
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
    ///
    /// Writes of one key take turns (a second `set` of the key waits for the first), so L1 and
    /// every tier see them in the same order.
    pub async fn set_with(
        &self,
        key: &str,
        value: V,
        options: SetOptions,
    ) -> Result<WriteReport, CacheError> {
        let shared = &*self.shared;
        let ttl = options.ttl.or(shared.default_ttl);
        let expires_at = expiry(ttl, SystemTime::now());
        let frame = self.frame_value(&value, expires_at)?;
        let write = shared.fences.begin_write(key).await;
        shared.flights.detach(key);
        if options.target == WriteTarget::SkipL1 {
            shared.l1.remove(key);
        } else {
            self.insert_l1(key.to_owned(), value, expires_at)?;
        }
        let report = if options.target == WriteTarget::L1Only {
            WriteReport::default()
        } else {
            self.write_lower(key, frame, expires_at).await
        };
        if !write.finish().await {
            self.fills_unsettled(key);
        }
        // A `get_or_load` that began during the write may have read the old value from a tier
        // the write had not reached yet: callers arriving from now on must not join it.
        shared.flights.detach(key);
        Ok(report)
    }

    /// Writes many entries with the default TTL; the report at index `i` is for
    /// `entries[i]`. Each tier receives the whole batch in one call
    /// ([`Tier::set_many`](crate::Tier::set_many)). Every value is encoded and checked first:
    /// if any is refused, nothing is written.
    pub async fn set_many(
        &self,
        entries: Vec<(String, V)>,
    ) -> Result<Vec<WriteReport>, CacheError> {
        self.set_many_with(entries, SetOptions::default()).await
    }

    /// Writes `key` → `value` under `options` (the cache's L1 only with
    /// [`WriteTarget::L1Only`], and so on) for every entry; see [`set_many`](Self::set_many).
    pub async fn set_many_with(
        &self,
        entries: Vec<(String, V)>,
        options: SetOptions,
    ) -> Result<Vec<WriteReport>, CacheError> {
        crate::batch::set_many(self, entries, options).await
    }

    /// Reads many keys; the answer at index `i` is for `keys[i]`. L1 first, then each tier in
    /// one batch ([`Tier::get_many`](crate::Tier::get_many)) for the keys still missing, with
    /// the same promotion and fences as [`get`](Self::get).
    pub async fn get_many(&self, keys: &[&str]) -> Vec<Option<V>> {
        crate::batch::get_many(self, keys).await
    }

    /// Each level's health (`memory` for L1, then each tier by its unique name), checked
    /// concurrently, each within its tier's timeout. A tier whose circuit is open, or that
    /// skips keys after failed writes, reports at least degraded.
    pub async fn health_check(&self) -> HealthReport {
        let shared = &*self.shared;
        let lower = join_all(shared.layers.iter().map(Layer::health)).await;
        let mut tiers = BTreeMap::new();
        let memory = if shared.closed.load(Relaxed) {
            Health::Down("closed".into())
        } else {
            Health::Healthy
        };
        tiers.insert("memory".to_owned(), memory);
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
            fills_fenced: shared.fills_fenced.load(Relaxed),
            remote_invalidations: shared.remote_invalidations.load(Relaxed),
            tiers: shared.layers.iter().map(Layer::stats).collect(),
        }
    }

    /// The unique names of the lower tiers, top to bottom (what stats and health use).
    pub fn tier_names(&self) -> Vec<String> {
        self.shared
            .layers
            .iter()
            .map(|layer| layer.name().to_owned())
            .collect()
    }

    /// The L1 engine, for what the stack does not wrap (its `len`, `iter`, maintenance).
    /// Writing to it directly bypasses the fences: prefer the cache's own methods.
    pub fn l1(&self) -> &Cache<String, V> {
        &self.shared.l1
    }

    /// Applies an invalidation made elsewhere (another process sharing a lower tier) to this
    /// process's L1, through the same fences as a local write: a read in flight for a covered
    /// key does not fill L1 with what it read. Lower tiers are not touched. Tiers that deliver
    /// invalidation events ([`Tier::subscribe`](crate::Tier::subscribe)) call this for you.
    pub fn apply_invalidation(&self, event: &Invalidation) {
        crate::invalidate::apply_remote(&self.shared, event);
    }

    /// Stops the cache: unsubscribes from invalidation events, then closes every tier
    /// concurrently, so that each flushes what it acknowledged and stops its background work
    /// (a disk tier's writer, a connection pool). Reports the tiers that failed to close.
    /// Calling it again closes again (tiers treat that as a no-op). After `close`, reads of
    /// lower tiers answer misses and writes to them fail; L1 keeps serving.
    pub async fn close(&self) -> Result<(), CacheError> {
        let shared = &*self.shared;
        shared.closed.store(true, Relaxed);
        let subscriptions = std::mem::take(
            &mut *shared
                .subscriptions
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        drop(subscriptions);
        let results = join_all(shared.layers.iter().map(Layer::close)).await;
        failures(&shared.layers, results).map_err(CacheError::Close)
    }

    /// Encodes and frames a value, refusing it if too large.
    pub(crate) fn frame_value(
        &self,
        value: &V,
        expires_at: Option<SystemTime>,
    ) -> Result<Bytes, CacheError> {
        let shared = &*self.shared;
        let payload = shared.codec.encode(value).map_err(CacheError::Encode)?;
        if payload.len() > shared.max_value_size {
            return Err(CacheError::ValueTooLarge {
                size: payload.len(),
                limit: shared.max_value_size,
            });
        }
        Ok(frame::encode(
            &payload,
            expires_at,
            SystemTime::now(),
            &shared.frame,
        ))
    }

    /// Puts a value in L1 until its frame's expiry (never past it), capped by `memory_ttl`.
    /// An entry already expired is not inserted.
    pub(crate) fn insert_l1(
        &self,
        key: String,
        value: V,
        expires_at: Option<SystemTime>,
    ) -> Result<(), CacheError> {
        let shared = &*self.shared;
        if shared.l1_disabled {
            return Ok(());
        }
        let Ok(left) = remaining(expires_at, SystemTime::now()) else {
            shared.l1.remove(&key);
            return Ok(());
        };
        match capped(left, shared.memory_ttl) {
            Some(ttl) => shared.l1.try_insert_with_ttl(key, value, ttl)?,
            None => shared.l1.try_insert(key, value)?,
        }
        Ok(())
    }

    /// Writes an update to every lower tier concurrently. A tier that fails is reported, and
    /// skips the key for reads until a later write of it succeeds there.
    async fn write_lower(
        &self,
        key: &str,
        frame: Bytes,
        expires_at: Option<SystemTime>,
    ) -> WriteReport {
        let layers = &self.shared.layers;
        let ttl =
            remaining(expires_at, SystemTime::now()).unwrap_or(Some(Duration::from_millis(1)));
        let results = join_all(
            layers
                .iter()
                .map(|layer| layer.set(key, frame.clone(), layer.ttl_for(ttl))),
        )
        .await;
        let mut report = WriteReport::default();
        for (layer, result) in layers.iter().zip(results) {
            match result {
                Ok(_) => report.written.push(layer.name().to_owned()),
                Err(error) => report.failed.push(failure(layer, error)),
            }
        }
        report
    }
}

impl<V, C> TieredCache<V, C> {
    /// A racing fill of `key` did not settle within the writer's wait: it may still land, so
    /// every tier skips the key until a later write of it succeeds there.
    pub(crate) fn fills_unsettled(&self, key: &str) {
        self.shared
            .layers
            .iter()
            .for_each(|layer| layer.mark_stale(key));
    }
}

/// The tiers whose operation failed, named, or `Ok` if none did.
pub(crate) fn failures<T>(
    layers: &[Layer],
    results: Vec<Result<T, strata_tier::TierError>>,
) -> Result<(), Vec<TierFailure>> {
    let failed: Vec<_> = layers
        .iter()
        .zip(results)
        .filter_map(|(layer, result)| result.err().map(|error| failure(layer, error)))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed)
    }
}

pub(crate) fn failure(layer: &Layer, error: strata_tier::TierError) -> TierFailure {
    TierFailure {
        tier: layer.name().to_owned(),
        error,
    }
}
