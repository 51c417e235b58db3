//! The ghost filter of S3-FIFO: fingerprints of keys recently evicted from the small queue.
//!
//! S3-FIFO's ghost is a FIFO of keys as long as the main queue: a key evicted from the small queue
//! is remembered until that many later keys have been evicted after it. This filter approximates
//! that FIFO in 4 bytes per remembered key, without a queue:
//!
//! * Each slot holds a 16-bit fingerprint and a 16-bit stamp of when it was written. A lookup
//!   matches only a fingerprint written within the last [`Ghost::new`]'s window of evictions of
//!   the key's shard, so no ghost is remembered longer than the FIFO would keep it.
//! * Slots are grouped in 4-way buckets (16 bytes, one cache line): a key may take any slot of its
//!   bucket, and an insertion overwrites the same key's slot, else an empty one, else the oldest.
//!   So a key is forgotten early only when its bucket received four younger ones, which keeps
//!   about 80% of the FIFO's keys (a direct-mapped table of the same size kept 63%, chosen at
//!   random, and without stamps it kept some for ever).
//!
//! Measured against an exact-FIFO S3-FIFO (`benches/crosscheck/s3fifo_paper.py`) on the
//! generators of `strata-bench`: the direct-mapped filter without stamps differed by up to 2.2
//! points of miss ratio (a loop over more keys than the cache holds kept leaking into main
//! through ghosts that never aged), the same with stamps by up to 1.2 points (too many ghosts
//! forgotten early on flat Zipf workloads).
//!
//! Time is each shard's count of ghost insertions (`Counters::ghost_clock`), so no counter is
//! shared between shards. Each shard has its own slice of the buckets, so a bucket only ever
//! compares stamps of one clock. The stamp counts in steps of `2^shift` insertions, with `shift`
//! chosen so that a window is fewer than 4,096 steps (and at least 2,048 once it is more than
//! one): a window's length is honoured to within two steps, 1/1,024 of it. Ages are read as
//! signed 16-bit differences: a stamp a step *ahead* of the reader's clock (two threads of a shard
//! evicting at once store their clock readings in either order; a lookup may read the clock a
//! little late) is as young as can be, not the oldest. A ghost left untouched for 32,768 steps
//! (8 windows) would look young again; by then its bucket has taken about 32 younger keys, and
//! each one replaces the bucket's oldest.
//!
//! False positives (another key with the same bucket and fingerprint) only send a new key to the
//! main queue early; concurrent insertions into one bucket may overwrite each other's choice of
//! slot, which only forgets a ghost early.

use crate::sync::{AtomicU32, Ordering};

/// Most stamp steps in one window (exclusive): keeps 8 windows within a signed 16-bit age.
const STEPS_PER_WINDOW: u64 = 1 << 12;

/// Slots per bucket.
pub(crate) const WAYS: usize = 4;

/// One bucket: `0` marks an empty slot (fingerprints are odd, so a written slot is never 0).
#[repr(align(16))]
struct Bucket([AtomicU32; WAYS]);

pub(crate) struct Ghost {
    /// Each shard's slice of `per_shard` buckets, in shard order. Invariant: never empty.
    buckets: Box<[Bucket]>,
    /// Buckets per shard (at least 1).
    per_shard: usize,
    /// Shards - 1 (the shard count is a power of two): a hash's shard is `hash & shard_mask`,
    /// as in `Shards::index_of_hash`.
    shard_mask: usize,
    /// Ghost insertions of one shard for which a ghost is remembered, in stamp steps.
    window_steps: u64,
    /// A stamp step is `2^shift` insertions.
    shift: u32,
}

impl Ghost {
    /// A filter remembering about `keys` keys in all, for a cache of `shards` shards: each shard's
    /// ghosts are remembered for its next `keys / shards` ghost insertions, like a FIFO of
    /// `keys` that the shards fill evenly.
    pub(crate) fn new(keys: usize, shards: usize) -> Self {
        debug_assert!(shards.is_power_of_two(), "{shards} shards");
        let shards = shards.max(1);
        let keys = keys.clamp(1, 1 << 30);
        let window = (keys / shards).max(1);
        let per_shard = window.div_ceil(WAYS);
        let (shift, window_steps) = Self::steps(window as u64);
        Ghost {
            buckets: (0..per_shard * shards)
                .map(|_| Bucket(std::array::from_fn(|_| AtomicU32::new(0))))
                .collect(),
            per_shard,
            shard_mask: shards - 1,
            window_steps,
            shift,
        }
    }

    /// The stamp step (as a shift) and the window in steps for a window of `window` insertions.
    pub(crate) fn steps(window: u64) -> (u32, u64) {
        let mut shift = 0;
        while (window >> shift) >= STEPS_PER_WINDOW {
            shift += 1;
        }
        (shift, (window >> shift).max(1))
    }

    #[inline]
    fn locate(&self, hash: u64) -> (&Bucket, u32) {
        // The shard's slice from the low bits (as the shards pick), the bucket in it from the
        // middle bits (scaled, so any length works), the fingerprint from the top ones. They
        // overlap the table's bucket and tag bits in part, which is fine for a filter whose false
        // positives are harmless.
        let base = (hash as usize & self.shard_mask) * self.per_shard;
        let index = base + ((((hash >> 16) & 0xFFFF_FFFF) * self.per_shard as u64) >> 32) as usize;
        let fingerprint = ((hash >> 48) as u32) | 1;
        (&self.buckets[index], fingerprint)
    }

    #[inline]
    fn stamp(&self, now: u64) -> u32 {
        ((now >> self.shift) & 0xFFFF) as u32
    }

    /// Steps since `value` was written: `u32::MAX` for an empty slot, 0 for a stamp ahead of
    /// `now` (a signed 16-bit difference below zero).
    #[inline]
    fn age(&self, value: u32, now: u64) -> u32 {
        if value == 0 {
            return u32::MAX;
        }
        let steps = self.stamp(now).wrapping_sub(value & 0xFFFF) & 0xFFFF;
        if steps >= 0x8000 {
            0
        } else {
            steps
        }
    }

    /// Remembers `hash`; `now` is its shard's ghost clock after counting this insertion.
    pub(crate) fn insert(&self, hash: u64, now: u64) {
        let (bucket, fingerprint) = self.locate(hash);
        // The same key's slot, else the oldest (an empty one is oldest; ties: the first).
        let mut chosen = 0;
        let mut oldest = 0;
        for (way, slot) in bucket.0.iter().enumerate() {
            let value = slot.load(Ordering::Relaxed);
            if value != 0 && value >> 16 == fingerprint {
                chosen = way;
                break;
            }
            let age = self.age(value, now);
            if way == 0 || age > oldest {
                chosen = way;
                oldest = age;
            }
        }
        bucket.0[chosen].store(fingerprint << 16 | self.stamp(now), Ordering::Relaxed);
    }

    /// Whether `hash` was remembered within its shard's last window; `now` is that shard's ghost
    /// clock.
    pub(crate) fn contains(&self, hash: u64, now: u64) -> bool {
        let (bucket, fingerprint) = self.locate(hash);
        bucket.0.iter().any(|slot| {
            let value = slot.load(Ordering::Relaxed);
            value != 0
                && value >> 16 == fingerprint
                && u64::from(self.age(value, now)) < self.window_steps
        })
    }

    pub(crate) fn clear(&self) {
        for bucket in self.buckets.iter() {
            for slot in &bucket.0 {
                slot.store(0, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(all(test, not(strata_loom)))]
mod tests {
    use super::*;

    /// A hash for bucket 0 of any filter with this fingerprint (top 16 bits).
    fn hash_of(fingerprint: u16) -> u64 {
        u64::from(fingerprint) << 48
    }

    #[test]
    fn a_ghost_is_remembered_for_one_window_of_later_insertions() {
        // 100 keys, one shard: remembered while fewer than 100 later insertions happened.
        let ghost = Ghost::new(100, 1);
        let hash = hash_of(0xABCD);
        ghost.insert(hash, 1);
        assert!(ghost.contains(hash, 1));
        assert!(ghost.contains(hash, 100));
        assert!(!ghost.contains(hash, 101));
        assert!(!ghost.contains(hash_of(0x1235), 1), "another fingerprint");
        ghost.clear();
        assert!(!ghost.contains(hash, 1));
    }

    #[test]
    fn a_full_bucket_forgets_its_oldest_ghost() {
        let ghost = Ghost::new(100, 1);
        for (i, fingerprint) in [1u16, 3, 5, 7].into_iter().enumerate() {
            ghost.insert(hash_of(fingerprint), i as u64 + 1);
        }
        // Re-inserting a key refreshes its own slot instead of taking another.
        ghost.insert(hash_of(3), 5);
        ghost.insert(hash_of(9), 6);
        assert!(!ghost.contains(hash_of(1), 6), "the oldest went");
        for fingerprint in [3u16, 5, 7, 9] {
            assert!(ghost.contains(hash_of(fingerprint), 6), "{fingerprint}");
        }
        ghost.insert(hash_of(11), 7);
        assert!(!ghost.contains(hash_of(5), 7) && ghost.contains(hash_of(3), 7));
    }

    #[test]
    fn a_stamp_ahead_of_the_clock_is_young() {
        // Two evictions of one shard stored out of order: the later reading is not "oldest".
        let ghost = Ghost::new(100, 1);
        ghost.insert(hash_of(3), 5);
        ghost.insert(hash_of(1), 10);
        ghost.insert(hash_of(5), 5);
        ghost.insert(hash_of(7), 5);
        // At 9, the slot stamped 10 is the youngest: 3, the oldest first of equals, goes.
        ghost.insert(hash_of(9), 9);
        assert!(
            ghost.contains(hash_of(1), 9),
            "stamped a step ahead of the reader"
        );
        assert!(ghost.contains(hash_of(9), 9) && !ghost.contains(hash_of(3), 9));
    }

    #[test]
    fn each_shard_has_its_own_buckets() {
        // Two shards: same middle bits and fingerprint, different shard bits, different buckets.
        let ghost = Ghost::new(800, 2);
        let (a, _) = ghost.locate(hash_of(5));
        let (b, _) = ghost.locate(hash_of(5) | 1);
        assert!(!std::ptr::eq(a, b));
        // One shard's clock far ahead does not age the other shard's ghosts.
        ghost.insert(hash_of(5), 3);
        for i in 0..4u16 {
            ghost.insert(hash_of(7 + 2 * i) | 1, 1_000_000);
        }
        assert!(ghost.contains(hash_of(5), 3));
    }

    #[test]
    fn large_windows_count_in_steps_and_do_not_wrap_early() {
        let (shift, steps) = Ghost::steps(1_000_000);
        assert!(steps < STEPS_PER_WINDOW && (1_000_000 >> shift) == steps);
        let ghost = Ghost::new(1 << 20, 4); // 262,144 insertions per shard's window
        let hash = 0x1357_0000_2468_0000;
        let at = 5_000_000;
        ghost.insert(hash, at);
        assert!(ghost.contains(hash, at + 250_000));
        assert!(!ghost.contains(hash, at + 270_000));
        // Ten windows later it is still forgotten (no early wrap of the 16-bit stamp).
        assert!(!ghost.contains(hash, at + 10 * 262_144));
    }
}
