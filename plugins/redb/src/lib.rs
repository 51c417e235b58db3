//! Strata's embedded disk tier: a [`Tier`](strata_tier::Tier) in one [redb](https://www.redb.org)
//! file, bounded in size, with per-entry expiry, group commits and crash safety. It needs no
//! server, which makes it the default lower tier under Strata's in-process L1.
//!
//! ```no_run
//! use std::time::Duration;
//! use strata_redb::{Durability, RedbTier, WriteAck};
//! use strata_tier::{Bytes, Tier, WriteIntent};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let tier = RedbTier::builder("/var/cache/app/l3.redb")
//!     .max_size(4 << 30)                                    // 4 GiB of live data
//!     .purge_interval(Duration::from_secs(5))
//!     .durability(Durability::Periodic(Duration::from_secs(1)))
//!     .ack(WriteAck::Enqueued)
//!     .recreate_if_corrupt(true)                            // cache data is disposable
//!     .open_async()
//!     .await?;
//! let ttl = Some(Duration::from_secs(300));
//! tier.set("user:1", Bytes::from_static(b"Ada"), ttl, WriteIntent::Update).await?;
//! assert_eq!(tier.get("user:1").await.into_hit().as_deref(), Some(&b"Ada"[..]));
//! println!("{:?}", tier.stats());
//! tier.close().await?;                                      // flushes, stops the writer
//! # Ok(())
//! # }
//! ```
//!
//! From a URL (a tier registry's configuration), [`RedbFactory`] opens the same tier:
//! `redb:///var/cache/app/l3.redb?max_size=4GiB&durability=1s&ack=enqueued&recreate_if_corrupt=true`
//! (its docs list every parameter; an unknown one is an error).
//!
//! # Design
//!
//! * **Fills.** [`capabilities`](strata_tier::Tier::capabilities) claims `fill_if_absent`: a
//!   `set` with `WriteIntent::Fill` is decided inside the writer's transaction, and leaves an
//!   intact, unexpired entry in place (answering `Stored::Kept`); a fill of a key whose update
//!   is still queued is kept at once. A fill always waits for the commit that decides it,
//!   whatever the [`WriteAck`].
//! * **Tables.** A values table maps each key to a framed record: a crc32 of key and record, a
//!   format byte, the expiry (unix ms, 0 for none), the recency tick of the write, then the
//!   value. An expiry index `(expiry, key)` lets a purge find expired entries by a range scan
//!   from its start, never touching unexpired ones; a recency index `(tick, key)` orders
//!   entries for eviction, and a ticks table `key -> tick` holds each entry's current tick, so
//!   that a hit bumps recency by rewriting two small rows, never the value; a meta table holds
//!   the live-byte and entry counters, updated in the same transactions.
//! * **Writes.** `set`, `delete`, `delete_matching` and `clear` queue an operation for a
//!   dedicated writer thread, which applies everything queued in one write transaction (a group
//!   commit) and answers each caller after the commit. A byte budget on the queue
//!   ([`RedbTierBuilder::queue_bytes`]) makes `set` wait, asynchronously, when the writer falls
//!   behind; invalidations never wait for it. `set_many` and `delete_many` queue their items
//!   together and answer per item (an oversize item fails alone).
//! * **Reads.** `get` and `get_many` look in the pending-writes overlay, then read the file in
//!   one read transaction on tokio's blocking pool; no redb call runs on a runtime worker
//!   thread. A record that fails its checksum answers
//!   [`Lookup::Degraded`](strata_tier::Lookup::Degraded) with
//!   [`TierError::Corrupt`](strata_tier::TierError::Corrupt), and the writer deletes it.
//! * **Expiry.** Reads check each record's expiry, so an expired entry is never returned. The
//!   writer purges expired entries every [`purge_interval`](RedbTierBuilder::purge_interval),
//!   in batches of [`purge_batch`](RedbTierBuilder::purge_batch) index rows.
//! * **Size bound.** Each entry is charged its framed value, its key four times (values, ticks
//!   and both indexes) and 64 bytes of overhead; `max_size` bounds the sum (*live bytes*). When a
//!   commit would exceed it, the same transaction purges every expired entry and then evicts
//!   the least recently used until live bytes are 1/32 under the bound. Recency is an
//!   approximate LRU: writes take a fresh tick, and a hit asks the writer (best effort) for a
//!   fresh tick only when the entry is outside the youngest quarter of the order.
//! * **File size.** redb reuses freed pages, and its commits trim free space at the end of the
//!   file. What the file holds beyond live bytes is B-tree slack (pages are not full; a value
//!   takes a power-of-two run of pages), pages the last durable commit still needs (redb reuses
//!   them only after the next durable commit, which is why non-durable commits are made durable
//!   once they have written a quarter of `max_size`), and free pages in the middle of the file.
//!   When the file grows past `max_size` plus the *compaction slack* (default
//!   `max_size / 2 + 8 MiB`, [`compaction_slack`](RedbTierBuilder::compaction_slack)), the
//!   writer runs redb's `compact`, which moves pages down and truncates the file; reads wait
//!   for it. Below 4 GiB redb grows a file by doubling it, so the documented bound is
//!   **`2 x (max_size + compaction slack)`**, by default `3 x max_size + 16 MiB`. Measured by the
//!   churn test with `max_size` 4 MiB (bound 28 MiB): 8 MiB with 4 KiB values, 6-12 MiB with
//!   16 KiB values, 23.5 MiB at peak and 6.6 MiB after compaction with 200-byte values (whose
//!   three B-trees weigh more than their values). Compactions are at least
//!   [`min_compaction_interval`](RedbTierBuilder::min_compaction_interval) apart, and a file
//!   that compaction cannot shrink below the threshold is compacted again only after it has
//!   grown another quarter of `max_size`.
//! * **Opening.** A missing file is created. A corrupt or foreign file fails with a typed
//!   [`RedbTierError`]; with [`recreate_if_corrupt(true)`](RedbTierBuilder::recreate_if_corrupt)
//!   it is deleted and created anew. redb may panic on some damage; the open catches that and
//!   reports [`RedbTierError::Corrupt`]. After a crash, redb repairs the file at open (reading
//!   all of it), so [`RedbTierBuilder::open`] blocks; [`RedbTierBuilder::open_async`] runs it on
//!   the blocking pool.
//!
//! # Consistency
//!
//! * **`get` after `set`, in this process.** Once `set` has returned `Ok`, a `get` of that key
//!   from this process returns the value (or a value written later, or a miss if the entry has
//!   since expired or was evicted), whatever the [`WriteAck`]: until its commit lands, the
//!   pending-writes overlay answers for the key. A `get` concurrent with a `set` returns the old
//!   or the new value.
//! * **Invalidations.** `delete`, `delete_matching` and `clear` return only after a durable
//!   commit that holds them, and after removing older overlay entries. Once one has returned
//!   `Ok`, no `get` returns a value it removed, in this process or after a crash and restart.
//!   `delete_matching` and `clear` remove what was written before they were called; writes
//!   concurrent with them may survive.
//! * **Durability.** A commit is atomic: after a crash, the file opens at some committed state,
//!   never a partial batch, and every record passes its checksum. What a crash can lose depends
//!   on [`Durability`] and [`WriteAck`]:
//!   - `set` with [`WriteAck::Durable`] returned `Ok`: never lost (the crash test checks this).
//!   - [`Durability::EveryCommit`]: a crash loses only writes not yet committed, that is, sets
//!     acknowledged with [`WriteAck::Enqueued`] and still queued.
//!   - [`Durability::Periodic`]: a crash can lose the commits of up to one interval (plus what is
//!     queued). A lost set leaves the key as it was before the set: missing, or the *previous*
//!     value. Invalidations are not lost (they commit durably), so a value that was deleted does
//!     not come back.
//! * **Failure.** If a commit fails (disk full, I/O error), the writer retries the same batch,
//!   at once and then with a backoff doubling from 10 ms to 1 s, and the tier is
//!   [`Down`](strata_tier::Health::Down) meanwhile: reads answer degraded misses and new
//!   operations fail, while the callers in the batch wait. The first commit that lands makes it
//!   healthy again, and no acknowledged write was dropped. After an I/O error redb refuses
//!   every operation on its handle, so the writer reopens the file first; if commits that were
//!   not yet durable may have been lost by that, the tier empties itself in the next commit
//!   rather than serve older values. A redb panic turns the tier down for good (reopen it).
//!   [`RedbStats::commit_failures`] counts the failed attempts.
//! * **Close.** [`Tier::close`](strata_tier::Tier::close) commits what was queued, makes it
//!   durable and closes the file, so the next open needs no repair
//!   ([`RedbStats::repaired`] tells); a second `close` does nothing.
//! * **Expiry.** Expiry is wall-clock unix milliseconds, stored, so it survives restarts; it
//!   rounds toward earlier (an entry may expire up to 1 ms early, never late).
//! * **Counters.** [`RedbTier::stats`] reports entry and byte counts as of the last commit.
//!
//! # Performance
//!
//! Measured with `strata-bench redb` on a loaded 2-core VM (tables and command in
//! `benches/README.md`): a hit with a warm page cache takes 7-15 us at the median for 1 KiB
//! values and 42-48 us for 64 KiB (p99 11-100 us and 120-170 us), against the 2,000 us the
//! project's seed assumed for a disk-tier hit; about half of a small hit is the `spawn_blocking`
//! hop. Group commits write 22x-172x as many sets per second as one durable commit per write in
//! the default configuration, and 8x-40x with a durable ack on every set, depending on what an
//! fsync costs on the disk.
//!
//! # Threads
//!
//! One writer thread per tier (`strata-redb-writer`); reads use tokio's blocking pool when called
//! inside a tokio runtime, and run inline otherwise.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod builder;
mod config;
mod error;
mod eviction;
mod expiry;
mod factory;
mod open;
mod overlay;
mod purge;
mod queue;
mod reader;
mod record;
mod schema;
mod shared;
mod stats;
mod store;
mod tier;
mod verify;
mod writer;

pub use builder::RedbTierBuilder;
pub use config::{Durability, ParseOptionError, WriteAck};
pub use error::RedbTierError;
pub use factory::RedbFactory;
pub use stats::RedbStats;
pub use tier::RedbTier;
pub use verify::IntegrityReport;
