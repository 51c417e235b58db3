//! Redis outages under a running stack (L1, Redis, a redb file): Redis paused with `SIGSTOP`,
//! killed and restarted, and a cluster master killed so that its replica takes over. Reads are
//! served from L1 and the disk tier throughout, within the Redis timeout; the breaker opens;
//! the tier recovers by itself; an invalidation made during the outage reports an error; the
//! other instance's L1 is cleared once its bus is back. Each test prints its figures.
//! Skipped (loudly) without `redis-server`, unless `STRATA_REQUIRE_REDIS=1`.

mod redis_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_common::{eventually, namespace, quick, Instance, Strings};
use strata::redis::RedisTierBuilder;
use strata::{BreakerConfig, BreakerState, RedbTier, RedisTier, Tier, TierOptions};
use strata_testing::redis_server::{RedisCluster, RedisServer};

const KEYS: usize = 1000;
const TIMEOUT: Duration = Duration::from_millis(100);

struct Stack {
    cache: Strings,
    redis: Arc<RedisTier>,
    _dir: tempfile::TempDir,
}

/// L1 (100 entries) over Redis (a 100 ms deadline) over a redb file.
async fn stack(builder: RedisTierBuilder) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let redis = Arc::new(builder.timeout(TIMEOUT).open().await.expect("open Redis"));
    let redb = Arc::new(
        RedbTier::builder(dir.path().join("l3.redb"))
            .open_async()
            .await
            .expect("open redb"),
    );
    let breaker = BreakerConfig {
        failure_threshold: 3,
        open_for: Duration::from_millis(250),
        max_open_for: Duration::from_secs(1),
    };
    let cache = Strings::builder()
        .memory_max_entries(100)
        .tier_with(
            redis.clone(),
            TierOptions::default().timeout(TIMEOUT).breaker(breaker),
        )
        .tier_with(redb, TierOptions::default().timeout(Duration::from_secs(2)))
        .build();
    for i in 0..KEYS {
        let report = cache.set(&format!("k:{i}"), format!("v{i}")).await.unwrap();
        assert!(report.is_complete(), "{report:?}");
    }
    Stack {
        cache,
        redis,
        _dir: dir,
    }
}

struct Served {
    reads: u64,
    longest: Duration,
    breaker_opened: bool,
}

/// Reads keys round-robin for `period`, checking every value; the longest read and whether the
/// Redis read breaker was seen open.
async fn serve_for(stack: &Stack, period: Duration) -> Served {
    let start = Instant::now();
    let mut served = Served {
        reads: 0,
        longest: Duration::ZERO,
        breaker_opened: false,
    };
    let mut n = 0usize;
    while start.elapsed() < period {
        let i = (n * 7919) % (KEYS - 1);
        n += 1;
        let begun = Instant::now();
        let value = stack.cache.get(&format!("k:{i}")).await;
        served.longest = served.longest.max(begun.elapsed());
        assert_eq!(value, Some(format!("v{i}")), "read {n} during the outage");
        served.reads += 1;
        if served.reads.is_multiple_of(64) {
            let stats = stack.cache.stats();
            served.breaker_opened |= stats.tiers[0].breaker != BreakerState::Closed;
        }
    }
    served
}

/// Time until a write reaches Redis again and reads back from it (bounded by 30 s).
async fn recovery(stack: &Stack, probe: &str) -> Duration {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Redis never came back"
        );
        let written = stack.cache.set(probe, "back".into()).await.unwrap();
        if written.is_complete() && stack.redis.get(probe).await.is_hit() {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An instance on the same namespace whose L1 holds some keys, to see it cleared after the
/// outage.
async fn watcher(builder: RedisTierBuilder) -> Instance {
    let other = Instance::new(builder, 1000).await;
    for i in 0..50 {
        assert_eq!(
            other.cache.get(&format!("k:{i}")).await,
            Some(format!("v{i}"))
        );
    }
    other
}

async fn l1_cleared_after_bus_is_back(other: &Instance) -> Duration {
    let start = Instant::now();
    let cleared = eventually(Duration::from_secs(15), || {
        other.redis.stats().bus.clears_after_reconnect >= 1
            && (0..50).all(|i| !other.l1_has(&format!("k:{i}")))
    })
    .await;
    assert!(
        cleared,
        "the other instance's L1 was not cleared: {:?}",
        other.redis.stats().bus
    );
    start.elapsed()
}

/// What every standalone outage must show: the breaker opened, no read waited much past the
/// Redis deadline, and the key deleted during the outage stayed deleted.
async fn assert_survived(stack: &Stack, served: &Served) {
    assert!(served.breaker_opened, "the Redis breaker never opened");
    assert!(
        served.longest <= TIMEOUT + Duration::from_millis(400),
        "a read took {:?}",
        served.longest
    );
    assert_eq!(
        stack.cache.get("k:999").await,
        None,
        "the deleted key came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_is_survived() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let ns = namespace("pause");
    let stack = stack(quick(RedisTier::standalone(server.url()), &ns)).await;
    let other = watcher(quick(RedisTier::standalone(server.url()), &ns)).await;

    server.pause().unwrap();
    let deleted = stack.cache.delete("k:999").await;
    assert!(
        deleted.is_err(),
        "a delete during the outage answered {deleted:?}"
    );
    let served = serve_for(&stack, Duration::from_secs(5)).await;
    server.resume().unwrap();
    let back = recovery(&stack, "probe").await;
    let cleared = l1_cleared_after_bus_is_back(&other).await;

    assert_survived(&stack, &served).await;
    println!(
        "SIGSTOP 5 s: {} reads served, all correct; longest read {:?} (Redis timeout {TIMEOUT:?}); \
         breaker opened; Redis back {:?} after SIGCONT; the other instance's L1 cleared {:?} later",
        served.reads, served.longest, back, cleared
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_redis_is_survived() {
    let Some(mut server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let ns = namespace("restart");
    let stack = stack(quick(RedisTier::standalone(server.url()), &ns)).await;
    let other = watcher(quick(RedisTier::standalone(server.url()), &ns)).await;

    server.kill();
    let deleted = stack.cache.delete("k:999").await;
    assert!(
        deleted.is_err(),
        "a delete during the outage answered {deleted:?}"
    );
    let served = serve_for(&stack, Duration::from_secs(3)).await;
    server.restart().unwrap();
    let back = recovery(&stack, "probe").await;
    let cleared = l1_cleared_after_bus_is_back(&other).await;
    // The restarted server is empty: reads fall through to redb, still correct.
    let after = serve_for(&stack, Duration::from_millis(500)).await;

    assert_survived(&stack, &served).await;
    let stats = stack.redis.stats();
    assert!(stats.pool.connections >= 1, "{stats:?}");
    println!(
        "killed 3 s, then restarted empty: {} reads served, all correct; longest read {:?} \
         (Redis timeout {TIMEOUT:?}); breaker opened; Redis back {:?} after the restart; the \
         other instance's L1 cleared {:?} later; {} correct reads right after",
        served.reads, served.longest, back, cleared, after.reads
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_failover_is_survived() {
    let Some(mut cluster) = RedisCluster::start().expect("start a redis cluster") else {
        return;
    };
    let seeds: Vec<String> = cluster.nodes().iter().map(|n| n.url()).collect();
    let ns = namespace("failover");
    let builder =
        || quick(RedisTier::cluster(seeds.clone()), &ns).timeout(Duration::from_millis(300));
    let stack = stack(builder()).await;
    let other = watcher(builder().timeout(Duration::from_millis(300))).await;

    // The master that owns the namespace's channel: the data of a third of the keys and the
    // bus go down together.
    let slot = cluster.nodes()[0]
        .command(&[
            "CLUSTER",
            "KEYSLOT",
            &format!("strata:{{{ns}}}:invalidations"),
        ])
        .unwrap();
    let slot: u16 = slot.trim().trim_start_matches(':').parse().unwrap();
    let nodes = cluster.nodes()[0].command(&["CLUSTER", "NODES"]).unwrap();
    let port = master_of(&nodes, slot).expect("a master owns the slot");
    let victim = cluster
        .nodes()
        .iter()
        .position(|n| n.port() == port)
        .unwrap();
    cluster.nodes_mut()[victim].kill();
    let killed = Instant::now();

    let served = serve_for(&stack, Duration::from_secs(3)).await;
    // Back when every key can be written through Redis again (the replica promoted, and the
    // client's slot map refreshed).
    let back = loop {
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "the cluster never recovered"
        );
        let mut all = true;
        for i in 0..KEYS {
            let key = format!("k:{i}");
            let value = strata::Bytes::from(format!("again{i}"));
            if let Err(error) = stack
                .redis
                .set(&key, value, None, strata::WriteIntent::Update)
                .await
            {
                if std::env::var("STRATA_DEBUG_FAILOVER").is_ok() {
                    eprintln!("{:?} {key}: {error}", killed.elapsed());
                    let survivor = cluster.nodes().iter().find(|n| n.port() != port).unwrap();
                    eprintln!(
                        "{}",
                        survivor.command(&["CLUSTER", "NODES"]).unwrap_or_default()
                    );
                }
                all = false;
                break;
            }
        }
        if all {
            break killed.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let cleared = l1_cleared_after_bus_is_back(&other).await;
    assert!(
        served.longest <= TIMEOUT + Duration::from_millis(400),
        "a read took {:?}",
        served.longest
    );
    println!(
        "cluster master :{port} killed (its replica promoted by the cluster): {} reads served, \
         all correct; longest read {:?} (Redis timeout {TIMEOUT:?}); every key writable through Redis \
         {:?} after the kill; the other instance's L1 cleared {:?} after that",
        served.reads, served.longest, back, cleared
    );
}

/// The port of the master serving `slot` in `CLUSTER NODES` output.
fn master_of(nodes: &str, slot: u16) -> Option<u16> {
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 || !fields[2].contains("master") {
            continue;
        }
        let owns = fields[8..].iter().any(|range| {
            let mut ends = range.split('-').filter_map(|n| n.parse::<u16>().ok());
            match (ends.next(), ends.next()) {
                (Some(a), Some(b)) => (a..=b).contains(&slot),
                (Some(a), None) => a == slot,
                _ => false,
            }
        });
        if owns {
            let address = fields[1].split('@').next()?;
            return address.rsplit_once(':')?.1.parse().ok();
        }
    }
    None
}
