//! Every public operation of the engine, single-threaded: what each returns and what it leaves
//! behind. Guards against API regressions that the concurrent tests would only see as noise.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_engine::{Cache, EvictionCause, InsertError};

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
