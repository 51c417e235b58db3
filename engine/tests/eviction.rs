//! Capacity bounds and the S3-FIFO policy as seen from outside: the count bound holds after every
//! write, frequently read keys survive a scan of one-hit wonders, and evicted keys the ghost
//! remembers come back straight into the main queue.

use strata_engine::Cache;

#[test]
fn count_bound_holds_after_every_insert() {
    let cache = Cache::<u64, u64>::new(100);
    for k in 0..10_000 {
        cache.insert(k, k);
        assert!(
            cache.len() <= 100,
            "len {} after inserting {k}",
            cache.len()
        );
    }
    assert_eq!(cache.len(), 100, "a full cache stays full");
    let stats = cache.stats();
    assert_eq!(stats.evictions, 10_000 - 100);
}

#[test]
fn hot_keys_survive_a_scan() {
    let cache = Cache::<u64, u64>::new(1000);
    let hot: Vec<u64> = (0..500).collect();
    for &k in &hot {
        cache.insert(k, k);
    }
    for _ in 0..3 {
        for &k in &hot {
            assert_eq!(cache.get(&k), Some(k));
        }
    }
    // A scan of 20x the capacity, each key read once.
    for k in 1_000_000..1_020_000 {
        if cache.get(&k).is_none() {
            cache.insert(k, k);
        }
    }
    let survivors = hot.iter().filter(|k| cache.get(k).is_some()).count();
    assert!(
        survivors >= 450,
        "only {survivors} of 500 hot keys survived the scan"
    );
}

#[test]
fn zipf_like_workload_beats_fifo_share() {
    // Keys 0..10_000 with frequency ~ 1/rank; a cache of 10% should hit far above 10%.
    let cache = Cache::<u64, u64>::new(1000);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut hits = 0u64;
    let total = 200_000u64;
    for _ in 0..total {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Inverse-power sampling: rank = floor(N^u) gives a ~1/rank law.
        let u = (state >> 11) as f64 / (1u64 << 53) as f64;
        let key = (10_000f64.powf(u)) as u64;
        if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.insert(key, key);
        }
    }
    let ratio = hits as f64 / total as f64;
    assert!(ratio > 0.6, "hit ratio {ratio:.3}");
}

#[test]
fn weight_and_count_bounds_hold_together() {
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(50)
        .max_weight(400)
        .weigher(|k, _| (*k % 20) as u32 + 1)
        .build();
    for k in 0..5_000 {
        cache.insert(k, k);
        assert!(cache.len() <= 50);
        assert!(cache.weighted_size() <= 400);
    }
}
