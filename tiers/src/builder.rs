//! The builder of a `TieredCache`.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_engine::Cache;
use strata_tier::Tier;

use crate::breaker::BreakerConfig;
use crate::cache::{Shared, TieredCache};
use crate::codec::Codec;
use crate::fence::Fences;
use crate::flight::Flights;
use crate::frame::FrameOptions;
use crate::invalidate::L1Sink;
use crate::layer::{Layer, LayerOptions};

/// Defaults: 10,000 L1 entries, no TTL, 1 KiB compression threshold, 16 MiB values, 250 ms
/// per tier operation, a breaker that opens after 5 consecutive failures for 1 s (doubling up
/// to 30 s).
pub const DEFAULT_MEMORY_MAX_ENTRIES: u64 = 10_000;
/// Payloads at least this large are LZ4-compressed when that shrinks them.
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 1024;
/// The largest encoded value accepted by default.
pub const DEFAULT_MAX_VALUE_SIZE: usize = 16 << 20;
/// The default deadline for one lower-tier operation.
pub const DEFAULT_TIER_TIMEOUT: Duration = Duration::from_millis(250);

/// How one lower tier sits in the stack; anything unset takes the cache-wide default.
#[derive(Debug, Clone, Copy, Default)]
pub struct TierOptions {
    ttl: Option<Duration>,
    timeout: Option<Duration>,
    breaker: Option<BreakerConfig>,
}

impl TierOptions {
    /// The longest this tier keeps an entry (`redis_ttl`, `disk_ttl` in [`CacheConfig`](crate::CacheConfig)): entries are
    /// stored here with their remaining lifetime capped by it.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The deadline for each operation on this tier.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// This tier's circuit breaker.
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = Some(breaker);
        self
    }
}

/// Builds a [`TieredCache`]; see [`TieredCache::builder`].
pub struct TieredCacheBuilder<V, C> {
    memory_max_entries: u64,
    memory_ttl: Option<Duration>,
    default_ttl: Option<Duration>,
    compression_threshold: usize,
    max_value_size: usize,
    timeout: Duration,
    breaker: BreakerConfig,
    tiers: Vec<(Arc<dyn Tier>, TierOptions)>,
    codec: C,
    _values: PhantomData<fn() -> V>,
}

impl<V, C> TieredCache<V, C>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V> + Default,
{
    /// A builder with the defaults listed at [`DEFAULT_MEMORY_MAX_ENTRIES`].
    pub fn builder() -> TieredCacheBuilder<V, C> {
        TieredCacheBuilder {
            memory_max_entries: DEFAULT_MEMORY_MAX_ENTRIES,
            memory_ttl: None,
            default_ttl: None,
            compression_threshold: DEFAULT_COMPRESSION_THRESHOLD,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            timeout: DEFAULT_TIER_TIMEOUT,
            breaker: BreakerConfig::default(),
            tiers: Vec::new(),
            codec: C::default(),
            _values: PhantomData,
        }
    }
}

impl<V, C> TieredCacheBuilder<V, C>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    /// How many entries L1 holds. `0` turns L1 off: every read goes to the lower tiers and
    /// nothing is copied into L1 (for a stack whose only cache is shared, or to measure a tier).
    pub fn memory_max_entries(mut self, entries: u64) -> Self {
        self.memory_max_entries = entries;
        self
    }

    /// The longest L1 keeps an entry (`memory_ttl` in [`CacheConfig`](crate::CacheConfig)).
    pub fn memory_ttl(mut self, ttl: Duration) -> Self {
        self.memory_ttl = Some(ttl);
        self
    }

    /// The TTL of writes that do not give one (each tier still caps it by its own TTL).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Payloads at least this large are LZ4-compressed when that shrinks them (default 1 KiB).
    pub fn compression_threshold(mut self, bytes: usize) -> Self {
        self.compression_threshold = bytes;
        self
    }

    /// Turns compression off (`enable_compression = false` in [`CacheConfig`](crate::CacheConfig)).
    pub fn no_compression(mut self) -> Self {
        self.compression_threshold = usize::MAX;
        self
    }

    /// The largest encoded value accepted; larger ones are refused with
    /// [`CacheError::ValueTooLarge`](crate::CacheError::ValueTooLarge).
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// The default deadline for each lower-tier operation.
    pub fn tier_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The default circuit breaker for each lower tier.
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// Appends a lower tier below those already added, with the cache-wide defaults.
    pub fn tier(self, tier: Arc<dyn Tier>) -> Self {
        self.tier_with(tier, TierOptions::default())
    }

    /// Appends a lower tier with its own TTL, timeout or breaker.
    pub fn tier_with(mut self, tier: Arc<dyn Tier>, options: TierOptions) -> Self {
        self.tiers.push((tier, options));
        self
    }

    /// Uses another codec.
    pub fn codec<C2: Codec<V>>(self, codec: C2) -> TieredCacheBuilder<V, C2> {
        TieredCacheBuilder {
            memory_max_entries: self.memory_max_entries,
            memory_ttl: self.memory_ttl,
            default_ttl: self.default_ttl,
            compression_threshold: self.compression_threshold,
            max_value_size: self.max_value_size,
            timeout: self.timeout,
            breaker: self.breaker,
            tiers: self.tiers,
            codec,
            _values: PhantomData,
        }
    }

    /// Builds the cache.
    pub fn build(self) -> TieredCache<V, C> {
        let mut l1 = Cache::<String, V>::builder().max_capacity(self.memory_max_entries);
        if let Some(ttl) = self.memory_ttl {
            l1 = l1.time_to_live(ttl);
        }
        let mut used: std::collections::HashSet<String> =
            ["memory".to_owned()].into_iter().collect();
        let layers: Vec<Layer> = self
            .tiers
            .into_iter()
            .map(|(tier, options)| {
                let name = unique_name(&mut used, tier.name());
                Layer::new(
                    tier,
                    name,
                    LayerOptions {
                        ttl: options.ttl,
                        timeout: options.timeout.unwrap_or(self.timeout),
                        breaker: options.breaker.unwrap_or(self.breaker),
                    },
                )
            })
            .collect();
        // A racing fill and its undo each take at most one tier timeout.
        let fill_wait = layers
            .iter()
            .map(Layer::timeout)
            .max()
            .unwrap_or_default()
            .saturating_mul(2)
            .saturating_add(std::time::Duration::from_secs(5));
        let cache = TieredCache {
            shared: Arc::new(Shared {
                l1: l1.build(),
                layers,
                codec: self.codec,
                frame: FrameOptions {
                    compression_threshold: self.compression_threshold,
                    max_payload: self.max_value_size,
                },
                max_value_size: self.max_value_size,
                default_ttl: self.default_ttl,
                memory_ttl: self.memory_ttl,
                l1_disabled: self.memory_max_entries == 0,
                fences: Fences::new(fill_wait),
                flights: Flights::new(),
                subscriptions: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
                lower_hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                loads: AtomicU64::new(0),
                fills_fenced: AtomicU64::new(0),
                remote_invalidations: AtomicU64::new(0),
            }),
        };
        // Tiers that deliver other processes' invalidations apply them to this L1.
        let subscriptions: Vec<_> = cache
            .shared
            .layers
            .iter()
            .filter_map(|layer| {
                layer.subscribe(Arc::new(L1Sink {
                    shared: Arc::downgrade(&cache.shared),
                }))
            })
            .collect();
        *cache
            .shared
            .subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = subscriptions;
        cache
    }
}

/// A tier's name, made unique within the stack (and apart from `memory`, L1's name in health
/// reports): the second `redb` is `redb-2`.
fn unique_name(used: &mut std::collections::HashSet<String>, name: &str) -> String {
    let name = if name.is_empty() { "tier" } else { name };
    let mut candidate = name.to_owned();
    let mut n = 1;
    while used.contains(&candidate) {
        n += 1;
        candidate = format!("{name}-{n}");
    }
    used.insert(candidate.clone());
    candidate
}

#[cfg(test)]
mod tests {
    use super::unique_name;

    #[test]
    fn names_are_unique_in_a_stack() {
        let mut used = ["memory".to_owned()].into_iter().collect();
        let names: Vec<_> = ["redb", "memory", "redb", "redb-2", ""]
            .iter()
            .map(|n| unique_name(&mut used, n))
            .collect();
        assert_eq!(names, ["redb", "memory-2", "redb-2", "redb-2-2", "tier"]);
    }
}
