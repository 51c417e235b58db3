//! An axum app on Strata's embedded default (L1 + a redb file) behind the HTTP cache layer,
//! with rules:
//!
//! ```text
//! cargo run --release -p strata-http --example server       # listens on 127.0.0.1:3000
//! curl -si localhost:3000/api/products      # MISS (200 ms), then HIT
//! curl -si localhost:3000/api/products?utm_source=mail      # HIT: tracking parameters ignored
//! curl -si -X POST localhost:3000/api/products              # invalidates /api/products
//! curl -si localhost:3000/api/me -H 'authorization: Bearer alice'   # per-user entry
//! curl -s  localhost:3000/_cache            # stats and tier health as JSON
//! ```
//!
//! Restart it and the entries are still there (the redb tier); `Ctrl-C` closes the tiers.

use std::time::Duration;

use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use strata_http::strata::RedbTier;
use strata_http::{HttpCache, HttpCacheConfig, HttpStore, Rule};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join("strata-http-example.redb");
    let disk = RedbTier::builder(&path)
        .max_size(256 << 20)
        .recreate_if_corrupt(true)
        .open_async()
        .await?;
    let store = HttpStore::builder()
        .memory_max_entries(10_000)
        .tier(std::sync::Arc::new(disk))
        .build();
    let config = HttpCacheConfig::api_preset()
        .admin_path("/_cache")
        .exclude("/api/admin/**")
        .rule(
            Rule::new("/api/products")
                .name("products")
                .ttl(Duration::from_secs(300)),
        )
        .rule(
            Rule::new("/api/me")
                .name("per-user")
                .cache_authenticated(true)
                .cache_private(true),
        );
    let cache = HttpCache::new(store, &config)?;

    let app = Router::new()
        .route("/api/products", get(products).post(|| async { "created" }))
        .route("/api/me", get(me))
        .route("/api/admin/stats", get(|| async { "never cached" }))
        .layer(cache.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "listening on http://127.0.0.1:3000 (cache file {})",
        path.display()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    cache.close().await?;
    println!("tiers closed");
    Ok(())
}

/// A slow listing (a database query, say).
async fn products() -> impl IntoResponse {
    tokio::time::sleep(Duration::from_millis(200)).await;
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"[{"id":1,"name":"lamp"}]"#,
    )
}

/// A per-user page: private, cached per user because the rule opts in.
async fn me(headers: HeaderMap) -> impl IntoResponse {
    let user = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("anonymous")
        .to_owned();
    (
        [(header::CACHE_CONTROL, "private, max-age=60")],
        format!("hello, {user}\n"),
    )
}
