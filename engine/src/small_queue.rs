//! The small FIFO of S3-FIFO: a bounded multi-producer multi-consumer ring of node pointers.
//!
//! Vyukov's bounded queue with the sequence stamp folded into the pointer word: a slot is one
//! `usize` holding the pointer and, in its two low bits (free because nodes are aligned to at
//! least 4 bytes), whether it is full and the parity of the lap it belongs to. Ticket `t` uses
//! slot `t % len` in lap `t / len`. A producer may fill the slot for ticket `t` only when it is
//! empty with `t`'s lap parity, and a consumer may take it only when it is full with that parity.
//! Pushing and popping are a CAS on the tail or head counter plus one store; no thread ever waits
//! for another. A consumer that reaches a slot whose producer has claimed it but not yet filled
//! it reports the queue as not ready, and the caller evicts from elsewhere.
//!
//! One bit of lap is enough because a thread only acts on a slot after a successful CAS of the
//! counter at the ticket it read the slot for: a slot two laps ahead would need the counter to
//! have moved on, so the CAS fails. A slot that looks occupied by an older lap is reported only
//! after the counter is read again and found unchanged, which rules out a stale ticket. Tickets
//! count up for the life of the ring; at one push per nanosecond they would wrap after 584 years.
//!
//! At 8 bytes a slot the ring can afford room for every entry of its shard, which S3-FIFO needs
//! while a cache fills: until the cache is full, every new entry waits in the small FIFO, so that
//! all of the first entries are judged by whether they were read before they reach main.
//!
//! The ring holds one of a node's two references (see [`crate::node::release`]): a pointer in the
//! ring stays valid until it is popped.

use std::marker::PhantomData;

use crate::sync::{AtomicUsize, CachePadded, Ordering};

/// Low bit of a slot word: the slot holds a pointer.
const FULL: usize = 0b01;
/// Second bit of a slot word: the parity of the lap the slot's state belongs to.
const LAP: usize = 0b10;
const STATE: usize = FULL | LAP;

pub(crate) struct SmallQueue<T> {
    /// Invariant: never empty. Each word is a pointer (aligned, so its low two bits are zero)
    /// or null, or-ed with [`FULL`] when it holds one and with [`LAP`] in odd laps.
    slots: Box<[AtomicUsize]>,
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    /// Pointers to `T` are stored and handed back, never dereferenced: the ring is as `Send`
    /// and `Sync` as an atomic pointer.
    _items: PhantomData<std::sync::atomic::AtomicPtr<T>>,
}

impl<T> SmallQueue<T> {
    /// A ring with room for `capacity` pointers (at least 2).
    pub(crate) fn new(capacity: usize) -> Self {
        // The two low bits of an item's address carry the slot state.
        const { assert!(std::mem::align_of::<T>() >= 4, "items must be 4-aligned") };
        let capacity = capacity.max(2);
        SmallQueue {
            slots: (0..capacity).map(|_| AtomicUsize::new(0)).collect(),
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            _items: PhantomData,
        }
    }

    /// The slot of `ticket` and the state bits its lap gives an empty slot.
    #[inline]
    fn locate(&self, ticket: usize) -> (&AtomicUsize, usize) {
        let len = self.slots.len();
        let lap_bit = if (ticket / len) % 2 == 1 { LAP } else { 0 };
        (&self.slots[ticket % len], lap_bit)
    }

    /// Number of pointers pushed and not yet popped (momentarily stale under concurrency).
    pub(crate) fn len(&self) -> usize {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Relaxed);
        tail.saturating_sub(head)
    }

    /// Appends `item`; gives it back if the ring is full.
    pub(crate) fn push(&self, item: *mut T) -> Result<(), *mut T> {
        debug_assert_eq!(item as usize & STATE, 0, "misaligned item");
        let mut ticket = self.tail.load(Ordering::Relaxed);
        loop {
            let (slot, lap_bit) = self.locate(ticket);
            let word = slot.load(Ordering::Acquire);
            if word == lap_bit {
                // Empty, in this ticket's lap: claim the ticket, then fill the slot.
                match self.tail.compare_exchange_weak(
                    ticket,
                    ticket.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        slot.store(item as usize | FULL | lap_bit, Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => ticket = current,
                }
            } else {
                // Either the slot still belongs to the previous lap (its item not yet popped, or
                // its producer still filling it), so the ring is full, or `ticket` is stale.
                let current = self.tail.load(Ordering::Relaxed);
                if current == ticket {
                    return Err(item);
                }
                ticket = current;
            }
        }
    }

    /// Takes the oldest pointer, or `None` when the ring is empty or its oldest slot is still
    /// being filled.
    pub(crate) fn pop(&self) -> Option<*mut T> {
        let mut ticket = self.head.load(Ordering::Relaxed);
        loop {
            let (slot, lap_bit) = self.locate(ticket);
            let word = slot.load(Ordering::Acquire);
            if word & STATE == FULL | lap_bit {
                match self.head.compare_exchange_weak(
                    ticket,
                    ticket.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // Empty for the next lap, whose parity is the other one.
                        slot.store(lap_bit ^ LAP, Ordering::Release);
                        return Some((word & !STATE) as *mut T);
                    }
                    Err(current) => ticket = current,
                }
            } else {
                // Empty in this lap (nothing pushed, or its producer still filling it), or
                // `ticket` is stale.
                let current = self.head.load(Ordering::Relaxed);
                if current == ticket {
                    return None;
                }
                ticket = current;
            }
        }
    }
}

#[cfg(all(test, not(strata_loom)))]
mod tests {
    use super::SmallQueue;

    #[test]
    fn fifo_order_and_bounds() {
        // Aligned fake addresses: the ring never dereferences them.
        let item = |i: usize| (i * 8) as *mut u64;
        let queue = SmallQueue::<u64>::new(3);
        for i in 1..=3 {
            assert!(queue.push(item(i)).is_ok());
        }
        assert_eq!(queue.push(item(4)), Err(item(4)), "room for exactly 3");
        assert_eq!(queue.len(), 3);
        for i in 1..=3 {
            assert_eq!(queue.pop(), Some(item(i)));
        }
        assert_eq!(queue.pop(), None);
        // Wrap around many laps of a ring whose length is not a power of two, at every fill
        // level, so both lap parities meet full and empty slots.
        let mut next_in = 1;
        let mut next_out = 1;
        for round in 0..30usize {
            let fill = round % 4;
            for _ in 0..fill {
                assert!(queue.push(item(next_in)).is_ok());
                next_in += 1;
            }
            if fill == 3 {
                assert!(queue.push(item(0x1000)).is_err(), "full");
            }
            for _ in 0..fill {
                assert_eq!(queue.pop(), Some(item(next_out)));
                next_out += 1;
            }
            assert_eq!(queue.pop(), None);
        }
    }

    #[test]
    fn concurrent_items_are_popped_exactly_once() {
        let queue = SmallQueue::<u64>::new(61);
        let popped = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..2usize {
                let queue = &queue;
                let popped = &popped;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..10_000usize {
                        let item = ((t * 100_000 + i + 1) * 8) as *mut u64;
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
