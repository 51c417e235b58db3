//! The small FIFO of S3-FIFO: a bounded multi-producer multi-consumer ring of node pointers.
//!
//! Each slot carries a sequence stamp (Vyukov's bounded queue): a producer may fill slot `i` for
//! ticket `t` only when its stamp equals `t`, and a consumer may take it only when the stamp is
//! `t + 1`. Pushing and popping are a CAS on the tail or head counter plus two stores; no thread
//! ever waits for another. A consumer that reaches a slot whose producer has claimed it but not
//! yet filled it reports the queue as not ready, and the caller evicts from elsewhere.
//!
//! The ring holds one of a node's two references (see [`crate::node::release`]): a pointer in the
//! ring stays valid until it is popped.

use crate::sync::{AtomicPtr, AtomicUsize, CachePadded, Ordering};

struct Slot<T> {
    /// Invariant: `stamp == ticket` when the slot is free for the producer of `ticket`, and
    /// `stamp == ticket + 1` when it holds that producer's pointer.
    stamp: AtomicUsize,
    item: AtomicPtr<T>,
}

pub(crate) struct SmallQueue<T> {
    /// Invariant: the length is a power of two.
    slots: Box<[Slot<T>]>,
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
}

impl<T> SmallQueue<T> {
    /// A ring with room for at least `capacity` pointers (rounded up to a power of two).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2).next_power_of_two();
        SmallQueue {
            slots: (0..capacity)
                .map(|i| Slot {
                    stamp: AtomicUsize::new(i),
                    item: AtomicPtr::new(std::ptr::null_mut()),
                })
                .collect(),
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Most pointers the ring holds.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Number of pointers pushed and not yet popped (momentarily stale under concurrency).
    pub(crate) fn len(&self) -> usize {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Relaxed);
        tail.saturating_sub(head)
    }

    /// Appends `item`; gives it back if the ring is full.
    pub(crate) fn push(&self, item: *mut T) -> Result<(), *mut T> {
        let mut ticket = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[ticket & self.mask()];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == ticket {
                match self.tail.compare_exchange_weak(
                    ticket,
                    ticket.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        slot.item.store(item, Ordering::Relaxed);
                        slot.stamp.store(ticket.wrapping_add(1), Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => ticket = current,
                }
            } else if (stamp.wrapping_sub(ticket) as isize) < 0 {
                // The slot still holds the previous lap's item: full.
                return Err(item);
            } else {
                ticket = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Takes the oldest pointer, or `None` when the ring is empty or its oldest slot is still
    /// being filled.
    pub(crate) fn pop(&self) -> Option<*mut T> {
        let mut ticket = self.head.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[ticket & self.mask()];
            let stamp = slot.stamp.load(Ordering::Acquire);
            let filled = ticket.wrapping_add(1);
            if stamp == filled {
                match self.head.compare_exchange_weak(
                    ticket,
                    filled,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let item = slot.item.load(Ordering::Relaxed);
                        slot.stamp
                            .store(ticket.wrapping_add(self.slots.len()), Ordering::Release);
                        return Some(item);
                    }
                    Err(current) => ticket = current,
                }
            } else if (stamp.wrapping_sub(filled) as isize) < 0 {
                return None;
            } else {
                ticket = self.head.load(Ordering::Relaxed);
            }
        }
    }
}

#[cfg(all(test, not(strata_loom)))]
mod tests {
    use super::SmallQueue;

    #[test]
    fn fifo_order_and_bounds() {
        let queue = SmallQueue::<u8>::new(3);
        let items: Vec<*mut u8> = (1..=4usize).map(|i| i as *mut u8).collect();
        for &item in &items {
            assert!(queue.push(item).is_ok());
        }
        assert_eq!(
            queue.push(5 as *mut u8),
            Err(5 as *mut u8),
            "capacity rounds 3 up to 4"
        );
        assert_eq!(queue.len(), 4);
        for &item in &items {
            assert_eq!(queue.pop(), Some(item));
        }
        assert_eq!(queue.pop(), None);
        // Wrap around a few laps.
        for lap in 0..10usize {
            assert!(queue.push((lap + 1) as *mut u8).is_ok());
            assert_eq!(queue.pop(), Some((lap + 1) as *mut u8));
        }
    }

    #[test]
    fn concurrent_items_are_popped_exactly_once() {
        let queue = SmallQueue::<u8>::new(64);
        let popped = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..2usize {
                let queue = &queue;
                let popped = &popped;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..10_000usize {
                        let item = (t * 100_000 + i + 1) as *mut u8;
                        let mut pending = item;
                        while let Err(back) = queue.push(pending) {
                            if let Some(p) = queue.pop() {
                                mine.push(p as usize);
                            }
                            pending = back;
                        }
                    }
                    popped.lock().unwrap().extend(mine);
                });
            }
        });
        let mut all = popped.into_inner().unwrap();
        while let Some(p) = queue.pop() {
            all.push(p as usize);
        }
        all.sort_unstable();
        let before = all.len();
        all.dedup();
        assert_eq!(before, all.len(), "an item was popped twice");
        assert_eq!(all.len(), 20_000, "an item was lost");
    }
}
