//! Guards the read path and the write path of a stack: a lower-tier hit that is not promoted,
//! or promoted with a fresh TTL instead of its remaining one (so an entry outlives its expiry);
//! a write that skips a tier; an oversize value partly written; damaged bytes that panic or are
//! served.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use strata::frame::{self, FrameOptions};
use strata::{
    Bytes, BytesCache, CacheError, Postcard, SetOptions, Tier, TierOptions, TieredCache,
    WriteIntent, WriteTarget,
};
use strata_testing::MemoryTier;

type Users = TieredCache<String, Postcard<String>>;

fn stack(l2_ttl: Duration) -> (Users, Arc<MemoryTier>, Arc<MemoryTier>) {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let l3 = Arc::new(MemoryTier::new("l3"));
    let cache = Users::builder()
        .memory_ttl(Duration::from_secs(60))
        .tier_with(l2.clone(), TierOptions::default().ttl(l2_ttl))
        .tier(l3.clone())
        .build();
    (cache, l2, l3)
}

fn frame_of(value: &str, ttl: Duration) -> Bytes {
    let payload = postcard::to_stdvec(&value.to_owned()).unwrap();
    let options = FrameOptions {
        compression_threshold: 1024,
        max_payload: 1 << 20,
    };
    frame::encode(
        &payload,
        Some(SystemTime::now() + ttl),
        SystemTime::now(),
        &options,
    )
}

#[tokio::test]
async fn a_lower_hit_is_promoted_everywhere_above_with_its_remaining_ttl() {
    let (cache, l2, l3) = stack(Duration::from_secs(600));
    l3.set(
        "user:1",
        frame_of("Ada", Duration::from_secs(4)),
        Some(Duration::from_secs(4)),
        WriteIntent::Update,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;

    assert_eq!(cache.get("user:1").await.as_deref(), Some("Ada"));

    // L2 got it with what was left of the 4 s, not a fresh 600 s (nor the full 4 s). A frame
    // stores its expiry rounded up to the next millisecond, so what is left may exceed
    // 4 s - 600 ms by up to 1 ms.
    let l2_ttl = l2
        .ttl_of("user:1")
        .expect("promoted into l2")
        .expect("with a ttl");
    assert!(l2_ttl <= Duration::from_millis(3_401), "{l2_ttl:?}");
    assert!(l2_ttl >= Duration::from_millis(2_500), "{l2_ttl:?}");
    let l1_ttl = cache.l1().time_to_live_of("user:1").unwrap().unwrap();
    assert!(l1_ttl <= Duration::from_millis(3_401), "{l1_ttl:?}");

    let stats = cache.stats();
    assert_eq!(stats.lower_hits, 1);
    assert_eq!(stats.tiers[0].promotions, 1);
    assert_eq!(stats.tiers[1].hits, 1);
    // The next read is an L1 hit.
    assert_eq!(cache.get("user:1").await.as_deref(), Some("Ada"));
    assert_eq!(cache.stats().lower_hits, 1);
}

#[tokio::test]
async fn promotion_is_capped_by_each_tiers_own_ttl() {
    let (cache, l2, l3) = stack(Duration::from_secs(1));
    l3.set(
        "k",
        frame_of("v", Duration::from_secs(3600)),
        None,
        WriteIntent::Update,
    )
    .await
    .unwrap();
    assert_eq!(cache.get("k").await.as_deref(), Some("v"));
    let l2_ttl = l2.ttl_of("k").unwrap().unwrap();
    assert!(l2_ttl <= Duration::from_secs(1), "{l2_ttl:?}");
    let l1_ttl = cache.l1().time_to_live_of("k").unwrap().unwrap();
    assert!(
        l1_ttl <= Duration::from_secs(60),
        "memory_ttl caps L1: {l1_ttl:?}"
    );
}

#[tokio::test]
async fn an_expired_frame_is_a_miss_even_if_the_tier_still_holds_it() {
    let (cache, _l2, l3) = stack(Duration::from_secs(600));
    // The tier was told no TTL, but the frame says the entry expired.
    l3.put_raw("old", frame_of("stale", Duration::from_millis(1)));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(cache.get("old").await, None);
    assert_eq!(cache.stats().misses, 1);
}

#[tokio::test]
async fn writes_go_through_unless_told_otherwise() {
    let (cache, l2, l3) = stack(Duration::from_secs(600));
    let report = cache.set("a", "1".into()).await.unwrap();
    assert!(report.is_complete());
    assert_eq!(report.written, ["l2", "l3"]);
    assert!(cache.l1().contains_key("a") && l2.raw("a").is_some() && l3.raw("a").is_some());
    // Without a TTL the lower tiers keep it without expiry, except where capped.
    assert!(l2.ttl_of("a").unwrap().unwrap() <= Duration::from_secs(600));
    assert_eq!(l3.ttl_of("a"), Some(None));

    let _ = cache
        .set_with(
            "b",
            "2".into(),
            SetOptions::default().target(WriteTarget::L1Only),
        )
        .await
        .unwrap();
    assert!(cache.l1().contains_key("b") && l2.raw("b").is_none() && l3.raw("b").is_none());

    let _ = cache
        .set_with(
            "c",
            "3".into(),
            SetOptions::default()
                .target(WriteTarget::SkipL1)
                .ttl(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    assert!(!cache.l1().contains_key("c"));
    assert!(l3.ttl_of("c").unwrap().unwrap() <= Duration::from_secs(30));
    assert_eq!(cache.get("c").await.as_deref(), Some("3"));
}

#[tokio::test]
async fn an_oversize_value_is_refused_and_nothing_is_written() {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let cache = BytesCache::builder()
        .max_value_size(1024)
        .tier(l2.clone())
        .build();
    let _ = cache
        .set("small", Bytes::from(vec![1; 1024]))
        .await
        .unwrap();
    assert!(cache
        .set("big", Bytes::from_static(b"old"))
        .await
        .unwrap()
        .is_complete());
    let error = cache
        .set("big", Bytes::from(vec![7; 1025]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CacheError::ValueTooLarge {
                size: 1025,
                limit: 1024
            }
        ),
        "{error}"
    );
    // The old value is untouched everywhere.
    assert_eq!(cache.l1().get("big"), Some(Bytes::from_static(b"old")));
    let stored = frame::decode(
        &l2.raw("big").unwrap(),
        &FrameOptions {
            compression_threshold: 1024,
            max_payload: 1 << 20,
        },
    )
    .unwrap();
    assert_eq!(stored.payload, Bytes::from_static(b"old"));
}

#[tokio::test]
async fn corrupt_bytes_are_a_counted_miss_and_are_deleted() {
    let (cache, l2, l3) = stack(Duration::from_secs(600));
    let good = frame_of("fine", Duration::from_secs(60));
    let mut flipped = good.to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    l2.put_raw("flipped", Bytes::from(flipped));
    l2.put_raw("truncated", good.slice(..6));
    let mut future_version = good.to_vec();
    future_version[0] = strata::frame::FORMAT_VERSION + 1;
    l2.put_raw("future", Bytes::from(future_version));
    // Frame intact, payload not a postcard String (an invalid UTF-8 string of length 2).
    let options = FrameOptions {
        compression_threshold: 1024,
        max_payload: 1 << 20,
    };
    l2.put_raw(
        "wrong-type",
        frame::encode(&[2, 0xFF, 0xFE], None, SystemTime::now(), &options),
    );

    for key in ["flipped", "truncated", "future", "wrong-type"] {
        assert_eq!(cache.get(key).await, None, "{key}");
        assert!(l2.raw(key).is_none(), "{key} was not deleted");
    }
    assert_eq!(cache.stats().tiers[0].corrupt, 4);

    // A damaged copy in L2 does not hide a good one below it.
    l2.put_raw("both", Bytes::from_static(b"garbage that is long enough"));
    l3.set("both", good.clone(), None, WriteIntent::Update)
        .await
        .unwrap();
    assert_eq!(cache.get("both").await.as_deref(), Some("fine"));
    assert_eq!(
        l2.raw("both"),
        Some(good),
        "the good copy was promoted over the bad one"
    );
}

#[tokio::test]
async fn large_values_are_compressed_in_lower_tiers_and_read_back() {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let cache = BytesCache::builder().tier(l2.clone()).build();
    let json: String = (0..2000)
        .map(|i| format!("{{\"id\":{i},\"name\":\"user-{i}\"}},"))
        .collect();
    let value = Bytes::from(json);
    let _ = cache.set("doc", value.clone()).await.unwrap();
    let stored = l2.raw("doc").unwrap();
    assert!(
        stored.len() < value.len() / 3,
        "{} of {}",
        stored.len(),
        value.len()
    );
    cache.l1().clear();
    assert_eq!(cache.get("doc").await, Some(value));
}

#[tokio::test]
async fn delete_reaches_every_tier() {
    let (cache, l2, l3) = stack(Duration::from_secs(600));
    let _ = cache.set("gone", "x".into()).await.unwrap();
    assert!(cache.delete("gone").await.unwrap());
    assert!(
        !cache.l1().contains_key("gone") && l2.raw("gone").is_none() && l3.raw("gone").is_none()
    );
    assert!(!cache.delete("gone").await.unwrap());
    assert_eq!(cache.get("gone").await, None);
}

#[tokio::test]
async fn warming_loads_every_entry_with_bounded_concurrency() {
    let (cache, l2, _l3) = stack(Duration::from_secs(600));
    let source = (0..500).map(|i| (format!("warm:{i}"), format!("value {i}")));
    let report = cache.warm_from_iter(source, 8).await;
    assert_eq!((report.loaded, report.partial, report.refused), (500, 0, 0));
    assert_eq!(l2.len(), 500);
    assert_eq!(cache.get("warm:499").await.as_deref(), Some("value 499"));

    let stream = futures_util::stream::iter((0..10).map(|i| (format!("s:{i}"), "v".to_owned())));
    assert_eq!(cache.warm(stream, 2).await.loaded, 10);
}

#[tokio::test]
async fn health_maps_every_level() {
    let (cache, _l2, _l3) = stack(Duration::from_secs(600));
    let health = cache.health_check().await;
    assert!(health.is_healthy());
    assert_eq!(
        health.to_json(),
        serde_json::json!({"memory": "healthy", "l2": "healthy", "l3": "healthy"})
    );
}

/// A read that fetched the old value from a slow tier must not put it in L1 after a write or
/// a delete of the same key has completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_read_cannot_leave_an_overwritten_value_in_l1() {
    use strata_testing::{Fault, FaultyTier, Schedule};
    for invalidate in [false, true] {
        let l2 = Arc::new(FaultyTier::new(Arc::new(MemoryTier::new("l2"))));
        let cache = Users::builder().tier(l2.clone()).build();
        let _ = cache
            .set_with(
                "k",
                "old".into(),
                SetOptions::default().target(WriteTarget::SkipL1),
            )
            .await
            .unwrap();
        // The reader's tier read takes 150 ms; the write below does not wait for it.
        l2.inject(Fault::Delay(Duration::from_millis(150)), Schedule::Next(1));
        let reader = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get("k").await })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        if invalidate {
            assert!(cache.delete("k").await.unwrap());
        } else {
            let _ = cache.set("k", "new".into()).await.unwrap();
        }
        assert_eq!(
            reader.await.unwrap().as_deref(),
            Some("old"),
            "the read began first"
        );
        let expected = if invalidate {
            None
        } else {
            Some("new".to_owned())
        };
        assert_eq!(cache.l1().get("k"), expected, "invalidate = {invalidate}");
        assert_eq!(cache.get("k").await, expected);
    }
}
