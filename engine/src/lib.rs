//! Strata's L1: a lock-free concurrent cache with S3-FIFO eviction, per-entry TTL, bounds by
//! count or weight, and single-flight loading. Synchronous, no I/O, no background thread.
//!
//! ```
//! use std::time::Duration;
//! use strata_engine::Cache;
//!
//! let cache: Cache<u64, String> = Cache::builder()
//!     .max_capacity(10_000)
//!     .time_to_live(Duration::from_secs(60))
//!     .build();
//! cache.insert(1, "one".to_string());
//! assert_eq!(cache.get(&1).as_deref(), Some("one"));
//!
//! // Concurrent misses of one key run the loader once; the others wait for its value.
//! let two = cache.get_or_insert_with(2, || "two".to_string());
//! assert_eq!(two, "two");
//! ```
//!
//! # Design
//!
//! * **Table.** A fixed array of buckets, each a Harris-Michael lock-free list; inserts,
//!   replacements and removals are CASes, reads take no lock and write nothing but an entry's
//!   frequency counter (and that only while it is below its maximum of 3). The table is sized at
//!   build time from `max_capacity` (or `initial_capacity`) and does not grow: more entries than
//!   buckets only lengthen chains.
//! * **Reclamation.** Unlinked nodes are freed through crossbeam-epoch once no thread can still
//!   read them. We chose it over seize by measurement: with one guard per lookup, as a cache's
//!   `get` needs, a 1M-key Zipf lookup cost the same under either (43-47 ns against 45-48 ns,
//!   seize 0.5 in its membarrier mode, whose guard still swaps on leaving; see
//!   `benches/README.md`), crossbeam-epoch is the most used reclaimer in the ecosystem, and it runs
//!   under loom (`--cfg crossbeam_loom`), which lets `verify/` model-check the real table and its
//!   reclamation together; seize has no loom support.
//! * **Eviction.** S3-FIFO: new keys enter a small FIFO (a tenth of the capacity); those read
//!   while there move on to the main queue, the rest are evicted and remembered by a ghost filter
//!   of fingerprints, so a key that returns soon after goes straight to main. The tenth is the
//!   small FIFO's share once the cache is full; while it fills, every new entry waits there (its
//!   ring has a slot for every entry), so the first entries are judged like all later ones.
//!   Main is a CLOCK over a ring of slots: the hand spares entries read since its last pass, and
//!   a promoted entry takes the slot of the victim it displaces, which keeps insertion order
//!   without moving anything.
//!   The ring is sized from the expected entry count and doubles (a new segment, nothing moved)
//!   when it is full of live entries while the cache is under its bounds.
//!   Scans and one-hit wonders never displace the main queue. Eviction runs on the writing thread,
//!   with no background thread: a bounded number of policy steps per insert, then, only if the
//!   cache is still over a bound, forced evictions until it is back within it (one per victim
//!   needed, so only an entry heavier than many others pays for several).
//! * **Shards.** The eviction state (the two queues, the hand, the entry and weight counters) is
//!   split into up to 64 shards by the low bits of the key's hash, each enforcing its part of
//!   the bounds, so that concurrent writers of different keys rarely write the same cache line:
//!   one shared set of queue ends and counters made two writing threads slower together than
//!   one alone. Lookups touch no shard. A cache gets as many shards (a power of two) as leave
//!   each at least 4,096 entries, or, under a weight bound, 4,096 entries of `max_entry_weight`;
//!   smaller caches and weighted caches with the default entry limit keep one shard. The count
//!   is a function of the bounds only, not of the machine, so a cache evicts the same way
//!   everywhere.
//! * **Memory.** A `u64 -> u64` entry costs a 32-byte node (key, value, link, one metadata word
//!   packing expiry, frequency, flags and a hash tag), an 8-byte bucket, an 8-byte main-queue
//!   slot, an 8-byte small-queue slot (a pointer with the queue's stamp in its low bits) and
//!   about 2 bytes of ghost fingerprints. An entry replaced or removed keeps its node (and
//!   value) until its queue lets go of it, when the small FIFO's head or main's hand reaches it:
//!   a ring cannot drop an item from its middle. While a shard fills, a key overwritten many
//!   times can so hold up to a ring's worth of dead nodes (the shard's expected entry count).
//!   Once the shard has been full, a replacement or removal also takes one step of the small
//!   FIFO when it is past twice its share, which keeps them down: in a test, 20,000 random
//!   overwrites of a full 4,000-entry cache leave about 4,800 values held, against 7,999 without
//!   those steps. No single step releases more than 128 dead nodes.
//!
//! # Consistency
//!
//! * **`get` after `insert`.** Every operation on a key is linearizable with respect to the
//!   others on that key, up to eviction and expiry: once `insert(k, v)` has returned, a `get(&k)`
//!   that starts afterwards returns `v`, or a value written later, or `None` if the entry was
//!   since removed, evicted or expired. It never returns a value that was never inserted, nor one
//!   that was overwritten or removed by an operation that completed before the `get` began. A
//!   replacement is atomic for readers: a concurrent `get` sees the old value or the new one,
//!   never a gap. Two concurrent inserts of one key leave exactly one of the two values.
//! * **Eviction.** The cache may evict any entry at any time, so a miss is always a legal answer
//!   while a bound is set. Bounds are checked after each write: while writes run concurrently the
//!   entry count or weight can exceed its bound by about one entry per writing thread, and once
//!   every write has returned it is back within the bound. A sharded cache enforces the bounds
//!   shard by shard, so it may start evicting a little before the whole cache is full (at one
//!   million entries in 64 shards, about 0.3% before). An entry heavier than `max_entry_weight`
//!   is never stored.
//! * **TTL.** An entry whose time to live has passed is never returned by `get`, `contains_key`
//!   or `iter`. Expiry has a resolution of one millisecond and rounds toward earlier: an entry may
//!   expire up to 1 ms before its TTL, never after. Expired entries are reclaimed lazily (when a
//!   read meets them or the eviction hand passes) or by [`Cache::run_pending_maintenance`].
//! * **Iteration.** [`Cache::iter`], [`Cache::retain`] and [`Cache::clear`] are weakly
//!   consistent: they visit every entry present for their whole run exactly once and may or may
//!   not see concurrent changes. `clear` racing with inserts may leave some of those inserts.
//! * **Counters.** [`Cache::len`], [`Cache::weighted_size`] and [`Cache::stats`] are exact when
//!   the cache is quiescent and approximate while other threads write.
//! * **Listener.** The eviction listener runs on the thread that removed the entry, right after
//!   the removal took effect, once per entry that leaves (never when the cache itself is dropped).
//! * **Loaders.** [`Cache::get_or_insert_with`] and its fallible and async forms are
//!   single-flight per key: concurrent callers that miss run one loader between them, and all
//!   get its outcome. A loader's error reaches every caller that waited on it (as an `Arc`, the
//!   same error); nothing is cached and the next call loads again. A value too heavy to store
//!   is still returned to every caller. If the loader panics or its future is dropped, the
//!   waiting callers retry and one of them loads. The loaded value is inserted only where the
//!   key is absent, so an `insert` made during the load is kept; a `remove`, `clear` or
//!   `retain` made during the load wins (the load's value is returned to its callers but not
//!   cached), and callers that arrive after such a removal start a new load. One gap remains:
//!   if an entry inserted during a load is evicted or expires before the load ends, the
//!   loaded value may take its place.
//!
//! # Feature flags and cfgs
//!
//! `--cfg strata_loom` (together with `--cfg crossbeam_loom`) builds the engine on loom's
//! primitives for model checking and shrinks internal constants so that eviction happens with a
//! handful of entries; see `verify/`.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod builder;
mod cache;
mod clock;
mod error;
mod ghost;
mod listener;
mod loader;
mod main_queue;
mod node;
mod policy;
mod shard;
mod small_queue;
mod stats;
mod sync;
mod table;

pub use builder::CacheBuilder;
pub use cache::{Cache, Iter};
pub use clock::{Clock, MockClock};
pub use error::InsertError;
pub use listener::EvictionCause;
pub use stats::CacheStats;

/// Internals exposed to the loom models of `verify/` only (`--cfg strata_loom`), so they can
/// model-check a component on its own; not part of the API.
#[cfg(strata_loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::small_queue::SmallQueue;
}
