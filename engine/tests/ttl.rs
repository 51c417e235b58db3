//! Time to live on a mocked clock: an expired entry must never be returned, expiry must not be
//! late, and expired entries must be reclaimed lazily and by explicit maintenance.

use std::time::Duration;

use strata_engine::{Cache, Clock};

fn cache_with_mock(ttl: Option<Duration>) -> (Cache<u64, u64>, strata_engine::MockClock) {
    let (clock, mock) = Clock::mock();
    let mut builder = Cache::builder().max_capacity(1000).clock(clock);
    if let Some(ttl) = ttl {
        builder = builder.time_to_live(ttl);
    }
    (builder.build(), mock)
}

#[test]
fn default_ttl_expires_entries() {
    let (cache, mock) = cache_with_mock(Some(Duration::from_secs(10)));
    cache.insert(1, 1);
    mock.advance(Duration::from_millis(9_998));
    assert_eq!(cache.get(&1), Some(1));
    mock.advance(Duration::from_millis(2));
    assert_eq!(cache.get(&1), None, "expired exactly at its TTL");
    assert!(!cache.contains_key(&1));
    assert_eq!(cache.len(), 0, "a read reclaims the expired entry");
    assert_eq!(cache.stats().expirations, 1);
}

#[test]
fn per_entry_ttl_overrides_default() {
    let (cache, mock) = cache_with_mock(Some(Duration::from_secs(60)));
    cache.insert_with_ttl(1, 1, Duration::from_secs(1));
    cache.insert(2, 2);
    let left = cache.time_to_live_of(&1).flatten().unwrap();
    assert!(
        left <= Duration::from_secs(1) && left > Duration::from_millis(998),
        "{left:?}"
    );
    mock.advance(Duration::from_secs(2));
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get(&2), Some(2));
    assert_eq!(cache.time_to_live_of(&1), None);
}

#[test]
fn entries_without_ttl_never_expire() {
    let (cache, mock) = cache_with_mock(None);
    cache.insert(1, 1);
    mock.advance(Duration::from_secs(1_000_000));
    assert_eq!(cache.get(&1), Some(1));
    assert_eq!(cache.time_to_live_of(&1), Some(None));
}

#[test]
fn zero_ttl_is_expired_at_once() {
    let (cache, _mock) = cache_with_mock(None);
    cache.insert_with_ttl(1, 1, Duration::ZERO);
    assert_eq!(cache.get(&1), None);
}

#[test]
fn maintenance_reclaims_expired_entries_nobody_reads() {
    let (cache, mock) = cache_with_mock(None);
    for k in 0..100 {
        let ttl = if k < 60 {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(100)
        };
        cache.insert_with_ttl(k, k, ttl);
    }
    mock.advance(Duration::from_secs(5));
    assert_eq!(
        cache.len(),
        100,
        "nothing reclaimed before maintenance or reads"
    );
    assert_eq!(cache.iter().count(), 40, "iteration skips expired entries");
    assert_eq!(cache.run_pending_maintenance(), 60);
    assert_eq!(cache.len(), 40);
    assert_eq!(cache.stats().expirations, 60);
    assert_eq!(cache.run_pending_maintenance(), 0);
}

#[test]
fn remove_of_an_expired_entry_returns_none() {
    let (cache, mock) = cache_with_mock(None);
    cache.insert_with_ttl(1, 1, Duration::from_millis(5));
    mock.advance(Duration::from_millis(5));
    assert_eq!(cache.remove(&1), None);
    assert_eq!(cache.len(), 0);
}

#[test]
fn replacing_resets_the_ttl() {
    let (cache, mock) = cache_with_mock(Some(Duration::from_secs(10)));
    cache.insert(1, 1);
    mock.advance(Duration::from_secs(8));
    cache.insert(1, 2);
    mock.advance(Duration::from_secs(8));
    assert_eq!(cache.get(&1), Some(2));
}
