use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    Capabilities, Health, InvalidationSink, KeyPattern, Lookup, Stored, Subscription, TierError,
    TierWrite, WriteIntent,
};

/// A lower cache tier: bytes under string keys, with expiry.
///
/// Object-safe and used as `Arc<dyn Tier>`. Every method may be called concurrently from many
/// tasks; implementations synchronise internally. Methods must not block the async runtime's
/// worker threads: a tier whose backend is blocking (a file, a synchronous client) moves that
/// work to `spawn_blocking` or a thread of its own.
///
/// A tier is a *cache*: it may forget any entry at any time (eviction, restart), but it must
/// never return an entry after its `ttl` has elapsed, nor an entry that a `delete`,
/// `delete_matching` or `clear` that returned `Ok` removed.
///
/// Timeouts and circuit breaking are the orchestrator's job; a tier needs no deadline of its
/// own, though it may have one (a connection timeout, say) and report it as
/// [`TierError::Timeout`].
///
/// **Cancellation and order.** The orchestrator drops a call's future when its deadline passes
/// or its caller goes away. A write whose future was dropped (or that returned an error) may
/// still take effect, but operations on one key must take effect in the order they were
/// issued: a `set` or `delete` issued after an earlier one on the same key (whose future was
/// dropped) must not be overtaken by it. A tier with one writer queue or one connection per
/// key keeps this by construction; a tier that spreads requests over a pool must route each
/// key to one connection, or drop a request it has not started once its future is dropped. Report faults of the backend (unreachable, failing, slow) as
/// [`TierError::Unavailable`], [`TierError::Timeout`] or [`TierError::Backend`], and problems
/// of one request or entry as [`TierError::TooLarge`] or [`TierError::Corrupt`]: only the
/// first kind counts towards the circuit breaker ([`TierError::is_fault`]).
///
/// The contract below is checked, method by method, by the reusable suite in the
/// `strata-testing` crate (`strata_testing::contract::check`): run it against your tier.
#[async_trait]
pub trait Tier: Send + Sync + 'static {
    /// A short name for stats, health reports and logs (`"redis"`, `"redb"`). Constant for the
    /// tier's lifetime. A cache that holds two tiers of the same name tells them apart itself.
    fn name(&self) -> &str;

    /// What this tier can do beyond the required methods. Constant for the tier's lifetime.
    /// The default claims nothing.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    /// The bytes stored under `key`.
    ///
    /// Must answer [`Lookup::Miss`] for a key that was never set, was deleted, or whose ttl has
    /// elapsed; [`Lookup::Hit`] with exactly the bytes last stored otherwise (or a miss, if the
    /// tier dropped the entry). Must answer [`Lookup::Degraded`] rather than wait indefinitely or
    /// panic when the backend fails, and when stored bytes fail the tier's own integrity check.
    async fn get(&self, key: &str) -> Lookup;

    /// Stores `value` under `key` for at most `ttl` (`None`: no expiry, the tier may still
    /// evict it).
    ///
    /// With [`WriteIntent::Update`] the value replaces any previous one and the answer is
    /// [`Stored::Written`]. With [`WriteIntent::Fill`] a tier whose
    /// [`capabilities`](Self::capabilities) claim `fill_if_absent` must leave a present key
    /// untouched and answer [`Stored::Kept`]; other tiers treat a fill as an update.
    ///
    /// `Ok` means a following `get` from this process sees the value it stored (durability
    /// across a crash is the tier's documented choice). An error means the value may or may
    /// not be stored. Must return [`TierError::TooLarge`] for a value the tier cannot hold
    /// rather than truncate it.
    async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        intent: WriteIntent,
    ) -> Result<Stored, TierError>;

    /// Removes `key`. Returns whether an entry was there (`false` if the tier cannot tell).
    ///
    /// `Ok` means no later `get` returns the removed value. An error means the entry may still
    /// be there, and the caller must treat the invalidation as failed.
    async fn delete(&self, key: &str) -> Result<bool, TierError>;

    /// Removes every key that `pattern` matches (Redis glob rules, see [`KeyPattern`]) and no
    /// other. Returns how many were removed, as far as the tier can count.
    ///
    /// `Ok` means no key that matched when the call began is still readable with its old value.
    /// Keys written concurrently with the call may survive. Use
    /// [`KeyPattern::literal_prefix`] to narrow the scan to a key range.
    async fn delete_matching(&self, pattern: &KeyPattern) -> Result<u64, TierError>;

    /// Removes every entry this tier holds for this cache. `Ok` means no entry written before
    /// the call is readable after it.
    async fn clear(&self) -> Result<(), TierError>;

    /// Reads many keys; the answer at index `i` is for `keys[i]`, with the same contract as
    /// [`get`](Self::get) for each. The default calls `get` for each key in turn; tiers with a
    /// batch read (Redis `MGET`, one redb read transaction) override it.
    async fn get_many(&self, keys: &[&str]) -> Vec<Lookup> {
        let mut answers = Vec::with_capacity(keys.len());
        for key in keys {
            answers.push(self.get(key).await);
        }
        answers
    }

    /// Writes many entries; the result at index `i` is for `writes[i]`, with the same contract
    /// as [`set`](Self::set) for each. Writes are not atomic as a group: each succeeds or fails
    /// on its own. The default calls `set` for each in turn; tiers with a batch write (a
    /// pipeline, one transaction) override it.
    async fn set_many(&self, writes: Vec<TierWrite>) -> Vec<Result<Stored, TierError>> {
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            results.push(
                self.set(&write.key, write.value, write.ttl, write.intent)
                    .await,
            );
        }
        results
    }

    /// Removes many keys; the result at index `i` is for `keys[i]`, with the same contract as
    /// [`delete`](Self::delete) for each. The default calls `delete` for each in turn.
    async fn delete_many(&self, keys: &[&str]) -> Vec<Result<bool, TierError>> {
        let mut results = Vec::with_capacity(keys.len());
        for key in keys {
            results.push(self.delete(key).await);
        }
        results
    }

    /// The tier's own view of its health. Must return promptly (the orchestrator also applies
    /// its timeout) and must not fail: a tier that cannot check itself is [`Health::Down`].
    async fn health(&self) -> Health;

    /// Delivers invalidations that *other* processes sharing this tier make (a Redis tier's
    /// pub/sub channel) to `sink`, until the returned [`Subscription`] is dropped. A tier
    /// without such a feed answers `None`, the default. Invalidations this process makes
    /// through this tier should not be echoed back to it.
    fn subscribe(&self, sink: std::sync::Arc<dyn InvalidationSink>) -> Option<Subscription> {
        let _ = sink;
        None
    }

    /// Flushes what the tier acknowledged and releases its resources (a writer thread, a
    /// connection pool). After `close` returns `Ok`, every write acknowledged before it is
    /// stored (as durably as the tier documents) and later operations fail with
    /// [`TierError::Closed`] (reads answer a degraded miss). Calling it again is a no-op.
    ///
    /// Dropping a tier without `close` must not corrupt it, but may lose writes acknowledged
    /// before they were made durable. The default does nothing.
    async fn close(&self) -> Result<(), TierError> {
        Ok(())
    }
}

impl std::fmt::Debug for dyn Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Tier").field(&self.name()).finish()
    }
}
