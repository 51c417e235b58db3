//! Guards invalidation across tiers: a pattern that misses matching keys in some tier (a stale
//! entry kept), one that removes keys it does not match, and a failed invalidation reported as
//! success.

use std::sync::Arc;
use std::time::Duration;

use strata::{CacheError, Postcard, TierOptions, TieredCache};

use strata_testing::{Fault, FaultyTier, MemoryTier, Schedule};

type Strings = TieredCache<String, Postcard<String>>;

const KEYS: [&str; 9] = [
    "user:1",
    "user:2:profile",
    "user:",
    "users:1",
    "xuser:1",
    "session:user:1",
    "hello",
    "hallo",
    "hillo",
];

async fn filled() -> (Strings, Arc<MemoryTier>, Arc<MemoryTier>) {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let l3 = Arc::new(MemoryTier::new("l3"));
    let cache = Strings::builder().tier(l2.clone()).tier(l3.clone()).build();
    for key in KEYS {
        assert!(cache.set(key, key.to_owned()).await.unwrap().is_complete());
    }
    (cache, l2, l3)
}

fn sorted(mut keys: Vec<String>) -> Vec<String> {
    keys.sort();
    keys
}

#[tokio::test]
async fn a_pattern_removes_exactly_the_matching_keys_from_every_tier() {
    for (pattern, removed) in [
        ("user:*", vec!["user:", "user:1", "user:2:profile"]),
        ("h?llo", vec!["hallo", "hello", "hillo"]),
        ("h[ae]llo", vec!["hallo", "hello"]),
        ("*user:1", vec!["session:user:1", "user:1", "xuser:1"]),
    ] {
        let (cache, l2, l3) = filled().await;
        let report = cache.invalidate_pattern(pattern).await.unwrap();
        let kept: Vec<String> = KEYS
            .iter()
            .filter(|k| !removed.contains(k))
            .map(|k| k.to_string())
            .collect();
        assert_eq!(report.l1, removed.len() as u64, "{pattern}");
        assert_eq!(
            report.tiers,
            [
                ("l2".to_owned(), removed.len() as u64),
                ("l3".to_owned(), removed.len() as u64)
            ]
        );
        assert_eq!(sorted(l2.keys()), sorted(kept.clone()), "{pattern} in l2");
        assert_eq!(sorted(l3.keys()), sorted(kept.clone()), "{pattern} in l3");
        let l1: Vec<String> = cache.l1().iter().map(|(k, _)| k).collect();
        assert_eq!(sorted(l1), sorted(kept.clone()), "{pattern} in l1");
        for key in &removed {
            assert_eq!(cache.get(key).await, None, "{pattern}: {key}");
        }
        for key in &kept {
            assert_eq!(
                cache.get(key).await.as_deref(),
                Some(key.as_str()),
                "{pattern}: {key}"
            );
        }
    }
}

#[tokio::test]
async fn a_malformed_pattern_is_a_typed_error() {
    let (cache, l2, _) = filled().await;
    assert!(matches!(
        cache.invalidate_pattern("user:[").await,
        Err(CacheError::Pattern(_))
    ));
    assert_eq!(l2.len(), KEYS.len());
}

#[tokio::test]
async fn clear_empties_every_tier() {
    let (cache, l2, l3) = filled().await;
    cache.clear().await.unwrap();
    assert!(cache.l1().is_empty() && l2.is_empty() && l3.is_empty());
}

#[tokio::test]
async fn a_failed_invalidation_is_an_error_naming_the_tier() {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let faulty = Arc::new(FaultyTier::new(l2.clone()));
    let cache = Strings::builder()
        .tier_with(
            faulty.clone(),
            TierOptions::default().timeout(Duration::from_millis(100)),
        )
        .build();
    let _ = cache.set("user:1", "a".into()).await.unwrap();
    let _ = cache.set("user:2", "b".into()).await.unwrap();

    faulty.inject(Fault::Fail, Schedule::Always);
    let error = cache.delete("user:1").await.unwrap_err();
    let CacheError::Invalidation(failures) = &error else {
        panic!("{error}")
    };
    assert_eq!(failures[0].tier, "l2");
    assert!(error.to_string().contains("l2"), "{error}");
    // L1 is invalidated even so: this process will not serve the stale value.
    assert!(!cache.l1().contains_key("user:1"));

    faulty.inject(Fault::Hang, Schedule::Always);
    assert!(matches!(
        cache.invalidate_pattern("user:*").await,
        Err(CacheError::Invalidation(_))
    ));
    assert!(matches!(
        cache.clear().await,
        Err(CacheError::Invalidation(_))
    ));

    // Once the tier is back, a retry succeeds and the entries are gone.
    faulty.heal();
    tokio::time::sleep(Duration::from_millis(1100)).await; // let the breaker half-open
    cache.invalidate_pattern("user:*").await.unwrap();
    assert!(l2.is_empty());
}
