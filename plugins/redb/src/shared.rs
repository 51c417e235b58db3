//! The state that the API handle, the blocking read tasks and the writer thread share.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::SyncSender;
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard};

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
    /// Why the tier stopped serving, once a commit failed for good or the writer died.
    pub down: Mutex<Option<String>>,
    /// Set by the writer thread when it has closed the file and exited.
    pub finished: watch::Sender<bool>,
}

impl Shared {
    /// The error every operation answers with while the tier cannot serve, if it cannot.
    pub(crate) fn unavailable(&self) -> Option<TierError> {
        if let Some(reason) = self
            .down
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            return Some(TierError::Unavailable(reason.clone()));
        }
        if *self.finished.borrow() {
            return Some(TierError::Closed);
        }
        None
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
