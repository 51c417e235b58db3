//! Shared by the integration tests that count what the epoch collector has freed.

use std::time::{Duration, Instant};

/// Flushes the epoch collector until `done` holds, for up to 20 s; returns whether it did.
///
/// Bounded by time rather than by a count of flushes: on a loaded machine, with other tests'
/// threads pinning, the collector needs more rounds to see every thread leave its epoch and free
/// what was retired.
pub fn flush_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        crossbeam_epoch::pin().flush();
        if done() {
            return true;
        }
        std::thread::yield_now();
    }
    false
}
