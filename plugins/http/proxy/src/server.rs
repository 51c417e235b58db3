//! Running the proxy: the tiers, the layer over [`Forward`], and a server with graceful
//! shutdown.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use strata_http::strata::TierRegistry;
use strata_http::{CachedResponse, HttpCache, HttpCodec};
use tokio::net::TcpListener;

use crate::config::{ProxyConfig, ProxyError};
use crate::forward::Forward;

/// How long the proxy waits for the origin.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the tiers and the HTTP cache of `config`.
pub async fn build_cache(config: &ProxyConfig) -> Result<HttpCache, ProxyError> {
    let registry = TierRegistry::default();
    let store = config
        .cache_config()
        .build::<CachedResponse, HttpCodec>(&registry)
        .await?;
    Ok(HttpCache::new(store, &config.http)?)
}

/// The proxy's app: every request through `cache`'s layer to the upstream.
pub fn router(config: &ProxyConfig, cache: &HttpCache) -> Result<Router, ProxyError> {
    let upstream = config
        .upstream
        .as_deref()
        .ok_or_else(|| ProxyError::Upstream(String::new()))?;
    let forward = Forward::new(upstream, UPSTREAM_TIMEOUT)?;
    let service = tower::ServiceBuilder::new()
        .layer(cache.layer())
        .service(forward);
    Ok(Router::new().fallback_service(service))
}

/// Serves on `listener` until `shutdown` resolves, then lets open requests finish and closes
/// the tiers.
pub async fn run(
    config: &ProxyConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProxyError> {
    let cache = build_cache(config).await?;
    let app = router(config, &cache)?;
    serve(app, cache, listener, shutdown).await
}

/// Serves `app` (made by [`router`] over `cache`) on `listener` until `shutdown` resolves,
/// then lets open requests finish and closes the tiers.
pub async fn serve(
    app: Router,
    cache: HttpCache,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProxyError> {
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ProxyError::Serve);
    if let Err(error) = cache.close().await {
        tracing::warn!(%error, "closing the tiers failed");
    }
    served
}
