//! Guards configuration: tiers that do not load from their URLs, custom schemes that cannot
//! join the registry, and bad URLs or settings that panic instead of failing with an error.

use std::sync::Arc;
use std::time::Duration;

use strata::{BytesCache, CacheConfig, ConfigError, RegistryError, Tier, TierRegistry};

use strata_testing::{MemoryFactory, MemoryTier};

/// The default registry with the test crate's `memory://` tiers.
fn registry() -> TierRegistry {
    let mut registry = TierRegistry::default();
    registry.register_factory(Arc::new(MemoryFactory::default()));
    registry
}

#[tokio::test]
async fn a_config_builds_the_whole_stack() {
    let config = CacheConfig::from_toml_str(
        r#"
        memory_max_entries = 100
        memory_ttl = "1m"
        [[tiers]]
        url = "memory://l2"
        ttl = "10s"
        [[tiers]]
        url = "memory://l3?max_entries=1000"
        "#,
    )
    .unwrap();
    let cache: BytesCache = config.build(&registry()).await.unwrap();
    let _ = cache.set("k", "v".into()).await.unwrap();
    let names: Vec<_> = cache.stats().tiers.into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["l2", "l3"]);
    assert!(cache.health_check().await.tiers.contains_key("memory"));
}

#[tokio::test]
async fn custom_plugins_join_the_registry() {
    let shared = Arc::new(MemoryTier::new("custom"));
    let mut registry = TierRegistry::default();
    let handed_out = shared.clone();
    registry.register("acme", move |url| {
        let tier = handed_out.clone();
        Box::pin(async move {
            if url.path() != "/bucket" {
                return Err(format!("unknown bucket {}", url.path()).into());
            }
            Ok(tier as Arc<dyn Tier>)
        })
    });
    assert!(registry.schemes().any(|s| s == "acme"));
    let config = CacheConfig {
        tiers: vec![strata::TierConfig {
            url: "acme://host/bucket".into(),
            ttl: Some(Duration::from_secs(5)),
            timeout: None,
        }],
        ..CacheConfig::default()
    };
    let cache: BytesCache = config.build(&registry).await.unwrap();
    let _ = cache.set("k", "v".into()).await.unwrap();
    assert!(shared.ttl_of("k").unwrap().unwrap() <= Duration::from_secs(5));

    let error = registry.open("acme://host/other").await.unwrap_err();
    assert!(matches!(error, RegistryError::Open { .. }), "{error}");
    assert!(error.to_string().contains("unknown bucket"), "{error}");
}

#[tokio::test]
async fn bad_urls_are_typed_errors() {
    let registry = registry();
    assert!(matches!(
        registry.open("not a url").await,
        Err(RegistryError::BadUrl { .. })
    ));
    let unknown = registry.open("ftp://host/x").await.unwrap_err();
    assert!(matches!(unknown, RegistryError::UnknownScheme { .. }));
    assert!(
        unknown.to_string().contains("memory"),
        "lists the known schemes: {unknown}"
    );
    assert!(registry.open("memory://x?max_entries=lots").await.is_err());
    // A misspelt option is an error naming it, not a silently unbounded tier.
    let typo = registry.open("memory://x?max_entires=5").await.unwrap_err();
    assert!(typo.to_string().contains("max_entires"), "{typo}");

    let config = CacheConfig {
        redis_url: Some("nosuch://user:secret@host".into()),
        ..CacheConfig::default()
    };
    let error = config
        .build::<strata::Bytes, strata::RawBytes>(&registry)
        .await
        .err()
        .unwrap();
    assert!(matches!(error, ConfigError::Tier(_)));
}
