//! What a stress run reports: its counts, and each failure with the evidence to debug it.

use std::fmt::{self, Write as _};
use std::time::Duration;

use strata_engine::CacheStats;

use crate::accounting::{Discrepancy, Point, Tally};
use crate::checker::{excerpt, Violation};
use crate::history::Op;

/// Something a run found wrong.
#[derive(Clone, Debug)]
pub enum Failure {
    /// A key's history broke a rule; `history` is that key's whole history in the round,
    /// sorted by invocation.
    History {
        /// Round number (from 0).
        round: u64,
        /// The broken rule.
        violation: Violation,
        /// The key's history in that round.
        history: Vec<Op>,
    },
    /// Once quiescent, `len()` exceeded the capacity or `weighted_size()` the weight bound.
    Bound {
        /// Round number.
        round: u64,
        /// `len()`.
        len: usize,
        /// `weighted_size()`.
        weighted: u64,
        /// `max_capacity`.
        capacity: u64,
        /// `max_weight` (the capacity in unweighted runs).
        max_weight: u64,
    },
    /// Once quiescent, `len()` disagreed with the entries `iter()` visits (`after_clear`: right
    /// after `clear()`, where both must be zero).
    Count {
        /// Round number.
        round: u64,
        /// `len()`.
        len: usize,
        /// Entries visited by `iter()`.
        live: usize,
        /// Whether this was right after `clear()`.
        after_clear: bool,
    },
    /// An audit of the round's values found one of them unaccounted for
    /// ([`crate::accounting`]).
    Accounting {
        /// Round number (one past the last for the final fill).
        round: u64,
        /// When in the round.
        point: Point,
        /// The value and what is wrong with it.
        discrepancy: Discrepancy,
    },
}

/// Progress after each round.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Operations so far.
    pub ops: u64,
    /// Rounds so far.
    pub rounds: u64,
    /// Time since the run started.
    pub elapsed: Duration,
}

/// What a run did and found.
#[derive(Debug)]
pub struct Report {
    /// Operations run by the worker threads (the final reads of each round not included).
    pub ops: u64,
    /// Rounds run.
    pub rounds: u64,
    /// Key histories checked (non-empty ones, over all rounds).
    pub histories: u64,
    /// Violations found (histories, bounds, counts and accounting; a history may break several
    /// rules, a value several accounting rules).
    pub violations: u64,
    /// Of those, bound, count and accounting violations found once the threads had stopped.
    pub quiescent_violations: u64,
    /// Histories that broke at least one rule.
    pub failing_histories: u64,
    /// Rounds that found at least one violation (the run stops after the first unless told to
    /// keep going).
    pub failing_rounds: u64,
    /// The first violations found, whole.
    pub failures: Vec<Failure>,
    /// The cache's statistics at the end.
    pub stats: CacheStats,
    /// What checking the histories cost.
    pub checking: Checking,
    /// What the accounting audits checked, in runs with accounting.
    pub accounting: Option<Tally>,
}

/// What checking the histories cost, over the whole run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checking {
    /// Time spent checking (sorting by key, the rules and the exact search), all rounds.
    pub time: Duration,
    /// Steps of the exact search, all histories (0 if it did not run).
    pub search_steps: u64,
    /// Most steps the search took on one history.
    pub most_steps: u64,
    /// Most operations in one history.
    pub longest: u64,
}

/// Most failures kept whole (the others are only counted).
const MAX_FAILURES: usize = 16;

/// Failures found so far: the first [`MAX_FAILURES`] kept, all counted.
#[derive(Default)]
pub(crate) struct Findings {
    pub(crate) kept: Vec<Failure>,
    pub(crate) violations: u64,
    pub(crate) quiescent: u64,
}

impl Findings {
    pub(crate) fn record(&mut self, failure: impl FnOnce() -> Failure) {
        self.violations += 1;
        if self.kept.len() < MAX_FAILURES {
            self.kept.push(failure());
        }
    }

    /// Records a bound or count failure.
    pub(crate) fn record_quiescent(&mut self, failure: impl FnOnce() -> Failure) {
        self.quiescent += 1;
        self.record(failure);
    }
}

impl Report {
    /// The counts, one per line: ops, rounds, histories checked, violations, cache statistics,
    /// and what the accounting checked.
    pub fn summary(&self) -> String {
        let s = &self.stats;
        let mut out = format!(
            "ops: {}\nrounds: {}\nhistories checked: {}\nviolations: {} ({} failing histories, \
             {} failing rounds, first {} shown)\n\
             checking: {:.2} s ({:.0} histories/s, the longest {} ops), exact search: {} steps \
             (at most {} for one history)\n\
             cache stats: hits {} misses {} inserts {} evictions {} expirations {}\n",
            self.ops,
            self.rounds,
            self.histories,
            self.violations,
            self.failing_histories,
            self.failing_rounds,
            self.failures.len(),
            self.checking.time.as_secs_f64(),
            self.histories as f64 / self.checking.time.as_secs_f64().max(1e-9),
            self.checking.longest,
            self.checking.search_steps,
            self.checking.most_steps,
            s.hits,
            s.misses,
            s.inserts,
            s.evictions,
            s.expirations
        );
        if let Some(t) = &self.accounting {
            let _ = writeln!(
                out,
                "accounting: {} audits, {} values ({} refused by the cache), {} value checks \
                 ({} found in the cache), reports evicted {} expired {} removed {} replaced {} \
                 other {}, {} clones, {} accounting violations",
                t.audits,
                t.values,
                t.refused,
                t.checks,
                t.present,
                t.evicted,
                t.expired,
                t.removed,
                t.replaced,
                t.other_cause,
                t.clones,
                t.discrepancies,
            );
        }
        out
    }

    /// The whole history of every key that broke a rule (once per key and round, after the
    /// violations it showed), for a file.
    pub fn full_histories(&self) -> String {
        let mut out = String::new();
        let mut written: Vec<(u64, u64)> = Vec::new();
        for failure in &self.failures {
            let Failure::History {
                round,
                violation,
                history,
            } = failure
            else {
                continue;
            };
            if written.contains(&(*round, violation.key)) {
                continue;
            }
            written.push((*round, violation.key));
            for other in &self.failures {
                if let Failure::History {
                    round: r,
                    violation: v,
                    ..
                } = other
                {
                    if (*r, v.key) == (*round, violation.key) {
                        let _ = write!(out, "# round {r}: {v}");
                    }
                }
            }
            let _ = writeln!(out, "# key {} history, sorted by invoke:", violation.key);
            for op in history {
                let _ = writeln!(out, "{op}");
            }
        }
        out
    }
}

impl Failure {
    /// The failure, with at most `limit` operations of the key's history around a violation
    /// (the operations overlapping it, sorted by invocation).
    pub fn render(&self, limit: usize) -> String {
        let mut out = self.to_string();
        if let Failure::History {
            violation, history, ..
        } = self
        {
            let ops = excerpt(history, violation, limit);
            let _ = writeln!(
                out,
                "  key {} history around it ({} of its {} ops, sorted by invoke):",
                violation.key,
                ops.len(),
                history.len()
            );
            for op in ops {
                let _ = writeln!(out, "    {op}");
            }
        }
        out
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::History {
                round, violation, ..
            } => {
                write!(f, "HISTORY VIOLATION (round {round}): {violation}")
            }
            Failure::Bound {
                round,
                len,
                weighted,
                capacity,
                max_weight,
            } => writeln!(
                f,
                "BOUND VIOLATION (round {round}, quiescent): len {len}, weighted_size \
                 {weighted}, capacity {capacity}, max_weight {max_weight}"
            ),
            Failure::Count {
                round,
                len,
                live,
                after_clear,
            } => {
                writeln!(
                f,
                "COUNT VIOLATION (round {round}, quiescent{}): len {len}, entries iterated {live}",
                if *after_clear { ", right after clear()" } else { "" }
            )
            }
            Failure::Accounting {
                round,
                point,
                discrepancy,
            } => writeln!(
                f,
                "ACCOUNTING VIOLATION (round {round}, {point}): {discrepancy}"
            ),
        }
    }
}
