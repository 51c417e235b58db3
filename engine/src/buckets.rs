//! The table of a cache bounded by entry count: a fixed array of cache-line buckets (the layout of
//! CLHT, David, Guerraoui and Trigonakis, "Asynchronized Concurrency", ASPLOS 2015), sized once
//! for the bound, so a hit reads one bucket line and one node.
//!
//! * **Lines.** A key's bucket is a 64-byte [`Line`]: a control word and [`HOME`] slots, each a
//!   node pointer whose low bits carry a few bits of the key's hash (its *tag*, so a lookup
//!   dereferences only the nodes whose tag matches), and a pointer to an overflow line. A bucket
//!   holds at most [`MAX_SLOTS`] entries: its home slots, then up to [`SPILL_LINES`] overflow
//!   lines of [`SPILL`] slots each, allocated when first needed and kept until the table drops.
//! * **The control word** has one *live* bit per slot and, above them, a 37-bit version that
//!   every change of a live bit bumps. A lookup reads it once and looks only at the live slots.
//!   "Unchanged" is judged by the whole word, so a thread stalled between reading it and its
//!   CAS while 2^37 changes pass in its bucket (hours of churn on that one bucket) could be
//!   fooled; nothing else is.
//! * **A new key** (the CLHT-LF protocol): the writer first claims a free slot (not live, null)
//!   with a CAS of its pointer, invisible to readers, then publishes it by a CAS of the control
//!   word that sets the slot's live bit, against the word it read before searching the bucket
//!   for the key. Every other insert of a new key into the bucket changes that word, so the CAS
//!   fails if one landed meanwhile; the writer then searches again and, if it finds the key,
//!   gives its slot back and replaces that entry instead. Two inserts of one key never both land.
//! * **Replacement** marks the old node (its link's `next` becomes `new |`
//!   [`MARK_REPLACED`], as in the split-ordered list) and then swings the slot to the new node.
//!   From the mark on, readers that reach the old node follow it to the new one, so a replace is
//!   atomic for readers.
//! * **Removal** marks the node removed ([`Node::mark_removed`], the linearisation point), then
//!   clears its live bit, then empties its slot: whoever empties the slot releases the table's
//!   reference ([`node::release`]). A slot is reused only once both are done.
//! * **Invariant:** a slot moves away from a node only after the node is marked, and a node is
//!   marked only while it is its slot's node or the replacement its slot's node points to (every
//!   writer first swings a slot whose node was replaced). So a slot is never more than one
//!   replacement behind.
//! * **A full bucket** (all [`MAX_SLOTS`] slots taken, by entries or by inserts in flight, which
//!   a good hasher makes vanishingly rare at [`ENTRIES_PER_LINE`] entries per line) turns a new
//!   key away ([`Inserted::Full`]); the cache reports it as evicted at once.
//!
//! Memory is reclaimed through crossbeam-epoch, as for the split-ordered list: every method takes
//! a pinned [`Guard`], and a node is retired only once no slot and no queue holds it.

use std::borrow::Borrow;
use std::marker::PhantomData;

use crate::node::{self, Node, Owner, MARK_REMOVED, MARK_REPLACED};
use crate::sync::epoch::{Atomic, Guard, Shared};
use crate::sync::{AtomicPtr, AtomicU64, Ordering};
use crate::table::Inserted;

/// Slots in a bucket's home line, beside its control word and overflow pointer (64 bytes).
#[cfg(not(strata_loom))]
const HOME: usize = 6;
/// Slots per overflow line, beside its own overflow pointer (64 bytes).
#[cfg(not(strata_loom))]
const SPILL: usize = 7;
/// Most overflow lines per bucket.
#[cfg(not(strata_loom))]
const SPILL_LINES: usize = 3;
// Loom models hold a handful of keys: small lines make them reach overflow and full buckets.
#[cfg(strata_loom)]
const HOME: usize = 2;
#[cfg(strata_loom)]
const SPILL: usize = 1;
#[cfg(strata_loom)]
const SPILL_LINES: usize = 2;

/// Most entries a bucket holds; also the number of live bits in the control word.
pub(crate) const MAX_SLOTS: usize = HOME + SPILL * SPILL_LINES;
const LIVE_MASK: u64 = (1 << MAX_SLOTS) - 1;
/// One step of the control word's version (the bits above the live bits; it wraps).
const VERSION_ONE: u64 = 1 << MAX_SLOTS;

/// Entries per bucket the table is sized for at most (the line count is a power of two, so a full
/// cache holds two to four per line): at 4, a Poisson spread leaves about 11% of buckets with an
/// overflow line and a full one (27 taken) about once in 2 * 10^14 buckets.
pub(crate) const ENTRIES_PER_LINE: usize = 4;

/// A bucket's home line.
#[repr(C, align(64))]
struct Line<K, V> {
    /// Live bits (one per slot, home then overflow) and the version above them.
    ctrl: AtomicU64,
    slots: [Atomic<Node<K, V>>; HOME],
    /// The first overflow line, or null.
    spill: AtomicPtr<Spill<K, V>>,
}

/// An overflow line.
#[repr(C, align(64))]
struct Spill<K, V> {
    slots: [Atomic<Node<K, V>>; SPILL],
    /// The next overflow line, or null.
    spill: AtomicPtr<Spill<K, V>>,
}

impl<K, V> Line<K, V> {
    fn new() -> Self {
        Line {
            ctrl: AtomicU64::new(0),
            slots: std::array::from_fn(|_| Atomic::null()),
            spill: AtomicPtr::new(std::ptr::null_mut()),
        }
    }
}

pub(crate) struct Buckets<K, V> {
    lines: Box<[Line<K, V>]>,
    /// `lines.len() - 1` (a power of two minus one).
    mask: usize,
    /// The slots hold nodes the table owns a reference to.
    _nodes: PhantomData<Box<Node<K, V>>>,
}

/// The live bit of slot `i`.
#[inline]
fn bit(i: usize) -> u64 {
    1 << i
}

/// A key's tag: hash bits that do not pick the bucket (those are the low ones), as many as a
/// node pointer's alignment leaves free.
#[inline]
fn tag_of<K, V>(hash: u64) -> usize {
    (hash >> 56) as usize & (std::mem::align_of::<Node<K, V>>() - 1)
}

/// The node behind a tagged slot pointer.
#[inline]
fn untagged<K, V>(p: Shared<'_, Node<K, V>>) -> Shared<'_, Node<K, V>> {
    p.with_tag(0)
}

/// Whether `line`'s control word is still `ctrl`: then every slot live in `ctrl` held, while
/// it was read, the node published there or that node's replacement (a slot is emptied, and so
/// can be claimed by another insert, only after its live bit was cleared, which bumps the
/// version). Slot loads are acquire, so this load cannot move before them.
#[inline]
fn validated<K, V>(line: &Line<K, V>, ctrl: u64) -> bool {
    line.ctrl.load(Ordering::Acquire) == ctrl
}

/// The live node a slot's node stands for: the node itself, or the replacement it leads to (one
/// load of each mark decides: a node replaced after a check still holds its key); `None` if
/// removed.
#[inline]
fn current<'g, K, V>(mut node: &'g Node<K, V>, guard: &'g Guard) -> Option<&'g Node<K, V>> {
    loop {
        let next = node.link.next.load(Ordering::Acquire, guard);
        match next.tag() {
            0 => return Some(node),
            // SAFETY: a replacement is a node, valid as long as the node that leads to it (see
            // `Buckets::find`).
            MARK_REPLACED => node = unsafe { &*next.with_tag(0).as_raw().cast() },
            _ => return None,
        }
    }
}

/// A node's replacement, when it is marked replaced (`next` is the replacement's link).
#[inline]
fn replacement<'g, K, V>(node: &Node<K, V>, guard: &'g Guard) -> Option<Shared<'g, Node<K, V>>> {
    let next = node.link.next.load(Ordering::Acquire, guard);
    (next.tag() == MARK_REPLACED)
        .then(|| Shared::from(next.with_tag(0).as_raw().cast::<Node<K, V>>()))
}

/// The slot an insert claimed and has not published yet: given back (emptied) when the insert
/// finds the key after all, or when the claim is dropped unpublished, so that a panic in the
/// key's `Eq` during the insert's search does not hold the slot for good.
struct Claim<'a, K, V> {
    held: Option<(usize, &'a Atomic<Node<K, V>>)>,
}

impl<K, V> Claim<'_, K, V> {
    fn give_back(&mut self) {
        if let Some((_, slot)) = self.held.take() {
            // Not live, so no one else writes it.
            slot.store(Shared::null(), Ordering::Release);
        }
    }
}

impl<K, V> Drop for Claim<'_, K, V> {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// A live slot of the key sought, found by [`Buckets::search`].
struct Found<'a, 'g, K, V> {
    slot: &'a Atomic<Node<K, V>>,
    /// The slot's node as loaded (tagged), live when found.
    node: Shared<'g, Node<K, V>>,
    /// The slot's index (its live bit).
    index: usize,
}

impl<K, V> Buckets<K, V> {
    /// A table for a cache that holds at most about `entries` entries.
    pub(crate) fn new(entries: usize) -> Self {
        let lines = entries
            .div_ceil(ENTRIES_PER_LINE)
            .max(1)
            .next_power_of_two();
        Buckets {
            lines: (0..lines).map(|_| Line::new()).collect(),
            mask: lines - 1,
            _nodes: PhantomData,
        }
    }

    /// Number of buckets (lines).
    pub(crate) fn bucket_count(&self) -> usize {
        self.lines.len()
    }

    #[inline]
    fn line(&self, hash: u64) -> &Line<K, V> {
        &self.lines[hash as usize & self.mask]
    }

    /// Slot `i` of `line`, if its overflow line exists (loading the overflow pointers).
    #[inline]
    fn slot<'a>(&self, line: &'a Line<K, V>, i: usize) -> Option<&'a Atomic<Node<K, V>>> {
        if i < HOME {
            return Some(&line.slots[i]);
        }
        let mut spill = line.spill.load(Ordering::Acquire);
        for _ in 0..(i - HOME) / SPILL {
            // SAFETY: overflow lines are published with release (acquire loads here), never
            // freed before the table drops.
            spill = unsafe { spill.as_ref() }?.spill.load(Ordering::Acquire);
        }
        // SAFETY: as above.
        unsafe { spill.as_ref() }.map(|spill| &spill.slots[(i - HOME) % SPILL])
    }

    /// The slots live in `ctrl`, with their indexes, in index order (those whose overflow line
    /// is not there are skipped).
    #[inline]
    fn live_slots<'a>(
        &self,
        line: &'a Line<K, V>,
        ctrl: u64,
    ) -> impl Iterator<Item = (usize, &'a Atomic<Node<K, V>>)> + use<'a, '_, K, V> {
        let mut live = ctrl & LIVE_MASK;
        std::iter::from_fn(move || {
            while live != 0 {
                let i = live.trailing_zeros() as usize;
                live &= live - 1;
                if let Some(slot) = self.slot(line, i) {
                    return Some((i, slot));
                }
            }
            None
        })
    }

    /// Slot `i` of `line`, allocating the overflow lines up to it if needed.
    fn slot_or_grow<'a>(&self, line: &'a Line<K, V>, i: usize) -> &'a Atomic<Node<K, V>> {
        if i < HOME {
            return &line.slots[i];
        }
        let mut link = &line.spill;
        let mut spill: &Spill<K, V>;
        let mut k = 0;
        loop {
            let mut current = link.load(Ordering::Acquire);
            if current.is_null() {
                let fresh = Box::into_raw(Box::new(Spill {
                    slots: std::array::from_fn(|_| Atomic::null()),
                    spill: AtomicPtr::new(std::ptr::null_mut()),
                }));
                match link.compare_exchange(
                    std::ptr::null_mut(),
                    fresh,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => current = fresh,
                    Err(theirs) => {
                        // SAFETY: our allocation was never published.
                        drop(unsafe { Box::from_raw(fresh) });
                        current = theirs;
                    }
                }
            }
            // SAFETY: published (ours or loaded with acquire), never freed before the table.
            spill = unsafe { &*current };
            if k == (i - HOME) / SPILL {
                return &spill.slots[(i - HOME) % SPILL];
            }
            link = &spill.spill;
            k += 1;
        }
    }

    /// Finds the live node for `key` (the read path): writes nothing.
    #[inline]
    pub(crate) fn find<'g, Q>(&self, hash: u64, key: &Q, guard: &'g Guard) -> Option<&'g Node<K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let line = self.line(hash);
        let tag = tag_of::<K, V>(hash);
        'scan: loop {
            let ctrl = line.ctrl.load(Ordering::Acquire);
            for (_, slot) in self.live_slots(line, ctrl) {
                let p = slot.load(Ordering::Acquire, guard);
                if p.tag() != tag {
                    continue;
                }
                // SAFETY: loaded under `guard` from a slot; a node is retired only after no slot
                // holds it (and, for a replaced one, after its slot moved on), so it is valid
                // until `guard` drops; likewise its replacement, linked before the slot moved.
                let Some(node) = (unsafe { untagged(p).as_ref() }) else {
                    continue;
                };
                if node.key().borrow() != key {
                    continue;
                }
                // The slot may have been emptied and claimed by an insert not yet published
                // since `ctrl` was read; that changes the control word (see `validated`).
                if !validated(line, ctrl) {
                    continue 'scan;
                }
                match current(node, guard) {
                    Some(node) => return Some(node),
                    // Removed, its slot not yet emptied (its remover may be stalled): the key
                    // may have been inserted again, in another slot. The `stop_at_removed`
                    // mutant answers a miss here: the loom suite in `verify/` must catch it.
                    #[cfg(strata_mutant = "stop_at_removed")]
                    None => return None,
                    #[cfg(not(strata_mutant = "stop_at_removed"))]
                    None => {}
                }
            }
            return None;
        }
    }

    /// Swings `slot` past its node if that node was replaced (releasing the table's reference
    /// to it if this call swung it), and returns the slot's node now.
    fn settle<'g>(&self, slot: &Atomic<Node<K, V>>, guard: &'g Guard) -> Shared<'g, Node<K, V>> {
        let mut p = slot.load(Ordering::Acquire, guard);
        loop {
            // SAFETY: loaded under `guard` from a slot (see `find`).
            let Some(node) = (unsafe { untagged(p).as_ref() }) else {
                return p;
            };
            let Some(next) = replacement(node, guard) else {
                return p;
            };
            // Same key, same tag.
            let next = next.with_tag(p.tag());
            match slot.compare_exchange(p, next, Ordering::AcqRel, Ordering::Acquire, guard) {
                Ok(_) => {
                    // SAFETY: our CAS took the replaced node out of its slot: the table's
                    // reference is ours to give up.
                    unsafe { node::release(untagged(p), Owner::Table, 0, guard) };
                    p = next;
                }
                Err(e) => p = e.current,
            }
        }
    }

    /// Searches the bucket's live slots for `key`'s live node, settling replaced ones. Returns
    /// the control word the search read, and what it found: a live node found is published (its
    /// slot was live throughout), an absent key may have been inserted since (a CAS on the
    /// returned word then fails).
    fn search<'a, 'g, Q>(
        &self,
        line: &'a Line<K, V>,
        tag: usize,
        key: &Q,
        guard: &'g Guard,
    ) -> (u64, Option<Found<'a, 'g, K, V>>)
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        'scan: loop {
            let ctrl = line.ctrl.load(Ordering::Acquire);
            for (i, slot) in self.live_slots(line, ctrl) {
                if slot.load(Ordering::Acquire, guard).tag() != tag {
                    continue;
                }
                // A node replaced after `settle` looked at it still holds the key (through its
                // replacement, which the replace did not announce in the control word): settle
                // again rather than take the key for absent. One load of the mark decides.
                let (p, live) = loop {
                    let p = self.settle(slot, guard);
                    // SAFETY: as in `find`.
                    let Some(node) = (unsafe { untagged(p).as_ref() }) else {
                        break (p, None);
                    };
                    match node.link.next.load(Ordering::Acquire, guard).tag() {
                        MARK_REPLACED => continue,
                        0 => break (p, Some(node)),
                        _ => break (p, None),
                    }
                };
                if live.is_some_and(|node| node.key().borrow() == key) {
                    if !validated(line, ctrl) {
                        continue 'scan;
                    }
                    let found = Found {
                        slot,
                        node: p,
                        index: i,
                    };
                    return (ctrl, Some(found));
                }
            }
            return (ctrl, None);
        }
    }

    /// Takes a removed node out of slot `index`: clears its live bit, then empties the slot if it
    /// still holds `p` (releasing the table's reference if this call emptied it). The caller
    /// marked `p` removed or saw its removed mark with acquire; the marker had read a control
    /// word with `p`'s live bit set, so `p`'s publication happens before this call's loads.
    fn unlink(
        &self,
        line: &Line<K, V>,
        index: usize,
        slot: &Atomic<Node<K, V>>,
        p: Shared<'_, Node<K, V>>,
        guard: &Guard,
    ) {
        loop {
            let ctrl = line.ctrl.load(Ordering::Acquire);
            // If the slot still holds `p`, the live bit in `ctrl` is `p`'s: a slot is reused only
            // after it was emptied, and `p`'s publication happens before this load (see above),
            // so coherence rules out a control word older than it.
            if slot.load(Ordering::Acquire, guard) != p {
                return;
            }
            if ctrl & bit(index) == 0 {
                break;
            }
            if line
                .ctrl
                .compare_exchange(
                    ctrl,
                    (ctrl & !bit(index)).wrapping_add(VERSION_ONE),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                break;
            }
        }
        if slot
            .compare_exchange(
                p,
                Shared::null(),
                Ordering::AcqRel,
                Ordering::Acquire,
                guard,
            )
            .is_ok()
        {
            // SAFETY: our CAS emptied the slot, whose node is marked (removed): the table's
            // reference is ours to give up.
            unsafe { node::release(untagged(p), Owner::Table, 0, guard) };
        }
    }

    /// Finishes the removals and replacements in `line`: swings replaced slots, and unlinks
    /// removed nodes, live or not (a remover that stalled after clearing a live bit leaves its
    /// slot to whoever passes).
    fn tidy(&self, line: &Line<K, V>, guard: &Guard) {
        for i in 0..MAX_SLOTS {
            let Some(slot) = self.slot(line, i) else {
                break;
            };
            let p = slot.load(Ordering::Acquire, guard);
            if p.is_null() {
                continue;
            }
            let p = self.settle(slot, guard);
            // SAFETY: as in `find`.
            let Some(node) = (unsafe { untagged(p).as_ref() }) else {
                continue;
            };
            // Only a removed node: one replaced since `settle` stays for its replacer to swing
            // (a claimed, unpublished node is never marked).
            if node.link.next.load(Ordering::Acquire, guard).tag() == MARK_REMOVED {
                self.unlink(line, i, slot, p, guard);
            }
        }
    }

    /// Claims a free slot (not live in `ctrl`, empty) for `new` (tagged), growing an overflow
    /// line if the ones there are full. `None` if the bucket is full.
    fn claim<'a, 'g>(
        &self,
        line: &'a Line<K, V>,
        ctrl: u64,
        new: Shared<'g, Node<K, V>>,
        guard: &'g Guard,
    ) -> Option<(usize, &'a Atomic<Node<K, V>>)> {
        for i in 0..MAX_SLOTS {
            if ctrl & bit(i) != 0 {
                continue;
            }
            let slot = self.slot_or_grow(line, i);
            if slot.load(Ordering::Relaxed, guard).is_null()
                && slot
                    .compare_exchange(
                        Shared::null(),
                        new,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                        guard,
                    )
                    .is_ok()
            {
                return Some((i, slot));
            }
        }
        None
    }

    /// Inserts `new` (a node not yet shared with anyone, holding `key`'s folded hash), replacing
    /// the live node with the same key if there is one, unless `keep` accepts that node, which
    /// is then left in place ([`Inserted::Kept`]).
    ///
    /// # Safety
    /// `new` must point to a valid node that no other thread can see, created under `guard`,
    /// whose key hashes to `hash`. On return it is published and owned by the table, except
    /// after [`Inserted::Kept`] or [`Inserted::Full`], when it is unpublished and the caller's
    /// to free: through the epoch after `Kept { seen: true }` (it sat in a claimed slot, where
    /// readers may have loaded it), at once otherwise.
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
        let line = self.line(hash);
        let tag = tag_of::<K, V>(hash);
        let new = new.with_tag(tag);
        let mut claimed = Claim { held: None };
        let mut tidied = false;
        // Whether `new` ever sat in a slot: then other threads may hold a pointer to it.
        let mut ever_claimed = false;
        loop {
            let (ctrl, found) = self.search(line, tag, new_ref.key(), guard);
            if let Some(found) = found {
                claimed.give_back();
                // SAFETY: found live under `guard`.
                let old = unsafe { untagged(found.node).deref() };
                if keep(old) {
                    return Inserted::Kept { seen: ever_claimed };
                }
                let old_next = old.link.next.load(Ordering::Acquire, guard);
                if old_next.tag() != 0 {
                    continue;
                }
                let replaced = Shared::from((new_ref as *const Node<K, V>).cast::<node::Link>())
                    .with_tag(MARK_REPLACED);
                // The linearisation point of a replace: from here readers of `old` go on to
                // `new`.
                if old
                    .link
                    .next
                    .compare_exchange(
                        old_next,
                        replaced,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                        guard,
                    )
                    .is_err()
                {
                    continue;
                }
                if found
                    .slot
                    .compare_exchange(found.node, new, Ordering::AcqRel, Ordering::Acquire, guard)
                    .is_ok()
                {
                    // SAFETY: our CAS took the replaced node out of its slot.
                    unsafe { node::release(untagged(found.node), Owner::Table, 0, guard) };
                }
                return Inserted::Replaced(untagged(found.node));
            }
            let index = match claimed.held {
                Some((index, _)) => index,
                None => match self.claim(line, ctrl, new, guard) {
                    Some(c) => {
                        claimed.held = Some(c);
                        ever_claimed = true;
                        c.0
                    }
                    None if !tidied => {
                        // Slots may be held by finished removals a stalled thread left.
                        self.tidy(line, guard);
                        tidied = true;
                        continue;
                    }
                    None => return Inserted::Full { seen: ever_claimed },
                },
            };
            // The linearisation point of a new key: fails if any live bit changed since the
            // search, which then runs again.
            if line
                .ctrl
                .compare_exchange(
                    ctrl,
                    (ctrl | bit(index)).wrapping_add(VERSION_ONE),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                claimed.held = None;
                return Inserted::New;
            }
            // The `blind_publish` mutant publishes its slot without searching again, so two
            // racing inserts of one key can both land: the loom suite in `verify/` must catch it.
            #[cfg(strata_mutant = "blind_publish")]
            {
                let now = line.ctrl.load(Ordering::Acquire);
                if line
                    .ctrl
                    .compare_exchange(
                        now,
                        (now | bit(index)).wrapping_add(VERSION_ONE),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
                {
                    claimed.held = None;
                    return Inserted::New;
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
        let line = self.line(hash);
        let tag = tag_of::<K, V>(hash);
        loop {
            let found = self.search(line, tag, key, guard).1?;
            // SAFETY: found live under `guard`.
            let node = unsafe { untagged(found.node).deref() };
            if !filter(node) {
                return None;
            }
            if node.mark_removed(guard) {
                self.unlink(line, found.index, found.slot, found.node, guard);
                return Some(untagged(found.node));
            }
        }
    }

    /// Unlinks `node`, which the caller just marked removed and whose key hashes to `hash`: the
    /// live slot holding it, found by its address without reading any other node; if no live
    /// slot holds it (its slot is still one replacement behind, or another thread is unlinking
    /// it), the whole bucket is tidied.
    pub(crate) fn purge_node(&self, hash: u64, node: &Node<K, V>, guard: &Guard) {
        let line = self.line(hash);
        let target: *const Node<K, V> = node;
        for (i, slot) in self.live_slots(line, line.ctrl.load(Ordering::Acquire)) {
            let p = slot.load(Ordering::Acquire, guard);
            if untagged(p).as_raw() == target {
                self.unlink(line, i, slot, p, guard);
                return;
            }
        }
        self.tidy(line, guard);
    }

    /// Visits the live entries of bucket `bucket`, without writing, and returns the next bucket
    /// (`None` after the last). Start from bucket 0. A node can be marked concurrently right
    /// after it was visited.
    pub(crate) fn for_each_live_in_run(
        &self,
        bucket: usize,
        guard: &Guard,
        mut visit: impl FnMut(&Node<K, V>),
    ) -> Option<usize> {
        let line = &self.lines[bucket];
        let mut seen = [std::ptr::null::<Node<K, V>>(); MAX_SLOTS];
        'scan: loop {
            let ctrl = line.ctrl.load(Ordering::Acquire);
            let mut count = 0;
            for (_, slot) in self.live_slots(line, ctrl) {
                let p = slot.load(Ordering::Acquire, guard);
                if !p.is_null() {
                    seen[count] = untagged(p).as_raw();
                    count += 1;
                }
            }
            // Only published nodes (see `validated`).
            if !validated(line, ctrl) {
                continue 'scan;
            }
            for &raw in &seen[..count] {
                // SAFETY: as in `find`.
                if let Some(node) = current(unsafe { &*raw }, guard) {
                    visit(node);
                }
            }
            return (bucket + 1 < self.lines.len()).then_some(bucket + 1);
        }
    }

    /// Unlinks the removed nodes of bucket `bucket` (see [`Buckets::for_each_live_in_run`]).
    pub(crate) fn purge_run(&self, bucket: usize, guard: &Guard) {
        self.tidy(&self.lines[bucket], guard);
    }

    /// Gives up the table's reference to every entry still in a slot, for the cache's `Drop`.
    ///
    /// # Safety
    /// No other thread may access the table, and the queues must be drained after this (see
    /// [`node::release_at_drop`]).
    pub(crate) unsafe fn release_linked(&mut self) {
        // SAFETY: exclusive access (the caller's obligation), so no guard is needed.
        let guard = unsafe { crate::sync::epoch::unprotected() };
        for line in self.lines.iter() {
            for i in 0..MAX_SLOTS {
                let Some(slot) = self.slot(line, i) else {
                    break;
                };
                let mut p = untagged(slot.load(Ordering::Relaxed, guard));
                // A slot one replacement behind holds the table's references to both.
                // SAFETY: a node in a slot (or its replacement) is not retired: exclusive access.
                while let Some(node) = unsafe { p.as_ref() } {
                    let next = replacement(node, guard);
                    // SAFETY: exclusive access; each node is found once, through its slot or
                    // through the one node it replaced.
                    unsafe { node::release_at_drop(p.as_raw().cast_mut(), Owner::Table) };
                    p = next.unwrap_or(Shared::null());
                }
            }
        }
    }
}

impl<K, V> Drop for Buckets<K, V> {
    fn drop(&mut self) {
        for line in self.lines.iter() {
            let mut spill = line.spill.load(Ordering::Relaxed);
            while !spill.is_null() {
                // SAFETY: allocated by `slot_or_grow` as a box, published once, freed only
                // here; the slots' nodes were released by `release_linked`.
                let boxed = unsafe { Box::from_raw(spill) };
                spill = boxed.spill.load(Ordering::Relaxed);
            }
        }
    }
}
