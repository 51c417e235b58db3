//! The state that the API handle, the blocking read tasks and the writer thread share.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::SyncSender;
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use redb::Database;
use strata_tier::TierError;
use tokio::sync::watch;

use crate::config::Config;
use crate::overlay::Overlay;
use crate::queue::{Queue, Touch};
use crate::stats::Counters;

pub(crate) struct Shared {
    pub config: Config,
    /// The open file. Readers and the writer's transactions hold it shared; compaction and the
    /// final close take it exclusively. `None` once closed.
    pub db: RwLock<Option<Database>>,
    pub overlay: Overlay,
    pub queue: Queue,
    /// Recency updates for the writer (bounded; readers drop them when it is full).
    pub touches: SyncSender<Touch>,
    pub counters: Counters,
    /// The writer's next recency tick as of its last commit (for [`crate::eviction::wants_touch`]).
    pub next_tick: AtomicU64,
    /// Why the tier stopped serving for good (redb panicked, or a commit failed while closing).
    pub down: Mutex<Option<String>>,
    /// Why the tier is not serving for now: a commit failed and the writer is retrying it.
    /// Cleared when a commit lands.
    pub retrying: Mutex<Option<String>>,
    /// Failures injected by tests.
    pub faults: Faults,
    /// Set by the writer thread when it has closed the file and exited.
    pub finished: watch::Sender<bool>,
}

impl Shared {
    /// The error every operation answers with while the tier cannot serve, if it cannot.
    pub(crate) fn unavailable(&self) -> Option<TierError> {
        if *self.finished.borrow() {
            return Some(TierError::Closed);
        }
        self.down_reason().map(TierError::Unavailable)
    }

    /// Why the tier does not serve (for good, or while a failed commit is retried), if so.
    pub(crate) fn down_reason(&self) -> Option<String> {
        let down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(reason) = down.as_ref() {
            return Some(reason.clone());
        }
        drop(down);
        self.retrying
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Why the tier stopped serving for good, if it did.
    pub(crate) fn permanently_down(&self) -> Option<String> {
        self.down
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Marks the tier down for now (`Some`), or serving again (`None`).
    pub(crate) fn set_retrying(&self, reason: Option<String>) {
        *self.retrying.lock().unwrap_or_else(PoisonError::into_inner) = reason;
    }

    /// Marks the tier down (the first reason sticks).
    pub(crate) fn set_down(&self, reason: String) {
        let mut down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        if down.is_none() {
            *down = Some(reason);
        }
    }

    /// The file, shared.
    pub(crate) fn db(&self) -> RwLockReadGuard<'_, Option<Database>> {
        self.db.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn publish_tick(&self, next_tick: u64) {
        self.next_tick.store(next_tick, Relaxed);
    }
}

/// Failures a test injects into the writer (always compiled, set only by the crate's tests: an
/// atomic load per commit).
#[derive(Default)]
pub(crate) struct Faults {
    /// The next this many commits fail with an I/O error instead of committing.
    pub fail_commits: AtomicU32,
    /// Each commit first sleeps this many milliseconds (a slow disk).
    pub commit_delay_ms: AtomicU64,
}

impl Faults {
    /// Applies the injected faults to a commit about to run: sleeps, or fails it.
    pub(crate) fn before_commit(&self) -> Result<(), redb::Error> {
        let delay = self.commit_delay_ms.load(Relaxed);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let fail = self
            .fail_commits
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(redb::Error::Io(std::io::Error::other(
                "injected commit failure",
            )));
        }
        Ok(())
    }
}
