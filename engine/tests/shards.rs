//! Caches large enough to be split into eviction shards (see the crate docs, "Shards"): the
//! bounds hold for the cache as a whole after every write, the shards fill evenly, and every
//! removal path (remove, retain, clear, expiry, eviction) uncounts its entry from the shard that
//! counted it, so `len` stays exact.

use std::time::Duration;

use strata_engine::{Cache, Clock, InsertError};

mod common;
use common::xorshift;

fn shards_of<K, V, S>(cache: &Cache<K, V, S>) -> usize {
    let debug = format!("{cache:?}");
    let count = debug
        .split("shards: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok());
    count.unwrap_or_else(|| panic!("no shard count in {debug}"))
}

#[test]
fn small_caches_keep_one_shard_and_large_ones_split() {
    assert_eq!(shards_of(&Cache::<u64, u64>::new(1000)), 1);
    assert_eq!(shards_of(&Cache::<u64, u64>::new(8191)), 1);
    assert_eq!(shards_of(&Cache::<u64, u64>::new(100_000)), 16);
    assert_eq!(shards_of(&Cache::<u64, u64>::new(10_000_000)), 64);
    // A weighted cache splits its weight: 16 shards by default (each holds four entries of the
    // default limit, a 64th of the weight), one if an entry may weigh the whole capacity.
    let weighted: Cache<u64, u64> = Cache::builder()
        .max_weight(1 << 30)
        .weigher(|_, _| 1)
        .build();
    assert_eq!(shards_of(&weighted), 16);
    let whole: Cache<u64, u64> = Cache::builder()
        .max_weight(1 << 30)
        .max_entry_weight(1 << 30)
        .weigher(|_, _| 1)
        .build();
    assert_eq!(shards_of(&whole), 1);
}

#[test]
fn the_count_bound_holds_for_the_whole_cache_after_every_insert() {
    let cache = Cache::<u64, u64>::new(100_000);
    let mut state = 7u64;
    for i in 0..400_000u64 {
        cache.insert(xorshift(&mut state), i);
        assert!(
            cache.len() <= 100_000,
            "len {} after insert {i}",
            cache.len()
        );
    }
    // Every shard is full, give or take the entries a shard evicts ahead of the others.
    assert!(cache.len() >= 99_000, "len {}", cache.len());
    let stats = cache.stats();
    assert_eq!(stats.evictions, 400_000 - cache.len() as u64);
    assert_eq!(stats.entries, cache.len() as u64);
}

#[test]
fn every_removal_uncounts_its_entry() {
    let (clock, time) = Clock::mock();
    let cache: Cache<u64, u64> = Cache::builder().max_capacity(100_000).clock(clock).build();
    assert_eq!(shards_of(&cache), 16);
    for k in 0..50_000u64 {
        if k % 5 == 0 {
            cache.insert_with_ttl(k, k, Duration::from_secs(1));
        } else {
            cache.insert(k, k);
        }
    }
    assert_eq!(cache.len(), 50_000);
    // Remove every third key, keep the odd ones, expire the TTL'd ones.
    let removed = (0..50_000u64)
        .step_by(3)
        .filter(|k| cache.remove(k).is_some())
        .count();
    assert_eq!(removed, 16_667);
    cache.retain(|k, _| k % 2 == 1);
    time.advance(Duration::from_secs(2));
    let expired = cache.run_pending_maintenance();
    let expected = (0..50_000u64)
        .filter(|k| k % 3 != 0 && k % 2 == 1 && k % 5 != 0)
        .count();
    assert!(expired > 0);
    assert_eq!(cache.len(), expected);
    assert_eq!(cache.iter().count(), expected);
    cache.clear();
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.weighted_size(), 0);
    // Counting from zero again, the bound still holds: no shard was left with a stale count.
    let mut state = 11u64;
    for i in 0..300_000u64 {
        cache.insert(xorshift(&mut state), i);
    }
    assert!(
        (99_000..=100_000).contains(&cache.len()),
        "len {}",
        cache.len()
    );
}

#[test]
fn a_weighted_cache_splits_by_its_entry_limit_and_keeps_its_bound() {
    let cache: Cache<u64, u64> = Cache::builder()
        .max_weight(1 << 20)
        .max_entry_weight(64)
        .weigher(|_, value| *value as u32)
        .build();
    // Each shard must keep 4,096 units of weight (and four of the heaviest entries): 64 shards
    // would leave 16,384 each.
    assert_eq!(shards_of(&cache), 64);
    let mut state = 3u64;
    for _ in 0..200_000u64 {
        let key = xorshift(&mut state);
        cache.insert(key, key % 64 + 1);
        assert!(
            cache.weighted_size() <= 1 << 20,
            "weight {}",
            cache.weighted_size()
        );
    }
    assert!(
        cache.weighted_size() >= (1 << 20) - 64 * 64 * 2,
        "weight {} in {} entries",
        cache.weighted_size(),
        cache.len()
    );
    assert!(
        cache.try_insert(1, 64).is_ok(),
        "the heaviest admitted entry fits a shard"
    );
    assert!(matches!(
        cache.try_insert(2, 65),
        Err(InsertError::TooHeavy {
            weight: 65,
            limit: 64
        })
    ));
}

#[test]
fn threads_writing_every_shard_keep_the_bound() {
    let cache = Cache::<u64, u64>::new(50_000);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let cache = &cache;
            s.spawn(move || {
                let mut state = 0x9E37_79B9 + t;
                for i in 0..100_000u64 {
                    let key = xorshift(&mut state);
                    if i % 4 == 0 {
                        let _ = cache.remove(&(key ^ 1));
                    }
                    cache.insert(key, i);
                }
            });
        }
    });
    assert!(cache.len() <= 50_000, "len {}", cache.len());
    assert_eq!(cache.iter().count(), cache.len());
}
