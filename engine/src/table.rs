//! The lock-free hash table: a fixed array of buckets, each a Harris-Michael linked list.
//!
//! * A node's removal is first *logical* (its `next` pointer gets a mark tag) and then
//!   *physical* (a CAS on its predecessor unlinks it). Any traversal that updates the table helps
//!   unlink the marked nodes it meets; readers only skip them.
//! * New keys are appended at the tail of their chain. Two concurrent inserts of one key race for
//!   the same null pointer, so one wins and the other finds the key on its retry: a key is never
//!   in a chain twice, and keys need no ordering.
//! * A replacement links the new node *through* the old one: `old.next` becomes
//!   `new | MARK_REPLACED` with `new.next` = the old successor. From that one CAS on, every reader
//!   that reaches the old node is led to the new one, so a replace is atomic for readers.
//!
//! Memory is reclaimed through crossbeam-epoch: every method takes a pinned [`Guard`], and a node
//! is retired only once it is unreachable from the buckets (see [`node::release`]).

use std::borrow::Borrow;

use crate::node::{self, Node, MARK_REMOVED, MARK_REPLACED, UNLINKED};
use crate::sync::epoch::{Atomic, Guard, Shared};
use crate::sync::Ordering;

pub(crate) struct Table<K, V> {
    /// Invariant: never empty; the length is fixed at construction.
    buckets: Box<[Atomic<Node<K, V>>]>,
}

/// What an insert did.
pub(crate) enum Inserted<'g, K, V> {
    /// The key was absent; the new node is linked.
    New,
    /// The key was present; this node was replaced (it is marked and frozen).
    Replaced(Shared<'g, Node<K, V>>),
    /// The key was present and the insert was only-if-absent: nothing was linked, and the new
    /// node is still the caller's.
    Kept,
}

/// A position in a chain found by [`Table::search`].
struct Cursor<'a, 'g, K, V> {
    /// The link that points at `curr` (a bucket head or a live node's `next`).
    pred: &'a Atomic<Node<K, V>>,
    /// The node found, or null at the end of the chain.
    curr: Shared<'g, Node<K, V>>,
    /// `curr`'s successor as loaded (untagged), when `curr` is non-null.
    next: Shared<'g, Node<K, V>>,
}

impl<K, V> Table<K, V> {
    pub(crate) fn new(buckets: usize) -> Self {
        let buckets = buckets.clamp(1, u32::MAX as usize);
        Table {
            buckets: (0..buckets).map(|_| Atomic::null()).collect(),
        }
    }

    pub(crate) fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// The bucket of a hash: the high half of the hash scaled to the bucket count
    /// (multiply-shift, so any count works, not only powers of two).
    #[inline]
    pub(crate) fn bucket_of(&self, hash: u64) -> usize {
        (((hash >> 32) * self.buckets.len() as u64) >> 32) as usize
    }

    #[inline]
    fn head(&self, index: usize) -> &Atomic<Node<K, V>> {
        &self.buckets[index]
    }

    /// Finds the live node for `key` without writing anything (the read path).
    #[inline]
    pub(crate) fn find<'g, Q>(&self, hash: u64, key: &Q, guard: &'g Guard) -> Option<&'g Node<K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let mut curr = self
            .head(self.bucket_of(hash))
            .load(Ordering::Acquire, guard);
        // SAFETY: every pointer in a chain was loaded under `guard` and nodes reachable from a
        // bucket are retired only after being unlinked, so they stay valid until `guard` drops.
        while let Some(node) = unsafe { curr.as_ref() } {
            let next = node.next.load(Ordering::Acquire, guard);
            if next.tag() == 0
                && node::tag_matches(node.meta.load(Ordering::Relaxed), hash)
                && node.key.borrow() == key
            {
                return Some(node);
            }
            // A removed node is skipped; a replaced one leads to its replacement.
            curr = next.with_tag(0);
        }
        None
    }

    /// Walks `index`'s chain to the first live node that `stop` accepts, unlinking every marked
    /// node on the way (helping removals finish). Restarts from the head when a CAS loses.
    fn search<'a, 'g>(
        &'a self,
        index: usize,
        guard: &'g Guard,
        mut stop: impl FnMut(&Node<K, V>) -> bool,
    ) -> Cursor<'a, 'g, K, V>
    where
        'g: 'a,
    {
        'restart: loop {
            let mut pred = self.head(index);
            let mut curr = pred.load(Ordering::Acquire, guard);
            loop {
                // SAFETY: loaded under `guard` from a reachable link (see `find`).
                let Some(node) = (unsafe { curr.as_ref() }) else {
                    return Cursor {
                        pred,
                        curr,
                        next: Shared::null(),
                    };
                };
                let next = node.next.load(Ordering::Acquire, guard);
                if next.tag() != 0 {
                    // `node` is marked: swing `pred` past it. For a replaced node `next` is the
                    // replacement, so the chain keeps the key.
                    let succ = next.with_tag(0);
                    match pred.compare_exchange(
                        curr,
                        succ,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                        guard,
                    ) {
                        Ok(_) => {
                            // SAFETY: our CAS unlinked `curr`, so we own the chain's reference.
                            unsafe { node::release(curr, UNLINKED, guard) };
                            curr = succ;
                            continue;
                        }
                        // `pred` changed or was itself marked: start over.
                        Err(_) => continue 'restart,
                    }
                }
                if stop(node) {
                    return Cursor { pred, curr, next };
                }
                pred = &node.next;
                curr = next;
            }
        }
    }

    /// Inserts `new` (a node not yet shared with anyone, holding `key`'s hash), replacing the
    /// live node with the same key if there is one, unless `keep` accepts that node, which is
    /// then left in place ([`Inserted::Kept`]).
    ///
    /// # Safety
    /// `new` must point to a valid node that no other thread can see, created under `guard`,
    /// whose key hashes to `hash`. On return it is published and owned by the table, except
    /// after [`Inserted::Kept`], when it is still unpublished and the caller's to free.
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
        let index = self.bucket_of(hash);
        // SAFETY: the caller guarantees `new` is valid and ours alone.
        let new_ref = unsafe { new.deref() };
        loop {
            let cursor = self.search(index, guard, |node| {
                node::tag_matches(node.meta.load(Ordering::Relaxed), hash)
                    && node.key == new_ref.key
            });
            // SAFETY: `cursor.curr` was loaded under `guard` from a reachable link.
            match unsafe { cursor.curr.as_ref() } {
                None => {
                    new_ref.next.store(Shared::null(), Ordering::Relaxed);
                    if cursor
                        .pred
                        .compare_exchange(
                            Shared::null(),
                            new,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                            guard,
                        )
                        .is_ok()
                    {
                        return Inserted::New;
                    }
                    // The `blind_append` mutant appends at the new tail without looking at the
                    // keys that were appended meanwhile, so two racing inserts of one key can
                    // both land: the loom suite in `verify/` must catch it.
                    #[cfg(strata_mutant = "blind_append")]
                    if self.append_blindly(index, new, guard) {
                        return Inserted::New;
                    }
                }
                Some(old) if keep(old) => return Inserted::Kept,
                Some(old) => {
                    new_ref.next.store(cursor.next, Ordering::Relaxed);
                    // The linearisation point of a replace: from here readers of `old` go on to
                    // `new`.
                    if old
                        .next
                        .compare_exchange(
                            cursor.next,
                            new.with_tag(MARK_REPLACED),
                            Ordering::AcqRel,
                            Ordering::Acquire,
                            guard,
                        )
                        .is_ok()
                    {
                        if cursor
                            .pred
                            .compare_exchange(
                                cursor.curr,
                                new,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                                guard,
                            )
                            .is_ok()
                        {
                            // SAFETY: our CAS unlinked the old node.
                            unsafe { node::release(cursor.curr, UNLINKED, guard) };
                        }
                        return Inserted::Replaced(cursor.curr);
                    }
                }
            }
        }
    }

    #[cfg(strata_mutant = "blind_append")]
    fn append_blindly<'g>(
        &self,
        index: usize,
        new: Shared<'g, Node<K, V>>,
        guard: &'g Guard,
    ) -> bool {
        let mut link = self.head(index);
        loop {
            let next = link.load(Ordering::Acquire, guard);
            // SAFETY: loaded under `guard` from a reachable link.
            match unsafe { next.as_ref() } {
                Some(node) => link = &node.next,
                None => {
                    return link
                        .compare_exchange(next, new, Ordering::AcqRel, Ordering::Acquire, guard)
                        .is_ok()
                }
            }
        }
    }

    /// Logically removes the live node for `key` that `filter` accepts, and unlinks it. Returns
    /// the removed node: the caller performed the removal and does its accounting.
    pub(crate) fn remove<'g, Q>(
        &self,
        hash: u64,
        key: &Q,
        guard: &'g Guard,
        mut filter: impl FnMut(&Node<K, V>) -> bool,
    ) -> Option<Shared<'g, Node<K, V>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let index = self.bucket_of(hash);
        loop {
            let cursor = self.search(index, guard, |node| {
                node::tag_matches(node.meta.load(Ordering::Relaxed), hash)
                    && node.key.borrow() == key
            });
            // SAFETY: loaded under `guard` from a reachable link.
            let node = unsafe { cursor.curr.as_ref() }?;
            if !filter(node) {
                return None;
            }
            if node
                .next
                .compare_exchange(
                    cursor.next,
                    cursor.next.with_tag(MARK_REMOVED),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                    guard,
                )
                .is_ok()
            {
                self.unlink_after_mark(index, &cursor, guard);
                return Some(cursor.curr);
            }
        }
    }

    /// Unlinks a node the caller just marked, trying the cheap CAS on its known predecessor
    /// first and falling back to a helping sweep of the chain.
    fn unlink_after_mark(&self, index: usize, cursor: &Cursor<'_, '_, K, V>, guard: &Guard) {
        if cursor
            .pred
            .compare_exchange(
                cursor.curr,
                cursor.next,
                Ordering::AcqRel,
                Ordering::Acquire,
                guard,
            )
            .is_ok()
        {
            // SAFETY: our CAS unlinked the node.
            unsafe { node::release(cursor.curr, UNLINKED, guard) };
        } else {
            self.purge_marked(index, guard);
        }
    }

    /// Unlinks every marked node of bucket `index` (the marked node someone just removed among
    /// them). A node another thread unlinks first is that thread's to release.
    pub(crate) fn purge_marked(&self, index: usize, guard: &Guard) {
        self.search(index, guard, |_| false);
    }

    /// Visits the live nodes of bucket `index` in chain order, without writing. A node can be
    /// marked concurrently right after it was visited.
    pub(crate) fn for_each_live(
        &self,
        index: usize,
        guard: &Guard,
        mut visit: impl FnMut(&Node<K, V>),
    ) {
        let mut curr = self.head(index).load(Ordering::Acquire, guard);
        // SAFETY: loaded under `guard` from reachable links (see `find`).
        while let Some(node) = unsafe { curr.as_ref() } {
            let next = node.next.load(Ordering::Acquire, guard);
            if next.tag() == 0 {
                visit(node);
            }
            curr = next.with_tag(0);
        }
    }

    /// Frees every node still linked, for the cache's `Drop`. Nodes the small queue still
    /// references (no `DEQUEUED` bit) are skipped: the queue's drain frees them.
    ///
    /// # Safety
    /// No other thread may access the table, and the small queue must be drained after this.
    pub(crate) unsafe fn free_linked(&mut self) {
        // SAFETY: exclusive access (the caller's obligation), so no guard is needed.
        let guard = unsafe { crate::sync::epoch::unprotected() };
        for head in self.buckets.iter() {
            let mut curr = head.load(Ordering::Relaxed, guard);
            while !curr.is_null() {
                // SAFETY: a linked node is valid: it is retired only after being unlinked.
                let node = unsafe { curr.deref() };
                let next = node.next.load(Ordering::Relaxed, guard).with_tag(0);
                if node.meta.load(Ordering::Relaxed) & node::DEQUEUED != 0 {
                    // SAFETY: linked, so never retired; the queue holds no reference; freed once.
                    drop(unsafe { curr.into_owned() });
                }
                curr = next;
            }
        }
    }
}
