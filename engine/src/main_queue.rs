//! The main queue of S3-FIFO: a CLOCK over a ring of node pointers.
//!
//! The hand is a ticket counter; each step claims the next slot. A slot holds one of a node's two
//! references (see [`crate::node::release`]) or null. Spared entries stay in their slot, and a new
//! entry takes the slot of the victim the hand just evicted, right behind the hand, so the ring
//! keeps CLOCK's FIFO-with-second-chance order with no list splicing. Slots change hands only by
//! CAS, so a reference is never taken twice; two hands meet on one slot only when more threads
//! than slots evict at once.
//!
//! The ring starts with the slots the cache was sized for and can grow: when every slot holds a
//! live entry and the cache is still under its bounds (a weight bound admits more entries than
//! were expected), a writer appends a segment that doubles the ring. Segments are never moved or
//! freed before the queue is dropped, so a slot reference stays valid while the ring grows; the
//! hand then sweeps the longer ring from wherever its ticket falls.

use crate::sync::{AtomicPtr, AtomicUsize, CachePadded, Ordering};

/// Most segments: the first plus doublings, enough for any ring that fits in memory.
const SEGMENTS: usize = 40;

/// The hand and the ring's current length, read together on every step.
struct Hand {
    ticket: AtomicUsize,
    /// Slots in use: `base << (segments - 1)`. Invariant: every segment it covers is published
    /// before it is raised (release store, acquire loads).
    len: AtomicUsize,
}

pub(crate) struct MainQueue<T> {
    /// The first segment's slots. Invariant: never empty.
    first: Box<[AtomicPtr<T>]>,
    /// Segment `k >= 1` (index `k - 1` here) holds `first.len() << (k - 1)` slots and covers ring
    /// positions `first.len() << (k - 1)` up to twice that. Null until published; the pointer is
    /// the first slot of a leaked boxed slice of that length.
    more: Box<[AtomicPtr<AtomicPtr<T>>]>,
    hand: CachePadded<Hand>,
}

impl<T> MainQueue<T> {
    pub(crate) fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        MainQueue {
            first: null_slots(slots),
            more: (1..SEGMENTS)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            hand: CachePadded::new(Hand {
                ticket: AtomicUsize::new(0),
                len: AtomicUsize::new(slots),
            }),
        }
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> usize {
        self.hand.len.load(Ordering::Acquire)
    }

    /// Advances the hand by one and returns the slot it passed.
    #[inline]
    pub(crate) fn advance(&self) -> &AtomicPtr<T> {
        let ticket = self.hand.ticket.fetch_add(1, Ordering::Relaxed);
        let len = self.hand.len.load(Ordering::Acquire);
        // SAFETY: `ticket % len` is below a length just loaded with acquire.
        unsafe { self.slot(ticket % len) }
    }

    /// The segment `k` holding ring position `index` (0 for the first; segment `k >= 1` covers
    /// `[base << (k - 1), base << k)`), where `base` is the first segment's length.
    #[inline]
    fn segment_of(&self, index: usize) -> usize {
        (usize::BITS - (index / self.first.len()).leading_zeros()) as usize
    }

    /// The slot at ring position `index`.
    ///
    /// # Safety
    /// `index` must be below a ring length this thread loaded with acquire ([`Self::len`]), so
    /// that the segment holding it is published and visible.
    #[inline]
    unsafe fn slot(&self, index: usize) -> &AtomicPtr<T> {
        let base = self.first.len();
        if index < base {
            return &self.first[index];
        }
        let k = self.segment_of(index);
        let start = base << (k - 1);
        let segment = self.more[k - 1].load(Ordering::Acquire);
        debug_assert!(!segment.is_null() && index - start < start);
        // SAFETY: `index` is below a ring length loaded with acquire (the caller's obligation),
        // and a length is raised only after every segment below it was published, so segment `k`
        // is a live allocation of `start` slots (never freed before `self` drops) and
        // `index - start < start`.
        unsafe { &*segment.add(index - start) }
    }

    /// Doubles the ring if it still has `seen` slots, and returns the new slots (null, free for
    /// a CAS, though other hands may already be filling them), or `None` if another thread grew
    /// it first or the ring cannot grow.
    pub(crate) fn grow(&self, seen: usize) -> Option<&[AtomicPtr<T>]> {
        let base = self.first.len();
        let k = self.segment_of(seen);
        if seen != base << (k - 1) || k >= SEGMENTS || seen.checked_mul(2).is_none() {
            return None;
        }
        let link = &self.more[k - 1];
        if link.load(Ordering::Acquire).is_null() {
            let fresh = Box::into_raw(null_slots::<T>(seen)).cast::<AtomicPtr<T>>();
            if link
                .compare_exchange(
                    std::ptr::null_mut(),
                    fresh,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
            {
                // SAFETY: our allocation of `seen` slots was never published.
                drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(fresh, seen)) });
            }
        }
        self.hand
            .len
            .compare_exchange(seen, seen * 2, Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        let segment = link.load(Ordering::Acquire);
        // SAFETY: the segment was published before the length covering it was raised (by us just
        // now), it holds `seen` slots, and it is freed only when `self` drops.
        Some(unsafe { std::slice::from_raw_parts(segment, seen) })
    }

    /// Every slot, for draining when the cache is dropped.
    pub(crate) fn drain(&self) -> impl Iterator<Item = *mut T> + '_ {
        (0..self.len())
            .map(|index| {
                // SAFETY: every index is below the length just loaded with acquire.
                unsafe { self.slot(index) }.swap(std::ptr::null_mut(), Ordering::Relaxed)
            })
            .filter(|ptr| !ptr.is_null())
    }
}

impl<T> Drop for MainQueue<T> {
    fn drop(&mut self) {
        let base = self.first.len();
        for (i, link) in self.more.iter().enumerate() {
            let segment = link.load(Ordering::Relaxed);
            if !segment.is_null() {
                // SAFETY: published by `grow` as a leaked boxed slice of `base << i` slots (the
                // segment k = i + 1), freed only here, once.
                drop(unsafe {
                    Box::from_raw(std::ptr::slice_from_raw_parts_mut(segment, base << i))
                });
            }
        }
    }
}

fn null_slots<T>(count: usize) -> Box<[AtomicPtr<T>]> {
    (0..count)
        .map(|_| AtomicPtr::new(std::ptr::null_mut()))
        .collect()
}

#[cfg(all(test, not(strata_loom)))]
mod tests {
    use super::MainQueue;
    use crate::sync::Ordering;

    #[test]
    fn a_grown_ring_keeps_every_slot_and_sweeps_all_of_them() {
        let queue = MainQueue::<u8>::new(3);
        assert!(queue.grow(4).is_none(), "a stale length does not grow");
        for seen in [3, 6, 12] {
            let slots = queue.grow(seen).expect("grows");
            assert_eq!(slots.len(), seen);
            assert!(slots.iter().all(|s| s.load(Ordering::Relaxed).is_null()));
            assert!(queue.grow(seen).is_none(), "only once per length");
        }
        assert_eq!(queue.len(), 24);
        // Fill every position through the hand, then find each pointer exactly once.
        for i in 0..24usize {
            queue.advance().store((i + 1) as *mut u8, Ordering::Relaxed);
        }
        let mut seen: Vec<usize> = queue.drain().map(|p| p as usize).collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=24).collect::<Vec<_>>());
    }
}
