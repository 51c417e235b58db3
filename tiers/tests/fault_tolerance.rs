//! Guards the stack against a failing tier: a hung tier that stalls reads past its timeout, a
//! dead tier that fails requests instead of being skipped, a breaker that never opens or never
//! recovers, and write failures that go uncounted.

use std::sync::Arc;
use std::time::Duration;

use strata::{BreakerConfig, BreakerState, Health, Postcard, TierOptions, TieredCache};

use strata_testing::{Fault, FaultyTier, MemoryTier, Schedule};

type Strings = TieredCache<String, Postcard<String>>;

fn breaker(threshold: u32, open_for_ms: u64) -> BreakerConfig {
    BreakerConfig {
        failure_threshold: threshold,
        open_for: Duration::from_millis(open_for_ms),
        max_open_for: Duration::from_millis(open_for_ms * 4),
    }
}

/// L2 (faulty) above a healthy L3 that holds the value.
async fn faulty_l2(timeout_ms: u64, breaker: BreakerConfig) -> (Strings, Arc<FaultyTier>) {
    let l2 = Arc::new(FaultyTier::new(Arc::new(MemoryTier::new("l2"))));
    let l3 = Arc::new(MemoryTier::new("l3"));
    let cache = Strings::builder()
        .tier_with(
            l2.clone(),
            TierOptions::default()
                .timeout(Duration::from_millis(timeout_ms))
                .breaker(breaker),
        )
        .tier(l3)
        .build();
    let _ = cache.set("k", "v".into()).await.unwrap();
    (cache, l2)
}

// Tokio's clock is paused and advances only while every task waits, so `took` is the time the
// read spent waiting on timers, free of this machine's scheduling noise.
#[tokio::test(start_paused = true)]
async fn a_hung_tier_does_not_delay_reads_past_its_timeout() {
    let timeout = Duration::from_millis(150);
    let (cache, l2) = faulty_l2(150, breaker(100, 1000)).await;
    l2.inject(Fault::Hang, Schedule::Always);
    for _ in 0..3 {
        cache.l1().clear();
        let started = tokio::time::Instant::now();
        assert_eq!(cache.get("k").await.as_deref(), Some("v"), "served from l3");
        let took = started.elapsed();
        // One timeout, and not a second one for promoting into the tier that just hung.
        assert!(took >= timeout && took < timeout * 2, "{took:?}");
    }
    let stats = &cache.stats().tiers[0];
    assert_eq!(
        stats.timeouts, 3,
        "three reads timed out; no promotion was tried"
    );
    assert_eq!(stats.promotions, 0);
}

#[tokio::test]
async fn a_failing_tier_is_skipped_and_its_failures_counted() {
    let (cache, l2) = faulty_l2(1000, breaker(100, 1000)).await;
    l2.inject(Fault::Fail, Schedule::Always);
    cache.l1().clear();
    assert_eq!(cache.get("k").await.as_deref(), Some("v"));
    let report = cache.set("k2", "v2".into()).await.unwrap();
    assert!(!report.is_complete());
    assert_eq!(report.written, ["l3"]);
    assert_eq!(report.failed[0].tier, "l2");
    let stats = &cache.stats().tiers[0];
    assert_eq!(stats.errors, 1, "the degraded read");
    assert_eq!(
        stats.write_failures, 1,
        "the failed set (no promotion into the tier that failed the read)"
    );
}

#[tokio::test]
async fn the_breaker_opens_skips_the_tier_then_recovers() {
    let (cache, l2) = faulty_l2(1000, breaker(3, 200)).await;
    l2.inject(Fault::Fail, Schedule::Always);
    for _ in 0..3 {
        cache.l1().clear();
        let _ = cache.get("k").await;
    }
    // 3 reads failed: open after the third failure.
    assert_eq!(cache.stats().tiers[0].breaker, BreakerState::Open);
    let reached = l2.operations();
    for _ in 0..10 {
        cache.l1().clear();
        assert_eq!(cache.get("k").await.as_deref(), Some("v"));
    }
    assert_eq!(
        l2.operations(),
        reached,
        "an open circuit sends nothing to the tier"
    );
    assert!(cache.stats().tiers[0].skipped >= 10);
    let health = cache.health_check().await;
    assert!(
        matches!(health.tiers["l2"], Health::Down(_)),
        "{:?}",
        health.tiers
    );

    // Heal; after the back-off one probe goes through and closes the circuit.
    l2.heal();
    tokio::time::sleep(Duration::from_millis(250)).await;
    cache.l1().clear();
    assert_eq!(cache.get("k").await.as_deref(), Some("v"));
    assert_eq!(cache.stats().tiers[0].breaker, BreakerState::Closed);
    assert!(cache.health_check().await.is_healthy());
}

#[tokio::test]
async fn a_failed_probe_reopens_the_circuit() {
    let (cache, l2) = faulty_l2(1000, breaker(1, 100)).await;
    l2.inject(Fault::Fail, Schedule::Always);
    cache.l1().clear();
    let _ = cache.get("k").await;
    assert_eq!(cache.stats().tiers[0].breaker, BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(150)).await;
    cache.l1().clear();
    let _ = cache.get("k").await; // the probe fails
    assert_eq!(cache.stats().tiers[0].breaker, BreakerState::Open);
    let health = cache.health_check().await;
    assert!(!health.is_healthy());
}

#[tokio::test]
async fn intermittent_faults_below_the_threshold_keep_the_circuit_closed() {
    let (cache, l2) = faulty_l2(1000, breaker(3, 1000)).await;
    l2.inject(Fault::Fail, Schedule::EveryNth(3));
    for _ in 0..30 {
        cache.l1().clear();
        assert_eq!(cache.get("k").await.as_deref(), Some("v"));
    }
    let stats = &cache.stats().tiers[0];
    assert_eq!(stats.breaker, BreakerState::Closed);
    assert!(stats.errors > 0 && stats.hits > 0);
    assert!(stats.latency_p50.is_some() && stats.latency_p99 >= stats.latency_p50);
}

#[tokio::test]
async fn corrupt_reads_from_a_faulty_tier_fall_through() {
    let (cache, l2) = faulty_l2(1000, breaker(100, 1000)).await;
    l2.inject(Fault::Corrupt, Schedule::Next(1));
    cache.l1().clear();
    assert_eq!(cache.get("k").await.as_deref(), Some("v"), "served from l3");
    assert_eq!(cache.stats().tiers[0].corrupt, 1);
}
