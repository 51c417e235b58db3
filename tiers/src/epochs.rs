//! Write epochs: what stops a read that raced with a write from leaving the older value in L1.
//!
//! A read that misses L1 fetches from a lower tier and then fills L1. If a `set` or an
//! invalidation of the same key runs in between, the read holds the *older* value, and filling
//! L1 with it would keep it there until its TTL. Writers therefore bump the key's epoch before
//! and after they touch the tiers (and write L1 after each bump); a reader notes the epoch
//! before its lower-tier read, fills L1 only if the epoch is unchanged, and checks once more
//! after the fill, undoing it if a writer got in between. Whatever the interleaving, the last
//! L1 write for the key is the writer's own or a removal (proof sketch in `TieredCache::get`).
//!
//! Epochs are striped by key hash, so an unrelated write only costs a racing reader its L1 fill
//! (it still returns the value it read).

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

const STRIPES: usize = 64;

pub(crate) struct WriteEpochs {
    stripes: [AtomicU64; STRIPES],
    hasher: ahash::RandomState,
}

impl WriteEpochs {
    pub(crate) fn new() -> Self {
        WriteEpochs {
            stripes: std::array::from_fn(|_| AtomicU64::new(0)),
            hasher: ahash::RandomState::new(),
        }
    }

    fn stripe(&self, key: &(impl Hash + ?Sized)) -> &AtomicU64 {
        &self.stripes[(self.hasher.hash_one(key) as usize) % STRIPES]
    }

    /// The epoch a reader notes before reading the lower tiers.
    pub(crate) fn read(&self, key: &str) -> u64 {
        self.stripe(key).load(SeqCst)
    }

    /// A writer of `key` marks its start or end.
    pub(crate) fn bump(&self, key: &str) {
        self.stripe(key).fetch_add(1, SeqCst);
    }

    /// A writer of many keys (a pattern, a clear) marks its start or end.
    pub(crate) fn bump_all(&self) {
        self.stripes.iter().for_each(|stripe| {
            stripe.fetch_add(1, SeqCst);
        });
    }
}
