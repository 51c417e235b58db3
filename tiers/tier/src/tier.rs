use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Health, KeyPattern, Lookup, TierError};

/// One write of a batch: [`Tier::set_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierWrite {
    /// The key.
    pub key: String,
    /// The bytes to store.
    pub value: Bytes,
    /// How long the tier may keep them; `None` for no expiry.
    pub ttl: Option<Duration>,
}

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
#[async_trait]
pub trait Tier: Send + Sync + 'static {
    /// A short name for stats, health reports and logs (`"redis"`, `"redb"`). Constant for the
    /// tier's lifetime.
    fn name(&self) -> &str;

    /// The bytes stored under `key`.
    ///
    /// Must answer [`Lookup::Miss`] for a key that was never set, was deleted, or whose ttl has
    /// elapsed; [`Lookup::Hit`] with exactly the bytes last set otherwise (or a miss, if the tier
    /// dropped the entry). Must answer [`Lookup::Degraded`] rather than wait indefinitely or
    /// panic when the backend fails, and when stored bytes fail the tier's own integrity check.
    async fn get(&self, key: &str) -> Lookup;

    /// Stores `value` under `key`, replacing any previous value, for at most `ttl` (`None`: no
    /// expiry, the tier may still evict it).
    ///
    /// `Ok` means a following `get` from this process sees the value (durability across a crash
    /// is the tier's documented choice). An error means the value may or may not be stored.
    /// Must return [`TierError::TooLarge`] for a value the tier cannot hold rather than truncate.
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<(), TierError>;

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

    /// Reads many keys; the answer at index `i` is for `keys[i]`. The default calls
    /// [`get`](Tier::get) for each key in turn; tiers with a batch read (Redis `MGET`, one redb
    /// read transaction) override it.
    async fn get_many(&self, keys: &[&str]) -> Vec<Lookup> {
        let mut answers = Vec::with_capacity(keys.len());
        for key in keys {
            answers.push(self.get(key).await);
        }
        answers
    }

    /// Writes many entries. The default calls [`set`](Tier::set) for each in turn and stops at
    /// the first error; tiers with a batch write (a pipeline, one transaction) override it. On
    /// error, any subset of the writes may have happened.
    async fn set_many(&self, writes: Vec<TierWrite>) -> Result<(), TierError> {
        for write in writes {
            self.set(&write.key, write.value, write.ttl).await?;
        }
        Ok(())
    }

    /// The tier's own view of its health. Must return promptly (the orchestrator also applies
    /// its timeout) and must not fail: a tier that cannot check itself is [`Health::Down`].
    async fn health(&self) -> Health;
}

impl std::fmt::Debug for dyn Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Tier").field(&self.name()).finish()
    }
}
