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
        cache.close().await.unwrap();
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
    cache.close().await.unwrap();
}

/// Shutdown: N values written with the fastest acknowledgement, `close()`, then the file is
/// reopened: every value is there and redb did not have to repair the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_every_acknowledged_write() {
    const N: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("close.redb");
    {
        let disk = Arc::new(
            RedbTier::builder(&path)
                .ack(strata::redb::WriteAck::Enqueued)
                .durability(strata::redb::Durability::Periodic(Duration::from_secs(
                    3600,
                )))
                .open_async()
                .await
                .unwrap(),
        );
        let cache = Strings::builder().tier(disk).build();
        for i in 0..N {
            let _ = cache.set(&format!("k{i}"), format!("v{i}")).await.unwrap();
        }
        cache.close().await.unwrap();
        // Closing again is harmless.
        cache.close().await.unwrap();
    }
    let disk = Arc::new(RedbTier::builder(&path).open_async().await.unwrap());
    assert!(
        !disk.stats().repaired,
        "the file needed a repair after close"
    );
    let cache = Strings::builder().tier(disk).build();
    for i in 0..N {
        assert_eq!(
            cache.get(&format!("k{i}")).await,
            Some(format!("v{i}")),
            "k{i} was lost"
        );
    }
    cache.close().await.unwrap();
}

/// A disk path with characters that mean something in a URL opens exactly that file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_path_with_url_characters_opens_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a #1?x=%20.redb");
    let config = CacheConfig {
        disk_path: Some(path.clone()),
        ..CacheConfig::default()
    };
    let cache: Strings = config.build(&TierRegistry::default()).await.unwrap();
    let _ = cache.set("k", "v".into()).await.unwrap();
    cache.close().await.unwrap();
    assert!(path.exists(), "opened another file than {path:?}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
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
    // A misspelt option is refused (it would otherwise give an unbounded file).
    let typo = registry
        .open("redb:///tmp/strata-typo.redb?max_szie=1GiB")
        .await
        .unwrap_err();
    assert!(typo.to_string().contains("max_szie"), "{typo}");
    assert!(!std::path::Path::new("/tmp/strata-typo.redb").exists());
}

/// A damaged cache file at start: configuration chooses between starting empty (the default,
/// a cache's contents can be rebuilt) and failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_disk_file_is_recreated_or_refused_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.redb");
    std::fs::write(&path, vec![0xA5u8; 64 * 1024]).unwrap();
    let refuse = CacheConfig {
        disk_path: Some(path.clone()),
        disk_recreate_if_corrupt: false,
        ..CacheConfig::default()
    };
    let refused = refuse
        .build::<String, Postcard<String>>(&TierRegistry::default())
        .await;
    assert!(refused.is_err(), "a damaged file was opened");
    let recreate = CacheConfig {
        disk_path: Some(path.clone()),
        ..CacheConfig::default()
    };
    assert!(
        recreate.disk_recreate_if_corrupt,
        "recreating is the default"
    );
    let cache: Strings = recreate.build(&TierRegistry::default()).await.unwrap();
    let _ = cache.set("k", "v".into()).await.unwrap();
    cache.l1().clear();
    assert_eq!(cache.get("k").await.as_deref(), Some("v"));
    cache.close().await.unwrap();
}
