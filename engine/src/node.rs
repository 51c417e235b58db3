//! One cache entry as it lives in the table, and the bits packed into its metadata word.
//!
//! A node is 32 bytes for `u64 -> u64`: key, value, the chain link and one `AtomicU64` that
//! carries everything else (expiry, eviction frequency, queue membership, ownership flags and a
//! hash tag). Key, value and expiry never change after the node is published; only the frequency
//! and the flags do, always through the atomic word.

use crate::sync::epoch::{Atomic, Guard, Shared};
use crate::sync::{AtomicU64, Ordering};

/// Tag on a node's `next` pointer: the node is logically removed (removed, evicted, expired).
pub(crate) const MARK_REMOVED: usize = 1;
/// Tag on a node's `next` pointer: the node was replaced; `next` points at its replacement,
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
/// Bit 43: the node has been unlinked from its bucket chain.
pub(crate) const UNLINKED: u64 = 1 << 43;
/// Bit 44: the small queue holds no reference to the node (never pushed, or popped).
pub(crate) const DEQUEUED: u64 = 1 << 44;
/// Bits 45..64: a tag of the key's hash, compared before the key itself.
const TAG_SHIFT: u32 = 45;

/// The hash tag stored in a node for a given hash.
#[inline]
pub(crate) fn hash_tag(hash: u64) -> u64 {
    hash << TAG_SHIFT
}

/// The hash bits a node's tag keeps (the low bits of its key's hash).
#[inline]
pub(crate) fn tag_bits(meta: u64) -> u64 {
    meta >> TAG_SHIFT
}

#[inline]
pub(crate) fn tag_matches(meta: u64, hash: u64) -> bool {
    (meta ^ hash_tag(hash)) >> TAG_SHIFT == 0
}

#[inline]
pub(crate) fn freq(meta: u64) -> u64 {
    (meta & FREQ_MASK) >> FREQ_SHIFT
}

#[inline]
pub(crate) fn expire_tick(meta: u64) -> u64 {
    meta & EXPIRE_MASK
}

pub(crate) struct Node<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// The next node in the bucket chain. Its tag is this node's own state: `0` live,
    /// [`MARK_REMOVED`] or [`MARK_REPLACED`]. Invariant: once tagged, the pointer never changes
    /// again (a marked node is frozen, which is what makes helping unlink it safe).
    pub(crate) next: Atomic<Node<K, V>>,
    /// Expiry, frequency, queue and ownership bits, and the hash tag (layout above).
    /// Invariant: the expiry and tag bits are written once, before the node is published.
    pub(crate) meta: AtomicU64,
}

impl<K, V> Node<K, V> {
    pub(crate) fn new(key: K, value: V, hash: u64, expire: u64, flags: u64) -> Self {
        debug_assert!(expire <= EXPIRE_MASK);
        Node {
            key,
            value,
            next: Atomic::null(),
            meta: AtomicU64::new(hash_tag(hash) | expire | flags),
        }
    }

    /// Whether the node is live: not marked removed or replaced.
    #[inline]
    pub(crate) fn is_live(&self, guard: &Guard) -> bool {
        self.next.load(Ordering::Acquire, guard).tag() == 0
    }

    /// Records a hit: raises the frequency by one unless it is already at its maximum. Reads
    /// first and writes only when the counter moves, so hot keys stop writing their cache line
    /// once saturated. A lost race drops one increment, which the policy tolerates.
    #[inline]
    pub(crate) fn touch(&self) {
        let meta = self.meta.load(Ordering::Relaxed);
        if freq(meta) < FREQ_MAX {
            let _ = self.meta.compare_exchange_weak(
                meta,
                meta + FREQ_ONE,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
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
        let mut next = self.next.load(Ordering::Acquire, guard);
        loop {
            if next.tag() != 0 {
                return false;
            }
            match self.next.compare_exchange_weak(
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

/// Gives up one of the two references to `node` (the bucket chain's, with [`UNLINKED`], or the
/// small queue's, with [`DEQUEUED`]) and retires the node if the other one is already gone.
/// Extra bits such as [`IN_MAIN`] may ride along in `flags`.
///
/// # Safety
/// The caller must own the reference it gives up: it unlinked `node` from its chain with a
/// successful CAS (for `UNLINKED`), or popped it from the small queue or never pushed it there
/// (for `DEQUEUED`), and must not touch `node` after this call except through `guard`'s
/// protection (which ends when the guard drops).
pub(crate) unsafe fn release<K, V>(node: Shared<'_, Node<K, V>>, flags: u64, guard: &Guard) {
    let owner_bit = flags & (UNLINKED | DEQUEUED);
    debug_assert!(owner_bit == UNLINKED || owner_bit == DEQUEUED);
    let other = (UNLINKED | DEQUEUED) ^ owner_bit;
    // SAFETY: the caller still holds a reference, so the node has not been retired.
    let prev = unsafe { node.deref() }
        .meta
        .fetch_or(flags, Ordering::AcqRel);
    debug_assert_eq!(prev & owner_bit, 0, "reference released twice");
    // The `early_retire` mutant forgets the other owner, retiring a node the queue or the table
    // still references: the loom suite in `verify/` must catch it (see `scripts/loom.sh --mutants`).
    let last_owner = if cfg!(strata_mutant = "early_retire") {
        true
    } else {
        prev & other != 0
    };
    if last_owner {
        // SAFETY: both references are gone: the node is unreachable from the table and the
        // queue, and this is the one call that saw the second bit set, so it is retired once.
        unsafe { guard.defer_destroy(node.with_tag(0)) };
    }
}
