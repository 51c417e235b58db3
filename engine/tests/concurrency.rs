//! Many threads on one cache: no lost or duplicated entries, values never torn or invented,
//! bounds restored once writers stop, and every value dropped exactly once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use strata_engine::Cache;

mod common;

const THREADS: u64 = 4;

#[test]
fn disjoint_inserts_are_all_visible() {
    let cache = Cache::<u64, u64>::new(1_000_000);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..20_000 {
                    let k = t * 1_000_000 + i;
                    cache.insert(k, k + 1);
                }
            });
        }
    });
    assert_eq!(cache.len(), (THREADS * 20_000) as usize);
    for t in 0..THREADS {
        for i in 0..20_000 {
            let k = t * 1_000_000 + i;
            assert_eq!(cache.get(&k), Some(k + 1));
        }
    }
}

#[test]
fn same_key_races_leave_exactly_one_entry() {
    for round in 0..200u64 {
        let cache = Cache::<u64, u64>::new(100);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let cache = &cache;
                s.spawn(move || cache.insert(round, t));
            }
        });
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&round).is_some_and(|v| v < THREADS));
        assert_eq!(
            cache.iter().count(),
            1,
            "a key must never be in its chain twice"
        );
    }
}

#[test]
fn readers_see_only_written_values_during_churn() {
    // Values encode their key, so a reader can tell a value from another key or a torn one.
    let cache = Cache::<u64, u64>::new(64);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..100_000u64 {
                    let k = (i * 7 + t) % 256;
                    match i % 4 {
                        0 => {
                            cache.remove(&k);
                        }
                        _ => cache.insert(k, k << 32 | (i & 0xFFFF_FFFF)),
                    }
                }
            });
        }
        for _ in 0..2 {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..200_000u64 {
                    let k = i % 256;
                    if let Some(v) = cache.get(&k) {
                        assert_eq!(v >> 32, k, "value of another key returned");
                    }
                }
            });
        }
    });
    assert!(
        cache.len() <= 64,
        "bound restored once quiescent: {}",
        cache.len()
    );
    assert_eq!(cache.iter().count(), cache.len());
}

/// A value that counts its own creations (clones included) and drops.
struct Counted {
    drops: Arc<AtomicUsize>,
    created: Arc<AtomicUsize>,
}

impl Counted {
    fn new(drops: &Arc<AtomicUsize>, created: &Arc<AtomicUsize>) -> Self {
        created.fetch_add(1, Ordering::Relaxed);
        Counted {
            drops: Arc::clone(drops),
            created: Arc::clone(created),
        }
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted::new(&self.drops, &self.created)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// Waits (up to 20 s) for the epoch collector to free what a dropped cache retired; true once
/// `drops` has caught up with `created`.
fn settle(drops: &AtomicUsize, created: &AtomicUsize) -> bool {
    common::flush_until(|| drops.load(Ordering::Relaxed) >= created.load(Ordering::Relaxed))
}

/// Runs `body` with fresh creation and drop counters (it builds and drops its own cache), then
/// checks that every value created was dropped exactly once.
fn assert_every_value_dropped_once(body: impl FnOnce(&Arc<AtomicUsize>, &Arc<AtomicUsize>)) {
    let drops = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    body(&drops, &created);
    assert!(settle(&drops, &created), "values leaked");
    assert_eq!(
        drops.load(Ordering::Relaxed),
        created.load(Ordering::Relaxed)
    );
}

#[test]
fn every_value_is_dropped_exactly_once() {
    assert_every_value_dropped_once(|drops, created| {
        let cache = Cache::<u64, Counted>::new(100);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let cache = &cache;
                s.spawn(move || {
                    for i in 0..20_000u64 {
                        let k = (i * 13 + t) % 500;
                        match i % 5 {
                            0 => drop(cache.remove(&k)),
                            1 => drop(cache.get(&k)),
                            _ => cache.insert(k, Counted::new(drops, created)),
                        }
                    }
                });
            }
        });
    });
}

#[test]
fn cache_copies_are_dropped_exactly_once() {
    // Without `remove` (which hands out clones), every drop is one of the cache's own copies.
    let drops = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let per_thread = 30_000u64;
    {
        let cache = Cache::<u64, Counted>::new(200);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let cache = &cache;
                let (drops, created) = (&drops, &created);
                s.spawn(move || {
                    for i in 0..per_thread {
                        cache.insert((i * 31 + t) % 1000, Counted::new(drops, created));
                    }
                });
            }
        });
    }
    let expected = (THREADS * per_thread) as usize;
    assert_eq!(
        created.load(Ordering::Relaxed),
        expected,
        "the cache never clones a value"
    );
    assert!(settle(&drops, &created), "values leaked");
    assert_eq!(
        drops.load(Ordering::Relaxed),
        expected,
        "every inserted value dropped once"
    );
}

/// A weighted cache sized for 16 entries but with room for 2,000: its main ring grows while
/// writers race, and every value still leaves exactly once (a slot taken twice or a segment
/// lost would show as a double drop or a leak).
#[test]
fn a_growing_main_ring_drops_every_value_once() {
    assert_every_value_dropped_once(|drops, created| {
        let cache: Cache<u64, Counted> = Cache::builder()
            .max_weight(2_000)
            .weigher(|_, _| 1)
            .initial_capacity(16)
            .build();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let cache = &cache;
                s.spawn(move || {
                    for i in 0..20_000u64 {
                        let k = (i * 7 + t * 1_000) % 3_000;
                        if i % 7 == 0 {
                            drop(cache.get(&k));
                        } else {
                            cache.insert(k, Counted::new(drops, created));
                        }
                    }
                });
            }
        });
        assert!(cache.weighted_size() <= 2_000);
        assert!(
            cache.len() >= 1_500,
            "only {} entries: the ring did not grow",
            cache.len()
        );
    });
}
