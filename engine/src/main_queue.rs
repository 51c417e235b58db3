//! The main queue of S3-FIFO: a CLOCK over a ring of node pointers.
//!
//! The hand is a ticket counter; each step claims the next slot. A slot holds one of a node's two
//! references (see [`crate::node::release`]) or null. Spared entries stay in their slot, and a new
//! entry takes the slot of the victim the hand just evicted, right behind the hand, so the ring
//! keeps CLOCK's FIFO-with-second-chance order with no list splicing. Slots change hands only by
//! CAS, so a reference is never taken twice; two hands meet on one slot only when more threads
//! than slots evict at once.

use crate::sync::{AtomicPtr, AtomicUsize, CachePadded, Ordering};

pub(crate) struct MainQueue<T> {
    /// Invariant: never empty.
    slots: Box<[AtomicPtr<T>]>,
    hand: CachePadded<AtomicUsize>,
}

impl<T> MainQueue<T> {
    pub(crate) fn new(slots: usize) -> Self {
        MainQueue {
            slots: (0..slots.max(1))
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            hand: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Advances the hand by one and returns the slot it passed.
    #[inline]
    pub(crate) fn advance(&self) -> &AtomicPtr<T> {
        let ticket = self.hand.fetch_add(1, Ordering::Relaxed);
        &self.slots[ticket % self.slots.len()]
    }

    /// Every slot, for draining when the cache is dropped.
    pub(crate) fn drain(&self) -> impl Iterator<Item = *mut T> + '_ {
        self.slots
            .iter()
            .map(|slot| slot.swap(std::ptr::null_mut(), Ordering::Relaxed))
            .filter(|ptr| !ptr.is_null())
    }
}
