//! The reusable `Tier` contract suite (`strata_testing::contract`) against `RedisTier` on a real
//! standalone server and a real 3 + 3 cluster, each with a second handle as the peer that
//! stands for another instance (so invalidation events are checked too).

mod common;

use std::sync::Arc;

use strata_redis::RedisTierBuilder;
use strata_testing::contract;
use strata_testing::redis_server::{RedisCluster, RedisServer};
use strata_tier::Tier;

const MAX_VALUE: usize = 1 << 20;

fn expect_all_checked(report: &contract::Report) {
    assert!(report.skipped.is_empty(), "{report}");
    for case in [
        "fill_intent",
        "ttl_is_never_exceeded",
        "too_large_is_refused",
        "invalidation_events_reach_peers",
        "close_keeps_acknowledged_writes",
    ] {
        assert!(
            report.checked.contains(&case),
            "{case} not checked: {report}"
        );
    }
}

/// Runs the suite on a tier from `builder` (with the value limit), with a second handle on the
/// same namespace as the peer that stands for another instance.
async fn check(builder: impl Fn() -> RedisTierBuilder) -> contract::Report {
    let tier = builder()
        .max_value_size(MAX_VALUE)
        .open()
        .await
        .expect("open");
    let peer = builder().open().await.expect("open peer");
    let options = contract::Options::default()
        .max_value_size(MAX_VALUE)
        .peer(Arc::new(peer) as Arc<dyn Tier>);
    contract::check(Arc::new(tier), options)
        .await
        .unwrap_or_else(|failure| panic!("{failure}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_redis_tier_keeps_the_tier_contract() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let ns = common::namespace("contract");
    expect_all_checked(&check(|| common::standalone(&server, &ns)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_redis_tier_keeps_the_tier_contract() {
    let Some(cluster) = RedisCluster::start().expect("start a redis cluster") else {
        return;
    };
    let ns = common::namespace("contract");
    let report = check(|| common::cluster(&cluster, &ns)).await;
    expect_all_checked(&report);
}
