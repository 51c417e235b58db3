//! `strata-bench http-server`: the app `benches/http_load.sh` drives with wrk. Every route
//! answers the same bytes; they differ only in what is in front of the handler:
//!
//! - `/plain`: the handler, no cache (the baseline a cached hit is compared with);
//! - `/cached`: the same handler behind `strata_http`'s layer (every request after the first
//!   is a hit);
//! - `/slow`: a handler that spends 1 ms of CPU (as rendering or serialising would), no cache;
//! - `/slow-cached`: the 1 ms handler behind the layer;
//! - `/sleep`, `/sleep-cached`: a handler that waits 1 ms (as a database call would), without
//!   and with the layer (its uncached rate depends on the connection count: conns / 1 ms);
//! - `/origin`: the handler with `Cache-Control: max-age=3600` and no layer, for
//!   `strata-proxy` to cache in front of this server.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use strata_http::{HttpCache, HttpCacheConfig, HttpStore};

#[derive(clap::Args, Debug)]
pub struct HttpServerArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8091")]
    listen: SocketAddr,
    /// Bytes in every response body.
    #[arg(long, default_value_t = 1024)]
    body_bytes: usize,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

pub fn run(args: &HttpServerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: &HttpServerArgs) -> anyhow::Result<()> {
    let body = Bytes::from(vec![b'x'; args.body_bytes]);
    let store = HttpStore::builder().memory_max_entries(10_000).build();
    let cache = HttpCache::new(store, &HttpCacheConfig::default())?;
    let fast = {
        let body = body.clone();
        move || {
            let body = body.clone();
            async move { ([(header::CACHE_CONTROL, "max-age=3600")], body).into_response() }
        }
    };
    let slow = {
        let body = body.clone();
        move || {
            let body = body.clone();
            async move {
                busy(Duration::from_millis(1));
                ([(header::CACHE_CONTROL, "max-age=3600")], body).into_response()
            }
        }
    };
    let sleep = {
        let body = body.clone();
        move || {
            let body = body.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                ([(header::CACHE_CONTROL, "max-age=3600")], body).into_response()
            }
        }
    };
    let app = Router::new()
        .route("/plain", get(fast.clone()))
        .route("/cached", get(fast.clone()).layer(cache.layer()))
        .route("/slow", get(slow.clone()))
        .route("/slow-cached", get(slow).layer(cache.layer()))
        .route("/sleep", get(sleep.clone()))
        .route("/sleep-cached", get(sleep).layer(cache.layer()))
        .route("/origin", get(fast));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("strata-bench http-server: listening on {}", args.listen);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Spends `time` of CPU on this thread.
fn busy(time: Duration) {
    let start = std::time::Instant::now();
    let mut x = 0u64;
    while start.elapsed() < time {
        for i in 0..256u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
    std::hint::black_box(x);
}
