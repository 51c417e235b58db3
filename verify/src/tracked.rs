//! Values that count their own creations and drops, to prove that the cache drops every value
//! exactly once: none leaked (a node never retired, a replaced or evicted value kept alive) and
//! none dropped twice (a double retire, or a value dropped while a reader still clones it, which
//! shows up as more drops than creations).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::workload::StressValue;

/// Creation and drop counters shared by every [`Tracked`] value of one run.
#[derive(Debug, Default)]
pub struct DropCounts {
    created: AtomicUsize,
    dropped: AtomicUsize,
}

impl DropCounts {
    /// New counters at zero, ready to share.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Values created so far (constructions and clones).
    pub fn created(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }

    /// Values dropped so far.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Whether every value created has been dropped.
    pub fn balanced(&self) -> bool {
        self.dropped() == self.created()
    }
}

/// A value that counts its constructions, clones and drops in a shared [`DropCounts`].
#[derive(Debug)]
pub struct Tracked {
    id: u64,
    counts: Arc<DropCounts>,
}

impl Tracked {
    /// A new value with id `id`, counted in `counts`.
    pub fn new(id: u64, counts: &Arc<DropCounts>) -> Self {
        counts.created.fetch_add(1, Ordering::SeqCst);
        Tracked {
            id,
            counts: Arc::clone(counts),
        }
    }

    /// The value's id.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked::new(self.id, &self.counts)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.counts.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl StressValue for Tracked {
    type Source = Arc<DropCounts>;

    fn make(id: u64, source: &Arc<DropCounts>) -> Self {
        Tracked::new(id, source)
    }

    fn id(&self) -> u64 {
        self.id
    }
}

/// Most epoch flushes [`settle`] tries before giving up.
pub const MAX_FLUSHES: usize = 20_000;

/// Runs crossbeam-epoch's collector until `done()` holds or [`MAX_FLUSHES`] flushes have passed
/// (yielding between them so that threads pinned elsewhere can move on). Nodes the cache retired
/// are freed only when the global epoch has advanced past their retirement; threads that exited
/// have already pushed their garbage to the global queue. Returns whether `done()` held.
pub fn settle(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..MAX_FLUSHES {
        if done() {
            return true;
        }
        crossbeam_epoch::pin().flush();
        std::thread::yield_now();
    }
    done()
}
