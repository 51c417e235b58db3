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
//! Besides `get`, `insert` and `remove`, a cache offers what users of moka and quick_cache
//! reach for: [`peek`](Cache::peek) (a read that counts nothing and protects nothing),
//! [`insert_if_absent`](Cache::insert_if_absent), loaders by borrowed key that do not allocate
//! on a hit ([`get_or_insert_with_by_ref`](Cache::get_or_insert_with_by_ref)), loaders that may
//! decline to cache ([`optionally_get_or_insert_with`](Cache::optionally_get_or_insert_with)),
//! an entry API ([`entry`](Cache::entry)), a placeholder guard
//! ([`get_value_or_guard`](Cache::get_value_or_guard)), [`keys`](Cache::keys), and moka's names
//! [`invalidate`](Cache::invalidate), [`invalidate_all`](Cache::invalidate_all),
//! [`entry_count`](Cache::entry_count) and [`run_pending_tasks`](Cache::run_pending_tasks).
//!
//! # Design
//!
//! * **Table.** Two layouts, chosen when the cache is built; in both, inserts, replacements and
//!   removals are CASes, and reads take no lock and write nothing but an entry's frequency
//!   counter (and that only while it is below its maximum of 3).
//!   - A cache bounded by entry count (up to 16M entries) gets a fixed array of 64-byte buckets
//!     sized once for its bound, two to four entries per bucket (a power of two of them, at
//!     most four entries each; CLHT's layout): a control word and six node pointers, each
//!     carrying four bits of its key's hash (nodes are 16-byte aligned), plus up to three
//!     overflow lines of seven, 27 entries in all. A hit reads one bucket line and one node. A new key takes a
//!     free slot and publishes it with a CAS of the control word (a bit per slot and a version),
//!     which fails if another new key landed in the bucket meanwhile, so two inserts of one key
//!     never both land (CLHT-LF's protocol); a replacement swings the slot.
//!   - A cache bounded by weight alone, or unbounded, does not know how many entries it will
//!     hold: it gets a split-ordered list (Shalev and Shavit), one Harris-Michael lock-free list
//!     of every entry sorted by the bit-reversed hash, with a sentinel per bucket as a shortcut
//!     into it. It starts with a bucket per expected entry (`initial_capacity`, or 1,024) and
//!     doubles once it holds more than one entry per bucket without moving an entry: a new
//!     bucket's sentinel is linked into the list by the first operation that needs it.
//! * **Reclamation.** Unlinked nodes are freed through crossbeam-epoch once no thread can still
//!   read them. We chose it over seize by measurement: with one guard per lookup, as a cache's
//!   `get` needs, a 1M-key Zipf lookup cost the same under either (43-47 ns against 45-48 ns,
//!   seize 0.5 in its membarrier mode, whose guard still swaps on leaving; see
//!   `benches/README.md`), crossbeam-epoch is the most used reclaimer in the ecosystem, and it runs
//!   under loom (`--cfg crossbeam_loom`), which lets `verify/` model-check the real table and its
//!   reclamation together; seize has no loom support.
//! * **Eviction.** S3-FIFO: new keys enter a small FIFO (a twentieth of the capacity, where the
//!   paper has a tenth: on the ARC traces and the bench's generators the smaller share gained up
//!   to 1 point of hit ratio on frequency-heavy workloads and lost at most 0.6 on recency-heavy
//!   ones, see `benches/README.md`); those read while there move on to the main queue, the rest
//!   are evicted and remembered by a ghost filter of fingerprints (stamped, so none outlives the
//!   main queue's length of later evictions, as in the paper's ghost FIFO), so a key that returns
//!   soon after goes straight to main. The twentieth holds once the cache is full; while it
//!   fills, every new entry waits there (its ring has a slot for every entry), so the first
//!   entries are judged like all later ones.
//!   Main is a CLOCK over a ring of slots: the hand spares entries read since its last pass, and
//!   a promoted entry takes the slot of the victim it displaces, which keeps insertion order
//!   without moving anything.
//!   The ring is sized from the expected entry count and doubles (a new segment, nothing moved)
//!   when it is full of live entries while the cache is under its bounds.
//!   One departure from the paper: when main holds fewer proven entries than its share, a new
//!   key may go straight to main as a *rider* instead of the small FIFO growing into the room,
//!   within an allowance each shard adapts from what it sees (up with entries the small FIFO
//!   evicts unread and riders that are hit, down with hits in the small FIFO and ghost hits).
//!   A loop over more keys than the cache then keeps a stable part of itself in main, as
//!   CLOCK-Pro would, where a long FIFO gets no hit; see `policy::entrance` and
//!   `benches/README.md`.
//!   Scans and one-hit wonders pass through the small FIFO, or ride into main only while it is
//!   under its share and the allowance lasts, so they never crowd main's proven entries out of
//!   it. Eviction runs on the writing thread,
//!   with no background thread: a bounded number of policy steps per insert, then, only if the
//!   cache is still over a bound, forced evictions until it is back within it (one per victim
//!   needed, so only an entry heavier than many others pays for several).
//! * **Shards.** The eviction state (the two queues, the hand, the entry and weight counters) is
//!   split into up to 64 shards by the low bits of the key's hash, each enforcing its part of
//!   the bounds, so that concurrent writers of different keys rarely write the same cache line:
//!   one shared set of queue ends and counters made two writing threads slower together than
//!   one alone. Lookups touch no shard. A cache gets as many shards (a power of two) as leave
//!   each at least 4,096 entries or, under a weight bound, 4,096 units of weight and room for
//!   four entries of `max_entry_weight` (which defaults to a 64th of the weight, so a weighted
//!   cache gets up to 16 shards); smaller caches keep one shard. The count
//!   is a function of the bounds only, not of the machine, so a cache evicts the same way
//!   everywhere.
//! * **Memory.** A `u64 -> u64` entry costs a 48-byte node (key, value, the list link and its
//!   split-order key, one metadata word packing expiry, frequency, flags and the shard, the
//!   weight, and the last-read time for a time to idle); its share of the table (in a
//!   count-bounded cache, a 64-byte line per two to four entries of the bound, 16 to 32 bytes,
//!   plus overflow lines for the buckets that need one, up to one in nine, about 2 bytes more;
//!   in the split-ordered list, 16
//!   to 32 bytes of bucket sentinel, half an entry to one per bucket), an 8-byte main-queue slot,
//!   an 8-byte small-queue slot (a pointer with the queue's stamp in its low bits) and about 4
//!   bytes of ghost fingerprint and stamp. An entry replaced or removed leaves the table at once, and its key and
//!   value are dropped one epoch later (once no reader can still hold them); its node stays in
//!   its queue as a 48-byte shell until the queue reaches it (a ring cannot drop an item from its
//!   middle). Once the shard has been full, a replacement or removal also takes one step of the
//!   small FIFO when it is past twice its share, which keeps the shells down. No single step
//!   releases more than 128 of them.
//!
//! # Consistency
//!
//! * **`get` after `insert`.** Every operation on a key is linearizable with respect to the
//!   others on that key, up to eviction and expiry: once `insert(k, v)` has returned, a `get(&k)`
//!   that starts afterwards returns `v`, or a value written later, or `None` if the entry was
//!   since removed, evicted or expired. It never returns a value that was never inserted, nor one
//!   that was overwritten or removed by an operation that completed before the `get` began. A
//!   replacement is atomic for readers: a concurrent `get` sees the old value or the new one,
//!   never a gap. Two concurrent inserts of one key leave exactly one of the two values. The
//!   split-ordered list growing changes none of this: no entry moves.
//! * **Reads write a little.** A `get` raises the entry's frequency counter (below its maximum)
//!   and, with a time to idle, its last-read time; in the split-ordered list, the first read of
//!   a bucket after the table grew links that bucket's sentinel into the list (a CAS, no wait). A read that meets an
//!   expired entry removes it: the removal is counted as an expiration and reported to the
//!   listener, on the reading thread, as any other removal is. `peek`-like reads
//!   (`contains_key`, `time_to_live_of`) touch neither counter but also remove an expired entry
//!   they meet.
//! * **Eviction.** The cache may evict any entry at any time, so a miss is always a legal answer
//!   while a bound is set. Bounds are checked after each write: while writes run concurrently the
//!   entry count or weight can exceed its bound by about one entry per writing thread, and once
//!   every write has returned it is back within the bound. An insert that judged its shard
//!   full can also evict one entry more than needed when a removal or an expiry on another
//!   thread frees room between that judgement and the eviction. A sharded cache enforces the
//!   bounds shard by shard, so it may start evicting a little before the whole cache is full
//!   (at one million entries in 64 shards, about 0.3% before). An entry heavier than
//!   `max_entry_weight` is never stored. The weigher runs once per insert, before anything is
//!   stored. In a count-bounded cache, a new key whose bucket has all its 27 slots taken (by
//!   entries, or by inserts in flight) is evicted as it arrives (counted as an insert and an
//!   eviction, and the listener hears `Evicted`; the insert returns as if it stored it, and a
//!   load returns its value uncached): at four entries per bucket a good hasher makes that about
//!   a one in 2 * 10^14 event per bucket; a hasher that sends many keys to one bucket makes the
//!   cache hold 27 of them.
//! * **TTL and TTI.** An entry whose time to live has passed, or that has not been read for its
//!   time to idle, is never returned by `get`, `contains_key` or `iter`. Expiry has a resolution
//!   of one millisecond (4 ms for the time to idle) and rounds toward earlier: an entry may expire
//!   up to 1 ms (8 ms) early, never late. Expired entries are reclaimed lazily (when a read meets
//!   them or the eviction hand passes) or by [`Cache::run_pending_maintenance`].
//! * **Iteration.** [`Cache::iter`], [`Cache::retain`] and [`Cache::clear`] are weakly
//!   consistent: they visit every entry present for their whole run exactly once, also while the
//!   table grows, and may or may not see concurrent changes. A key removed and inserted again
//!   during the walk is a new entry and may be visited twice (once per entry). `clear` racing with
//!   inserts may leave some of those inserts.
//! * **Counters.** [`Cache::len`], [`Cache::weighted_size`] and [`Cache::stats`] are exact when
//!   the cache is quiescent and approximate while other threads write. `len` counts expired
//!   entries that were not reclaimed yet.
//! * **Memory.** A removed, replaced, evicted or expired entry's key and value are dropped once
//!   no thread can still be reading them (the end of the current epoch), not when the queues
//!   reach the entry; `clear` and `retain` hand their garbage to the collector before returning.
//! * **Listener.** The eviction listener runs on the thread that removed the entry, right after
//!   the removal took effect, once per entry that leaves (never when the cache itself is dropped).
//!   If it panics, the panic is caught, counted in [`CacheStats::listener_panics`], and the
//!   listener is never called again (as moka does); the cache's own bookkeeping is unaffected.
//! * **Loaders.** [`Cache::get_or_insert_with`] and its fallible and async forms are
//!   single-flight per key: concurrent callers that miss run one loader between them, and all
//!   get its outcome, value or error. A loader's error reaches every caller that waited on it (as
//!   an `Arc`, the same error); nothing is cached and the next call loads again. A value too heavy
//!   to store is still returned to every caller. If the loader panics or its future is dropped,
//!   the waiting callers retry and one of them loads (one load per panic, not one per caller).
//!   The loaded value is inserted only where the key is absent, so an `insert` made during the
//!   load is kept; a `remove`, `clear` or `retain` made during the load wins (the load's value is
//!   returned to its callers but not cached), and callers that arrive after such a removal start
//!   a new load. One gap remains: if an entry inserted during a load is evicted or expires before
//!   the load ends, the loaded value may take its place. A caller that waited on a load never
//!   returns a value that was already replaced, removed, evicted or expired when its own call
//!   began: it gets the loaded value only if it joined before that value went in, and otherwise
//!   (or if the leader found a value already cached and loaded nothing) it reads the cache
//!   again, and loads if that misses.
//!   The other single-flight entry points go through the same leader/follower core and follow
//!   the same rules: the by-reference loaders, the entry API ([`Cache::entry`]), and
//!   [`Cache::get_value_or_guard`], whose caller that misses leads the key's load and settles
//!   it through its [`PlaceholderGuard`] (an insert is the load's value; dropping the guard
//!   unused is like a loader that panicked). The `optionally_` loaders' `None` reaches the
//!   `optionally_` callers waiting on that load the way an error does, and nothing is cached;
//!   a waiting caller that cannot answer `None` (any other loader, or a guard) retries instead.
//! * **Insert-if-absent.** [`Cache::insert_if_absent`] is one atomic step on its key: of
//!   concurrent calls for an absent key exactly one inserts, and the others keep its value. An
//!   expired entry counts as absent. It takes no part in single flight (see its docs).
//! * **Peek.** [`Cache::peek`] answers like `get` but leaves no trace: no hit or miss is
//!   counted, and the entry is not marked as used, so reading it by `peek` alone does not keep
//!   it from eviction.
//!
//! # Feature flags and cfgs
//!
//! `--cfg strata_loom` (together with `--cfg crossbeam_loom`) builds the engine on loom's
//! primitives for model checking and shrinks internal constants so that eviction happens with a
//! handful of entries; see `verify/`.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod buckets;
mod builder;
mod cache;
mod clock;
mod entry;
mod error;
mod eviction;
mod ghost;
mod inner;
mod iter;
mod listener;
mod load_core;
mod loader;
mod loading;
mod main_queue;
mod node;
mod placeholder;
mod policy;
mod sentinels;
mod shard;
mod small_queue;
mod split_list;
mod stats;
mod sync;
mod table;
mod weights;

pub use builder::CacheBuilder;
pub use cache::Cache;
pub use clock::{Clock, MockClock};
pub use entry::{Entry, OwnedKeyEntrySelector, RefKeyEntrySelector};
pub use error::InsertError;
pub use iter::{Iter, Keys};
pub use listener::EvictionCause;
pub use placeholder::PlaceholderGuard;
pub use stats::CacheStats;

/// Internals exposed to the loom models of `verify/` only (`--cfg strata_loom`), so they can
/// model-check a component on its own; not part of the API.
#[cfg(strata_loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::small_queue::SmallQueue;
}
