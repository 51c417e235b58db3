//! The rule a tiered stack's history must keep (issue 12; `strata` crate docs, *Consistency*):
//!
//! > A read that STARTED after some update `U` of its key RETURNED must not return a value
//! > older than `U`.
//!
//! * **Reads**: `get`, each key of `get_many`, a `get_or_load` that returned a value, and the
//!   quiescent probes of L1 (`l1().get`) and of a real `get` after L1 was cleared
//!   ([`Kind::is_read`]). A miss is always allowed (eviction, expiry, a skipped tier).
//! * **Updates** of key `k`: `set(k)`, `delete(k)`, `invalidate_pattern` of `k`'s group and
//!   `clear()`, whether they returned `Ok` or an invalidation error: the contract promises the
//!   same for both (L1 loses the key and a tier that failed is skipped for it by reads).
//! * **Older**: value `x` is older than `U` if `x`'s *write point* comes before `U.start`. A
//!   `set`'s write point is its return (while it runs, the old value may still be read); a
//!   loaded value's is the loader's *start* (the value is as of then: a load that overlaps a
//!   `delete` can never be served once the delete has returned).
//!
//! Also flagged: a value that no `set` or loader wrote ([`Rule::Invented`]), a value written
//! for another key ([`Rule::WrongKey`]), a value whose write started after the read returned
//! ([`Rule::Future`]), and a value written twice ([`Rule::DuplicateWrite`], a harness defect).
//!
//! Raw tier contents ([`Kind::ProbeTier`]) get the same rule, but an older value found there
//! is only *counted* ([`Checker::tier_older`]): a tier may keep an old value that reads skip
//! (stale marks after a failed write), and what matters is what reads return, which the
//! `ProbeGet` after clearing L1 checks. A value found there that was never written for the key
//! is a violation all the same.
//!
//! Histories are checked in rounds separated by quiescent points (no call in flight), so every
//! update of an earlier round ended before any operation of a later round started: per key,
//! the update with the latest start among earlier rounds is all that carries over. Within a
//! round, per key, updates are sorted by end with a running maximum of their start; a read
//! binary-searches the updates that ended before it started. `O(n log n)` per round.

use std::collections::HashMap;
use std::fmt;

use super::history::{key_name, Kind, Op};

/// Which rule a read broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// It returned a value older than an update that returned before it started.
    Stale,
    /// It returned a value that no `set` or loader wrote.
    Invented,
    /// It returned a value written for another key.
    WrongKey,
    /// It returned a value whose write started after the read returned.
    Future,
    /// Two writes produced the same value (a defect of the harness, not of the cache).
    DuplicateWrite,
}

/// One broken rule with the operations that prove it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// The key.
    pub key: u32,
    /// The read (or probe) that returned the value.
    pub read: Op,
    /// The `set` or loader run that wrote it, if known.
    pub write: Option<Op>,
    /// For [`Rule::Stale`]: the update that returned before the read started, and started
    /// after the value's write point.
    pub update: Option<Op>,
    /// The round's operations on the key between the write (or update) and the read.
    pub context: Vec<Op>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:?} read of {}:", self.rule, key_name(self.key))?;
        if let Some(write) = &self.write {
            writeln!(f, "  write:  {write}")?;
        }
        if let Some(update) = &self.update {
            writeln!(f, "  update: {update}")?;
        }
        writeln!(f, "  read:   {}", self.read)?;
        writeln!(f, "  history of the key around them:")?;
        for op in &self.context {
            writeln!(f, "    {op}")?;
        }
        Ok(())
    }
}

/// A value's write: the op, and its write point.
#[derive(Clone, Debug)]
struct Write {
    op: Op,
    point: u64,
}

/// Checks rounds of history, keeping what later rounds need.
#[derive(Debug)]
pub struct Checker {
    writes: HashMap<u64, Write>,
    /// Per key: the update with the latest start in earlier rounds.
    carried: Vec<Option<Op>>,
    /// The first violations in full (up to `keep`).
    pub violations: Vec<Violation>,
    /// All violations found.
    pub violation_count: u64,
    /// Reads (with a value or not) checked.
    pub reads_checked: u64,
    /// Raw tier entries seen at quiescent points, by tier number (index 2: L2, 3: L3).
    pub tier_entries: [u64; 4],
    /// Of those, entries older than a completed update (counted, not violations).
    pub tier_older: [u64; 4],
    keep: usize,
}

impl Checker {
    /// A checker for keys `0..keys` that keeps the first `keep` violations in full.
    pub fn new(keys: u32, keep: usize) -> Self {
        Checker {
            writes: HashMap::new(),
            carried: vec![None; keys as usize],
            violations: Vec::new(),
            violation_count: 0,
            reads_checked: 0,
            tier_entries: [0; 4],
            tier_older: [0; 4],
            keep,
        }
    }

    fn flag(&mut self, violation: Violation) {
        self.violation_count += 1;
        if self.violations.len() < self.keep {
            self.violations.push(violation);
        }
    }

    /// Checks one round: every operation in it must have returned, and every operation of
    /// earlier rounds must have returned before any of it started. Returns the violations
    /// this round found.
    pub fn check_round(&mut self, ops: &[Op]) -> u64 {
        let before = self.violation_count;
        for op in ops {
            if let (Kind::Set | Kind::Loader, Some(value)) = (op.kind, op.value) {
                let point = if op.kind == Kind::Set {
                    op.end
                } else {
                    op.start
                };
                let write = Write {
                    op: op.clone(),
                    point,
                };
                if let Some(earlier) = self.writes.insert(value, write) {
                    self.flag(Violation {
                        rule: Rule::DuplicateWrite,
                        key: op.key,
                        read: op.clone(),
                        write: Some(earlier.op),
                        update: None,
                        context: Vec::new(),
                    });
                }
            }
        }
        for key in 0..self.carried.len() as u32 {
            self.check_key(key, ops);
        }
        self.violation_count - before
    }

    fn check_key(&mut self, key: u32, ops: &[Op]) {
        let mut updates: Vec<&Op> = ops
            .iter()
            .filter(|op| op.kind.is_update() && op.covers(key))
            .collect();
        updates.sort_by_key(|op| op.end);
        // best[i]: the update with the latest start among updates[..=i] and earlier rounds.
        let carried = self.carried[key as usize].clone();
        let mut best: Vec<Option<&Op>> = Vec::with_capacity(updates.len());
        let mut running = carried.as_ref();
        for op in &updates {
            if running.is_none_or(|r| op.start > r.start) {
                running = Some(op);
            }
            best.push(running);
        }
        let latest = running.cloned();
        let reads = ops.iter().filter(|op| {
            op.key == key && (op.kind.is_read() || op.kind == Kind::ProbeTier) && op.ok
        });
        let mut found = Vec::new();
        for read in reads {
            let tier = read.kind == Kind::ProbeTier;
            if tier {
                self.tier_entries[usize::from(read.tier.min(3))] += 1;
            } else {
                self.reads_checked += 1;
            }
            let Some(value) = read.value else { continue };
            let write = self.writes.get(&value);
            let ended_before = updates.partition_point(|u| u.end < read.start);
            let witness = match ended_before {
                0 => carried.as_ref(),
                n => best[n - 1],
            };
            let rule = match write {
                None => Some(Rule::Invented),
                Some(w) if w.op.key != key => Some(Rule::WrongKey),
                Some(w) if w.op.start > read.end => Some(Rule::Future),
                Some(w) if witness.is_some_and(|u| u.start > w.point) => {
                    if tier {
                        self.tier_older[usize::from(read.tier.min(3))] += 1;
                        None
                    } else {
                        Some(Rule::Stale)
                    }
                }
                Some(_) => None,
            };
            if let Some(rule) = rule {
                let write = write.map(|w| w.op.clone());
                let update = (rule == Rule::Stale).then(|| witness.cloned()).flatten();
                found.push((rule, read.clone(), write, update));
            }
        }
        for (rule, read, write, update) in found {
            let context = if self.violations.len() < self.keep {
                context(key, ops, &read, write.as_ref(), update.as_ref())
            } else {
                Vec::new()
            };
            self.flag(Violation {
                rule,
                key,
                read,
                write,
                update,
                context,
            });
        }
        self.carried[key as usize] = latest;
    }
}

/// Operations on `key` (or covering it) from the earliest of the write and the update to the
/// read's end, in start order, at most 40 (the last ones).
fn context(key: u32, ops: &[Op], read: &Op, write: Option<&Op>, update: Option<&Op>) -> Vec<Op> {
    let from = [write, update]
        .into_iter()
        .flatten()
        .map(|op| op.start)
        .min()
        .unwrap_or(read.start);
    let mut around: Vec<Op> = ops
        .iter()
        .filter(|op| {
            let on_key = match op.kind {
                Kind::Pattern | Kind::Clear => op.covers(key),
                Kind::L1Clear => true,
                _ => op.key == key,
            };
            on_key && op.end >= from && op.start <= read.end
        })
        .cloned()
        .collect();
    around.sort_by_key(|op| op.start);
    let skip = around.len().saturating_sub(40);
    around.split_off(skip)
}
