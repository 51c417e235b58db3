//! The table of a cache without an entry bound (unbounded, or bounded by weight only): a
//! split-ordered list (Shalev and Shavit, "Split-Ordered Lists:
//! Lock-Free Extensible Hash Tables", JACM 2006) that grows without moving an entry.
//!
//! * **One list.** Every entry is in one Harris-Michael linked list, sorted by its *split-order
//!   key*: its hash with the bits reversed ([`node::entry_order`]). Bucket `b` of a table of `2^k`
//!   buckets holds the hashes whose low `k` bits are `b`; reversed, they are exactly the keys
//!   between bucket `b`'s *sentinel* (a [`Link`] whose key is `b` reversed, sorting before all of
//!   them) and the next sentinel in the list. A lookup starts at its bucket's sentinel and stops at
//!   the first key past its own.
//! * **Growing.** Doubling the table splits every bucket `b` into `b` and `b + 2^k`; in split
//!   order, the second half of `b`'s run already lies after the first, so nothing moves: the new
//!   bucket only needs a sentinel inserted into the list where its run begins. Sentinels of a new
//!   segment are inserted lazily, by the first write that needs one (after its parent's, the
//!   bucket with the top bit cleared); until then lookups start from the nearest ready ancestor,
//!   which lies before the bucket's run in the list. The bucket array is a set of segments (the
//!   first plus doublings) that are never moved or freed while the table lives, so a sentinel's
//!   address is stable, and a resumable position for iteration.
//! * **Sentinel states** (the low two bits of its order word, masked out of comparisons):
//!   *unclaimed* (in a segment, not in the list), *pending* (claimed by one writer, which links
//!   it; possibly already in the list, so that other threads may pass it, but not yet a place to
//!   start from: a search started there before it is linked could miss a node inserted before
//!   it), *ready* (linked; published with release, read with acquire).
//! * **Removal** of an entry is first *logical* (its `next` pointer gets a mark tag) and then
//!   *physical* (a CAS on its predecessor unlinks it). Any traversal that updates the table helps
//!   unlink the marked nodes it meets; readers only skip them. Sentinels are never removed.
//! * **Replacement** links the new node *through* the old one: `old.next` becomes
//!   `new | MARK_REPLACED` with `new.next` = the old successor (both have the same key, so the
//!   list stays sorted). From that one CAS on, every reader that reaches the old node is led to the
//!   new one, so a replace is atomic for readers.
//! * **Ties.** Entries whose hashes agree on the 62 bits the order keeps sort together, in any
//!   order; a new key joins the end of its run. Two concurrent inserts of one key race for the
//!   same link (the one after the run), so one wins and the other finds the key on its retry: a
//!   key is never in the list twice.
//!
//! Memory is reclaimed through crossbeam-epoch: every method takes a pinned [`Guard`], and an
//! entry's node is retired only once it is unreachable from the list and its queue (see
//! [`node::release`]).

use std::borrow::Borrow;
use std::marker::PhantomData;

use crate::node::{self, Link, Node, Owner, MARK_REMOVED, MARK_REPLACED};
use crate::sentinels::{self, Sentinels, PENDING, READY, SORT_MASK, STATE, UNCLAIMED};
use crate::sync::epoch::{Atomic, Guard, Shared};
use crate::sync::Ordering;
use crate::table::Inserted;

/// The table doubles once it holds more than this many entries per bucket: at two, a
/// weight-bounded cache that grew to a million entries looked up 1.9x slower than a count-bounded
/// one sized for them (one bucket per entry).
pub(crate) const MAX_LOAD: u64 = 1;

pub(crate) struct SplitList<K, V> {
    /// The buckets' sentinels.
    sentinels: Sentinels,
    /// The list's entries are nodes the table owns a reference to.
    _nodes: PhantomData<Box<Node<K, V>>>,
}

/// What a search does at a live link (given its masked order word).
enum Step {
    /// Go on.
    Pass,
    /// Stop: this is the link sought.
    Found,
    /// Stop: the sought position is just before this link.
    Before,
}

/// A position in the list found by [`SplitList::search`].
struct Cursor<'a, 'g> {
    /// The link that points at `curr` (a sentinel's or a live node's `next`).
    pred: &'a Atomic<Link>,
    /// The link found or to insert before, or null at the end of the list.
    curr: Shared<'g, Link>,
    /// `curr`'s successor as loaded (untagged), when `curr` is non-null.
    next: Shared<'g, Link>,
    /// Whether `curr` is the link sought ([`Step::Found`]).
    found: bool,
}

/// The node a link of an entry (order bits `0b11`) belongs to.
fn as_node<'g, K, V>(link: Shared<'g, Link>) -> Shared<'g, Node<K, V>> {
    Shared::from(link.as_raw().cast::<Node<K, V>>())
}

/// # Safety
/// `link` must be the link of an entry (its order word's low bit set), valid for `'g`.
unsafe fn node_ref<K, V>(link: &Link) -> &Node<K, V> {
    // SAFETY: an entry's link is the first field of its `#[repr(C)]` node (the caller's
    // obligation), so the pointer to it is a pointer to the node.
    unsafe { &*(link as *const Link).cast::<Node<K, V>>() }
}

impl<K, V> SplitList<K, V> {
    /// A table with room for about `buckets` entries before it first grows.
    pub(crate) fn new(buckets: usize) -> Self {
        SplitList {
            sentinels: Sentinels::new(buckets),
            _nodes: PhantomData,
        }
    }

    /// Number of buckets now.
    pub(crate) fn bucket_count(&self) -> usize {
        self.sentinels.len()
    }

    /// Where a lookup of `hash` may start: its bucket's sentinel if ready, else that of the
    /// nearest ready ancestor (which precedes the bucket's run). Writes nothing.
    #[inline]
    fn start_for_read(&self, hash: u64) -> &Link {
        let size = self.sentinels.len();
        let mut bucket = hash as usize & (size - 1);
        loop {
            let sentinel = self.sentinels.get(bucket);
            if self.sentinels.is_first_segment(bucket)
                || sentinel.order.load(Ordering::Acquire) & STATE == READY
            {
                return sentinel;
            }
            bucket = sentinels::parent(bucket);
        }
    }

    /// Where a write of `hash` starts: its bucket's sentinel, which it makes ready first if no
    /// other thread is doing so (otherwise the nearest ready ancestor's).
    fn start_for_write(&self, hash: u64, guard: &Guard) -> &Link {
        let size = self.sentinels.len();
        self.ready_sentinel(hash as usize & (size - 1), guard)
    }

    /// Makes bucket `bucket`'s sentinel ready (after its parent's) and returns it; if another
    /// thread has claimed it, returns the parent's instead of waiting.
    fn ready_sentinel(&self, bucket: usize, guard: &Guard) -> &Link {
        let sentinel = self.sentinels.get(bucket);
        if self.sentinels.is_first_segment(bucket) {
            return sentinel;
        }
        let order = sentinel.order.load(Ordering::Acquire);
        if order & STATE == READY {
            return sentinel;
        }
        let parent = self.ready_sentinel(sentinels::parent(bucket), guard);
        let key = order & !STATE;
        if order & STATE != UNCLAIMED
            || sentinel
                .order
                .compare_exchange(order, key | PENDING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return parent;
        }
        let me = Shared::from(sentinel as *const Link);
        // The `early_sentinel` mutant lets searches start from the sentinel before it is in the
        // list, where they miss what is inserted before it meanwhile (or everything, while its
        // link is still null): the loom model of table growth must catch it.
        #[cfg(strata_mutant = "early_sentinel")]
        sentinel.order.store(key | READY, Ordering::Release);
        loop {
            let cursor = self.search(parent, guard, |order, _| {
                if order > key {
                    Step::Before
                } else {
                    Step::Pass
                }
            });
            // Only the claimer writes a pending sentinel's link, before linking it.
            sentinel.next.store(cursor.curr, Ordering::Relaxed);
            if cursor
                .pred
                .compare_exchange(cursor.curr, me, Ordering::AcqRel, Ordering::Acquire, guard)
                .is_ok()
            {
                break;
            }
        }
        // Linked: from here a search may start at it.
        sentinel.order.store(key | READY, Ordering::Release);
        sentinel
    }

    /// Grows the table if a shard holding `in_shard` entries, one of `shards` that split the
    /// keys evenly, says the table holds more than [`MAX_LOAD`] entries per bucket.
    pub(crate) fn grow_if_overloaded(&self, in_shard: u64, shards: usize) {
        let size = self.sentinels.len();
        if in_shard.saturating_mul(shards as u64) > MAX_LOAD.saturating_mul(size as u64) {
            self.sentinels.grow(size);
        }
    }

    /// Finds the live node for `key` (the read path): writes nothing but, after a growth, its
    /// bucket's sentinel (see [`SplitList::start_for_write`]).
    #[inline]
    pub(crate) fn find<'g, Q>(&self, hash: u64, key: &Q, guard: &'g Guard) -> Option<&'g Node<K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let target = node::entry_order(hash) & SORT_MASK;
        // A read links its bucket's sentinel if the table grew and no write has done so yet
        // (once per bucket): otherwise reads after a growth would walk their parent bucket's run,
        // twice as long, until writes reached every bucket (a read-mostly cache that grew looked
        // up 1.9x slower than one sized for its entries).
        let mut curr = self
            .start_for_write(hash, guard)
            .next
            .load(Ordering::Acquire, guard);
        // SAFETY: every pointer in the list was loaded under `guard`, and nodes reachable from the
        // list are retired only after being unlinked (sentinels never), so they stay valid until
        // `guard` drops.
        while let Some(link) = unsafe { curr.as_ref() } {
            let order = link.order.load(Ordering::Relaxed) & SORT_MASK;
            if order > target {
                return None;
            }
            let next = link.next.load(Ordering::Acquire, guard);
            if order == target && next.tag() == 0 {
                // SAFETY: an order equal to an entry's is an entry's (its low bit is set).
                let node = unsafe { node_ref::<K, V>(link) };
                if node.key().borrow() == key {
                    return Some(node);
                }
            }
            // A removed node is skipped; a replaced one leads to its replacement.
            curr = next.with_tag(0);
        }
        None
    }

    /// Walks the list from `start` to the first live link at which `step` stops, unlinking every
    /// marked node on the way (helping removals finish). Restarts from `start` when a CAS loses.
    fn search<'a, 'g>(
        &'a self,
        start: &'a Link,
        guard: &'g Guard,
        mut step: impl FnMut(u64, &'g Link) -> Step,
    ) -> Cursor<'a, 'g>
    where
        'g: 'a,
    {
        'restart: loop {
            let mut pred = &start.next;
            let mut curr = pred.load(Ordering::Acquire, guard);
            loop {
                // SAFETY: loaded under `guard` from a reachable link (see `find`).
                let Some(link) = (unsafe { curr.as_ref() }) else {
                    return Cursor {
                        pred,
                        curr,
                        next: Shared::null(),
                        found: false,
                    };
                };
                let next = link.next.load(Ordering::Acquire, guard);
                if next.tag() != 0 {
                    // A marked entry: swing `pred` past it. For a replaced node `next` is the
                    // replacement, so the list keeps the key.
                    let succ = next.with_tag(0);
                    match pred.compare_exchange(
                        curr,
                        succ,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                        guard,
                    ) {
                        Ok(_) => {
                            // SAFETY: our CAS unlinked the entry (only entries are marked), so we
                            // own the table's reference.
                            unsafe { node::release(as_node::<K, V>(curr), Owner::Table, 0, guard) };
                            curr = succ;
                            continue;
                        }
                        // `pred` changed or was itself marked: start over.
                        Err(_) => continue 'restart,
                    }
                }
                let order = link.order.load(Ordering::Relaxed) & SORT_MASK;
                let stop = step(order, link);
                if !matches!(stop, Step::Pass) {
                    return Cursor {
                        pred,
                        curr,
                        next,
                        found: matches!(stop, Step::Found),
                    };
                }
                pred = &link.next;
                curr = next;
            }
        }
    }

    /// A search for `key`'s live entry from its bucket (see [`SplitList::search`]).
    fn search_key<'a, 'g, Q>(&'a self, hash: u64, key: &Q, guard: &'g Guard) -> Cursor<'a, 'g>
    where
        'g: 'a,
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let target = node::entry_order(hash) & SORT_MASK;
        let start = self.start_for_write(hash, guard);
        self.search(start, guard, |order, link| {
            if order > target {
                Step::Before
            } else if order == target
                // SAFETY: an order equal to an entry's is an entry's.
                && unsafe { node_ref::<K, V>(link) }.key().borrow() == key
            {
                Step::Found
            } else {
                Step::Pass
            }
        })
    }

    /// Inserts `new` (a node not yet shared with anyone, holding `key`'s folded hash), replacing
    /// the live node with the same key if there is one, unless `keep` accepts that node, which
    /// is then left in place ([`Inserted::Kept`]).
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
        // SAFETY: the caller guarantees `new` is valid and ours alone.
        let new_ref = unsafe { new.deref() };
        let new_link = Shared::from(&new_ref.link as *const Link);
        loop {
            let cursor = self.search_key(hash, new_ref.key(), guard);
            if !cursor.found {
                new_ref.link.next.store(cursor.curr, Ordering::Relaxed);
                if cursor
                    .pred
                    .compare_exchange(
                        cursor.curr,
                        new_link,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                        guard,
                    )
                    .is_ok()
                {
                    return Inserted::New;
                }
                // The `blind_append` mutant links the node at the same place again without
                // searching for the keys inserted meanwhile, so two racing inserts of one key can
                // both land: the loom suite in `verify/` must catch it.
                #[cfg(strata_mutant = "blind_append")]
                {
                    let current = cursor.pred.load(Ordering::Acquire, guard);
                    new_ref.link.next.store(current, Ordering::Relaxed);
                    if current.tag() == 0
                        && cursor
                            .pred
                            .compare_exchange(
                                current,
                                new_link,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                                guard,
                            )
                            .is_ok()
                    {
                        return Inserted::New;
                    }
                }
                continue;
            }
            // SAFETY: the cursor found an entry's link, loaded under `guard`.
            let old = unsafe { node_ref::<K, V>(cursor.curr.deref()) };
            if keep(old) {
                return Inserted::Kept { seen: false };
            }
            new_ref.link.next.store(cursor.next, Ordering::Relaxed);
            // The linearisation point of a replace: from here readers of `old` go on to `new`.
            if old
                .link
                .next
                .compare_exchange(
                    cursor.next,
                    new_link.with_tag(MARK_REPLACED),
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
                        new_link,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                        guard,
                    )
                    .is_ok()
                {
                    // SAFETY: our CAS unlinked the old node.
                    unsafe { node::release(as_node::<K, V>(cursor.curr), Owner::Table, 0, guard) };
                }
                return Inserted::Replaced(as_node(cursor.curr));
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
        loop {
            let cursor = self.search_key(hash, key, guard);
            if !cursor.found {
                return None;
            }
            // SAFETY: the cursor found an entry's link, loaded under `guard`.
            let node = unsafe { node_ref::<K, V>(cursor.curr.deref()) };
            if !filter(node) {
                return None;
            }
            if node
                .link
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
                // Unlink: the cheap CAS on its known predecessor, else a helping sweep.
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
                    unsafe { node::release(as_node::<K, V>(cursor.curr), Owner::Table, 0, guard) };
                } else {
                    self.purge(hash, guard);
                }
                return Some(as_node(cursor.curr));
            }
        }
    }

    /// Unlinks every marked node up to the run of `hash` (the marked node someone just removed
    /// among them). A node another thread unlinks first is that thread's to release.
    pub(crate) fn purge(&self, hash: u64, guard: &Guard) {
        let target = node::entry_order(hash) & SORT_MASK;
        self.search(self.start_for_read(hash), guard, |order, _| {
            if order > target {
                Step::Before
            } else {
                Step::Pass
            }
        });
    }

    /// Visits the live entries from bucket `bucket`'s sentinel to the next sentinel in the list,
    /// in list order, without writing, and returns that sentinel's bucket (where the walk goes on
    /// from), or `None` at the end of the list. Start from bucket 0. A node can be marked
    /// concurrently right after it was visited.
    pub(crate) fn for_each_live_in_run(
        &self,
        bucket: usize,
        guard: &Guard,
        mut visit: impl FnMut(&Node<K, V>),
    ) -> Option<usize> {
        let mut curr = self
            .sentinels
            .get(bucket)
            .next
            .load(Ordering::Acquire, guard);
        // SAFETY: loaded under `guard` from reachable links (see `find`).
        while let Some(link) = unsafe { curr.as_ref() } {
            let order = link.order.load(Ordering::Relaxed);
            if order & 1 == 0 {
                return Some(sentinels::bucket_of(order));
            }
            let next = link.next.load(Ordering::Acquire, guard);
            if next.tag() == 0 {
                // SAFETY: the low bit is set: an entry's link.
                visit(unsafe { node_ref(link) });
            }
            curr = next.with_tag(0);
        }
        None
    }

    /// Unlinks the marked nodes of the run after bucket `bucket`'s sentinel (see
    /// [`SplitList::for_each_live_in_run`]).
    pub(crate) fn purge_run(&self, bucket: usize, guard: &Guard) {
        self.search(self.sentinels.get(bucket), guard, |order, _| {
            if order & 1 == 0 {
                Step::Before
            } else {
                Step::Pass
            }
        });
    }

    /// Gives up the table's reference to every entry still linked, for the cache's `Drop`
    /// (entries whose queue still holds them are freed when the queue is drained).
    ///
    /// # Safety
    /// No other thread may access the table, and the queues must be drained after this (see
    /// [`node::release_at_drop`]).
    pub(crate) unsafe fn release_linked(&mut self) {
        // SAFETY: exclusive access (the caller's obligation), so no guard is needed.
        let guard = unsafe { crate::sync::epoch::unprotected() };
        let mut curr = self.sentinels.get(0).next.load(Ordering::Relaxed, guard);
        // SAFETY: a linked node is valid: it is retired only after being unlinked; sentinels live
        // as long as the table.
        while let Some(link) = unsafe { curr.as_ref() } {
            let next = link.next.load(Ordering::Relaxed, guard).with_tag(0);
            if link.order.load(Ordering::Relaxed) & 1 == 1 {
                // SAFETY: exclusive access; an entry's link found once through the list.
                unsafe {
                    node::release_at_drop(as_node::<K, V>(curr).as_raw().cast_mut(), Owner::Table)
                };
            }
            curr = next;
        }
    }
}
