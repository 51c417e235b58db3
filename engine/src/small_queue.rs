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
//! # Memory ordering
//!
//! The CAS rules out a slot *ahead* of the ticket; nothing about the CAS rules out a slot word
//! *behind* it. A stale word two laps old has the ticket's own parity: for the ticket `t` of lap
//! `L`, the word stored in lap `L - 2` (full with an item popped long ago, or empty while the
//! slot now holds an item not yet popped). One parity bit only works if a thread that holds
//! ticket `t` can never read a slot word older than lap `L - 1`, and under the Rust (C++20)
//! memory model that must come from happens-before, not from the timing of the hardware:
//! a load reads any store to the slot that coherence allows, and coherence only forbids stores
//! older than one the loading thread already happens-after (write-read and read-read coherence).
//!
//! So the counters carry happens-before. Every load of `head` and `tail` in [`SmallQueue::push`]
//! and [`SmallQueue::pop`] is `Acquire`, a successful CAS is `AcqRel` and a failed one `Acquire`
//! (its result is the next ticket tried). Every write to a counter is one of those CASes, so all
//! writes after a release CAS continue its release sequence, and a thread that acquires the
//! counter value `t` happens-after *every* successful CAS of that counter before it, in
//! particular the one that took ticket `t - len`, one lap earlier in the same slot. For `pop`:
//! the popper of `t - len` took its ticket only after its `Acquire` load of the slot read the
//! full word of lap `L - 1` (stored `Release` by the pusher of `t - len`); so a popper that reads
//! `head == t` happens-after that store, and by coherence its own slot load reads that store or a
//! later one: the full word of lap `L - 1` (wrong parity, refused), the empty word of lap `L`
//! (empty: it reports nothing, or retries a newer ticket), or the full word of lap `L`, the right
//! one. It never reads lap `L - 2`'s full word, whose item was already returned. For `push` the
//! same chain runs through `tail`: the pusher of `t - len` read the empty word of lap `L - 1`
//! before its CAS, so a pusher that reads `tail == t` sees that word or a later one, never lap
//! `L - 2`'s empty word, which would let it overwrite an item not yet popped.
//!
//! With `Relaxed` counters (as this ring had, and as the `relaxed_ring` mutant still has) a
//! thread that reads `head == t` happens-after none of the other threads' work on the slot, may
//! read the slot word of lap `L - 2`, and its CAS `t -> t + 1` still succeeds: the item is
//! returned twice, which in the engine releases one node's queue reference twice. A pusher may
//! likewise fill a slot whose item is not yet popped, and one of the two items is lost. The loom
//! models `stalled_popper_takes_each_ring_item_once` and `stalled_pusher_overwrites_no_ring_item`
//! in `verify/tests/loom_engine.rs` find each.
//!
//! [`SmallQueue::len`] reads no slot and stays `Relaxed`: it is an estimate.
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

// The orderings of the counters `head` and `tail` (see *Memory ordering* above): a load, the
// success of a CAS that takes a ticket, and its failure.
#[cfg(not(strata_mutant = "relaxed_ring"))]
const TICKET_LOAD: Ordering = Ordering::Acquire;
#[cfg(not(strata_mutant = "relaxed_ring"))]
const TICKET_TAKE: Ordering = Ordering::AcqRel;
#[cfg(not(strata_mutant = "relaxed_ring"))]
const TICKET_RETRY: Ordering = Ordering::Acquire;
// The `relaxed_ring` mutant is the ring as it was before issue 13: `Relaxed` counters, with
// which a thread holding a ticket may read a slot word two laps old and return an item twice.
// The loom models `stalled_popper_takes_each_ring_item_once` and
// `stalled_pusher_overwrites_no_ring_item` in `verify/` must catch it (see `scripts/loom.sh
// --mutants`).
#[cfg(strata_mutant = "relaxed_ring")]
const TICKET_LOAD: Ordering = Ordering::Relaxed;
#[cfg(strata_mutant = "relaxed_ring")]
const TICKET_TAKE: Ordering = Ordering::Relaxed;
#[cfg(strata_mutant = "relaxed_ring")]
const TICKET_RETRY: Ordering = Ordering::Relaxed;

/// A bounded ring of `*mut T` (see the module docs). Public only for the loom models of
/// `verify/` (`--cfg strata_loom`, through `strata_engine::__loom`); the module is private.
pub struct SmallQueue<T> {
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
    pub fn new(capacity: usize) -> Self {
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
        // Relaxed: an estimate, after which no slot is read, so no happens-before is needed.
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Relaxed);
        tail.saturating_sub(head)
    }

    /// Appends `item`; gives it back if the ring is full.
    pub fn push(&self, item: *mut T) -> Result<(), *mut T> {
        debug_assert_eq!(item as usize & STATE, 0, "misaligned item");
        // SAFETY (memory ordering; no `unsafe` here): Acquire, so that this thread happens-after
        // every successful CAS of `tail` up to the value read, among them the one that took
        // `ticket - len` after reading the slot empty for the previous lap. The slot load below
        // then cannot read that slot's empty word of two laps ago, whose parity matches
        // `ticket`'s and would let this push overwrite an item not yet popped (module docs,
        // *Memory ordering*).
        let mut ticket = self.tail.load(TICKET_LOAD);
        loop {
            let (slot, lap_bit) = self.locate(ticket);
            // Acquire: pairs with the Release store of the popper that emptied the slot.
            let word = slot.load(Ordering::Acquire);
            if word == lap_bit {
                // Empty, in this ticket's lap: claim the ticket, then fill the slot.
                // SAFETY (memory ordering): success AcqRel. The Release half is what the
                // argument needs: pushers of later tickets, acquiring `tail`, happen-after this
                // thread's load of the slot above. The Acquire half only repeats the acquire of
                // the load that gave `ticket` (each counter value is written once, so a CAS that
                // succeeds read that same write). Failure Acquire: the value read is the next
                // ticket, whose slot is read with the same guarantee as the first load's.
                match self.tail.compare_exchange_weak(
                    ticket,
                    ticket.wrapping_add(1),
                    TICKET_TAKE,
                    TICKET_RETRY,
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
                // SAFETY (memory ordering): Acquire, as the first load: `current` may be the
                // next ticket tried.
                let current = self.tail.load(TICKET_LOAD);
                if current == ticket {
                    return Err(item);
                }
                ticket = current;
            }
        }
    }

    /// Takes the oldest pointer, or `None` when the ring is empty or its oldest slot is still
    /// being filled.
    pub fn pop(&self) -> Option<*mut T> {
        // SAFETY (memory ordering; no `unsafe` here): Acquire, so that this thread happens-after
        // every successful CAS of `head` up to the value read, among them the one that took
        // `ticket - len`, which its popper made after its Acquire load read the slot's full word
        // of the previous lap. By coherence the slot load below reads that word (wrong parity) or
        // a later one, never the full word of two laps ago: same parity as `ticket`, an item
        // already returned, which the CAS below would let this pop return again (module docs,
        // *Memory ordering*).
        let mut ticket = self.head.load(TICKET_LOAD);
        loop {
            let (slot, lap_bit) = self.locate(ticket);
            // Acquire: pairs with the Release store of the pusher that filled the slot.
            let word = slot.load(Ordering::Acquire);
            if word & STATE == FULL | lap_bit {
                // SAFETY (memory ordering): success AcqRel. The Release half is what the
                // argument needs: poppers of later tickets, acquiring `head`, happen-after this
                // thread's load of the slot above. The Acquire half only repeats the acquire of
                // the load that gave `ticket` (each counter value is written once, so a CAS that
                // succeeds read that same write). Failure Acquire: the value read is the next
                // ticket, whose slot is read with the same guarantee as the first load's.
                match self.head.compare_exchange_weak(
                    ticket,
                    ticket.wrapping_add(1),
                    TICKET_TAKE,
                    TICKET_RETRY,
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
                // SAFETY (memory ordering): Acquire, as the first load: `current` may be the
                // next ticket tried.
                let current = self.head.load(TICKET_LOAD);
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
