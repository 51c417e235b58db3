//! Regression tests for the defects of the engine review (issue 13): tables that never grew, the
//! weight bound a lone `max_capacity` did not enforce with a weigher, panicking listeners and
//! weighers, and removed values held until the queues reached them.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use strata_engine::{Cache, EvictionCause};

/// The bucket count a cache's `Debug` output reports.
fn buckets_of<K, V, S>(cache: &Cache<K, V, S>) -> usize {
    let debug = format!("{cache:?}");
    let field = debug
        .split("buckets: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no bucket count in {debug}"));
    field
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no bucket count in {debug}"))
}

/// A value that counts its drops, to see when the cache lets go of it.
struct Counted {
    drops: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs the epoch collector (this thread's deferred work, then collection) until `done` holds,
/// at most `rounds` times and 10 s. Returns whether it came to hold. (Other tests of this binary
/// pin the same global epoch, so collection may need a few tries and a little time.)
fn collect_until(rounds: usize, done: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for _ in 0..rounds {
        if done() || std::time::Instant::now() > deadline {
            break;
        }
        crossbeam_epoch::pin().flush();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    done()
}

#[test]
fn a_weight_bounded_table_grows_with_its_entries() {
    let cache: Cache<u64, u64> = Cache::builder()
        .max_weight(1 << 40)
        .weigher(|_, _| 1)
        .build();
    let start = buckets_of(&cache);
    for key in 0..200_000u64 {
        cache.insert(key, key);
    }
    assert_eq!(cache.len(), 200_000);
    // Before: 1,024 buckets for good, chains of ~200 entries. Now about one entry per bucket
    // (the load bound), give or take the growth that the last inserts trigger.
    let buckets = buckets_of(&cache);
    assert!(
        buckets >= 200_000 / 4,
        "{start} buckets grew only to {buckets}"
    );
    for key in (0..200_000u64).step_by(997) {
        assert_eq!(cache.get(&key), Some(key));
    }
}

#[test]
fn an_unbounded_table_grows_while_threads_insert() {
    let cache: Cache<u64, u64> = Cache::builder().build();
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..50_000u64 {
                    let key = t * 1_000_000 + i;
                    cache.insert(key, key);
                    assert_eq!(cache.get(&key), Some(key));
                }
            });
        }
    });
    assert_eq!(cache.len(), 100_000);
    assert!(buckets_of(&cache) >= 100_000 / 4);
    let mut seen = 0;
    for (key, value) in cache.iter() {
        assert_eq!(key, value);
        seen += 1;
    }
    assert_eq!(seen, 100_000, "iteration sees every entry once");
}

#[test]
fn iteration_during_growth_sees_every_stable_entry_exactly_once() {
    let cache: Cache<u64, u64> = Cache::builder().initial_capacity(16).build();
    for key in 0..5_000u64 {
        cache.insert(key, key);
    }
    let mut seen: HashMap<u64, usize> = HashMap::new();
    std::thread::scope(|s| {
        let writer = &cache;
        s.spawn(move || {
            // New keys only: the table doubles several times under the iteration.
            for key in 1_000_000..1_100_000u64 {
                writer.insert(key, key);
            }
        });
        for (key, _) in cache.iter() {
            *seen.entry(key).or_default() += 1;
        }
    });
    for key in 0..5_000u64 {
        assert_eq!(seen.get(&key), Some(&1), "key {key}");
    }
    assert!(seen.values().all(|&n| n == 1), "no key seen twice");
}

#[test]
fn a_lone_max_capacity_with_a_weigher_bounds_the_weight() {
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(1_000)
        .weigher(|_, value: &u64| *value as u32)
        .build();
    for key in 0..200u64 {
        cache.insert(key, 10);
        assert!(cache.weighted_size() <= 1_000, "{}", cache.weighted_size());
    }
    // Before: a count bound of 1,000, so all 200 entries (weight 2,000) stayed.
    assert!(cache.len() <= 100, "{} entries", cache.len());
}

#[test]
fn a_panicking_listener_is_caught_counted_and_disabled_and_nothing_leaks() {
    let drops = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let cache: Cache<u64, Counted> = Cache::builder()
        .max_capacity(10)
        .eviction_listener(move |_, _, _| {
            counted.fetch_add(1, Ordering::SeqCst);
            panic!("listener bug");
        })
        .build();
    for key in 0..100u64 {
        // Before: the first eviction's panic reached this caller, and left the popped node in
        // no queue (leaked, value included) and the shard over its bound.
        cache.insert(
            key,
            Counted {
                drops: Arc::clone(&drops),
            },
        );
        assert!(cache.len() <= 10, "{} entries after {key}", cache.len());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "disabled after its panic");
    assert_eq!(cache.stats().listener_panics, 1);
    // A replacement would have called it too.
    cache.insert(
        0,
        Counted {
            drops: Arc::clone(&drops),
        },
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    drop(cache);
    assert!(
        collect_until(1_000, || drops.load(Ordering::SeqCst) == 101),
        "{} of 101 values dropped",
        drops.load(Ordering::SeqCst)
    );
}

#[test]
fn a_panicking_weigher_reaches_its_caller_and_runs_once_per_insert() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let cache: Cache<u64, u64> = Cache::builder()
        .max_weight(100)
        .max_entry_weight(10)
        .weigher(move |_, value: &u64| {
            counted.fetch_add(1, Ordering::SeqCst);
            assert!(*value != 13, "weigher bug");
            (*value % 10) as u32 + 1
        })
        .build();
    for key in 0..1_000u64 {
        cache.insert(key, key % 10);
    }
    // Before: the weigher also ran for every entry that left (evicted or replaced), and a panic
    // there unwound out of an eviction with a node popped and in no queue.
    assert_eq!(calls.load(Ordering::SeqCst), 1_000, "once per insert");
    let before = cache.len();
    let panicked = catch_unwind(AssertUnwindSafe(|| cache.insert(5_000, 13)));
    assert!(panicked.is_err(), "the panic reaches the inserting caller");
    assert_eq!(cache.get(&5_000), None, "nothing stored");
    assert_eq!(cache.len(), before);
    assert!(cache.weighted_size() <= 100);
    cache.insert(5_001, 3);
    assert_eq!(cache.get(&5_001), Some(3), "the cache goes on working");
}

#[test]
fn clear_releases_every_value_without_further_writes() {
    let drops = Arc::new(AtomicUsize::new(0));
    let cache: Cache<u64, Counted> = Cache::new(10_000);
    for key in 0..1_000u64 {
        cache.insert(
            key,
            Counted {
                drops: Arc::clone(&drops),
            },
        );
    }
    cache.clear();
    assert!(cache.is_empty());
    // Before: every value stayed allocated, held by the queues, until the cache was dropped.
    assert!(
        collect_until(1_000, || drops.load(Ordering::SeqCst) == 1_000),
        "{} of 1000 values released after clear",
        drops.load(Ordering::SeqCst)
    );
    // The queues still hold the shells; dropping the cache frees them without dropping a value
    // twice.
    drop(cache);
    collect_until(20, || false);
    assert_eq!(drops.load(Ordering::SeqCst), 1_000);
}

#[test]
fn remove_and_replace_release_the_old_value_promptly() {
    let drops = Arc::new(AtomicUsize::new(0));
    let cache: Cache<u64, Arc<Counted>> = Cache::new(10_000);
    let value = || {
        Arc::new(Counted {
            drops: Arc::clone(&drops),
        })
    };
    for key in 0..100u64 {
        cache.insert(key, value());
    }
    for key in 0..50u64 {
        cache.remove(&key);
    }
    for key in 50..100u64 {
        cache.insert(key, value());
    }
    // 50 removed and 50 replaced values, all still queued: released within a few epochs.
    assert!(
        collect_until(1_000, || drops.load(Ordering::SeqCst) == 100),
        "{} of 100 released",
        drops.load(Ordering::SeqCst)
    );
    drop(cache);
    assert!(collect_until(1_000, || drops.load(Ordering::SeqCst) == 150));
}

#[test]
fn retain_tells_the_listener_once_per_removed_entry() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(10_000)
        .eviction_listener(move |key, _, cause| log.lock().unwrap().push((*key, cause)))
        .build();
    for key in 0..1_000u64 {
        cache.insert(key, key);
    }
    cache.retain(|key, _| key % 2 == 0);
    let mut removed = seen.lock().unwrap().clone();
    removed.sort_unstable_by_key(|(key, _)| *key);
    let expected: Vec<_> = (0..1_000u64)
        .filter(|k| k % 2 == 1)
        .map(|k| (k, EvictionCause::Removed))
        .collect();
    assert_eq!(removed, expected);
    assert_eq!(cache.len(), 500);
}

#[test]
fn time_to_idle_expires_entries_not_read_and_spares_those_read() {
    use std::time::Duration;
    let (clock, mock) = strata_engine::Clock::mock();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(100)
        .time_to_idle(Duration::from_millis(100))
        .time_to_live(Duration::from_millis(1_000))
        .clock(clock)
        .build();
    cache.insert(1, 1);
    cache.insert(2, 2);
    for _ in 0..5 {
        mock.advance(Duration::from_millis(60));
        assert_eq!(
            cache.get(&1),
            Some(1),
            "read every 60 ms: never idle for 100"
        );
    }
    assert_eq!(
        cache.peek_or_none(&2),
        None,
        "not read for 300 ms: idled out"
    );
    let left = cache.time_to_live_of(&1).flatten().expect("a live entry");
    assert!(
        left <= Duration::from_millis(100) && left >= Duration::from_millis(90),
        "{left:?}"
    );
    // The time to live still ends it, read or not.
    for _ in 0..20 {
        mock.advance(Duration::from_millis(60));
        cache.get(&1);
    }
    assert_eq!(cache.get(&1), None, "past its time to live");
    assert_eq!(cache.stats().expirations, 2);
}

/// `contains_key` does not count as a read for the time to idle.
trait PeekOrNone {
    fn peek_or_none(&self, key: &u64) -> Option<u64>;
}

impl PeekOrNone for Cache<u64, u64> {
    fn peek_or_none(&self, key: &u64) -> Option<u64> {
        self.contains_key(key).then_some(*key)
    }
}

#[test]
fn a_read_that_meets_an_expired_entry_removes_and_reports_it_and_len_counts_it_until_then() {
    use std::time::Duration;
    let (clock, mock) = strata_engine::Clock::mock();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(100)
        .time_to_live(Duration::from_millis(10))
        .eviction_listener(move |key, _, cause| log.lock().unwrap().push((*key, cause)))
        .clock(clock)
        .build();
    cache.insert(1, 1);
    cache.insert(2, 2);
    mock.advance(Duration::from_millis(20));
    assert_eq!(cache.len(), 2, "expired but not reclaimed: still counted");
    assert_eq!(cache.get(&1), None);
    assert_eq!(*seen.lock().unwrap(), vec![(1, EvictionCause::Expired)]);
    assert_eq!(cache.len(), 1, "the read removed it");
    assert!(!cache.contains_key(&2));
    assert_eq!(cache.len(), 0, "contains_key removes what it meets too");
    assert_eq!(cache.stats().expirations, 2);
    assert_eq!(cache.stats().hits, 0);
}
