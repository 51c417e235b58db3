//! One eviction shard: an S3-FIFO pair of queues and the counters its bounds are judged by.
//!
//! A bounded cache splits its capacity among a power-of-two number of shards, and each key belongs
//! to one of them by the low bits of its hash (the bits a node keeps in its hash tag, so a node's
//! shard is known without hashing its key again). Lookups never touch a shard; a write counts
//! its entry in, and evicts from, its own shard only. The cache-line writes that every insert and
//! eviction makes (queue ends, the hand, the counters) are therefore spread over the shards
//! instead of bouncing one line between every writing core. See [`crate::policy::shard_count`]
//! for how many shards a cache gets.

use crate::main_queue::MainQueue;
use crate::node;
use crate::policy;
use crate::small_queue::SmallQueue;
use crate::sync::{AtomicU64, CachePadded, Ordering};

/// The counters a shard's writers update, together on one cache line.
#[derive(Default)]
pub(crate) struct Counters {
    /// Live entries; a wrapping counter read as signed (see [`signed`]).
    pub(crate) entries: AtomicU64,
    /// Total weight, kept only with a weigher (without one it equals `entries`).
    pub(crate) weight: AtomicU64,
    /// Weight of the entries in the small queue, the dead ones still queued included (kept only
    /// with a weigher; without one it is the queue's length).
    pub(crate) small_weight: AtomicU64,
    /// The shard has been over a bound at least once (set once, never cleared): from then on
    /// the small queue keeps to about its share instead of growing to its ring's capacity.
    ///
    /// A hint that synchronises nothing (either value leads to a correct step), so it is `std`'s
    /// even under loom, like the statistics counters: modelling it only multiplied the
    /// interleavings of every evicting model.
    pub(crate) filled: std::sync::atomic::AtomicBool,
    /// Keys this shard's small queue has evicted into the ghost filter: the ghost's clock for this
    /// shard's keys (see [`crate::ghost`]). A hint like `filled`, so `std`'s even under loom: a
    /// stale or reordered reading makes a ghost look a few steps younger or older, and the filter
    /// reads a stamp ahead of the clock as young.
    pub(crate) ghost_clock: std::sync::atomic::AtomicU64,
    /// How much of main's share new keys may take unproven (see [`policy::entrance`]), in
    /// weight units: raised and lowered by the evidence [`policy`] lists. A hint like `filled`
    /// (so `std`'s even under loom), moved by a load and a store: a racing update lost only
    /// delays the adaptation by one step.
    pub(crate) rider_allowance: std::sync::atomic::AtomicU64,
}

/// A shard's S3-FIFO queues.
pub(crate) struct Queues<T> {
    /// New entries waiting to prove themselves.
    pub(crate) small: SmallQueue<T>,
    /// The entries that proved themselves.
    pub(crate) main: MainQueue<T>,
}

pub(crate) struct Shard<T> {
    /// The two queues, absent when the cache is unbounded (it never evicts).
    pub(crate) queues: Option<Queues<T>>,
    /// This shard's part of the cache's bounds.
    pub(crate) max_entries: u64,
    pub(crate) max_weight: u64,
    /// The small queue's share, in weight units.
    pub(crate) small_target: u64,
    /// The main queue's share (the rest of the capacity), in weight units.
    pub(crate) main_target: u64,
    pub(crate) counters: CachePadded<Counters>,
}

impl<T> Shard<T> {
    /// The share of main that new keys may take unproven (see [`Counters::rider_allowance`]).
    pub(crate) fn rider_allowance(&self) -> u64 {
        self.counters.rider_allowance.load(Ordering::Relaxed)
    }

    /// Raises the rider allowance by `by`, up to main's share.
    pub(crate) fn raise_rider_allowance(&self, by: u64) {
        let allowance = &self.counters.rider_allowance;
        let now = allowance.load(Ordering::Relaxed);
        allowance.store(
            now.saturating_add(by).min(self.main_target),
            Ordering::Relaxed,
        );
    }

    /// Lowers the rider allowance by `by`, down to zero.
    pub(crate) fn lower_rider_allowance(&self, by: u64) {
        let allowance = &self.counters.rider_allowance;
        let now = allowance.load(Ordering::Relaxed);
        allowance.store(now.saturating_sub(by), Ordering::Relaxed);
    }
}

/// The shards of one cache, and how keys map onto them.
pub(crate) struct Shards<T> {
    /// Invariant: the length is a power of two.
    shards: Box<[Shard<T>]>,
}

/// What the cache's builder decided, for splitting among shards.
pub(crate) struct Bounds {
    pub(crate) max_entries: u64,
    pub(crate) max_weight: u64,
    pub(crate) max_entry_weight: u64,
    pub(crate) weighted: bool,
    /// Entries the cache is sized for.
    pub(crate) expected_entries: usize,
}

impl<T> Shards<T> {
    pub(crate) fn new(bounds: &Bounds) -> Self {
        let count = policy::shard_count(
            bounds.max_entries,
            bounds.max_weight,
            bounds.max_entry_weight,
            bounds.weighted,
        );
        let bounded = bounds.max_entries != u64::MAX || bounds.max_weight != u64::MAX;
        let shards = (0..count)
            .map(|index| {
                let max_entries = part(bounds.max_entries, count, index);
                let max_weight = part(bounds.max_weight, count, index);
                let expected = part(bounds.expected_entries as u64, count, index).max(1) as usize;
                let policy_capacity = if max_weight != u64::MAX {
                    max_weight
                } else {
                    max_entries
                };
                let small_slots =
                    (expected as u64 * policy::SMALL_RING_PERCENT / 100).max(4) as usize;
                let small_target = policy::small_target(policy_capacity);
                Shard {
                    queues: bounded.then(|| Queues {
                        small: SmallQueue::new(small_slots),
                        main: MainQueue::new(expected),
                    }),
                    max_entries,
                    max_weight,
                    small_target,
                    main_target: policy_capacity - small_target,
                    counters: CachePadded::new(Counters::default()),
                }
            })
            .collect();
        Shards { shards }
    }

    /// The index of the shard of a key with this hash.
    #[inline]
    pub(crate) fn index_of_hash(&self, hash: u64) -> usize {
        hash as usize & (self.shards.len() - 1)
    }

    /// The shard of a key with this hash.
    #[inline]
    pub(crate) fn of_hash(&self, hash: u64) -> &Shard<T> {
        &self.shards[self.index_of_hash(hash)]
    }

    /// The shard of a node, from its metadata word.
    #[inline]
    pub(crate) fn of_meta(&self, meta: u64) -> &Shard<T> {
        &self.shards[node::shard_of(meta)]
    }

    /// One counter summed over the shards, as wrapping values read as signed (see [`signed`]).
    pub(crate) fn total(&self, counter: impl Fn(&Counters) -> &AtomicU64) -> u64 {
        signed(self.shards.iter().fold(0u64, |sum, shard| {
            sum.wrapping_add(counter(&shard.counters).load(Ordering::Relaxed))
        }))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Shard<T>> {
        self.shards.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.len()
    }
}

/// Shard `index`'s part of `total` split `count` ways (the first ones take the remainder, so
/// the parts add up to `total`); an unbounded total stays unbounded.
fn part(total: u64, count: usize, index: usize) -> u64 {
    if total == u64::MAX {
        return u64::MAX;
    }
    let count = count as u64;
    total / count + u64::from((index as u64) < total % count)
}

/// Reads a wrapping counter as signed, clamped at zero: an eviction may uncount an entry before
/// the insert that linked it has counted it.
pub(crate) fn signed(raw: u64) -> u64 {
    (raw as i64).max(0) as u64
}

#[cfg(all(test, not(strata_loom)))]
mod tests {
    use super::part;

    #[test]
    fn parts_add_up_to_the_total() {
        for (total, count) in [(100_000u64, 16usize), (7, 4), (0, 2), (65_537, 64)] {
            let sum: u64 = (0..count).map(|i| part(total, count, i)).sum();
            assert_eq!(sum, total);
            let (lo, hi) = (part(total, count, count - 1), part(total, count, 0));
            assert!(hi - lo <= 1, "parts differ by at most one");
        }
        assert_eq!(part(u64::MAX, 8, 3), u64::MAX);
    }
}
