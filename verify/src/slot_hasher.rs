//! [`SlotHasher`]: the key hasher that lines the engine's ghost filter up with the reference's.
//!
//! The engine's ghost filter (`engine/src/ghost.rs`) is a table of buckets: a key's bucket is
//! `((hash >> 16) as u32 as u64 * buckets) >> 32`, its fingerprint the top 16 bits of the hash.
//! This hasher gives `u64` key `k` (below 2^13) a hash whose bucket is `k % buckets` and whose
//! fingerprint is unique to `k`, so that the engine's filter remembers exactly the keys the
//! reference's does ([`crate::reference`]). (The code says "slots" for the buckets.) The low 16 bits are the key's, which spreads keys
//! over the table's buckets. If the engine's slot formula changes, the oracle test fails on its
//! ghost rules, and this hasher must follow.

use std::hash::{BuildHasher, Hasher};

/// Largest key the fingerprints keep apart.
pub const MAX_KEY: u64 = (1 << 13) - 1;

/// Builds [`SlotHashState`]s for a ghost filter of `slots` slots.
#[derive(Clone, Copy, Debug)]
pub struct SlotHasher {
    slots: u64,
}

impl SlotHasher {
    /// For a ghost filter of `slots` slots (at least 1).
    pub fn new(slots: usize) -> Self {
        SlotHasher {
            slots: slots.max(1) as u64,
        }
    }
}

impl BuildHasher for SlotHasher {
    type Hasher = SlotHashState;

    fn build_hasher(&self) -> SlotHashState {
        SlotHashState {
            slots: self.slots,
            key: 0,
        }
    }
}

/// Hashes one `u64` key (see the module docs); other input panics.
#[derive(Debug)]
pub struct SlotHashState {
    slots: u64,
    key: u64,
}

impl Hasher for SlotHashState {
    fn write(&mut self, _bytes: &[u8]) {
        panic!("SlotHasher hashes u64 keys only");
    }

    fn write_u64(&mut self, key: u64) {
        assert!(key <= MAX_KEY, "key {key} above SlotHasher's {MAX_KEY}");
        self.key = key;
    }

    fn finish(&self) -> u64 {
        let slot = self.key % self.slots;
        // The least 32-bit value whose scaled slot is `slot`: ceil(slot * 2^32 / slots).
        let scaled = (slot << 32).div_ceil(self.slots);
        (self.key << 49) | (scaled << 16) | (self.key & 0xFFFF)
    }
}
