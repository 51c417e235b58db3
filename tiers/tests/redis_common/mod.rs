//! Shared by the `TieredCache`-over-Redis tests: instances on a real server or cluster.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::redis::RedisTierBuilder;
use strata::{Postcard, RedisTier, TierOptions, TieredCache};

pub type Strings = TieredCache<String, Postcard<String>>;

/// A namespace no other test of this process uses.
pub fn namespace(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Test-sized timeouts on a builder.
pub fn quick(builder: RedisTierBuilder, namespace: &str) -> RedisTierBuilder {
    builder
        .namespace(namespace)
        .connect_timeout(Duration::from_millis(300))
        .timeout(Duration::from_millis(200))
        .heartbeat(Duration::from_millis(200))
}

/// One application instance: its L1 over its own Redis tier handle.
pub struct Instance {
    pub cache: Strings,
    pub redis: Arc<RedisTier>,
}

impl Instance {
    pub async fn new(builder: RedisTierBuilder, l1_entries: u64) -> Instance {
        let redis = Arc::new(builder.open().await.expect("open the Redis tier"));
        let cache = Strings::builder()
            .memory_max_entries(l1_entries)
            .tier_with(
                redis.clone(),
                TierOptions::default().timeout(Duration::from_millis(250)),
            )
            .build();
        let instance = Instance { cache, redis };
        instance.wait_subscribed().await;
        instance
    }

    /// Waits (at most 10 s) until the invalidation bus is subscribed: before that, the first
    /// subscription's L1 clear may still come.
    pub async fn wait_subscribed(&self) {
        let start = Instant::now();
        while !self.redis.stats().bus.subscribed || self.cache.stats().remote_invalidations == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the bus never subscribed"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn l1_has(&self, key: &str) -> bool {
        self.cache.l1().contains_key(key)
    }
}

/// Waits until `done` holds, polling; `false` if `within` passed first.
pub async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

/// Waits until `done` holds, yielding (not sleeping) between checks, so that a lag of
/// microseconds is measured as such rather than as a timer tick; `false` if `within` passed.
pub async fn spin_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > within {
            return false;
        }
        tokio::task::yield_now().await;
    }
    true
}

/// The `q` quantile of `samples` (sorted in place).
pub fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[index]
}
