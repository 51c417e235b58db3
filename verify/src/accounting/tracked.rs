//! [`Tracked`]: a stress value that counts its own life in its round's [`Ledger`], slot by id.
//!
//! The instance the workload makes is the *primary*; every clone (a read's copy, the copy a
//! loader stores, a follower's copy) is counted apart. Each instance carries a seal, live from
//! its making to its drop: a clone made from an instance whose seal is broken was read out of a
//! value already dropped (memory the cache freed, as long as nothing reused it), and a drop that
//! finds it broken is a second drop of one instance. Both are recorded against the value's id.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use strata_engine::EvictionCause;

use super::ledger::{Ledger, CLONED_AFTER_DROP, DROPPED_AFTER_DROP};
use crate::workload::StressValue;

/// An instance's seal while it lives is this, xor its id.
const LIVE: u64 = 0x5EA1_ED00_A11C_E000;
/// An instance's seal once dropped.
const DEAD: u64 = 0xDEAD_DEAD_DEAD_DEAD;

/// A value that records its primary's drop, its clones and their drops, and its listener
/// reports in the [`Ledger`] of the round that wrote it.
#[derive(Debug)]
pub struct Tracked {
    id: u64,
    // Invariant: `LIVE ^ id` from construction until `drop` writes `DEAD`. An atomic so that
    // the write in `drop` is not elided as a store to memory about to be freed.
    seal: AtomicU64,
    primary: bool,
    slot: usize,
    ledger: Arc<Ledger>,
}

impl Tracked {
    /// The primary of value `id`, counted in `ledger`.
    ///
    /// # Panics
    /// If `id` has no slot in `ledger`.
    pub fn new(id: u64, ledger: &Arc<Ledger>) -> Self {
        let slot = ledger.slot_of(id).expect("a value id of this ledger");
        ledger.made(slot);
        Tracked {
            id,
            seal: AtomicU64::new(LIVE ^ id),
            primary: true,
            slot,
            ledger: Arc::clone(ledger),
        }
    }

    /// The value's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The ledger it is counted in.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    fn is_live(&self) -> bool {
        self.seal.load(Ordering::Relaxed) == LIVE ^ self.id
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        if !self.is_live() {
            self.ledger.misused(self.slot, CLONED_AFTER_DROP);
        }
        self.ledger.cloned(self.slot);
        Tracked {
            id: self.id,
            seal: AtomicU64::new(LIVE ^ self.id),
            primary: false,
            slot: self.slot,
            ledger: Arc::clone(&self.ledger),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if !self.is_live() {
            self.ledger.misused(self.slot, DROPPED_AFTER_DROP);
            return;
        }
        self.seal.store(DEAD, Ordering::Relaxed);
        self.ledger.dropped(self.slot, self.primary);
    }
}

impl StressValue for Tracked {
    const ACCOUNTED: bool = true;

    fn make(id: u64, ledger: Option<&Arc<Ledger>>) -> Self {
        Tracked::new(id, ledger.expect("tracked values are made with a ledger"))
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn reported(&self, cause: EvictionCause) {
        self.ledger.reported(self.slot, cause);
    }
}
