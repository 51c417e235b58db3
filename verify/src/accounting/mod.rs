//! Exact accounting of every value a stress run writes, by id.
//!
//! Each round of the run gets a [`Ledger`] with a slot per value id its threads may write; its
//! values are [`Tracked`], which count their primary's drop, their clones and the clones' drops
//! in their slot, and carry a seal that catches a clone or a drop of an instance already dropped.
//! A recording eviction listener counts each report, and its cause, in the reported value's
//! slot; the workload notes whether each write was stored or refused (too heavy; a loaded value
//! not kept). At each quiet point of the round (the threads stopped; then again after `clear()`
//! and the epoch collector settled) [`audit`] checks every id: stored values in the table or
//! reported exactly once, never both, never neither; refused values neither; no instance dropped
//! twice; and once drained, every primary and every clone dropped exactly once. After the last
//! round the cache is filled once more and dropped whole, and the same holds for what it held.
//!
//! Guards against what global creation/drop totals miss: a leak of one value and a double drop
//! of another cancel in a total, but are two findings here, each naming its id; a clone read
//! from freed memory adds one creation and one drop to the totals, but breaks a seal here; a
//! value evicted without a report, or reported twice, or reported while still in the cache.
//!
//! [`Sabotage`] breaks one report or leaks one clone on purpose, so that tests can show the
//! audit is not vacuous.

mod audit;
mod ledger;
mod tracked;

pub use audit::{audit, Audit, Discrepancy, Point, Presence, Problem, Tally};
pub use ledger::{Counts, Fate, Ledger, Span, CLONED_AFTER_DROP, DROPPED_AFTER_DROP};
pub use tracked::Tracked;

/// A deliberate fault for the accounting's own tests: each happens once per run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    /// The listener forgets one report: that value is neither in the cache nor reported.
    DropReport,
    /// The listener records one report twice.
    DoubleReport,
    /// A worker `mem::forget`s the value one `get` returned: that value's clone leaks.
    LeakClone,
}

/// Epoch flushes [`settle`] tries at least before giving up.
pub const MAX_FLUSHES: usize = 20_000;

/// Time [`settle`] keeps flushing at least before giving up: on a loaded machine (other tests
/// running beside it, on two cores) 20,000 flushes can pass while a pinned thread elsewhere in
/// the process waits for a core, and the epoch does not advance.
pub const SETTLE_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs crossbeam-epoch's collector until `done()` holds, or both [`MAX_FLUSHES`] flushes and
/// [`SETTLE_TIME`] have passed (yielding between flushes so that threads pinned elsewhere can
/// move on). Nodes the cache retired are freed only when the global epoch has advanced past
/// their retirement; threads that exited have already pushed their garbage to the global queue.
/// Returns whether `done()` held.
pub fn settle(mut done: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    let mut flushes = 0;
    while flushes < MAX_FLUSHES || start.elapsed() < SETTLE_TIME {
        if done() {
            return true;
        }
        crossbeam_epoch::pin().flush();
        std::thread::yield_now();
        flushes += 1;
    }
    done()
}
