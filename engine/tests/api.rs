//! Every public operation of the engine, single-threaded: what each returns and what it leaves
//! behind. Guards against API regressions that the concurrent tests would only see as noise.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_engine::{Cache, CacheStats, Clock, EvictionCause, InsertError};

// The tests of issue 13's additions live beside this file, in `api/`.
#[path = "api/guard.rs"]
mod guard;
#[path = "api/loads.rs"]
mod loads;
#[path = "api/support.rs"]
mod support;

#[global_allocator]
static ALLOCATOR: support::CountingAlloc = support::CountingAlloc;

#[test]
fn insert_get_replace_remove() {
    let cache = Cache::<u64, u64>::new(100);
    assert!(cache.is_empty());
    assert_eq!(cache.get(&1), None);
    cache.insert(1, 10);
    assert_eq!(cache.get(&1), Some(10));
    assert!(cache.contains_key(&1));
    assert_eq!(cache.len(), 1);
    cache.insert(1, 11);
    assert_eq!(cache.get(&1), Some(11), "a replace is visible at once");
    assert_eq!(cache.len(), 1, "a replace does not add an entry");
    assert_eq!(cache.remove(&1), Some(11));
    assert_eq!(cache.remove(&1), None);
    assert_eq!(cache.get(&1), None);
    assert!(!cache.contains_key(&1));
    assert!(cache.is_empty());
}

#[test]
fn borrowed_lookups_work_for_string_keys() {
    let cache = Cache::<String, Arc<str>>::new(10);
    cache.insert("alpha".to_string(), Arc::from("a"));
    assert_eq!(cache.get("alpha").as_deref(), Some("a"));
    assert!(cache.contains_key("alpha"));
    assert_eq!(cache.remove("alpha").as_deref(), Some("a"));
}

#[test]
fn many_keys_share_buckets_without_losing_any() {
    // 1 bucket: every key collides, exercising chains of many nodes.
    let cache: Cache<u64, u64> = Cache::builder().initial_capacity(1).build();
    for k in 0..200 {
        cache.insert(k, k * 2);
    }
    for k in (0..200).step_by(3) {
        assert_eq!(cache.remove(&k), Some(k * 2));
    }
    for k in 0..200 {
        let expected = (k % 3 != 0).then_some(k * 2);
        assert_eq!(cache.get(&k), expected, "key {k}");
    }
    assert_eq!(cache.len(), 200 - 67);
}

#[test]
fn clear_retain_and_iter() {
    let cache = Cache::<u64, u64>::new(1000);
    for k in 0..100 {
        cache.insert(k, k);
    }
    let mut seen: Vec<u64> = cache
        .iter()
        .map(|(k, v)| {
            assert_eq!(k, v);
            k
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..100).collect::<Vec<_>>(),
        "iter yields every entry once"
    );

    cache.retain(|k, _| k % 2 == 0);
    assert_eq!(cache.len(), 50);
    assert!(cache.iter().all(|(k, _)| k % 2 == 0));
    assert_eq!(cache.get(&3), None);
    assert_eq!(cache.get(&4), Some(4));

    cache.clear();
    assert!(cache.is_empty());
    assert_eq!(cache.iter().count(), 0);
    cache.insert(7, 7);
    assert_eq!(cache.get(&7), Some(7), "usable after clear");
}

#[test]
fn stats_count_hits_misses_and_inserts() {
    let cache = Cache::<u64, u64>::new(10);
    cache.insert(1, 1);
    cache.get(&1);
    cache.get(&1);
    cache.get(&2);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.inserts), (2, 1, 1));
    assert_eq!(stats.entries, 1);
    assert_eq!(stats.weight, 1);
    assert!((stats.hit_ratio() - 2.0 / 3.0).abs() < 1e-9);
}

/// Each thread remembers the counter block of the cache it counted in last: alternating between
/// caches, on several threads, and a new cache after a dropped one must still count each event
/// once, in the cache it happened in.
#[test]
fn stats_stay_exact_per_cache_across_threads_and_alternating_caches() {
    let shared = Cache::<u64, u64>::new(10);
    shared.insert(1, 1);
    let threads = 4;
    let rounds = 1_000u64;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let own = Cache::<u64, u64>::new(10);
                own.insert(1, 1);
                for _ in 0..rounds {
                    shared.get(&1); // hit in `shared`
                    own.get(&2); // miss in `own`
                    shared.get(&3); // miss in `shared`
                    own.get(&1); // hit in `own`
                    own.get(&1);
                }
                let stats = own.stats();
                assert_eq!((stats.hits, stats.misses), (2 * rounds, rounds));
            });
        }
    });
    let stats = shared.stats();
    assert_eq!(
        (stats.hits, stats.misses),
        (threads * rounds, threads * rounds)
    );

    for generation in 0..3u64 {
        let cache = Cache::<u64, u64>::new(10);
        assert_eq!(
            cache.stats().hits,
            0,
            "generation {generation} starts at zero"
        );
        cache.insert(1, 1);
        for _ in 0..=generation {
            cache.get(&1);
        }
        assert_eq!(cache.stats().hits, generation + 1);
    }
}

#[test]
fn weigher_bounds_total_weight_and_rejects_heavy_entries() {
    let cache: Cache<u64, Vec<u8>> = Cache::builder()
        .max_weight(1000)
        .weigher(|_, v: &Vec<u8>| v.len() as u32)
        .max_entry_weight(300)
        .build();
    assert_eq!(
        cache.try_insert(1, vec![0; 301]),
        Err(InsertError::TooHeavy {
            weight: 301,
            limit: 300
        })
    );
    assert_eq!(cache.get(&1), None, "a rejected entry is not written");
    cache.insert(1, vec![0; 10]);
    cache.insert(1, vec![0; 400]); // rejected: the old value must survive
    assert_eq!(cache.get(&1).map(|v| v.len()), Some(10));
    assert_eq!(cache.stats().rejections, 2);

    for k in 0..100 {
        cache.insert(k, vec![0; 100]);
        assert!(
            cache.weighted_size() <= 1000,
            "weight {} over bound",
            cache.weighted_size()
        );
    }
    assert!(cache.len() <= 10);
    let error = cache.try_insert(5, vec![0; 999]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "entry weighs 999, above the limit of 300 per entry"
    );
}

#[test]
fn listener_hears_every_cause() {
    let (clock, mock) = strata_engine::Clock::mock();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(5)
        .clock(clock)
        .eviction_listener(move |k, v, cause| sink.lock().unwrap().push((*k, *v, cause)))
        .build();
    cache.insert(1, 1);
    cache.insert(1, 2);
    cache.remove(&1);
    cache.insert_with_ttl(2, 2, Duration::from_millis(10));
    mock.advance(Duration::from_millis(20));
    assert_eq!(cache.get(&2), None);
    for k in 10..20 {
        cache.insert(k, k);
    }
    let heard = heard.lock().unwrap();
    assert_eq!(heard[0], (1, 1, EvictionCause::Replaced));
    assert_eq!(heard[1], (1, 2, EvictionCause::Removed));
    assert_eq!(heard[2], (2, 2, EvictionCause::Expired));
    let evicted = heard
        .iter()
        .filter(|e| e.2 == EvictionCause::Evicted)
        .count();
    assert_eq!(evicted, 5, "10 inserts into 5 slots evict 5: {heard:?}");
    assert!(EvictionCause::Evicted.was_evicted() && !EvictionCause::Removed.was_evicted());
}

#[test]
fn clones_share_one_cache() {
    let a = Cache::<u64, u64>::new(10);
    let b = a.clone();
    a.insert(1, 1);
    assert_eq!(b.get(&1), Some(1));
    assert!(format!("{a:?}").contains("entries: 1"));
}

#[test]
fn zero_capacity_keeps_nothing() {
    let cache = Cache::<u64, u64>::new(0);
    cache.insert(1, 1);
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.get(&1), None);
}

#[test]
fn loaders_fill_misses_and_keep_hits() {
    let cache = Cache::<u64, u64>::new(10);
    assert_eq!(cache.get_or_insert_with(1, || 10), 10);
    assert_eq!(
        cache.get_or_insert_with(1, || unreachable!("a hit runs no loader")),
        10
    );
    assert_eq!(
        cache.try_get_or_insert_with(2, || Err::<u64, &str>("down")),
        Err(std::sync::Arc::new("down"))
    );
    assert_eq!(cache.get(&2), None, "a failed load caches nothing");
    assert_eq!(
        cache.try_get_or_insert_with(2, || Ok::<_, &str>(20)),
        Ok(20)
    );
    // A value too heavy to store is still returned, and not cached.
    let light = Cache::<u64, u64>::builder()
        .max_weight(100)
        .weigher(|_, v: &u64| *v as u32)
        .max_entry_weight(10)
        .build();
    assert_eq!(light.get_or_insert_with(3, || 50), 50);
    assert_eq!(light.get(&3), None);
    assert_eq!(cache.get(&2), Some(20));
}

/// `peek` reads like `get` but leaves no trace: no hit or miss counted, and the entry is not
/// marked as used, so it is evicted as if never read (S3-FIFO evicts an unread new entry when
/// the small queue's head reaches it, and keeps a read one).
#[test]
fn peek_counts_nothing_and_does_not_keep_an_entry_from_eviction() {
    for read_with_get in [false, true] {
        // A small-queue ring with room to spare, so that no entry leaves it before the cache is
        // full (a full ring passes its head on to main, read or not).
        let cache: Cache<u64, u64> = Cache::builder()
            .max_capacity(100)
            .initial_capacity(1000)
            .build();
        cache.insert(0, 0);
        for _ in 0..3 {
            let value = if read_with_get {
                cache.get(&0)
            } else {
                cache.peek(&0)
            };
            assert_eq!(value, Some(0));
        }
        for k in 1..=200 {
            cache.insert(k, k);
        }
        assert_eq!(
            cache.contains_key(&0),
            read_with_get,
            "read with get: {read_with_get}"
        );
    }
    let cache = Cache::<u64, u64>::new(10);
    cache.insert(1, 1);
    assert_eq!(cache.peek(&1), Some(1));
    assert_eq!(cache.peek(&2), None);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (0, 0), "peek counted a read");
}

#[test]
fn peek_does_not_return_an_expired_entry() {
    let (clock, mock) = Clock::mock();
    let cache: Cache<u64, u64> = Cache::builder().max_capacity(10).clock(clock).build();
    cache.insert_with_ttl(1, 1, Duration::from_millis(10));
    assert_eq!(cache.peek(&1), Some(1));
    mock.advance(Duration::from_millis(20));
    assert_eq!(cache.peek(&1), None);
}

#[test]
fn insert_if_absent_keeps_a_live_entry_and_replaces_an_expired_one() {
    let (clock, mock) = Clock::mock();
    let cache: Cache<u64, u64> = Cache::builder().max_capacity(10).clock(clock).build();
    assert!(cache.insert_if_absent(1, 10), "inserts into an empty key");
    assert!(!cache.insert_if_absent(1, 11), "reports a kept entry");
    assert_eq!(cache.get(&1), Some(10), "kept the live value");
    assert_eq!(cache.try_insert_if_absent(1, 12), Ok(false));
    assert_eq!(cache.get(&1), Some(10));

    cache.insert_with_ttl(2, 20, Duration::from_millis(10));
    mock.advance(Duration::from_millis(20));
    assert!(
        cache.insert_if_absent(2, 21),
        "an expired entry counts as absent"
    );
    assert_eq!(cache.get(&2), Some(21));
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.stats().inserts, 3, "a kept entry is not an insert");

    let light = Cache::<u64, u64>::builder()
        .max_weight(100)
        .weigher(|_, v: &u64| *v as u32)
        .max_entry_weight(10)
        .build();
    assert_eq!(
        light.try_insert_if_absent(1, 50),
        Err(InsertError::TooHeavy {
            weight: 50,
            limit: 10
        })
    );
    assert!(!light.insert_if_absent(1, 50));
    assert_eq!(light.get(&1), None);
}

#[test]
fn keys_yields_each_live_key_once() {
    let (clock, mock) = Clock::mock();
    let cache: Cache<String, Vec<u8>> = Cache::builder()
        .max_capacity(1000)
        .initial_capacity(8) // several keys per bucket
        .clock(clock)
        .build();
    for k in 0..50 {
        cache.insert(format!("k{k}"), vec![0; 4]);
    }
    cache.insert_with_ttl("short".to_string(), Vec::new(), Duration::from_millis(5));
    cache.remove("k7");
    mock.advance(Duration::from_millis(10));
    let mut keys: Vec<String> = cache.keys().collect();
    keys.sort();
    let mut expected: Vec<String> = (0..50)
        .filter(|k| *k != 7)
        .map(|k| format!("k{k}"))
        .collect();
    expected.sort();
    assert_eq!(keys, expected, "no removed or expired key, none twice");
}

#[test]
fn moka_aliases_do_what_their_originals_do() {
    let (clock, mock) = Clock::mock();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(100)
        .clock(clock)
        .eviction_listener(move |k, _, cause| sink.lock().unwrap().push((*k, cause)))
        .build();
    for k in 0..10 {
        cache.insert(k, k);
    }
    assert_eq!(cache.entry_count(), 10);
    cache.invalidate(&3);
    cache.invalidate(&3); // absent: nothing happens
    assert_eq!(cache.get(&3), None);
    assert_eq!(cache.entry_count(), 9);
    assert_eq!(
        heard.lock().unwrap().as_slice(),
        &[(3, EvictionCause::Removed)]
    );

    cache.insert_with_ttl(20, 20, Duration::from_millis(5));
    mock.advance(Duration::from_millis(10));
    assert_eq!(
        cache.entry_count(),
        10,
        "the expired entry is not reclaimed yet"
    );
    cache.run_pending_tasks();
    assert_eq!(
        cache.entry_count(),
        9,
        "run_pending_tasks reclaims expired entries"
    );
    assert_eq!(
        heard.lock().unwrap().last(),
        Some(&(20, EvictionCause::Expired))
    );

    cache.invalidate_all();
    assert_eq!(cache.entry_count(), 0);
    assert!(cache.is_empty());
}

/// `CacheStats` is `#[non_exhaustive]`: built from `default()` and its public fields.
#[test]
fn cache_stats_build_from_default() {
    let mut stats = CacheStats::default();
    stats.hits = 3;
    stats.misses = 1;
    assert!((stats.hit_ratio() - 0.75).abs() < 1e-9);
}

/// Of concurrent `insert_if_absent` calls for one absent key, exactly one inserts, and the key
/// ends with that call's value.
#[test]
fn concurrent_insert_if_absent_inserts_exactly_once() {
    const THREADS: u64 = 4;
    const KEYS: u64 = 2_000;
    let cache = Cache::<u64, u64>::new(10 * KEYS);
    let barrier = std::sync::Barrier::new(THREADS as usize);
    let won: Vec<Vec<u64>> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|id| {
                let (cache, barrier) = (&cache, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    (0..KEYS)
                        .filter(|&k| cache.insert_if_absent(k, id))
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut winners = vec![Vec::new(); KEYS as usize];
    for (id, keys) in won.iter().enumerate() {
        for &k in keys {
            winners[k as usize].push(id as u64);
        }
    }
    for (k, ids) in winners.iter().enumerate() {
        assert_eq!(ids.len(), 1, "key {k} inserted by {ids:?}");
        assert_eq!(cache.get(&(k as u64)), Some(ids[0]), "key {k}");
    }
}
