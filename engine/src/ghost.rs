//! The ghost filter of S3-FIFO: fingerprints of keys recently evicted from the small queue.
//!
//! A direct-mapped array of 16-bit fingerprints: inserting overwrites whatever shared the slot, so
//! old ghosts fade as new ones arrive, and a lookup is one load. False positives (another key with
//! the same slot and fingerprint) only send a new key to the main queue early.

use crate::sync::{AtomicU16, Ordering};

pub(crate) struct Ghost {
    /// Invariant: never empty. `0` marks an empty slot.
    slots: Box<[AtomicU16]>,
}

impl Ghost {
    /// A filter remembering about `keys` keys: with as many slots as keys, a ghost's chance to
    /// survive `n` later insertions is about `e^(-n/keys)`, which keeps `keys` of them on average,
    /// like an exact FIFO of that length.
    pub(crate) fn new(keys: usize) -> Self {
        let len = keys.clamp(1, 1 << 30);
        Ghost {
            slots: (0..len).map(|_| AtomicU16::new(0)).collect(),
        }
    }

    #[inline]
    fn locate(&self, hash: u64) -> (&AtomicU16, u16) {
        // Slot from the middle bits (scaled, so any length works), fingerprint from the top ones.
        // They overlap the table's bucket and tag bits in part, which is fine for a filter whose
        // false positives are harmless.
        let index = ((((hash >> 16) & 0xFFFF_FFFF) * self.slots.len() as u64) >> 32) as usize;
        let fingerprint = ((hash >> 48) as u16) | 1;
        (&self.slots[index], fingerprint)
    }

    pub(crate) fn insert(&self, hash: u64) {
        let (slot, fingerprint) = self.locate(hash);
        slot.store(fingerprint, Ordering::Relaxed);
    }

    pub(crate) fn contains(&self, hash: u64) -> bool {
        let (slot, fingerprint) = self.locate(hash);
        slot.load(Ordering::Relaxed) == fingerprint
    }

    pub(crate) fn clear(&self) {
        for slot in self.slots.iter() {
            slot.store(0, Ordering::Relaxed);
        }
    }
}
