//! [`Weights`]: how a shard's entry and weight counters move and how its bounds are judged,
//! with or without a weigher, in one place.
//!
//! Without a weigher every entry weighs 1: a shard's weight is its entry count and its small
//! queue's weight that queue's length, so the weight counters are left untouched (two fewer
//! shared read-modify-writes per insert and per eviction).

use crate::shard::{signed, Shard, Shards};
use crate::sync::Ordering;

/// Whether entries are weighed, and everything that depends on it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Weights {
    weighted: bool,
}

impl Weights {
    pub(crate) fn new(weighted: bool) -> Self {
        Weights { weighted }
    }

    /// Live entries, summed over the shards (a shard's counter dips below zero when an eviction
    /// uncounts an entry before its insert has counted it; the sum reads as zero then).
    pub(crate) fn total_count<T>(shards: &Shards<T>) -> u64 {
        shards.total(|counters| &counters.entries)
    }

    /// Total weight over the shards.
    pub(crate) fn total<T>(self, shards: &Shards<T>) -> u64 {
        if self.weighted {
            shards.total(|counters| &counters.weight)
        } else {
            Self::total_count(shards)
        }
    }

    /// A shard's live entries.
    pub(crate) fn count<T>(shard: &Shard<T>) -> u64 {
        signed(shard.counters.entries.load(Ordering::Relaxed))
    }

    /// A shard's weight.
    pub(crate) fn weight<T>(self, shard: &Shard<T>) -> u64 {
        if self.weighted {
            signed(shard.counters.weight.load(Ordering::Relaxed))
        } else {
            Self::count(shard)
        }
    }

    /// Whether a shard is over either of its bounds.
    pub(crate) fn over_capacity<T>(self, shard: &Shard<T>) -> bool {
        Self::count(shard) > shard.max_entries || self.weight(shard) > shard.max_weight
    }

    /// Counts an entry of `weight` in (after its entry count). With AcqRel, like the entry
    /// count: see `Inner::insert_as`.
    pub(crate) fn add<T>(self, shard: &Shard<T>, weight: u64) {
        if self.weighted {
            shard.counters.weight.fetch_add(weight, Ordering::AcqRel);
        }
    }

    /// Counts an entry of `weight` out.
    pub(crate) fn sub<T>(self, shard: &Shard<T>, weight: u64) {
        if self.weighted {
            shard.counters.weight.fetch_sub(weight, Ordering::Relaxed);
        }
    }

    /// The weight of a shard's small queue, its dead entries included.
    pub(crate) fn small<T>(self, shard: &Shard<T>) -> u64 {
        match (self.weighted, &shard.queues) {
            (true, _) => shard.counters.small_weight.load(Ordering::Relaxed),
            (false, Some(queues)) => queues.small.len() as u64,
            (false, None) => 0,
        }
    }

    /// An entry of `weight` joined the small queue.
    pub(crate) fn add_small<T>(self, shard: &Shard<T>, weight: u64) {
        if self.weighted {
            shard
                .counters
                .small_weight
                .fetch_add(weight, Ordering::Relaxed);
        }
    }

    /// An entry of `weight` left the small queue.
    pub(crate) fn sub_small<T>(self, shard: &Shard<T>, weight: u64) {
        if self.weighted {
            shard
                .counters
                .small_weight
                .fetch_sub(weight, Ordering::Relaxed);
        }
    }
}
