//! The check of one [`Ledger`] at a quiet point: every value the round wrote, by id.
//!
//! A stored value is either in the cache's table or was reported exactly once by the listener:
//! never both, never neither, never twice. A value the cache refused (too heavy, or a loaded
//! value not stored) is never in the table and never reported. No instance is dropped twice,
//! no clone is made from a dropped instance, and no value has more clone drops than clones; once
//! the round is drained (the cache cleared and the epoch collector settled) or the cache dropped,
//! every primary was dropped exactly once and every clone once.

use std::fmt;

use strata_engine::EvictionCause;

use super::ledger::{Counts, Fate, Ledger, CLONED_AFTER_DROP, DROPPED_AFTER_DROP};
use crate::history::show_value;

/// What the cache held when an audit ran.
#[derive(Clone, Copy, Debug)]
pub enum Presence<'a> {
    /// The ids of every value in the table now, expired entries not yet reclaimed included
    /// (they are still the cache's and not yet reported), as `Cache::retain` visits them.
    Table(&'a [u64]),
    /// The cache was dropped: what it held was dropped with it, and never reported.
    CacheDropped,
}

/// When in a round an audit ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// The worker threads had stopped; the cache was as they left it.
    Quiet,
    /// After `clear()` and the epoch collector settled: nothing in the cache, every instance
    /// dropped.
    Drained,
    /// After the cache itself was dropped, holding entries, and the collector settled.
    CacheDropped,
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Point::Quiet => "quiet point",
            Point::Drained => "after clear() and the epoch settled",
            Point::CacheDropped => "after the cache was dropped and the epoch settled",
        })
    }
}

/// What is wrong with one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Stored, yet neither in the table nor reported: lost without a report (or leaked).
    Neither,
    /// In the table and reported as gone.
    Both,
    /// Reported more than once.
    ReportedTwice,
    /// In the table more than once.
    PresentTwice,
    /// In the table although the cache refused it.
    RefusedButPresent,
    /// Reported although the cache refused it.
    RefusedButReported,
    /// In the table, but not a value of this round (or never made).
    Stranger,
    /// Made, but the call that wrote it never said what became of it (a harness bug).
    FateUnknown,
    /// The primary instance dropped more than once.
    PrimaryDroppedTwice,
    /// More clone drops than clones: some clone dropped twice.
    ClonesOverDropped,
    /// A clone made from an instance already dropped.
    ClonedAfterDrop,
    /// An instance dropped after it was dropped.
    DroppedAfterDrop,
    /// Drained or dropped with the cache, yet the primary was never dropped: leaked.
    PrimaryLeaked,
    /// Drained or dropped with the cache, yet some clones were never dropped: leaked.
    ClonesLeaked,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Problem::Neither => "stored, but neither in the cache nor reported",
            Problem::Both => "in the cache and also reported gone",
            Problem::ReportedTwice => "reported more than once",
            Problem::PresentTwice => "in the cache more than once",
            Problem::RefusedButPresent => "refused by the cache, yet in it",
            Problem::RefusedButReported => "refused by the cache, yet reported",
            Problem::Stranger => "in the cache, but not a value this round made",
            Problem::FateUnknown => "made, but its write never returned",
            Problem::PrimaryDroppedTwice => "primary dropped more than once",
            Problem::ClonesOverDropped => "more clone drops than clones",
            Problem::ClonedAfterDrop => "cloned from an instance already dropped",
            Problem::DroppedAfterDrop => "an instance dropped twice",
            Problem::PrimaryLeaked => "primary never dropped (leaked)",
            Problem::ClonesLeaked => "clones never dropped (leaked)",
        })
    }
}

/// One problem with one value, with its counters as the audit read them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discrepancy {
    /// What is wrong.
    pub problem: Problem,
    /// The value's id.
    pub id: u64,
    /// How many times the table held it.
    pub present: u32,
    /// Its counters (`None` for a [`Problem::Stranger`] from no ledger).
    pub counts: Option<Counts>,
}

impl fmt::Display for Discrepancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "value {} ", show_value(Some(self.id)))?;
        if let Some(c) = &self.counts {
            write!(f, "(key {}, {:?}) ", c.key, c.fate)?;
        }
        write!(f, "{}: in the table {}x", self.problem, self.present)?;
        if let Some(c) = &self.counts {
            let cause = c.cause.map_or("-".into(), |cause| format!("{cause:?}"));
            write!(
                f,
                ", reported {}x (first: {cause}), primary dropped {}x, clones {} made / {} dropped",
                c.reports, c.primary_drops, c.clones, c.clone_drops
            )?;
            if c.misuse != 0 {
                write!(f, ", seal broken (misuse bits {:#b})", c.misuse)?;
            }
        }
        Ok(())
    }
}

/// What audits counted, summed over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Audits run.
    pub audits: u64,
    /// Values checked, each counted once (by its last audit): the values the run wrote.
    pub values: u64,
    /// Checks of one value at one audit (a value is checked at each audit of its round).
    pub checks: u64,
    /// Checks that found the value in the table.
    pub present: u64,
    /// Values the cache refused (too heavy, or loaded and not kept), each counted once.
    pub refused: u64,
    /// Reports seen, by cause (the last audit of each round counts them).
    pub evicted: u64,
    /// See [`evicted`](Self::evicted).
    pub expired: u64,
    /// See [`evicted`](Self::evicted).
    pub removed: u64,
    /// See [`evicted`](Self::evicted).
    pub replaced: u64,
    /// Reports of a cause this harness does not know (`EvictionCause` is non-exhaustive).
    pub other_cause: u64,
    /// Clones made (counted by the last audit of each round).
    pub clones: u64,
    /// Problems found (each a [`Discrepancy`]).
    pub discrepancies: u64,
}

impl Tally {
    /// Adds `other` to this.
    pub fn add(&mut self, other: &Tally) {
        self.audits += other.audits;
        self.values += other.values;
        self.checks += other.checks;
        self.present += other.present;
        self.refused += other.refused;
        self.evicted += other.evicted;
        self.expired += other.expired;
        self.removed += other.removed;
        self.replaced += other.replaced;
        self.other_cause += other.other_cause;
        self.clones += other.clones;
        self.discrepancies += other.discrepancies;
    }
}

/// What one audit found and counted.
#[derive(Debug, Default)]
pub struct Audit {
    /// Every problem, value by value.
    pub discrepancies: Vec<Discrepancy>,
    /// What it checked.
    pub tally: Tally,
}

/// Checks every value `ledger` counted against `presence` (see the module docs); `drained`: the
/// round is over and every instance must be gone. Counts values, refusals, causes and clones
/// into the tally only when `drained` (each value's last audit).
pub fn audit(ledger: &Ledger, presence: Presence<'_>, drained: bool) -> Audit {
    let mut out = Audit::default();
    out.tally.audits = 1;
    let mut present = vec![0u32; ledger.len()];
    if let Presence::Table(ids) = presence {
        for &id in ids {
            match ledger.slot_of(id) {
                Some(slot) => present[slot] += 1,
                None => out.discrepancies.push(Discrepancy {
                    problem: Problem::Stranger,
                    id,
                    present: 1,
                    counts: None,
                }),
            }
        }
    }
    for (slot, &present) in present.iter().enumerate() {
        let c = ledger.counts(slot);
        let mut flag = |problem| {
            out.discrepancies.push(Discrepancy {
                problem,
                id: c.id,
                present,
                counts: Some(c),
            })
        };
        if c.fate == Fate::Unused {
            if present > 0 {
                flag(Problem::Stranger);
            }
            continue;
        }
        let gone = c.reports > 0 || matches!(presence, Presence::CacheDropped);
        match c.fate {
            Fate::Unused => {}
            Fate::Made => flag(Problem::FateUnknown),
            Fate::Stored => match (present, c.reports) {
                (0, 0) if !gone => flag(Problem::Neither),
                (2.., _) => flag(Problem::PresentTwice),
                (1, 1..) => flag(Problem::Both),
                _ => {}
            },
            Fate::Refused => {
                if present > 0 {
                    flag(Problem::RefusedButPresent);
                }
                if c.reports > 0 {
                    flag(Problem::RefusedButReported);
                }
            }
        }
        if c.reports > 1 {
            flag(Problem::ReportedTwice);
        }
        if c.primary_drops > 1 {
            flag(Problem::PrimaryDroppedTwice);
        }
        if c.clone_drops > c.clones {
            flag(Problem::ClonesOverDropped);
        }
        if c.misuse & CLONED_AFTER_DROP != 0 {
            flag(Problem::ClonedAfterDrop);
        }
        if c.misuse & DROPPED_AFTER_DROP != 0 {
            flag(Problem::DroppedAfterDrop);
        }
        if drained && c.primary_drops == 0 {
            flag(Problem::PrimaryLeaked);
        }
        if drained && c.clone_drops < c.clones {
            flag(Problem::ClonesLeaked);
        }
        let t = &mut out.tally;
        t.checks += 1;
        t.present += u64::from(present > 0);
        if drained {
            t.values += 1;
            t.refused += u64::from(c.fate == Fate::Refused);
            t.clones += u64::from(c.clones);
            if c.reports > 0 {
                match c.cause {
                    Some(EvictionCause::Evicted) => t.evicted += 1,
                    Some(EvictionCause::Expired) => t.expired += 1,
                    Some(EvictionCause::Removed) => t.removed += 1,
                    Some(EvictionCause::Replaced) => t.replaced += 1,
                    _ => t.other_cause += 1,
                }
            }
        }
    }
    out.tally.discrepancies = out.discrepancies.len() as u64;
    out
}
