//! The one place the engine takes its concurrency primitives from.
//!
//! Under `--cfg strata_loom` every atomic, lock and `Arc` the engine's algorithm uses comes from
//! [loom](https://docs.rs/loom), so the loom models in `verify/` explore the real code, not a copy.
//! crossbeam-epoch switches itself to loom under `--cfg crossbeam_loom` (with its `loom` feature),
//! which the loom build sets alongside `strata_loom`.
//!
//! Statistics counters and the shards' `filled` hint deliberately do *not* come from here: they
//! are not part of any synchronisation protocol, and modelling them would only multiply the
//! states loom explores.

#[cfg(all(strata_loom, not(crossbeam_loom)))]
compile_error!(
    "`--cfg strata_loom` needs `--cfg crossbeam_loom` too, so crossbeam-epoch runs under loom"
);

#[cfg(not(strata_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

#[cfg(strata_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

pub(crate) use crossbeam_epoch as epoch;
pub(crate) use crossbeam_utils::CachePadded;

/// Locks `mutex`, ignoring poisoning: every critical section in the engine leaves its data
/// consistent before anything that could panic runs, so a poisoned lock holds valid data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
