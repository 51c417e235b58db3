//! Two `TieredCache` instances in one process sharing a real Redis server (or cluster), each
//! with its own L1 and its own Redis tier handle: a write through one empties the other's L1
//! through the invalidation bus; a cut-off subscriber clears its L1 when it resubscribes.
//! Skipped (loudly) without `redis-server`, unless `STRATA_REQUIRE_REDIS=1`.

mod redis_common;

use std::time::{Duration, Instant};

use redis_common::{eventually, namespace, quantile, quick, spin_until, Instance};
use strata::RedisTier;
use strata_testing::redis_server::{RedisCluster, RedisServer};

const UPDATES: usize = 1000;

/// B holds the key in its L1; A writes it; the time until B's L1 lets go of it is the lag.
/// Measured from the start of A's `set`, and from its return (by which Redis has applied the
/// write and published the message). Every update must arrive, and B must then read A's value.
async fn measure_lag(a: &Instance, b: &Instance, label: &str) {
    let key = "lag:item";
    assert!(a.cache.set(key, "v0".into()).await.unwrap().is_complete());
    let mut from_start = Vec::with_capacity(UPDATES);
    let mut from_return = Vec::with_capacity(UPDATES);
    for i in 0..UPDATES {
        let old = format!("v{i}");
        // B's read fills its L1 (unless a resubscription's clear races with it, on a loaded
        // machine: then it reads again).
        for _ in 0..50 {
            assert_eq!(
                b.cache.get(key).await.as_deref(),
                Some(old.as_str()),
                "update {i}"
            );
            if b.l1_has(key) {
                break;
            }
        }
        assert!(b.l1_has(key), "B's reads never filled its L1");
        let new = format!("v{}", i + 1);
        let start = Instant::now();
        assert!(a.cache.set(key, new.clone()).await.unwrap().is_complete());
        let returned = Instant::now();
        let arrived = spin_until(Duration::from_secs(2), || !b.l1_has(key)).await;
        assert!(arrived, "update {i} never reached B's L1");
        let end = Instant::now();
        from_start.push(end - start);
        from_return.push(end - returned);
        assert_eq!(
            b.cache.get(key).await,
            Some(new),
            "B read a stale value after update {i}"
        );
    }
    let bus = b.redis.stats().bus;
    assert!(bus.applied >= UPDATES as u64, "{bus:?}");
    // Resubscriptions are rare (a heartbeat unanswered for its whole period) but legitimate.
    assert!(bus.clears_after_reconnect <= 2, "{bus:?}");
    assert!(a.redis.stats().bus.own_skipped >= UPDATES as u64);
    println!(
        "{label}: invalidation lag over {UPDATES} updates: from the write's start p50 {:?} p99 {:?} max {:?}; \
         after set returned p50 {:?} p99 {:?}; bus lag (publish to apply) p50 {:?} p99 {:?}",
        quantile(&mut from_start, 0.5),
        quantile(&mut from_start, 0.99),
        quantile(&mut from_start, 1.0),
        quantile(&mut from_return, 0.5),
        quantile(&mut from_return, 0.99),
        bus.lag_p50,
        bus.lag_p99,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_instance_empties_the_others_l1_standalone() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let ns = namespace("lag");
    let a = Instance::new(quick(RedisTier::standalone(server.url()), &ns), 1000).await;
    let b = Instance::new(quick(RedisTier::standalone(server.url()), &ns), 1000).await;
    measure_lag(&a, &b, "standalone").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_instance_empties_the_others_l1_cluster() {
    let Some(cluster) = RedisCluster::start().expect("start a redis cluster") else {
        return;
    };
    let seeds: Vec<String> = cluster.nodes().iter().map(|n| n.url()).collect();
    let ns = namespace("lag");
    let a = Instance::new(
        quick(RedisTier::cluster(seeds.clone()), &ns).timeout(Duration::from_millis(500)),
        1000,
    )
    .await;
    let b = Instance::new(
        quick(RedisTier::cluster(seeds), &ns).timeout(Duration::from_millis(500)),
        1000,
    )
    .await;
    measure_lag(&a, &b, "cluster (SPUBLISH)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_patterns_and_clears_reach_the_other_instance_and_fills_do_not() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let ns = namespace("kinds");
    let a = Instance::new(quick(RedisTier::standalone(server.url()), &ns), 1000).await;
    let b = Instance::new(quick(RedisTier::standalone(server.url()), &ns), 1000).await;
    let keys = ["user:1", "user:2", "post:1", "post:2", "misc"];
    for key in keys {
        assert!(a
            .cache
            .set(key, key.to_owned())
            .await
            .unwrap()
            .is_complete());
    }
    let settle = Duration::from_secs(2);
    // B reads every key from Redis (fills of its own L1): nothing is published for fills, so
    // A's L1 keeps its entries.
    let before = a.redis.stats().bus.published;
    for key in keys {
        assert_eq!(b.cache.get(key).await.as_deref(), Some(key));
        assert!(b.l1_has(key));
    }
    assert_eq!(a.redis.stats().bus.published, before);
    assert_eq!(b.redis.stats().bus.published, 0, "B only read");
    assert!(keys.iter().all(|k| a.l1_has(k)));

    a.cache.delete("misc").await.unwrap();
    assert!(
        eventually(settle, || !b.l1_has("misc")).await,
        "a delete did not reach B"
    );

    a.cache.invalidate_pattern("user:*").await.unwrap();
    assert!(
        eventually(settle, || !b.l1_has("user:1") && !b.l1_has("user:2")).await,
        "a pattern did not reach B"
    );
    assert!(
        b.l1_has("post:1") && b.l1_has("post:2"),
        "a pattern removed keys it does not match"
    );

    a.cache.clear().await.unwrap();
    assert!(
        eventually(settle, || !b.l1_has("post:1") && !b.l1_has("post:2")).await,
        "a clear did not reach B"
    );
    assert_eq!(b.cache.get("post:1").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_subscriber_resubscribes_and_clears_its_l1() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let ns = namespace("cutoff");
    let a = Instance::new(quick(RedisTier::standalone(server.url()), &ns), 10_000).await;
    let b = Instance::new(quick(RedisTier::standalone(server.url()), &ns), 10_000).await;
    let keys: Vec<String> = (0..100).map(|i| format!("item:{i}")).collect();
    for key in &keys {
        assert!(a.cache.set(key, "old".into()).await.unwrap().is_complete());
        assert_eq!(b.cache.get(key).await.as_deref(), Some("old"));
    }
    // (A count-bounded L1 is sharded, so a shard may already have evicted one or two.)
    let held = keys.iter().filter(|k| b.l1_has(k)).count();
    assert!(
        held >= keys.len() * 9 / 10,
        "B's L1 holds only {held} of the keys"
    );
    let remote_before = b.cache.stats().remote_invalidations;

    // Cut both instances' subscriber connections (CLIENT KILL of every pub/sub client), and
    // write while B is not listening: that message is lost to B.
    let killed = server
        .command(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .unwrap();
    assert!(killed.starts_with(":"), "CLIENT KILL answered {killed:?}");
    assert!(a
        .cache
        .set("item:0", "new".into())
        .await
        .unwrap()
        .is_complete());

    // B resubscribes by itself and, having possibly missed messages, clears its L1.
    assert!(
        eventually(Duration::from_secs(10), || b
            .redis
            .stats()
            .bus
            .clears_after_reconnect
            >= 1)
        .await,
        "B never resubscribed: {:?}",
        b.redis.stats().bus
    );
    assert!(eventually(Duration::from_secs(2), || b.redis.stats().bus.subscribed).await);
    let bus = b.redis.stats().bus;
    assert!(bus.disconnects >= 1, "{bus:?}");
    assert!(b.cache.stats().remote_invalidations > remote_before);
    assert!(
        keys.iter().all(|k| !b.l1_has(k)),
        "B kept {} entries in L1 after resubscribing",
        keys.iter().filter(|k| b.l1_has(k)).count()
    );
    assert_eq!(b.cache.get("item:0").await.as_deref(), Some("new"));
    assert_eq!(b.cache.get("item:1").await.as_deref(), Some("old"));

    // And the bus works again.
    assert!(b.l1_has("item:1"));
    assert!(a
        .cache
        .set("item:1", "newer".into())
        .await
        .unwrap()
        .is_complete());
    assert!(eventually(Duration::from_secs(2), || !b.l1_has("item:1")).await);
    assert_eq!(b.cache.get("item:1").await.as_deref(), Some("newer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_namespaces_are_neither_invalidated_nor_cleared() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let mine = namespace("mine");
    let theirs = namespace("theirs");
    let a = Instance::new(quick(RedisTier::standalone(server.url()), &mine), 100).await;
    let other = Instance::new(quick(RedisTier::standalone(server.url()), &theirs), 100).await;
    assert!(other
        .cache
        .set("user:1", "kept".into())
        .await
        .unwrap()
        .is_complete());
    server
        .command(&["SET", "foreign:key", "untouched"])
        .unwrap();
    assert!(a
        .cache
        .set("user:1", "mine".into())
        .await
        .unwrap()
        .is_complete());
    a.cache.clear().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        other.l1_has("user:1"),
        "another namespace's L1 was invalidated"
    );
    assert_eq!(other.cache.get("user:1").await.as_deref(), Some("kept"));
    assert!(server
        .command(&["GET", "foreign:key"])
        .unwrap()
        .contains("untouched"));
    assert_eq!(other.redis.stats().bus.applied, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_with_a_redis_url_opens_the_tier_through_the_default_registry() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let ns = namespace("config");
    let text = format!(
        "memory_max_entries = 100\nredis_url = \"{}?namespace={ns}&timeout=200ms\"\nredis_ttl = \"1m\"\n",
        server.url()
    );
    let config = strata::CacheConfig::from_toml_str(&text).unwrap();
    let registry = strata::TierRegistry::default();
    for scheme in ["redis", "rediss", "redis+cluster", "rediss+cluster"] {
        assert!(
            registry.schemes().any(|s| s == scheme),
            "{scheme} not registered"
        );
    }
    let cache: redis_common::Strings = config.build(&registry).await.unwrap();
    assert_eq!(cache.tier_names(), ["redis"]);
    assert!(cache
        .set("user:1", "Ada".into())
        .await
        .unwrap()
        .is_complete());
    // Stored under the namespace, with the configured TTL (at most a minute).
    let pttl = server.command(&["PTTL", &format!("{ns}:user:1")]).unwrap();
    let pttl: i64 = pttl.trim().trim_start_matches(':').parse().unwrap();
    assert!((1..=60_000).contains(&pttl), "PTTL {pttl}");

    // A typo in the URL's options is an error naming it, not a tier with defaults.
    let bad = format!("redis_url = \"{}?namespce=x\"\n", server.url());
    let error = strata::CacheConfig::from_toml_str(&bad)
        .unwrap()
        .build::<String, strata::Postcard<String>>(&registry)
        .await
        .err()
        .expect("a misspelt option must fail");
    assert!(error.to_string().contains("namespce"), "{error}");
}

/// Sets `key` to a raw value on whichever node of `servers` owns it (the others answer MOVED),
/// as a client that is not Strata would.
fn external_set(servers: &[&RedisServer], key: &str) {
    for server in servers {
        if server
            .command(&["SET", key, "written-by-another-program"])
            .is_ok_and(|reply| reply.starts_with("+OK"))
        {
            return;
        }
    }
    panic!("no node took SET {key}");
}

async fn tracking_catches_writes_by_other_programs(
    servers: &[&RedisServer],
    b: &Instance,
    c: &Instance,
    ns: &str,
) {
    for round in 0..2 {
        let key = format!("tracked:{round}");
        assert!(b
            .cache
            .set(&key, "strata".into())
            .await
            .unwrap()
            .is_complete());
        // With tracking, B's own write comes back as an invalidation too (the documented
        // cost): read until both L1s hold the key and keep it.
        let mut settled = false;
        for _ in 0..100 {
            assert_eq!(b.cache.get(&key).await.as_deref(), Some("strata"));
            assert_eq!(c.cache.get(&key).await.as_deref(), Some("strata"));
            tokio::time::sleep(Duration::from_millis(20)).await;
            if b.l1_has(&key) && c.l1_has(&key) {
                settled = true;
                break;
            }
        }
        assert!(settled, "round {round}: the L1s never kept the key");
        external_set(servers, &format!("{ns}:{key}"));
        assert!(
            eventually(Duration::from_secs(5), || !b.l1_has(&key)).await,
            "round {round}: a write by another program did not reach the tracking instance"
        );
        // Without tracking, only Strata's own writes are announced.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            c.l1_has(&key),
            "round {round}: the instance without tracking was told"
        );
        if round == 0 {
            // Cut the subscriber: tracking must be on again after it resubscribes.
            for server in servers {
                let _ = server.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
            }
            assert!(
                eventually(Duration::from_secs(10), || {
                    let bus = b.redis.stats().bus;
                    bus.clears_after_reconnect >= 1 && bus.subscribed
                })
                .await,
                "the tracking instance did not resubscribe: {:?}",
                b.redis.stats().bus
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_assisted_tracking_catches_writes_by_other_programs_standalone() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let ns = namespace("tracking");
    let b = Instance::new(
        quick(RedisTier::standalone(server.url()), &ns).tracking(true),
        1000,
    )
    .await;
    let c = Instance::new(quick(RedisTier::standalone(server.url()), &ns), 1000).await;
    tracking_catches_writes_by_other_programs(&[&server], &b, &c, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_assisted_tracking_catches_writes_by_other_programs_cluster() {
    let Some(cluster) = RedisCluster::start().expect("start a redis cluster") else {
        return;
    };
    let seeds: Vec<String> = cluster.nodes().iter().map(|n| n.url()).collect();
    let ns = namespace("tracking");
    let builder =
        || quick(RedisTier::cluster(seeds.clone()), &ns).timeout(Duration::from_millis(500));
    let b = Instance::new(builder().tracking(true), 1000).await;
    let c = Instance::new(builder(), 1000).await;
    let servers: Vec<&RedisServer> = cluster.nodes().iter().collect();
    tracking_catches_writes_by_other_programs(&servers, &b, &c, &ns).await;
}
