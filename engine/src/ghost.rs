//! The ghost filter of S3-FIFO: fingerprints of keys recently evicted from the small queue.
//!
//! A direct-mapped array of 16-bit fingerprints: inserting overwrites whatever shared the slot, so
//! old ghosts fade as new ones arrive, and a lookup is one load. False positives (another key with
//! the same slot and fingerprint) only send a new key to the main queue early.

use crate::sync::{AtomicU16, Ordering};

pub(crate) struct Ghost {
    /// Invariant: the length is a power of two. `0` marks an empty slot.
    slots: Box<[AtomicU16]>,
}

impl Ghost {
    /// A filter remembering on the order of `capacity` keys.
    pub(crate) fn new(capacity: usize) -> Self {
        let len = capacity.clamp(2, 1 << 30).next_power_of_two();
        Ghost {
            slots: (0..len).map(|_| AtomicU16::new(0)).collect(),
        }
    }

    #[inline]
    fn locate(&self, hash: u64) -> (&AtomicU16, u16) {
        // Slot from the middle bits, fingerprint from the top ones: independent of the bits the
        // table uses for buckets (high half, scaled) and tags (low bits) only in part, which is
        // enough for a filter whose false positives are harmless.
        let index = (hash >> 20) as usize & (self.slots.len() - 1);
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
