//! Helpers shared by the engine's integration tests: waiting for the epoch collector, and a
//! seeded key stream. (Each test file compiles this module on its own and uses part of it.)
#![allow(dead_code)]

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

/// One step of xorshift64 (shifts 13, 7, 17): a reproducible stream of test keys from a nonzero
/// seed. Advances `state` and returns its new value.
pub fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
