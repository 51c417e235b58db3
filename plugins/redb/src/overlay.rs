//! Writes that are queued but not yet committed, so that reads in this process see them
//! (read-your-writes) before the writer thread's commit lands.
//!
//! Every queued `set` or `delete` puts its key here, tagged with the write's sequence number,
//! before it is sent to the writer. After the commit that holds it, the writer *settles* the key:
//! removes it if no later write replaced it. A read looks here first and only reads the file if
//! the key is absent. The order makes that safe: a write is settled only after its commit, so a
//! read that misses here and then opens a read transaction sees that commit.
//!
//! `clear` and `delete_matching` settle every key written before them (that matches) once their
//! own commit lands, so no overlay entry older than an invalidation outlives it.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use crate::expiry;

const SHARDS: usize = 16;

/// What a pending write will leave under its key.
#[derive(Clone, Debug)]
pub(crate) enum Pending {
    /// The value, until `expiry_ms` (0: never).
    Put { value: Bytes, expiry_ms: u64 },
    /// Nothing.
    Delete,
}

impl Pending {
    /// The value a read returns at `now`: `Some(None)` for a pending delete or an expired put.
    pub(crate) fn visible(&self, now: u64) -> Option<Bytes> {
        match self {
            Pending::Put { value, expiry_ms } if !expiry::is_expired(*expiry_ms, now) => {
                Some(value.clone())
            }
            _ => None,
        }
    }
}

struct Slot {
    seq: u64,
    pending: Pending,
}

/// The pending writes, sharded by key.
pub(crate) struct Overlay {
    shards: Box<[Mutex<HashMap<String, Slot>>]>,
    hasher: RandomState,
}

impl Overlay {
    pub(crate) fn new() -> Self {
        Overlay {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, HashMap<String, Slot>> {
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        lock(&self.shards[index])
    }

    /// The pending write for `key`, if any.
    pub(crate) fn get(&self, key: &str) -> Option<Pending> {
        self.shard(key).get(key).map(|slot| slot.pending.clone())
    }

    /// Records the write with sequence number `seq`; it replaces any earlier one for the key.
    pub(crate) fn insert(&self, key: &str, seq: u64, pending: Pending) {
        self.shard(key)
            .insert(key.to_owned(), Slot { seq, pending });
    }

    /// Removes `key`'s entry if it is still the write `seq` (its commit has landed).
    pub(crate) fn settle(&self, key: &str, seq: u64) {
        let mut shard = self.shard(key);
        if shard.get(key).is_some_and(|slot| slot.seq == seq) {
            shard.remove(key);
        }
    }

    /// Removes every entry older than `seq` whose key satisfies `matches`.
    pub(crate) fn settle_older(&self, seq: u64, matches: impl Fn(&str) -> bool) {
        for shard in self.shards.iter() {
            lock(shard).retain(|key, slot| slot.seq >= seq || !matches(key));
        }
    }

    /// Pending keys (for stats).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }
}

/// The overlay's maps stay consistent even if a holder panicked (every update is one call).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(value: &'static str) -> Pending {
        Pending::Put {
            value: Bytes::from_static(value.as_bytes()),
            expiry_ms: 0,
        }
    }

    #[test]
    fn settle_removes_only_the_same_write() {
        let overlay = Overlay::new();
        overlay.insert("k", 1, put("a"));
        overlay.insert("k", 2, put("b"));
        overlay.settle("k", 1);
        assert_eq!(
            overlay.get("k").and_then(|p| p.visible(0)),
            Some(Bytes::from("b"))
        );
        overlay.settle("k", 2);
        assert!(overlay.get("k").is_none());
    }

    #[test]
    fn settle_older_spares_later_and_unmatched_writes() {
        let overlay = Overlay::new();
        overlay.insert("user:1", 1, put("a"));
        overlay.insert("post:1", 2, put("b"));
        overlay.insert("user:2", 5, put("c"));
        overlay.settle_older(4, |key| key.starts_with("user:"));
        assert!(overlay.get("user:1").is_none());
        assert!(overlay.get("post:1").is_some());
        assert!(overlay.get("user:2").is_some());
        assert_eq!(overlay.len(), 2);
    }

    #[test]
    fn deletes_and_expired_puts_read_as_absent() {
        assert_eq!(Pending::Delete.visible(0), None);
        let expiring = Pending::Put {
            value: Bytes::from_static(b"v"),
            expiry_ms: 100,
        };
        assert!(expiring.visible(99).is_some());
        assert_eq!(expiring.visible(100), None);
    }
}
