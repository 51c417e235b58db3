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

    /// The epoch of `key`'s stripe; hash the key once, then read or bump it as often as needed.
    pub(crate) fn of(&self, key: &(impl Hash + ?Sized)) -> Epoch<'_> {
        Epoch {
            stripe: &self.stripes[(self.hasher.hash_one(key) as usize) % STRIPES],
        }
    }

    /// A writer of many keys (a pattern, a clear) marks its start or end.
    pub(crate) fn bump_all(&self) {
        self.stripes.iter().for_each(|stripe| {
            stripe.fetch_add(1, SeqCst);
        });
    }
}

/// One key's epoch (its stripe's).
pub(crate) struct Epoch<'a> {
    stripe: &'a AtomicU64,
}

impl Epoch<'_> {
    /// The epoch a reader notes before reading the lower tiers, and compares after.
    pub(crate) fn read(&self) -> u64 {
        self.stripe.load(SeqCst)
    }

    /// A writer of the key marks its start or end.
    pub(crate) fn bump(&self) {
        self.stripe.fetch_add(1, SeqCst);
    }
}
