//! [`Ledger`]: one round's per-value counters, a slot per value id the round may write.
//!
//! Each slot counts, for its one value, everything that happens to it: the primary's drop (the
//! instance the workload made), clones made and dropped, misuse caught by the value's seal
//! (cloned or dropped after its drop), listener reports and their cause, and what the workload
//! learnt from the call that wrote it (stored, or refused). Nothing is a run-wide total, so a
//! leak of one value and a double drop of another are two findings, each naming its id.
//!
//! The counters are `Relaxed`: they are read only at quiet points, after the worker threads have
//! been joined and the epoch collector has run the deferred drops on the reading thread.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use strata_engine::EvictionCause;

use crate::history::value_id;

/// What the workload knows of a value once the call that wrote it returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// No value was made with this id (its operation was not a write, or its loader did not
    /// run).
    Unused,
    /// Made; the call that was to store it has not returned.
    Made,
    /// The cache took it as the key's entry (an insert that returned `Ok`, a loader whose entry
    /// is fresh).
    Stored,
    /// The cache did not keep it: too heavy, or a loaded value not stored (a removal won, or an
    /// insert made during the load was kept). The listener must never report it.
    Refused,
}

impl Fate {
    fn from_u8(raw: u8) -> Fate {
        match raw {
            0 => Fate::Unused,
            1 => Fate::Made,
            2 => Fate::Stored,
            _ => Fate::Refused,
        }
    }
}

/// Misuse bit: an instance of the value was cloned after its drop (its seal was broken).
pub const CLONED_AFTER_DROP: u8 = 1;
/// Misuse bit: an instance of the value was dropped after its drop.
pub const DROPPED_AFTER_DROP: u8 = 2;

/// A listener report's cause, as a slot stores it (0: none yet).
fn cause_code(cause: EvictionCause) -> u8 {
    match cause {
        EvictionCause::Evicted => 1,
        EvictionCause::Expired => 2,
        EvictionCause::Removed => 3,
        EvictionCause::Replaced => 4,
        _ => 5,
    }
}

/// The counters of one value id.
#[derive(Debug, Default)]
struct Slot {
    /// A [`Fate`] as `u8`.
    fate: AtomicU8,
    primary_drops: AtomicU8,
    reports: AtomicU8,
    /// The first report's cause ([`cause_code`]).
    cause: AtomicU8,
    /// [`CLONED_AFTER_DROP`] | [`DROPPED_AFTER_DROP`].
    misuse: AtomicU8,
    clones: AtomicU32,
    clone_drops: AtomicU32,
    key: AtomicU64,
}

/// One value's counters as read at a quiet point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// The value's id ([`value_id`]).
    pub id: u64,
    /// The key it was written to.
    pub key: u64,
    /// What the workload knows of it.
    pub fate: Fate,
    /// Drops of the instance the workload made (1 once it is gone, never more).
    pub primary_drops: u8,
    /// Clones made of it (by reads, loaders, the listener's caller...).
    pub clones: u32,
    /// Clones dropped.
    pub clone_drops: u32,
    /// Listener reports of it.
    pub reports: u8,
    /// The first report's cause, if any (`None` also for a cause newer than this harness).
    pub cause: Option<EvictionCause>,
    /// Misuse its seal caught ([`CLONED_AFTER_DROP`], [`DROPPED_AFTER_DROP`]).
    pub misuse: u8,
}

/// One thread's share of a ledger: its ids `value_id(thread, first_seq..first_seq + count)`.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    /// The thread's first sequence number in the round.
    pub first_seq: u64,
    /// How many ids it may use.
    pub count: u64,
}

/// The per-value counters of one round.
#[derive(Debug)]
pub struct Ledger {
    round: u64,
    /// Per thread (by index): its span and the slot its first id maps to.
    spans: Vec<(Span, usize)>,
    // Invariant: one slot per id of every span, thread by thread, in sequence order.
    slots: Box<[Slot]>,
}

impl Ledger {
    /// A ledger for round `round` whose thread `t` writes the ids of `spans[t]`.
    pub fn new(round: u64, spans: &[Span]) -> Self {
        let mut offset = 0;
        let spans: Vec<(Span, usize)> = spans
            .iter()
            .map(|&span| {
                let at = offset;
                offset += span.count as usize;
                (span, at)
            })
            .collect();
        Ledger {
            round,
            spans,
            slots: (0..offset).map(|_| Slot::default()).collect(),
        }
    }

    /// The round it counts.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// The slot of value `id`, if it belongs to this ledger.
    pub fn slot_of(&self, id: u64) -> Option<usize> {
        let thread = (id >> 48) as usize;
        let seq = id & ((1 << 48) - 1);
        let &(span, at) = self.spans.get(thread)?;
        let index = seq.checked_sub(span.first_seq)?;
        (index < span.count).then(|| at + index as usize)
    }

    /// The id whose counters `slot` holds.
    fn id_of(&self, slot: usize) -> u64 {
        let thread = self.spans.partition_point(|&(_, at)| at <= slot) - 1;
        let (span, at) = self.spans[thread];
        value_id(thread as u32, span.first_seq + (slot - at) as u64)
    }

    /// How many ids the ledger has room for.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether it has room for none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Notes that the workload made the primary of the value in `slot`.
    pub(crate) fn made(&self, slot: usize) {
        self.slots[slot]
            .fate
            .store(Fate::Made as u8, Ordering::Relaxed);
    }

    /// Notes what the workload learnt once the call that wrote value `id` to `key` returned.
    ///
    /// # Panics
    /// If `id` is not this ledger's (a workload bug).
    pub fn settle_fate(&self, id: u64, key: u64, stored: bool) {
        let slot = &self.slots[self.slot_of(id).expect("a value id of this round")];
        slot.key.store(key, Ordering::Relaxed);
        let fate = if stored { Fate::Stored } else { Fate::Refused };
        slot.fate.store(fate as u8, Ordering::Relaxed);
    }

    /// Counts a clone of the value in `slot`.
    pub(crate) fn cloned(&self, slot: usize) {
        self.slots[slot].clones.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a drop of the value in `slot`: of its primary, or of a clone.
    pub(crate) fn dropped(&self, slot: usize, primary: bool) {
        let slot = &self.slots[slot];
        if primary {
            slot.primary_drops.fetch_add(1, Ordering::Relaxed);
        } else {
            slot.clone_drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records misuse caught by a value's seal.
    pub(crate) fn misused(&self, slot: usize, what: u8) {
        self.slots[slot].misuse.fetch_or(what, Ordering::Relaxed);
    }

    /// Records a listener report of the value in `slot`.
    pub(crate) fn reported(&self, slot: usize, cause: EvictionCause) {
        let slot = &self.slots[slot];
        if slot.reports.fetch_add(1, Ordering::Relaxed) == 0 {
            slot.cause.store(cause_code(cause), Ordering::Relaxed);
        }
    }

    /// The counters of `slot`, read now.
    pub(crate) fn counts(&self, slot: usize) -> Counts {
        let s = &self.slots[slot];
        let cause = match s.cause.load(Ordering::Relaxed) {
            0 => None,
            1 => Some(EvictionCause::Evicted),
            2 => Some(EvictionCause::Expired),
            3 => Some(EvictionCause::Removed),
            4 => Some(EvictionCause::Replaced),
            // A cause this harness does not know yet (`EvictionCause` is non-exhaustive).
            _ => None,
        };
        Counts {
            id: self.id_of(slot),
            key: s.key.load(Ordering::Relaxed),
            fate: Fate::from_u8(s.fate.load(Ordering::Relaxed)),
            primary_drops: s.primary_drops.load(Ordering::Relaxed),
            clones: s.clones.load(Ordering::Relaxed),
            clone_drops: s.clone_drops.load(Ordering::Relaxed),
            reports: s.reports.load(Ordering::Relaxed),
            cause,
            misuse: s.misuse.load(Ordering::Relaxed),
        }
    }
}
