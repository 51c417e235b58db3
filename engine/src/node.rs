//! One cache entry as it lives in the table, the link it shares with the split-ordered list's
//! bucket sentinels, and the bits packed into its metadata word.
//!
//! A node is a [`Link`] (the list pointer and the split-order key, see [`crate::split_list`];
//! in a bucket table ([`crate::buckets`]) only the pointer's marks and replacement are used), one
//! `AtomicU64` carrying everything else that changes (expiry, eviction frequency, queue
//! membership, ownership flags, the shard), the entry's weight (measured once, at insert) and,
//! for caches with a time to idle, its last access; then the key and the value. 48 bytes for
//! `u64 -> u64`.
//!
//! # Two owners, and contents released early
//!
//! A node has two references: the table's (its place in the list) and its eviction queue's (a
//! slot in the small FIFO or the main ring). Whichever is given up second retires the node
//! ([`release`]). When the table lets go first (the entry was removed, replaced or expired while
//! still queued), the key and value are not kept until the queue reaches the node: their drop is
//! deferred to the end of the current epoch, and the node stays queued as a *shell* (link,
//! metadata and weight) that the queue frees when it passes it. An eviction gives the queue's
//! reference up first (it holds it, having popped the node or taken its slot), so the table's
//! release that follows retires the whole node at once. Nothing that holds, or has just given
//! up, a node's queue reference reads its contents without first winning
//! [`Node::mark_removed`], which the table's release always follows: after the mark the node is
//! freed, and its contents dropped, no earlier than the end of the winner's epoch.

use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;

use crate::sync::epoch::{self, Atomic, Guard, Shared};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// Tag on a link's `next` pointer: the node is logically removed (removed, evicted, expired).
pub(crate) const MARK_REMOVED: usize = 1;
/// Tag on a link's `next` pointer: the node was replaced; `next` points at its replacement,
/// which carries the same key.
pub(crate) const MARK_REPLACED: usize = 2;

/// Bits 0..40 of the metadata word: expiry deadline in clock ticks, `0` for "never".
const EXPIRE_BITS: u32 = 40;
pub(crate) const EXPIRE_MASK: u64 = (1 << EXPIRE_BITS) - 1;
/// Bits 40..42: the CLOCK frequency counter, 0..=3.
const FREQ_SHIFT: u32 = 40;
pub(crate) const FREQ_ONE: u64 = 1 << FREQ_SHIFT;
const FREQ_MASK: u64 = 0b11 << FREQ_SHIFT;
pub(crate) const FREQ_MAX: u64 = 3;
/// Bit 42: the node belongs to the main queue (it left, or never entered, the small queue).
pub(crate) const IN_MAIN: u64 = 1 << 42;
/// Bit 43: the table's reference is gone (the node was unlinked from the list).
pub(crate) const UNLINKED: u64 = 1 << 43;
/// Bit 44: the queue's reference is gone (popped, taken from its main slot, or never queued).
pub(crate) const DEQUEUED: u64 = 1 << 44;
/// Bit 45: the key and value were dropped early (see the module docs); the node is a shell.
const CONTENTS_GONE: u64 = 1 << 45;
/// Bit 52: the queue let go of a node whose contents were dropped early, and the grace period
/// after that has passed: the shell may be freed once the contents are gone too.
const SHELL_UNUSED: u64 = 1 << 52;
/// Bit 53: the entry went into main as a new key, unproven, and has not been read since (see
/// [`crate::policy::entrance`]). Cleared by its first hit.
pub(crate) const RIDER: u64 = 1 << 53;
/// Bits 46..52: the node's shard (there are at most 64).
const SHARD_SHIFT: u32 = 46;
const SHARD_MASK: u64 = 0x3F;

/// Hash bits the cache forces on, so that a hash can be recovered from a node's split-order key
/// (which keeps 62 of them): every hash the engine uses goes through [`fold`].
const FOLDED: u64 = 0b11 << 62;

/// A key's hash as the engine uses it: its top two bits set (see [`FOLDED`]).
#[inline]
pub(crate) fn fold(hash: u64) -> u64 {
    hash | FOLDED
}

/// The split-order key of an entry whose folded hash is `hash`: the hash's bits reversed, so the
/// low two bits are `0b11` (an entry, never a bucket sentinel; see [`crate::split_list`]).
#[inline]
pub(crate) fn entry_order(hash: u64) -> u64 {
    debug_assert_eq!(hash & FOLDED, FOLDED);
    hash.reverse_bits()
}

/// The folded hash of an entry with split-order key `order`.
#[inline]
pub(crate) fn hash_of(order: u64) -> u64 {
    order.reverse_bits()
}

#[inline]
pub(crate) fn freq(meta: u64) -> u64 {
    (meta & FREQ_MASK) >> FREQ_SHIFT
}

#[inline]
pub(crate) fn expire_tick(meta: u64) -> u64 {
    meta & EXPIRE_MASK
}

#[inline]
pub(crate) fn shard_of(meta: u64) -> usize {
    ((meta >> SHARD_SHIFT) & SHARD_MASK) as usize
}

/// What the split-ordered list is made of: entries' nodes and the buckets' sentinels both start
/// with one (`#[repr(C)]`, first field), and the list links them through it. In a bucket table
/// the `next` pointer carries only the node's marks and, once replaced, its replacement.
#[repr(C)]
pub(crate) struct Link {
    /// The next link in the list. For an entry, its tag is the entry's state: `0` live,
    /// [`MARK_REMOVED`] or [`MARK_REPLACED`]; once tagged the pointer never changes again (a
    /// marked node is frozen, which is what makes helping unlink it safe). Sentinels are never
    /// tagged.
    pub(crate) next: Atomic<Link>,
    /// The split-order key and, in its low two bits, what the link is: `0b11` an entry (set
    /// before the node is published, never changed); a sentinel's bits move from "unclaimed" to
    /// "pending" to "ready" (see [`crate::split_list`]).
    pub(crate) order: AtomicU64,
}

struct Contents<K, V> {
    key: K,
    value: V,
}

/// Aligned to 16 bytes, so that a bucket slot's pointer carries four bits of its key's hash
/// (see `crate::buckets`): a lookup then reads a sixteenth of the other keys' nodes instead of
/// an eighth. It costs nothing for the common sizes: allocators hand out 16-byte-aligned blocks
/// already, and 48 bytes (`u64 -> u64`) is a multiple of 16.
#[repr(C, align(16))]
pub(crate) struct Node<K, V> {
    /// First, so that a `&Link` of an entry is a `&Node`.
    pub(crate) link: Link,
    /// Expiry, frequency, queue and ownership bits, the shard and the rider bit (layout above). Invariant: the
    /// expiry and shard bits are written once, before the node is published.
    pub(crate) meta: AtomicU64,
    /// The entry's weight, as the weigher measured it at insert (1 without a weigher).
    pub(crate) weight: u32,
    /// Tick of the last read, for a cache with a time to idle (wrapping, in milliseconds).
    pub(crate) idle: AtomicU32,
    /// Dropped at most once: early (the module docs) with [`CONTENTS_GONE`] set, or with the
    /// node. In a cell because the early drop writes it through a shared node.
    contents: UnsafeCell<ManuallyDrop<Contents<K, V>>>,
}

// SAFETY: a node is shared between threads through the table and the queues. Its atomics are
// `Sync`; `weight` never changes after publication; the contents are only read through `&`
// (which needs `K: Sync, V: Sync`) and written once, by the early drop, after the epoch in which
// the last reference through which they could be read was given up (see `release`), which needs
// `K: Send, V: Send` as it may run on any thread.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Node<K, V> {}
// SAFETY: moving a node moves its key and value.
unsafe impl<K: Send, V: Send> Send for Node<K, V> {}

impl<K, V> Node<K, V> {
    /// A node for a new entry; `hash` is folded ([`fold`]).
    pub(crate) fn new(
        key: K,
        value: V,
        hash: u64,
        expire: u64,
        shard: usize,
        weight: u32,
        now: u32,
    ) -> Self {
        debug_assert!(expire <= EXPIRE_MASK);
        debug_assert!((shard as u64) <= SHARD_MASK);
        Node {
            link: Link {
                next: Atomic::null(),
                order: AtomicU64::new(entry_order(hash)),
            },
            meta: AtomicU64::new(expire | ((shard as u64) << SHARD_SHIFT)),
            weight,
            idle: AtomicU32::new(now),
            contents: UnsafeCell::new(ManuallyDrop::new(Contents { key, value })),
        }
    }

    /// The entry's key.
    ///
    /// Valid to call while the caller's guard protects the node and the contents cannot have
    /// been dropped under it: the caller found the node in the table under that guard, or won
    /// [`Node::mark_removed`] on it (both are before the table's release, whose early drop waits
    /// for the end of the epoch). Queue walks that only hold a queue reference read the link,
    /// the metadata and the weight, never this.
    #[inline]
    pub(crate) fn key(&self) -> &K {
        // SAFETY: the contents are written once, by the early drop, which runs only after every
        // guard pinned before the table let go of the node is gone; every caller reads them
        // under such a guard (see above), and nothing writes them meanwhile.
        &unsafe { &*self.contents.get() }.key
    }

    /// The entry's value (the same conditions as [`Node::key`]).
    #[inline]
    pub(crate) fn value(&self) -> &V {
        // SAFETY: as in `key`.
        &unsafe { &*self.contents.get() }.value
    }

    /// Whether the node is live: not marked removed or replaced.
    #[inline]
    pub(crate) fn is_live(&self, guard: &Guard) -> bool {
        self.link.next.load(Ordering::Acquire, guard).tag() == 0
    }

    /// The entry's split-order key.
    #[inline]
    pub(crate) fn order(&self) -> u64 {
        self.link.order.load(Ordering::Relaxed)
    }

    /// Records a hit: raises the frequency by one unless it is already at its maximum. Reads
    /// first and writes only when the counter moves, so hot keys stop writing their cache line
    /// once saturated. A lost race drops one increment, which the policy tolerates. The same
    /// write clears [`RIDER`]; returns whether it did (the entry's first hit as a rider).
    #[inline]
    pub(crate) fn touch(&self) -> bool {
        let meta = self.meta.load(Ordering::Relaxed);
        if freq(meta) < FREQ_MAX {
            let new = (meta + FREQ_ONE) & !RIDER;
            return self
                .meta
                .compare_exchange_weak(meta, new, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
                && meta & RIDER != 0;
        }
        false
    }

    /// Lowers the frequency by one if it is above zero; returns the frequency seen before.
    pub(crate) fn cool(&self) -> u64 {
        let mut meta = self.meta.load(Ordering::Relaxed);
        loop {
            let f = freq(meta);
            if f == 0 {
                return 0;
            }
            match self.meta.compare_exchange_weak(
                meta,
                meta - FREQ_ONE,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return f,
                Err(current) => meta = current,
            }
        }
    }

    /// Tries to mark this node removed. Returns `true` for the one caller that performs the
    /// logical removal; `false` if it was already removed or replaced.
    pub(crate) fn mark_removed(&self, guard: &Guard) -> bool {
        let mut next = self.link.next.load(Ordering::Acquire, guard);
        loop {
            if next.tag() != 0 {
                return false;
            }
            match self.link.next.compare_exchange_weak(
                next,
                next.with_tag(MARK_REMOVED),
                Ordering::AcqRel,
                Ordering::Acquire,
                guard,
            ) {
                Ok(_) => return true,
                Err(e) => next = e.current,
            }
        }
    }
}

impl<K, V> Drop for Node<K, V> {
    fn drop(&mut self) {
        if self.meta.load(Ordering::Relaxed) & CONTENTS_GONE == 0 {
            // SAFETY: `&mut self`: nobody else can reach the node; the contents were not dropped
            // early (no CONTENTS_GONE), so they are dropped exactly once, here.
            unsafe { ManuallyDrop::drop(self.contents.get_mut()) };
        }
    }
}

/// One of the two references to a node (see the module docs), given up by [`release`]: the
/// table's, once a successful CAS unlinked the node, or its queue's, once it was popped, taken
/// from its main slot, or never queued.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Owner {
    Table,
    Queue,
}

/// Gives up `owner`'s reference to `node` and retires the node if the other one is already
/// gone. When the table lets go first, the contents' drop is deferred to the end of the epoch
/// and the queue later retires the shell. `extra` bits (such as [`IN_MAIN`]) ride along.
///
/// # Safety
/// The caller must own the reference it gives up (it won the CAS that unlinked `node`, for
/// [`Owner::Table`]; it popped it, took it from its slot, or never queued it, for
/// [`Owner::Queue`]), and must not use it again except through `guard`'s protection (which ends
/// when the guard drops) and never to read its contents unless the caller won
/// [`Node::mark_removed`] on it.
pub(crate) unsafe fn release<K, V>(
    node: Shared<'_, Node<K, V>>,
    owner: Owner,
    extra: u64,
    guard: &Guard,
) {
    let (mine, other) = match owner {
        Owner::Table => (UNLINKED, DEQUEUED),
        Owner::Queue => (DEQUEUED, UNLINKED),
    };
    let node = node.with_tag(0);
    // SAFETY: the caller still holds a reference, so the node has not been retired.
    let entry = unsafe { node.deref() };
    let prev = entry.meta.fetch_or(mine | extra, Ordering::AcqRel);
    debug_assert_eq!(prev & mine, 0, "reference released twice");
    let other_gone = prev & other != 0;
    match (owner, other_gone) {
        (Owner::Table, true) => {
            // SAFETY: both references are gone: the node is unreachable from the table and the
            // queues, and this is the one call that saw the other bit set, so it is retired once.
            unsafe { guard.defer_destroy(node) };
        }
        (Owner::Table, false) => {
            let raw = node.as_raw() as usize;
            // The `early_drop` mutant drops the contents at once instead of after the readers'
            // grace period, so a reader that found the node just before its removal reads a freed
            // value: the loom suite in `verify/` must catch it (`scripts/loom.sh --mutants`).
            if cfg!(strata_mutant = "early_drop") {
                // SAFETY: none: this is the deliberate bug of the mutant build.
                unsafe { drop_contents_early::<K, V>(raw as *mut _) };
                return;
            }
            // SAFETY: runs once, after every guard pinned now is gone: by then no reader found
            // the node in the table (it is unlinked) and no queue holder may read the contents
            // (it would have had to win `mark_removed` before this release, hence under such a
            // guard). The node stays allocated until both this and the queue's closure have run.
            unsafe { guard.defer_unchecked(move || drop_contents_early::<K, V>(raw as *mut _)) };
        }
        (Owner::Queue, true) => {
            // The table let go first, so its closure drops the contents; the shell is freed by
            // whichever of the two closures runs second, each after its own grace period (so no
            // thread can still reach the shell through the table or a queue slot).
            let raw = node.as_raw() as usize;
            // SAFETY: runs once, after every guard pinned now is gone; see `shell_unused`.
            unsafe { guard.defer_unchecked(move || shell_unused::<K, V>(raw as *mut _)) };
        }
        (Owner::Queue, false) => {}
    }
}

/// The table's closure of an early release: drops the contents, then frees the shell if the
/// queue's closure has already run.
///
/// # Safety
/// `node` is a node whose table reference was released (its contents no longer readable by
/// anyone), still allocated, and this is called once for it.
unsafe fn drop_contents_early<K, V>(node: *mut Node<K, V>) {
    // SAFETY: the caller's obligations: no reader is left and this runs once, so we have the
    // contents to ourselves; the cell makes writing through a shared node allowed.
    unsafe { ManuallyDrop::drop(&mut *(*node).contents.get()) };
    // SAFETY: still allocated: it is freed by the second of the two closures, below or in
    // `shell_unused`.
    let prev = unsafe { &*node }
        .meta
        .fetch_or(CONTENTS_GONE, Ordering::AcqRel);
    if prev & SHELL_UNUSED != 0 {
        // SAFETY: both closures have run (this one second), so both grace periods have passed:
        // nothing can reach the node; freed once; its drop skips the contents (CONTENTS_GONE).
        drop(unsafe { Box::from_raw(node) });
    }
}

/// The queue's closure for a node whose contents are dropped early: frees the shell if the
/// table's closure has already run.
///
/// # Safety
/// `node` is a node both references of which were released, the table's first; called once.
unsafe fn shell_unused<K, V>(node: *mut Node<K, V>) {
    // SAFETY: still allocated (see `drop_contents_early`).
    let prev = unsafe { &*node }
        .meta
        .fetch_or(SHELL_UNUSED, Ordering::AcqRel);
    if prev & CONTENTS_GONE != 0 {
        // SAFETY: as in `drop_contents_early`, with the roles swapped.
        drop(unsafe { Box::from_raw(node) });
    }
}

/// A queue's reference to a node, held by the thread that took it from its queue (popped it,
/// or won the CAS that emptied its slot), or that linked the node and has not queued it yet. It
/// must end in a queue slot ([`QueueRef::placed`]) or be given up; dropping the token gives it
/// up (through [`release`]), so an early return or an unwinding panic cannot leak the node.
#[must_use = "dropping a queue reference gives it up"]
pub(crate) struct QueueRef<'g, K, V> {
    node: Shared<'g, Node<K, V>>,
    guard: &'g Guard,
}

impl<'g, K, V> QueueRef<'g, K, V> {
    /// # Safety
    /// The caller owns a queue reference to `node` (as [`release`] requires for
    /// [`Owner::Queue`]) and hands it to the token; `node` was loaded under `guard`.
    pub(crate) unsafe fn new(node: Shared<'g, Node<K, V>>, guard: &'g Guard) -> Self {
        QueueRef { node, guard }
    }

    /// The node (valid while `guard` is pinned: the token keeps it alive, and giving the
    /// reference up defers its retirement past the guard).
    pub(crate) fn node(&self) -> &'g Node<K, V> {
        // SAFETY: as above.
        unsafe { self.node.deref() }
    }

    /// The guard the token lives under.
    pub(crate) fn guard(&self) -> &'g Guard {
        self.guard
    }

    /// The pointer a queue slot stores.
    pub(crate) fn as_ptr(&self) -> *mut Node<K, V> {
        self.node.as_raw().cast_mut()
    }

    /// The reference now lives in a queue slot holding [`QueueRef::as_ptr`].
    pub(crate) fn placed(self) {
        std::mem::forget(self);
    }

    /// Gives the reference up with `extra` flags (such as [`IN_MAIN`]) set alongside.
    pub(crate) fn release_with(self, extra: u64) {
        // SAFETY: the token owns the queue reference (its constructor's contract) and is
        // consumed here, so it is given up once.
        unsafe { release(self.node, Owner::Queue, extra, self.guard) };
        std::mem::forget(self);
    }
}

impl<K, V> Drop for QueueRef<'_, K, V> {
    fn drop(&mut self) {
        // SAFETY: as in `release_with`; a token that is dropped was neither placed nor released.
        unsafe { release(self.node, Owner::Queue, 0, self.guard) };
    }
}

/// Frees a node at the cache's drop, through whichever reference the drop finds it by last,
/// with no other thread left: like [`release`] with an immediate retirement.
///
/// # Safety
/// Exclusive access to the cache; `owner` is the reference through which the drop found the
/// node, and the drop finds each node once through each reference it still has.
pub(crate) unsafe fn release_at_drop<K, V>(node: *mut Node<K, V>, owner: Owner) {
    // SAFETY: exclusive access; the collector runs deferred functions immediately on an
    // unprotected guard, so this is `release` with the retirement done now.
    unsafe {
        release(
            Shared::from(node.cast_const()),
            owner,
            0,
            epoch::unprotected(),
        )
    };
}
