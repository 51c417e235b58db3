//! The layer's own cost on a fresh hit, without sockets: an axum router called in a loop, the
//! same handler with and without the layer. Ignored (a measurement, not a test of behaviour):
//! `cargo test --release -p strata-http --test hit_cost -- --ignored --nocapture`

use std::time::Instant;

use axum::body::Body;
use axum::http::{header, Request};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use strata_http::{HttpCache, HttpCacheConfig, HttpStore};
use tower::ServiceExt;

async fn per_request_ns(app: &Router, path: &str, n: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let request = Request::get(path)
            .header(header::HOST, "127.0.0.1:8091")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), 1024);
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

#[tokio::test(flavor = "current_thread")]
#[ignore]
async fn hit_cost() {
    let body = bytes::Bytes::from(vec![b'x'; 1024]);
    let cache = HttpCache::new(HttpStore::builder().build(), &HttpCacheConfig::default()).unwrap();
    let handler = move || {
        let body = body.clone();
        async move { ([(header::CACHE_CONTROL, "max-age=3600")], body) }
    };
    let app = Router::new()
        .route("/plain", get(handler.clone()))
        .route("/cached", get(handler).layer(cache.layer()));
    let n = 200_000;
    let mut plain = Vec::new();
    let mut cached = Vec::new();
    for _ in 0..5 {
        plain.push(per_request_ns(&app, "/plain", n).await);
        cached.push(per_request_ns(&app, "/cached", n).await);
    }
    plain.sort_by(f64::total_cmp);
    cached.sort_by(f64::total_cmp);
    println!(
        "router call, median of 5 x {n}: plain {:.0} ns, cached hit {:.0} ns (+{:.0} ns)",
        plain[2],
        cached[2],
        cached[2] - plain[2]
    );
    assert!(cache.stats().hits >= u64::from(n) * 5 - 1);
}
