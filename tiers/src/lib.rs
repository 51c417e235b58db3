//! Strata: a multi-tier cache. A lock-free in-process L1 ([`strata_engine`]) in front of an
//! ordered stack of lower tiers (Redis, an embedded redb file, an in-memory tier, your own),
//! each behind the object-safe async [`Tier`] trait.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use strata::{MemoryTier, TierOptions, TieredCache, Postcard};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let l2 = Arc::new(MemoryTier::new("l2"));
//! let cache: TieredCache<Vec<String>, Postcard<_>> = TieredCache::builder()
//!     .memory_max_entries(10_000)
//!     .memory_ttl(Duration::from_secs(60))
//!     .default_ttl(Duration::from_secs(3600))
//!     .tier_with(l2.clone(), TierOptions::default().ttl(Duration::from_secs(600)))
//!     .build();
//!
//! cache.set("user:1:roles", vec!["admin".into()]).await?;
//! assert_eq!(cache.get("user:1:roles").await, Some(vec!["admin".to_string()]));
//!
//! // Single-flight across the stack: concurrent misses share one loader run.
//! let roles = cache
//!     .get_or_load("user:2:roles", || async { Ok::<_, std::io::Error>(vec!["viewer".into()]) })
//!     .await?;
//! assert_eq!(roles, ["viewer"]);
//!
//! cache.invalidate_pattern("user:*").await?;
//! assert!(l2.is_empty());
//! # Ok::<(), strata::CacheError>(())
//! # }).unwrap();
//! ```
//!
//! # How a read goes
//!
//! `get` tries L1, then each lower tier in order. A hit in a lower tier is decoded, promoted
//! into L1 and into every tier above it with its *remaining* lifetime (the frame carries the
//! absolute expiry), capped by each tier's own TTL, and returned. A tier that fails, stalls
//! past its timeout, or has its circuit breaker open is skipped: its read counts as a degraded
//! miss and the read goes on to the next tier, and the hit found below it is not promoted into
//! it (so a hung tier costs a read one timeout, not two). Bytes that fail to decode (damaged, truncated,
//! another format version, a changed type) are counted as corrupt, deleted from that tier and
//! treated as a miss.
//!
//! # How a write goes
//!
//! The value is encoded by the codec (postcard for serde types) and checked against
//! `max_value_size` before anything is written. The payload is framed (version, flags,
//! expiry, CRC-32) and LZ4-compressed if it is at least `compression_threshold` bytes and
//! compression shrinks it. The write goes to L1 and to every lower tier concurrently; a tier
//! that fails is counted and reported in the [`WriteReport`], not an error, since the value is
//! cached in the others. Invalidations (`delete`, `invalidate_pattern`, `clear`) are different:
//! if any tier fails one, the call returns [`CacheError::Invalidation`], because a stale entry
//! must never be kept silently.
//!
//! # Consistency
//!
//! - **Within a process**: after `set` returns, `get` returns the new value (or a newer one,
//!   or a miss if it was evicted, expired or invalidated). After `delete`, `invalidate_pattern`
//!   or `clear` returns `Ok`, no `get` returns a removed value. A read racing with a write may
//!   return either value, but it cannot leave the older value behind in L1: reads only fill L1
//!   if no write to the key overlapped them (see write epochs in the source).
//! - **Across processes** sharing lower tiers: each L1 is private and may serve a value for up
//!   to `memory_ttl` after another process overwrote or invalidated it (the Redis plugin's
//!   pub/sub invalidation shortens that to the message latency). Keep `memory_ttl` short when
//!   this matters.
//! - **Lower tiers** are written concurrently, not atomically: a reader in another process may
//!   see the new value in one tier and the old in another while a write is in flight, and a
//!   tier whose write failed keeps its old value until its TTL (the `WriteReport` says which).
//!   Two racing `get_or_load` loaders and a `set` of the same key may leave a lower tier with
//!   either value.
//! - **TTL**: an entry is never returned after its expiry in any tier (expiry is checked from
//!   the frame on every lower-tier read, to the millisecond, against the wall clock; L1 uses a
//!   monotonic clock).
//!
//! # Features
//!
//! - `metrics`: export per-tier counters, latencies and breaker states through the `metrics`
//!   facade.
//! - `redb` (default): the embedded disk tier, [`RedbTier`], and `redb://` in the default
//!   registry (options in the URL's query, see [`redb`]).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod breaker;
mod builder;
mod cache;
mod codec;
mod config;
mod epochs;
mod error;
mod fault;
pub mod frame;
mod layer;
mod memory_tier;
#[cfg(feature = "metrics")]
mod metrics_export;
#[cfg(feature = "redb")]
mod redb_plugin;
mod registry;
mod tier_stats;
mod warm;

/// The L1 engine, re-exported.
pub use strata_engine as engine;
pub use strata_engine::{Cache, CacheStats, EvictionCause};

pub use strata_tier::{
    async_trait, Bytes, Health, KeyPattern, Lookup, PatternError, Tier, TierError, TierWrite,
};

pub use breaker::{BreakerConfig, BreakerState};
pub use builder::{
    TierOptions, TieredCacheBuilder, DEFAULT_COMPRESSION_THRESHOLD, DEFAULT_MAX_VALUE_SIZE,
    DEFAULT_MEMORY_MAX_ENTRIES, DEFAULT_TIER_TIMEOUT,
};
pub use cache::{
    HealthReport, InvalidationReport, SetOptions, TieredCache, TieredStats, WriteReport,
    WriteTarget,
};
pub use codec::{Codec, CodecError, Postcard, RawBytes};
pub use config::{CacheConfig, ConfigError, TierConfig};
pub use error::{CacheError, TierFailure};
pub use fault::{Fault, FaultyTier, Schedule};
pub use memory_tier::MemoryTier;
pub use registry::{query_param, OpenFuture, RegistryError, TierRegistry};
pub use tier_stats::TierStats;
pub use warm::WarmReport;

/// The embedded disk tier (feature `redb`, on by default).
#[cfg(feature = "redb")]
pub use strata_redb as redb;
#[cfg(feature = "redb")]
pub use strata_redb::RedbTier;

/// The README's examples, compiled and run as doc tests.
#[cfg(all(doctest, feature = "redb"))]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;

/// A cache of raw bytes: values are stored in every tier as given (framed and compressed).
pub type BytesCache = TieredCache<Bytes, RawBytes>;
