//! The cache's lock-free hash table, one of two layouts chosen when the cache is built:
//!
//! * [`Buckets`]: a fixed array of cache-line buckets, for a cache bounded by entry count (it
//!   knows how many entries it will hold, so the table is sized once). A hit reads one bucket
//!   line and one node.
//! * [`SplitList`]: a split-ordered list that grows without moving an entry, for a cache
//!   bounded by weight alone or not at all.
//!
//! Both hold each key at most once, make a replacement atomic for readers (a reader that reaches
//! the old node is led to the new one), remove by marking the node first (the linearisation
//! point) and unlinking it after, and retire a node through crossbeam-epoch only once neither
//! the table nor a queue holds it.

use std::borrow::Borrow;

use crate::buckets::Buckets;
use crate::node::Node;
use crate::split_list::SplitList;
use crate::sync::epoch::{Guard, Shared};

/// Largest entry bound that gets a [`Buckets`] table (sized for it up front: 64 bytes per
/// [`crate::buckets::ENTRIES_PER_LINE`] entries); a larger one grows a [`SplitList`] instead.
pub(crate) const MAX_SIZED_ENTRIES: u64 = 1 << 24;

// One table per cache, inside its shared `Inner`: the size of the larger variant costs nothing,
// and boxing it would add a pointer chase to every lookup of the split list.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Table<K, V> {
    Buckets(Buckets<K, V>),
    List(SplitList<K, V>),
}

/// What an insert did.
pub(crate) enum Inserted<'g, K, V> {
    /// The key was absent; the new node is linked.
    New,
    /// The key was present; this node was replaced (it is marked and frozen).
    Replaced(Shared<'g, Node<K, V>>),
    /// The key was present and the insert was only-if-absent: nothing was linked, and the new
    /// node is still the caller's. `seen`: other threads may have loaded a pointer to it (it sat
    /// in a claimed slot of [`Buckets`] for a while), so it must be freed through the epoch, not
    /// at once.
    Kept { seen: bool },
    /// The key was absent and its bucket full ([`Buckets`] only): nothing was linked, and the
    /// new node is still the caller's (`seen` as for [`Inserted::Kept`]).
    Full { seen: bool },
}

impl<K, V> Table<K, V> {
    /// A table for a cache of at most `max_entries` entries (`u64::MAX`: no entry bound)
    /// expected to hold about `expected` entries.
    pub(crate) fn new(max_entries: u64, expected: usize) -> Self {
        if max_entries <= MAX_SIZED_ENTRIES {
            Table::Buckets(Buckets::new(max_entries as usize))
        } else {
            Table::List(SplitList::new(expected))
        }
    }

    /// Number of buckets now.
    pub(crate) fn bucket_count(&self) -> usize {
        match self {
            Table::Buckets(t) => t.bucket_count(),
            Table::List(t) => t.bucket_count(),
        }
    }

    /// Grows a [`SplitList`] if the table is overloaded (see [`SplitList::grow_if_overloaded`]).
    pub(crate) fn grow_if_overloaded(&self, in_shard: u64, shards: usize) {
        if let Table::List(t) = self {
            t.grow_if_overloaded(in_shard, shards);
        }
    }

    /// Finds the live node for `key` (the read path).
    #[inline]
    pub(crate) fn find<'g, Q>(&self, hash: u64, key: &Q, guard: &'g Guard) -> Option<&'g Node<K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        match self {
            Table::Buckets(t) => t.find(hash, key, guard),
            Table::List(t) => t.find(hash, key, guard),
        }
    }

    /// Inserts `new`, replacing the live node of its key unless `keep` accepts that node.
    ///
    /// # Safety
    /// As [`Buckets::insert`] and [`SplitList::insert`]: `new` must point to a valid node that
    /// no other thread can see, created under `guard`, whose key hashes to `hash`. It is the
    /// table's on return, except after [`Inserted::Kept`] or [`Inserted::Full`], when it is
    /// the caller's to free (through the epoch if `Kept { seen: true }`).
    pub(crate) unsafe fn insert<'g>(
        &self,
        hash: u64,
        new: Shared<'g, Node<K, V>>,
        keep: impl Fn(&Node<K, V>) -> bool,
        guard: &'g Guard,
    ) -> Inserted<'g, K, V>
    where
        K: Eq,
    {
        match self {
            // SAFETY: the caller's obligations, passed on.
            Table::Buckets(t) => unsafe { t.insert(hash, new, keep, guard) },
            // SAFETY: as above.
            Table::List(t) => unsafe { t.insert(hash, new, keep, guard) },
        }
    }

    /// Removes the live node for `key` that `filter` accepts; returns it.
    pub(crate) fn remove<'g, Q>(
        &self,
        hash: u64,
        key: &Q,
        guard: &'g Guard,
        filter: impl FnMut(&Node<K, V>) -> bool,
    ) -> Option<Shared<'g, Node<K, V>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        match self {
            Table::Buckets(t) => t.remove(hash, key, guard, filter),
            Table::List(t) => t.remove(hash, key, guard, filter),
        }
    }

    /// Unlinks `node`, which the caller just marked removed (its key hashes to `hash`).
    pub(crate) fn purge_node(&self, hash: u64, node: &Node<K, V>, guard: &Guard) {
        match self {
            Table::Buckets(t) => t.purge_node(hash, node, guard),
            Table::List(t) => t.purge(hash, guard),
        }
    }

    /// Visits the live entries of one run (a bucket, or the entries between two sentinels) and
    /// returns where the walk goes on, or `None` at the end. Start from 0.
    pub(crate) fn for_each_live_in_run(
        &self,
        run: usize,
        guard: &Guard,
        visit: impl FnMut(&Node<K, V>),
    ) -> Option<usize> {
        match self {
            Table::Buckets(t) => t.for_each_live_in_run(run, guard, visit),
            Table::List(t) => t.for_each_live_in_run(run, guard, visit),
        }
    }

    /// Unlinks the marked nodes of run `run`.
    pub(crate) fn purge_run(&self, run: usize, guard: &Guard) {
        match self {
            Table::Buckets(t) => t.purge_run(run, guard),
            Table::List(t) => t.purge_run(run, guard),
        }
    }

    /// Gives up the table's reference to every entry still linked, for the cache's `Drop`.
    ///
    /// # Safety
    /// No other thread may access the table, and the queues must be drained after this.
    pub(crate) unsafe fn release_linked(&mut self) {
        match self {
            // SAFETY: the caller's obligations, passed on.
            Table::Buckets(t) => unsafe { t.release_linked() },
            // SAFETY: as above.
            Table::List(t) => unsafe { t.release_linked() },
        }
    }
}
