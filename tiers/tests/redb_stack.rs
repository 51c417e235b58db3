//! Guards the embedded default stack, L1 over a real redb file: values that do not survive a
//! restart, a restart that resets their TTL, a `redb://` URL that does not open, and pattern
//! invalidation that misses the disk.
#![cfg(feature = "redb")]

use std::sync::Arc;
use std::time::Duration;

use strata::{CacheConfig, Postcard, RedbTier, TierOptions, TierRegistry, TieredCache};

type Strings = TieredCache<String, Postcard<String>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_survive_a_restart_with_their_remaining_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l3.redb");
    {
        let disk = Arc::new(RedbTier::builder(&path).open_async().await.unwrap());
        let cache = Strings::builder().tier(disk.clone()).build();
        let _ = cache
            .set_with_ttl("session:1", "alive".into(), Duration::from_secs(3))
            .await
            .unwrap();
        let _ = cache.set("user:1", "Ada".into()).await.unwrap();
        let _ = cache.set("user:2", "Grace".into()).await.unwrap();
        disk.close().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let disk = Arc::new(RedbTier::builder(&path).open_async().await.unwrap());
    let cache = Strings::builder()
        .tier_with(
            disk.clone(),
            TierOptions::default().ttl(Duration::from_secs(3600)),
        )
        .build();
    assert_eq!(cache.get("session:1").await.as_deref(), Some("alive"));
    let left = cache.l1().time_to_live_of("session:1").unwrap().unwrap();
    assert!(
        left <= Duration::from_millis(2_600),
        "TTL restarted: {left:?}"
    );
    assert_eq!(cache.get("user:1").await.as_deref(), Some("Ada"));

    let report = cache.invalidate_pattern("user:*").await.unwrap();
    assert_eq!(report.tiers, [("redb".to_owned(), 2)]);
    cache.l1().clear();
    assert_eq!(cache.get("user:2").await, None);
    assert_eq!(cache.get("session:1").await.as_deref(), Some("alive"));
    disk.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_opens_from_a_redb_url() {
    let dir = tempfile::tempdir().unwrap();
    let config = CacheConfig::from_toml_str(&format!(
        "memory_max_entries = 1000\ndisk_path = {:?}\ndisk_max_size = 67108864\ndisk_ttl = \"1h\"",
        dir.path().join("cache.redb")
    ))
    .unwrap();
    let cache: Strings = config.build(&TierRegistry::default()).await.unwrap();
    let _ = cache.set("k", "v".into()).await.unwrap();
    cache.l1().clear();
    assert_eq!(cache.get("k").await.as_deref(), Some("v"));
    assert_eq!(cache.stats().tiers[0].name, "redb");
    assert!(cache.health_check().await.is_healthy());

    let registry = TierRegistry::default();
    // A path whose parent is a regular file cannot be opened (not even by root).
    let blocker = dir.path().join("plain-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let bad = registry
        .open(&format!("redb://{}/y.redb", blocker.display()))
        .await;
    assert!(bad.is_err());
    let bad = registry.open("redb:///tmp/x.redb?max_size=huge").await;
    assert!(bad.unwrap_err().to_string().contains("max_size"));
}
