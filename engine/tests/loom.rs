//! A first loom model of the real engine (the full suite lives in `verify/`): two threads
//! insert the same key at once. Guards the tail-append race: both inserts see the key absent and
//! race for the same null link; the loser must retry and replace, never append a duplicate.
//!
//! Run with:
//! `RUSTFLAGS="--cfg strata_loom --cfg crossbeam_loom" LOOM_MAX_PREEMPTIONS=2 \
//!  cargo test -p strata-engine --test loom --release`
#![cfg(strata_loom)]

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use loom::thread;
use strata_engine::Cache;

/// loom replays executions and needs each to take the same path: a fixed hasher, not aHash's
/// random keys.
type Fixed = BuildHasherDefault<DefaultHasher>;

fn small_cache() -> Cache<u64, u64, Fixed> {
    Cache::builder()
        .max_capacity(4)
        .hasher(Fixed::default())
        .build()
}

#[test]
fn racing_inserts_of_one_key_leave_one_entry() {
    loom::model(|| {
        let cache = small_cache();
        let other = cache.clone();
        let t = thread::spawn(move || other.insert(1, 1));
        cache.insert(1, 2);
        t.join().unwrap();
        let value = cache.get(&1);
        assert!(value == Some(1) || value == Some(2), "{value:?}");
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.iter().count(), 1, "the key is in its chain once");
    });
}
