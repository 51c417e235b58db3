//! The Redis tier against a real server, beyond the `Tier` contract: health and stats per node,
//! credentials in the URL (a password, an ACL user), typed errors for a dead server, wrong
//! credentials and bad URLs, a namespace holding glob characters, the pool healing after a
//! restart, and the factory's schemes.

mod common;

use std::time::Duration;

use strata_redis::{RedisFactory, RedisTier, RedisTierError};
use strata_testing::redis_server::RedisServer;
use strata_tier::{Bytes, Health, KeyPattern, Tier, TierFactory, WriteIntent};

fn value(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_stats_report_each_node_the_pool_and_the_bus() {
    let Some(mut server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let tier = common::standalone(&server, &common::namespace("health"))
        .pool_size(4)
        .open()
        .await
        .unwrap();
    assert_eq!(tier.health().await, Health::Healthy);
    tier.set("k", value("v"), None, WriteIntent::Update)
        .await
        .unwrap();
    assert!(tier.get("k").await.is_hit());
    let stats = tier.stats();
    assert_eq!(stats.nodes.len(), 1);
    assert_eq!(
        stats.nodes[0].address,
        format!("127.0.0.1:{}", server.port())
    );
    assert!(stats.nodes[0].round_trip.is_some(), "{stats:?}");
    assert_eq!(stats.pool.max, 4);
    assert!(
        stats.pool.connections >= 1 && stats.pool.connections <= 4,
        "{stats:?}"
    );
    assert!(stats.operations >= 3 && stats.failures == 0, "{stats:?}");
    assert!(
        stats.bus.published >= 1,
        "the update was announced: {stats:?}"
    );

    server.kill();
    match tier.health().await {
        Health::Down(reason) => assert!(reason.contains("127.0.0.1"), "{reason}"),
        other => panic!("a dead server's health: {other:?}"),
    }
    assert!(tier.get("k").await.is_degraded());
    let failed = tier.stats();
    assert!(failed.failures >= 2, "{failed:?}");
    assert!(failed.nodes[0].error.is_some(), "{failed:?}");

    // The pool heals by itself once the server is back (empty, as nothing was persisted).
    server.restart().unwrap();
    let healed = common::eventually_async(Duration::from_secs(10), || async {
        tier.set("k2", value("v2"), None, WriteIntent::Update)
            .await
            .is_ok()
            && tier.get("k2").await.is_hit()
    })
    .await;
    assert!(
        healed,
        "the tier did not recover after the restart: {:?}",
        tier.stats()
    );
    assert_eq!(tier.health().await, Health::Healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_url_are_used_and_wrong_ones_are_a_typed_error() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let port = server.port();
    let ok = |reply: String| assert!(reply.starts_with("+OK"), "{reply}");
    ok(server
        .command(&[
            "ACL", "SETUSER", "app", "on", ">s3cr@t", "~*", "&*", "+@all",
        ])
        .unwrap());
    ok(server
        .command(&["CONFIG", "SET", "requirepass", "topsecret"])
        .unwrap());

    // An ACL user (with a percent-encoded '@' in the password) and the default user's password.
    for url in [
        format!("redis://app:s3cr%40t@127.0.0.1:{port}?namespace=acl&timeout=300ms"),
        format!("redis://:topsecret@127.0.0.1:{port}?namespace=pass&timeout=300ms"),
    ] {
        let tier = RedisFactory
            .open(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        tier.set("k", value("v"), None, WriteIntent::Update)
            .await
            .unwrap();
        assert!(tier.get("k").await.is_hit());
    }

    // No password, or a wrong one: opening fails with a typed error that keeps the password out.
    for url in [
        format!("redis://127.0.0.1:{port}?connect_timeout=300ms"),
        format!("redis://app:wrong-pw@127.0.0.1:{port}?connect_timeout=300ms"),
    ] {
        let error = RedisFactory::builder_from_url(&url)
            .unwrap()
            .open()
            .await
            .unwrap_err();
        assert!(
            matches!(error, RedisTierError::Connect { .. }),
            "{url}: {error}"
        );
        assert!(!error.to_string().contains("wrong-pw"), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_and_bad_urls_are_typed_errors_without_waiting_long() {
    let Some(mut server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let url = server.url();
    server.kill();
    let start = std::time::Instant::now();
    let error = RedisTier::standalone(&url)
        .connect_timeout(Duration::from_millis(300))
        .open()
        .await
        .unwrap_err();
    assert!(matches!(error, RedisTierError::Connect { .. }), "{error}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    for url in [
        "redis://127.0.0.1:1?nope=1",
        "rediss+cluster://",
        "redis://[::1",
    ] {
        assert!(RedisFactory.open(url).await.is_err(), "{url} opened");
    }
    let error = RedisTier::standalone(&url)
        .namespace("")
        .open()
        .await
        .unwrap_err();
    assert!(matches!(error, RedisTierError::InvalidConfig(_)), "{error}");
    assert_eq!(
        RedisFactory.schemes(),
        ["redis", "rediss", "redis+cluster", "rediss+cluster"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_with_glob_characters_clears_only_itself() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let weird = common::standalone(&server, "we*rd[1]?")
        .open()
        .await
        .unwrap();
    // `weXrd1Z` would match the unescaped glob `we*rd[1]?:*`.
    let plain = common::standalone(&server, "weXrd1Z").open().await.unwrap();
    for tier in [&weird, &plain] {
        tier.set("user:1", value("v"), None, WriteIntent::Update)
            .await
            .unwrap();
        tier.set("post:1", value("v"), None, WriteIntent::Update)
            .await
            .unwrap();
    }
    let removed = weird
        .delete_matching(&KeyPattern::new("user:*").unwrap())
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert!(weird.get("post:1").await.is_hit());
    weird.clear().await.unwrap();
    assert!(!weird.get("post:1").await.is_hit());
    assert!(
        plain.get("user:1").await.is_hit(),
        "another namespace lost a key"
    );
    assert!(
        plain.get("post:1").await.is_hit(),
        "another namespace lost a key"
    );
    assert!(server
        .command(&["EXISTS", "we*rd[1]?:post:1"])
        .unwrap()
        .starts_with(":0"));
    assert!(server
        .command(&["EXISTS", "weXrd1Z:post:1"])
        .unwrap()
        .starts_with(":1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_are_set_in_milliseconds_and_fills_use_nx() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let tier = common::standalone(&server, "ttl").open().await.unwrap();
    tier.set(
        "k",
        value("v1"),
        Some(Duration::from_millis(1500)),
        WriteIntent::Update,
    )
    .await
    .unwrap();
    let pttl: i64 = server
        .command(&["PTTL", "ttl:k"])
        .unwrap()
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    assert!((1000..=1500).contains(&pttl), "PTTL {pttl}");
    let kept = tier
        .set(
            "k",
            value("v2"),
            Some(Duration::from_secs(60)),
            WriteIntent::Fill,
        )
        .await
        .unwrap();
    assert_eq!(kept, strata_tier::Stored::Kept);
    assert_eq!(tier.get("k").await.into_hit(), Some(value("v1")));
    tier.set("none", value("x"), None, WriteIntent::Update)
        .await
        .unwrap();
    assert!(server
        .command(&["PTTL", "ttl:none"])
        .unwrap()
        .starts_with(":-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_reads_select_the_database_and_survive_an_error_reply() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    // Database 2: the write lanes and the direct read connections both select it.
    let tier = RedisTier::standalone(format!("{}/2", server.url()))
        .namespace("db")
        .open()
        .await
        .unwrap();
    tier.set("k", value("v"), None, WriteIntent::Update)
        .await
        .unwrap();
    assert_eq!(tier.get("k").await.into_hit(), Some(value("v")));
    assert!(
        server
            .command(&["EXISTS", "db:k"])
            .unwrap()
            .starts_with(":0"),
        "written to db 0"
    );

    // A key of another type under the namespace: the read answers degraded (an error reply),
    // and the same connections go on serving.
    let other = RedisTier::standalone(server.url())
        .namespace("db")
        .open()
        .await
        .unwrap();
    other
        .set("plain", value("p"), None, WriteIntent::Update)
        .await
        .unwrap();
    assert!(server
        .command(&["HSET", "db:h", "f", "v"])
        .unwrap()
        .starts_with(":1"));
    for _ in 0..3 {
        assert!(other.get("h").await.is_degraded());
        assert_eq!(other.get("plain").await.into_hit(), Some(value("p")));
    }
    let stats = other.stats();
    assert!(
        stats.pool.connections <= 2,
        "error replies must not cost connections: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_would_break_sharing_or_the_bus_are_refused() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    for (builder, says) in [
        (
            RedisTier::standalone(server.url()).namespace("shop:eu"),
            "':'",
        ),
        (
            RedisTier::standalone(server.url()).namespace("{shop}"),
            "'{'",
        ),
        (
            RedisTier::standalone(server.url()).heartbeat(Duration::ZERO),
            "heartbeat",
        ),
        (
            RedisTier::standalone(server.url()).timeout(Duration::ZERO),
            "timeout",
        ),
    ] {
        let error = builder.open().await.unwrap_err();
        assert!(
            matches!(error, RedisTierError::InvalidConfig(_)) && error.to_string().contains(says),
            "{error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_below_a_millisecond_store_nothing_and_huge_ones_are_clamped() {
    let Some(server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let tier = common::standalone(&server, "edges").open().await.unwrap();
    tier.set("k", value("old"), None, WriteIntent::Update)
        .await
        .unwrap();
    // An update already expired removes the value it replaces; a fill already expired keeps it.
    let kept = tier
        .set(
            "k",
            value("fill"),
            Some(Duration::from_micros(500)),
            WriteIntent::Fill,
        )
        .await
        .unwrap();
    assert_eq!(kept, strata_tier::Stored::Written);
    assert_eq!(tier.get("k").await.into_hit(), Some(value("old")));
    tier.set("k", value("new"), Some(Duration::ZERO), WriteIntent::Update)
        .await
        .unwrap();
    assert!(
        !tier.get("k").await.is_hit(),
        "an expired update must not be readable"
    );
    // A TTL beyond Redis's range is clamped, not an error (which would count as a fault).
    tier.set("long", value("v"), Some(Duration::MAX), WriteIntent::Update)
        .await
        .unwrap();
    assert!(tier.get("long").await.is_hit());
    // Empty batches answer empty.
    assert!(tier.delete_many(&[]).await.is_empty());
    assert!(tier.set_many(Vec::new()).await.is_empty());
    assert!(tier.get_many(&[]).await.is_empty());
}
