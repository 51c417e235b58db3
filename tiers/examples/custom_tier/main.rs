//! A team's own tier, plugged into Strata by URL: `dir://` (one file per key in a directory),
//! written against `strata-tier` alone (see `dir_tier.rs`), registered under its own scheme
//! and used below L1 from configuration.
//!
//! `cargo run -p strata --example custom_tier [DIR]`

mod dir_tier;

use std::sync::Arc;

use strata::{CacheConfig, Postcard, TierRegistry, TieredCache};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("strata-dir-tier"));
    let mut registry = TierRegistry::default();
    registry.register_factory(Arc::new(dir_tier::DirFactory));
    let config = CacheConfig::from_toml_str(&format!(
        r#"
        memory_max_entries = 1000
        default_ttl = "10m"
        [[tiers]]
        url = "dir://{}?max_value_size=65536"
        ttl = "1h"
        "#,
        dir.display()
    ))?;
    let cache: TieredCache<String, Postcard<String>> = config.build(&registry).await?;
    let report = cache.set("user:1", "Ada".to_owned()).await?;
    println!("set user:1 -> written to {:?}", report.written);
    cache.l1().clear();
    let entry = cache
        .get_entry("user:1")
        .await
        .expect("read back from the dir tier");
    println!(
        "get user:1 -> {:?} from {} (stored {:?} ago)",
        entry.value,
        entry.tier,
        entry.age(std::time::SystemTime::now()).unwrap_or_default()
    );
    cache.invalidate_pattern("user:*").await?;
    println!(
        "after invalidate_pattern(user:*): {:?}",
        cache.get("user:1").await
    );
    println!("health: {}", cache.health_check().await.to_json());
    cache.close().await?;
    Ok(())
}
