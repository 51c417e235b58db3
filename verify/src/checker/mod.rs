//! Checks one key's history against the engine's documented consistency (crate docs,
//! *Consistency*): each key behaves as a linearizable register that the cache may empty at any
//! time (eviction, expiry), but never refill with an old value.
//!
//! Two layers, run in this order on each key's history:
//!
//! * [`rules`]: fast necessary conditions (about linear time), each sound (it flags only histories
//!   no linearization explains) and each naming the few operations that prove it. They catch
//!   almost every broken history, but not all: they are not a linearizability check.
//! * [`search`]: on the histories the rules pass, an exact search for a linearization of the
//!   model below; [`Rule::NotLinearizable`] if there is none, [`Rule::Undecided`] if the search
//!   ran out of its budget first (never counted as a pass).
//!
//! # The model
//!
//! Each call takes effect at one instant strictly inside its call (after its `invoke` tick,
//! before its `respond` tick), and the instants of a key's calls are totally ordered. Values are
//! unique per write. Unless [`Mode::no_eviction`], the key may become absent at any instant
//! (eviction, expiry). At its instant:
//!
//! * `get` returning nothing finds the key absent; returning `v`, finds `v` current.
//! * `insert(w)` makes `w` current.
//! * `remove` returning nothing finds the key absent; returning `v`, finds `v` current and makes
//!   the key absent.
//! * `get_or_insert_with` whose loader ran (its *leader*, recorded with `written: Some(w)`,
//!   returning `w`) finds the key absent, then either makes `w` current or leaves the key absent:
//!   the loaded value is cached only if no removal ran during the load and no insert made during
//!   it is still there, so a loaded value counts as written only once something shows it was.
//! * `get_or_insert_with` that returned `v` without loading either finds `v` current (a hit, or
//!   its re-read of the cache), or *followed* the load of `v`: `v`'s leader is another
//!   `get_or_insert_with` call, the key is absent at this call's instant (the miss that made it
//!   join the flight), `v` has not been made current before that instant (followers join before
//!   the leader inserts), and the flight completes at an instant after the leader's and the
//!   follower's, before both calls respond (followers return once the flight completes).
//! * A loader that ran but returned another value (the engine never does) is a leader step and
//!   a non-loading step, in either order.
//!
//! `tests/linearizability.rs` checks the search against a brute-force enumeration of this model
//! on generated histories.

use std::fmt;

use crate::history::Op;

mod configuration;
mod rules;
pub mod search;

/// Which rule a history broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A call returned a value that no write on this key stored before the call returned.
    Invented,
    /// A call returned value `v` of write `W`, although some operation `K` provably took effect
    /// after `W` and before the call, and `K` replaced `v`, removed it, or found the key absent
    /// (after which `v`, written once, can never return).
    Stale,
    /// Two removes returned the same value: the entry was removed twice.
    DoubleRemove,
    /// Eviction and expiry impossible: a call found the key absent although a write completed
    /// before it began and no remove could have taken effect in between.
    Missing,
    /// Value `v` was provably current throughout a span of time (its *zone*: from the earliest
    /// response to the latest invocation among its write and its reads, when the former comes
    /// first), and so was another value over an overlapping span.
    Overlap,
    /// An operation ran entirely inside value `v`'s zone, when `v` was current throughout, yet
    /// did not see `v`: it returned another value or nothing, removed something else, or wrote.
    Interrupted,
    /// Two writes stored the same value: a defect of the harness, not of the cache.
    DuplicateWrite,
    /// A call returned value `v` although it began (by the wall clock) more than the TTL, plus
    /// [`EXPIRY_SLACK`], after `v`'s write had returned: `v` had expired before the call began.
    Expired,
    /// The fast rules found nothing, but no order of the calls, each taking effect inside its
    /// call, explains every result under the model (module docs): the exact search failed.
    NotLinearizable,
    /// The exact search ran out of its budget before deciding: the history is neither shown
    /// linearizable nor shown broken. Reported as a failure, never as a pass.
    Undecided,
}

/// One broken rule, with the operations that prove it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The key whose history broke the rule.
    pub key: u64,
    /// The rule.
    pub rule: Rule,
    /// The operations involved (the write, the operation in between, the read, as applicable;
    /// for the search, the calls none of which could take effect next where it got furthest).
    pub ops: Vec<Op>,
    /// A sentence saying why.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:?} on key {}: {}", self.rule, self.key, self.detail)?;
        for op in &self.ops {
            writeln!(f, "    {op}")?;
        }
        Ok(())
    }
}

/// What [`Rule::Expired`] allows beyond the TTL, for the difference between the engine's clock
/// (quanta, read once per call) and the harness's (`Instant`). The engine itself is never late:
/// its millisecond deadline rounds down.
pub const EXPIRY_SLACK: std::time::Duration = std::time::Duration::from_millis(1);

/// Most violations reported per key (a broken history tends to break many rules at once).
const MAX_PER_KEY: usize = 8;

/// What the run allowed the cache to do.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mode {
    /// The capacity exceeds the key space and no TTL is set: entries leave only by `remove`, so
    /// [`Rule::Missing`] applies and the search never lets the key become absent by itself.
    pub no_eviction: bool,
    /// Every write's time to live (the run's default TTL), if any: with wall-clock stamps on
    /// the calls, [`Rule::Expired`] applies.
    pub ttl: Option<std::time::Duration>,
}

/// How far to check a history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// The fast rules only.
    Rules,
    /// The fast rules, then, if they pass, the exact search, giving up (as
    /// [`Rule::Undecided`]) after `budget` search steps.
    Exact {
        /// Most search steps (configurations tried) for one history.
        budget: u64,
    },
}

impl Default for Depth {
    fn default() -> Self {
        Depth::Exact {
            budget: DEFAULT_BUDGET,
        }
    }
}

/// The search budget of [`check_key`]: far above what real histories take (see the README).
pub const DEFAULT_BUDGET: u64 = 20_000_000;

/// What checking one history found, and what the search cost.
#[derive(Clone, Debug, Default)]
pub struct Checked {
    /// The broken rules (empty: the history passed).
    pub violations: Vec<Violation>,
    /// Search steps taken (0 if the search did not run).
    pub steps: u64,
}

/// Checks the history of one key (`ops` all on that key, in any order): the fast rules, then, if
/// they pass, the exact search with [`DEFAULT_BUDGET`].
pub fn check_key(ops: &[Op], mode: Mode) -> Vec<Violation> {
    check_key_with(ops, mode, Depth::default()).violations
}

/// [`check_key`] at a chosen depth.
pub fn check_key_with(ops: &[Op], mode: Mode, depth: Depth) -> Checked {
    let violations = rules::check(ops, mode);
    let Depth::Exact { budget } = depth else {
        return Checked {
            violations,
            steps: 0,
        };
    };
    if !violations.is_empty() {
        return Checked {
            violations,
            steps: 0,
        };
    }
    let searched = search::search(ops, mode, budget);
    let key = ops.first().map_or(0, |op| op.key);
    let stuck = |calls: &[usize]| calls.iter().map(|&i| ops[i].clone()).collect();
    let violations = match searched.verdict {
        search::Verdict::Linearizable => Vec::new(),
        search::Verdict::NotLinearizable {
            explained,
            stuck: calls,
        } => vec![Violation {
            key,
            rule: Rule::NotLinearizable,
            ops: stuck(&calls),
            detail: format!(
                "no order of the calls explains every result; where the search got furthest \
                 ({explained} of {} calls explained), none of the calls that could go next could \
                 take effect (shown: those calls, with the writer of the value one needed or a \
                 pending reader of the value one would have ended)",
                ops.len()
            ),
        }],
        search::Verdict::OutOfBudget { stuck: calls } => vec![Violation {
            key,
            rule: Rule::Undecided,
            ops: stuck(&calls),
            detail: format!(
                "the exact search gave up after {budget} steps without deciding (shown: where \
                 it got furthest); the history is not known to be linearizable"
            ),
        }],
    };
    Checked {
        violations,
        steps: searched.steps,
    }
}

/// The part of a key's history around a violation: the operations that overlap the span from
/// the earliest invocation to the latest response among `violation.ops`, at most `limit` of
/// them, sorted by invocation.
pub fn excerpt(history: &[Op], violation: &Violation, limit: usize) -> Vec<Op> {
    let start = violation.ops.iter().map(|op| op.invoke).min().unwrap_or(0);
    let end = violation.ops.iter().map(|op| op.respond).max().unwrap_or(0);
    let mut ops: Vec<Op> = history
        .iter()
        .filter(|op| op.respond >= start && op.invoke <= end)
        .cloned()
        .collect();
    crate::history::sort_by_invoke(&mut ops);
    if ops.len() > limit {
        // Keep the involved operations, then fill with the closest others.
        let involved = |op: &Op| violation.ops.contains(op);
        let mut kept: Vec<Op> = ops.iter().filter(|op| involved(op)).cloned().collect();
        let rest = limit.saturating_sub(kept.len());
        kept.extend(ops.iter().filter(|op| !involved(op)).take(rest).cloned());
        crate::history::sort_by_invoke(&mut kept);
        ops = kept;
    }
    ops
}
