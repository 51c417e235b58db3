//! The shards' entry and weight counters, and how an insert or eviction moves them.

use crate::inner::Inner;
use crate::node::Node;
use crate::shard::{signed, Shard};
use crate::sync::Ordering;

/// The counters, readable without the cache's trait bounds (`Debug` uses them).
impl<K, V, S> Inner<K, V, S> {
    /// Live entries, summed over the shards (a shard's counter dips below zero when an eviction
    /// uncounts an entry before its insert has counted it; the sum reads as zero then).
    pub(crate) fn count(&self) -> u64 {
        self.shards.total(|counters| &counters.entries)
    }

    pub(crate) fn total_weight(&self) -> u64 {
        if self.weigher.is_some() {
            self.shards.total(|counters| &counters.weight)
        } else {
            self.count()
        }
    }

    // Without a weigher every entry weighs 1: a shard's weight is its entry count and its small
    // queue's weight that queue's length, so the weight counters are left untouched (two fewer
    // shared read-modify-writes per insert and per eviction).

    pub(crate) fn shard_count(shard: &Shard<Node<K, V>>) -> u64 {
        signed(shard.counters.entries.load(Ordering::Relaxed))
    }

    pub(crate) fn shard_weight(&self, shard: &Shard<Node<K, V>>) -> u64 {
        if self.weigher.is_some() {
            signed(shard.counters.weight.load(Ordering::Relaxed))
        } else {
            Self::shard_count(shard)
        }
    }

    pub(crate) fn over_capacity(&self, shard: &Shard<Node<K, V>>) -> bool {
        Self::shard_count(shard) > shard.max_entries || self.shard_weight(shard) > shard.max_weight
    }

    pub(crate) fn add_weight(&self, shard: &Shard<Node<K, V>>, weight: u64) {
        if self.weigher.is_some() {
            shard.counters.weight.fetch_add(weight, Ordering::AcqRel);
        }
    }

    pub(crate) fn sub_weight(&self, shard: &Shard<Node<K, V>>, weight: u64) {
        if self.weigher.is_some() {
            shard.counters.weight.fetch_sub(weight, Ordering::Relaxed);
        }
    }

    pub(crate) fn small_queue_weight(&self, shard: &Shard<Node<K, V>>) -> u64 {
        match (&self.weigher, &shard.queues) {
            (Some(_), _) => shard.counters.small_weight.load(Ordering::Relaxed),
            (None, Some(queues)) => queues.small.len() as u64,
            (None, None) => 0,
        }
    }

    pub(crate) fn add_small_weight(&self, shard: &Shard<Node<K, V>>, weight: u64) {
        if self.weigher.is_some() {
            shard
                .counters
                .small_weight
                .fetch_add(weight, Ordering::Relaxed);
        }
    }

    pub(crate) fn sub_small_weight(&self, shard: &Shard<Node<K, V>>, weight: u64) {
        if self.weigher.is_some() {
            shard
                .counters
                .small_weight
                .fetch_sub(weight, Ordering::Relaxed);
        }
    }
}
