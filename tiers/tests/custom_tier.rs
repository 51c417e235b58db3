//! The example custom tier (`examples/custom_tier/dir_tier.rs`, written against `strata-tier`
//! alone) keeps the whole `Tier` contract and opens from its own URL scheme.

#[path = "../examples/custom_tier/dir_tier.rs"]
#[allow(dead_code)]
mod dir_tier;

use std::sync::Arc;

use strata::{Postcard, Tier, TierFactory, TierRegistry, TieredCache};
use strata_testing::contract;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_dir_tier_keeps_the_tier_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let tier = Arc::new(dir_tier::DirTier::open(&path, 512 * 1024).unwrap());
    let reopen: contract::Reopen = Box::new(move || {
        let path = path.clone();
        Box::pin(async move {
            Arc::new(dir_tier::DirTier::open(&path, 512 * 1024).unwrap()) as Arc<dyn Tier>
        })
    });
    let report = contract::check(
        tier,
        contract::Options::default()
            .max_value_size(512 * 1024)
            .reopen(reopen),
    )
    .await
    .unwrap();
    assert!(
        report.checked.contains(&"ttl_is_never_exceeded"),
        "{report}"
    );
    assert!(
        report.checked.contains(&"close_keeps_acknowledged_writes"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_dir_tier_opens_from_its_url_in_a_stack() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TierRegistry::default();
    registry.register_factory(Arc::new(dir_tier::DirFactory));
    assert!(registry.schemes().any(|s| s == "dir"));
    let url = format!("dir://{}?max_value_size=4096", dir.path().display());
    let tier = registry.open(&url).await.unwrap();
    let cache: TieredCache<String, Postcard<String>> = TieredCache::builder().tier(tier).build();
    let _ = cache.set("k", "v".into()).await.unwrap();
    cache.l1().clear();
    assert_eq!(cache.get("k").await.as_deref(), Some("v"));
    // Random letters: LZ4 cannot shrink them under the tier's 4 KiB limit.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let noise: String = (0..10_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect();
    let big = cache.set("big", noise).await.unwrap();
    assert!(
        !big.is_complete(),
        "a value over the tier's limit is refused by it"
    );
    let typo = registry
        .open(&format!("dir://{}?max_valu_size=1", dir.path().display()))
        .await
        .unwrap_err();
    assert!(typo.to_string().contains("max_valu_size"), "{typo}");
    assert_eq!(dir_tier::DirFactory.schemes(), ["dir"]);
    cache.close().await.unwrap();
}
