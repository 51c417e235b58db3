//! Strata's Redis tier: a [`Tier`](strata_tier::Tier) on a standalone Redis server or a Redis
//! Cluster, which also carries invalidations between the application instances that share it,
//! so that a write on one instance empties the others' L1 within milliseconds.
//!
//! ```no_run
//! use std::time::Duration;
//! use strata_redis::RedisTier;
//! use strata_tier::{Bytes, Tier, WriteIntent};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let tier = RedisTier::standalone("redis://127.0.0.1:6379")
//!     .namespace("shop")
//!     .pool_size(16)
//!     .connect_timeout(Duration::from_secs(1))
//!     .timeout(Duration::from_millis(200))
//!     .open()
//!     .await?;
//! tier.set("user:1", Bytes::from_static(b"Ada"), Some(Duration::from_secs(60)), WriteIntent::Update).await?;
//! assert!(tier.get("user:1").await.is_hit());
//! println!("{:?}", tier.stats());
//! # Ok(()) }
//! ```
//!
//! From a URL, [`RedisFactory`] opens the same tier (`redis://host:6379?namespace=shop`,
//! `redis+cluster://h1:7000,h2:7001?timeout=200ms`; its docs list every option).
//!
//! # Design
//!
//! * **Standalone.** A single-key `GET` on a plain-TCP server goes over a *direct*
//!   connection from a bb8 pool, which the reading task drives itself (it writes the request
//!   and reads the reply, no multiplexer task in between: one `epoll_wait` per read, as
//!   `redis-benchmark` does); a direct connection is held for one request and discarded if the
//!   request failed or was abandoned half-way. Batches (`MGET`), scans and health checks (and
//!   `GET` over TLS) use a bb8 pool of the redis crate's multiplexed connections, opened with an
//!   explicit connect timeout and *shared* by concurrent callers so that the crate pipelines
//!   them; a connection whose command failed at the connection level or was abandoned is
//!   discarded, so both pools heal after a restart. Writes go through a few
//!   *write lanes* (reconnecting multiplexed connections), each key always through the same
//!   lane: Redis runs one connection's commands in order, which is what keeps a key's writes
//!   in the order they were issued (the `Tier` contract's order rule), even when a caller gives
//!   up on a write whose bytes were already sent.
//! * **Cluster.** The redis crate's async cluster connection routes each command by slot and
//!   follows `MOVED`/`ASK` and failovers; its setup is bounded by a timeout. `MGET` and
//!   `UNLINK` are split by slot. `delete_matching` and `clear` `SCAN` every master.
//! * **Writes.** `SET key value PX ttl` (rounded down to the millisecond, at least 1 ms);
//!   fills (`WriteIntent::Fill`) add `NX`, so a promotion or a loader's result never replaces
//!   a newer value, and answer `Stored::Kept` when the key was there. Batches are pipelined.
//! * **Keys.** Every key is stored as `<namespace>:<key>` (`{<namespace>}:<key>` with
//!   [`hash_tag`](RedisTierBuilder::hash_tag), one cluster slot for the namespace).
//!   `delete_matching` and `clear` use `SCAN MATCH` with the namespace's glob characters
//!   escaped and `UNLINK`, never `KEYS` or `FLUSHDB`: other data in the database is untouched.
//! * **Invalidation bus.** Every update, delete, pattern deletion and clear publishes a small
//!   binary message (the writer's origin id, a generation, the send time, the keys or pattern)
//!   on the namespace's channel: `PUBLISH` on a standalone server, in the same pipeline and on
//!   the same connection as the write (so it is sent only after it); `SPUBLISH` on a cluster
//!   whose masters all run Redis 7 or later (the channel's hash tag is the namespace, so one
//!   master carries it), else `PUBLISH`. A `TieredCache` subscribes through
//!   [`Tier::subscribe`](strata_tier::Tier::subscribe): a task per subscription holds a RESP3
//!   connection subscribed to the channel, skips its own tier's messages, and applies a burst
//!   of messages as one batch (keys deduplicated; a clear covers the rest). Fills are not
//!   announced: they copy a value and change nothing another instance could hold.
//! * **Server-assisted tracking** (optional, [`tracking`](RedisTierBuilder::tracking)): the
//!   subscriber's connection also runs `CLIENT TRACKING ON BCAST PREFIX <namespace>:` (on every
//!   master of a cluster), so writes by programs that are not Strata invalidate the L1s too.
//!   It is enabled again on every new subscriber connection (after a disconnect the
//!   subscriber sees, including a failover that drops a node); a master replaced without the
//!   subscriber seeing a disconnect (a manual failover) keeps no tracking until the next
//!   reconnect. Its cost:
//!   the server reports every change, an instance's own writes and fills included, so an L1
//!   also drops what it just wrote or filled and reads it once more from Redis.
//! * **Lost subscriptions.** The subscriber pings its connection every
//!   [`heartbeat`](RedisTierBuilder::heartbeat). A disconnect, an unanswered ping or a server
//!   unsubscribe counts as lost: it resubscribes (backing off from 50 ms to 2 s) and then
//!   clears its L1, since messages may have been missed meanwhile; [`BusStats`] counts these
//!   clears and a warning is logged.
//! * **Outages.** Every Redis command is bounded by the tier's
//!   [`timeout`](RedisTierBuilder::timeout) (a `get_many` of more than 512 keys, a cluster
//!   write and its publish, and each step of a `delete_matching` scan are several commands;
//!   a `TieredCache` bounds the whole call by its own per-tier deadline);
//!   a read that fails answers a degraded miss and the cache goes on to its next tier. A
//!   `TieredCache`'s breaker stops calls while Redis is down and probes until it is back; the
//!   pool and the lanes reconnect by themselves.
//!
//! # Consistency
//!
//! What one `RedisTier` handle promises, and what instances sharing a namespace see:
//!
//! - **Read your writes.** After `set`, `delete`, `delete_matching` or `clear` returned `Ok`,
//!   every read through any handle on the namespace sees its effect (Redis answered only once
//!   it applied it). With a cluster, this holds while the key's master is up: a failover may
//!   lose writes the old master acknowledged but had not replicated (Redis's asynchronous
//!   replication); a lost write reads as a miss, never as a value older than one written
//!   before it on that key, unless the old master had not replicated that older value's
//!   replacement either.
//! - **Order per key.** Writes to one key take effect in the order they were issued by this
//!   handle, also when a caller abandoned one (its future dropped) after its bytes were sent.
//! - **Fills never overwrite.** A fill stores its value only if the key is absent.
//! - **Other instances' L1.** An update, delete, pattern deletion or clear that returned `Ok`
//!   was published after Redis applied it; a subscribed instance removes the affected keys
//!   from its L1 when the message arrives (typically well under a millisecond on loopback;
//!   measured figures in `benches/README.md`). Between the write and that moment, the other
//!   instance may still return the old value from its L1: the bus makes L1s converge quickly,
//!   it does not make reads linearizable across instances.
//! - **Writes by other programs** (`redis-cli`, another service) are not announced on the
//!   bus: other instances' L1s learn of them only with [`tracking`](RedisTierBuilder::tracking)
//!   on, or when their copies expire.
//! - **Missed messages.** A subscriber that lost its connection clears its whole L1 after it
//!   resubscribes; until then (after a silent loss, up to twice the heartbeat, or the heartbeat
//!   plus the timeout if that is longer) it may serve values another instance replaced.
//! - **Failed writes.** A write that returned an error (a timeout, Redis down, or stored but
//!   not published) may or may not have taken effect; the cache treats it as failed. On a
//!   standalone server, a write whose bytes reached a paused server is applied, and then
//!   published, when it resumes. On a cluster the publish goes to the channel's master once the
//!   write answered *or timed out*: a write stuck on a paused master may be applied after other
//!   instances were told, and one of them may re-read and keep the old value until its TTL.
//! - **Pattern deletion and clear** remove every key of the namespace that matched when the
//!   call began; keys written during the scan may survive. They never touch keys outside the
//!   namespace.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod backend;
mod builder;
mod bus;
mod direct;
mod error;
mod factory;
mod keys;
mod pool;
mod stats;
mod tier;
mod tls;

pub use builder::{
    RedisTierBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_HEARTBEAT, DEFAULT_MAX_VALUE_SIZE,
    DEFAULT_NAMESPACE, DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT, DEFAULT_WRITE_LANES,
};
pub use error::RedisTierError;
pub use factory::RedisFactory;
pub use stats::{BusStats, NodeStats, PoolStats, RedisStats};
pub use tier::RedisTier;
