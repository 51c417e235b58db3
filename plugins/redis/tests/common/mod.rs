//! Shared by the Redis tier's tests: opening tiers on the test servers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use strata_redis::{RedisTier, RedisTierBuilder};
use strata_testing::redis_server::{RedisCluster, RedisServer};

/// A namespace no other test of this process uses.
pub fn namespace(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{test}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A builder for `server` with test-sized timeouts.
pub fn standalone(server: &RedisServer, namespace: &str) -> RedisTierBuilder {
    RedisTier::standalone(server.url())
        .namespace(namespace)
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(300))
        .heartbeat(Duration::from_millis(200))
}

/// A builder for `cluster` with test-sized timeouts.
pub fn cluster(cluster: &RedisCluster, namespace: &str) -> RedisTierBuilder {
    let seeds: Vec<String> = cluster.nodes().iter().map(|n| n.url()).collect();
    RedisTier::cluster(seeds)
        .namespace(namespace)
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(500))
        .heartbeat(Duration::from_millis(200))
}

/// Polls `done` until it holds; `false` if `within` passed first.
pub async fn eventually_async<F, Fut>(within: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !done().await {
        if start.elapsed() > within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}
