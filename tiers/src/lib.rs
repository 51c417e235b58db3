//! Strata: a multi-tier cache. A lock-free in-process L1 ([`strata_engine`]) in front of an
//! ordered stack of lower tiers (Redis, an embedded redb file, an in-memory tier, your own),
//! each behind the object-safe async [`Tier`] trait.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use strata::{TierOptions, TieredCache, Postcard};
//! use strata_testing::MemoryTier;
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
//! let report = cache.set("user:1:roles", vec!["admin".into()]).await?;
//! assert!(report.is_complete());
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
//! it (so a hung tier costs a read one timeout, not two). Reads and writes have separate
//! breakers, and only faults of the tier (timeouts, I/O, connection errors) count towards
//! them, never a request error such as a value too large. Bytes that fail to decode (damaged, truncated,
//! another format version, a changed type) are counted as corrupt, deleted from that tier and
//! treated as a miss.
//!
//! # How a write goes
//!
//! The value is encoded by the codec (postcard for serde types) and checked against
//! `max_value_size` before anything is written. The payload is framed (version, flags,
//! expiry, CRC-32) and LZ4-compressed if it is at least `compression_threshold` bytes and
//! compression shrinks it. The frame also records when the entry was stored (an HTTP `Age`;
//! see [`TieredCache::get_entry`]). The write goes to L1 and to every lower tier concurrently;
//! a tier that fails is counted and reported in the [`WriteReport`], not an error, since the
//! value is cached in the others. Invalidations (`delete`, `invalidate_pattern`, `clear`) are
//! different: if any tier fails one, the call returns [`CacheError::Invalidation`], because a
//! stale entry must never be kept silently.
//!
//! # Shutdown
//!
//! Call [`TieredCache::close`] before the process exits: every tier flushes what it
//! acknowledged and stops (the disk tier's writer thread, say). A cache dropped without `close`
//! leaves each tier to its own `Drop`, which may lose the last unflushed writes.
//!
//! # Consistency
//!
//! What a reader in this process may see, operation by operation. "Returned" means the call's
//! future completed; "during" means between its start and its return.
//!
//! - **`set(k, v)`**: during the call, a `get(k)` may return the old value or `v`. After it
//!   returns (with `Ok`, whatever its [`WriteReport`] says), every `get(k)` that starts later
//!   returns `v`, a value written later, or a miss (evicted, expired, invalidated); never the
//!   old value, from any tier. Writes of one key take turns: a second `set` of `k` waits for
//!   the first, so L1 and every tier see them in the same order.
//! - **`delete(k)`** that returned `Ok`: no later `get(k)` returns a value written before it.
//!   If a tier failed the delete, the call returns [`CacheError::Invalidation`], L1 no longer
//!   holds `k`, and the failed tier is not read for `k` until a later write or delete of `k`
//!   succeeds there (or its TTL cap has passed), so the old value is not served meanwhile.
//! - **`invalidate_pattern(p)` and `clear()`** that returned: no later `get` of a key they
//!   covered returns a value written before they started. A key written *while* the pattern
//!   runs may survive it. Fills of keys the pattern does not cover are not disturbed.
//! - **A failed or skipped tier write** (an error, a timeout, an open circuit breaker) during
//!   `set` is reported in the [`WriteReport`], not as an error: the value is in L1 and in the
//!   tiers that took it, and each tier that did not is skipped for that key by reads until a
//!   later update of the key succeeds there. So once L1's entry ends, reads do not fall back
//!   to the old value in that tier. A fill that fails, times out or is abandoned (its `get` was
//!   cancelled) marks its key the same way, since it may still land.
//! - **[`WriteTarget::L1Only`]** writes this process's L1 and nothing else: the lower tiers keep
//!   what they held, and once the L1 entry ends a read may find the older value there. Use it
//!   for values that live only in this process.
//! - **Fills never resurrect.** A read that misses L1 and finds a value in a lower tier copies
//!   it into L1 and the tiers above (promotion); `get_or_load` copies the loader's value into
//!   every tier (write-back). These *fills* go ahead only if no write or invalidation of the
//!   key started since the read began; a fill that was in flight when one started is undone
//!   with a delete before the writer returns. Fences are per key (held only while a read or
//!   write of it is in flight): unrelated writes and patterns never cancel a fill.
//! - **`get_or_load`**: concurrent callers share one load; all get its value or its error. A
//!   write of the key that starts during the load wins: the load's value is returned to its
//!   callers but not cached, and callers that arrive after the write began load afresh.
//! - **TTL**: no tier returns an entry after the expiry written in its frame (checked on every
//!   lower-tier read, to the millisecond, against the wall clock), and L1 never holds an entry
//!   past that expiry (L1 uses a monotonic clock; its deadline is computed from the frame's).
//! - **Across processes** sharing lower tiers: each L1 is private. A tier that delivers
//!   invalidation events ([`Tier::subscribe`], the Redis tier's pub/sub) has them applied to
//!   this L1 through the same fences, so another process's write reaches this L1 within the
//!   event's latency; without events, this L1 may serve a value for up to `memory_ttl` after
//!   another process overwrote it. [`TieredCache::apply_invalidation`] applies one by hand.
//!   Lower tiers are written concurrently, not atomically: a reader in another process may see
//!   the new value in one tier and the old in another while a write is in flight. Fences and
//!   stale marks are per process: a promotion another process made from an older read can
//!   land in a shared tier after this process's `delete` (the remote event clears that
//!   process's L1, but not what its promotion wrote), and the older value then stays in that
//!   tier until its TTL. Keep shared tiers' TTLs bounded when this matters.
//! - **Iteration and eviction**: L1 is the `strata-engine` cache, whose own Consistency
//!   section applies to [`TieredCache::l1`]; an eviction from any tier is a miss there, never
//!   an older value.
//!
//! # Features
//!
//! - `metrics`: export per-tier counters, latencies and breaker states through the `metrics`
//!   facade.
//! - `redb` (default): the embedded disk tier, [`RedbTier`], and `redb://` in the default
//!   registry (options in the URL's query, see [`redb`]).
//! - `redis`: the Redis tier, `RedisTier` (a standalone server or a cluster, carrying
//!   invalidations between instances so that a write on one empties the others' L1), and
//!   `redis://`, `rediss://`, `redis+cluster://` in the default registry (see `strata::redis`).
#![deny(unsafe_code)]
#![warn(missing_docs)]
// Examples must not drop a `WriteReport` (or any `#[must_use]` value) unnoticed.
#![doc(test(attr(deny(unused_must_use))))]

mod batch;
mod breaker;
mod builder;
mod cache;
mod codec;
mod config;
mod error;
mod fence;
mod flight;
pub mod frame;
mod invalidate;
mod layer;
mod memo;
#[cfg(feature = "metrics")]
mod metrics_export;
mod read_path;
mod registry;
mod reports;
mod stale;
mod tier_stats;
mod warm;

/// The L1 engine, re-exported.
pub use strata_engine as engine;
pub use strata_engine::{Cache, CacheStats, EvictionCause};

pub use strata_tier::{
    async_trait, Bytes, Capabilities, Health, Invalidation, InvalidationSink, KeyPattern, Lookup,
    OpenFuture, PatternError, Stored, Subscription, Tier, TierError, TierFactory, TierWrite,
    WriteIntent,
};

pub use breaker::{BreakerConfig, BreakerState};
pub use builder::{
    TierOptions, TieredCacheBuilder, DEFAULT_COMPRESSION_THRESHOLD, DEFAULT_MAX_VALUE_SIZE,
    DEFAULT_MEMORY_MAX_ENTRIES, DEFAULT_TIER_TIMEOUT,
};
pub use cache::{SetOptions, TieredCache, WriteTarget};
pub use codec::{Codec, CodecError, Postcard, RawBytes};
pub use config::{CacheConfig, ConfigError, TierConfig};
pub use error::{CacheError, TierFailure};
pub use registry::{query_param, RegistryError, TierRegistry};
pub use reports::{EntryInfo, HealthReport, InvalidationReport, TieredStats, WriteReport};
pub use tier_stats::TierStats;
pub use warm::WarmReport;

/// Memoization: `#[cached]` on an async function, `#[invalidates]` on the functions that change
/// its data (crate `strata-macros`; see [`cached`]).
pub use strata_macros::{cached, invalidates};

/// What the `#[cached]` and `#[invalidates]` expansions call. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::memo::*;
}

/// The embedded disk tier (feature `redb`, on by default).
#[cfg(feature = "redb")]
pub use strata_redb as redb;
#[cfg(feature = "redb")]
pub use strata_redb::{RedbFactory, RedbTier};

/// The Redis tier (feature `redis`).
#[cfg(feature = "redis")]
pub use strata_redis as redis;
#[cfg(feature = "redis")]
pub use strata_redis::{RedisFactory, RedisTier};

/// The README's examples, compiled and run as doc tests.
#[cfg(all(doctest, feature = "redb"))]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;

/// A cache of raw bytes: values are stored in every tier as given (framed and compressed).
pub type BytesCache = TieredCache<Bytes, RawBytes>;
