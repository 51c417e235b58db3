//! `strata-proxy` in front of a real axum origin, over real sockets: the RFC behaviours of the
//! layer through the proxy (freshness, Vary variants, 304 revalidation, HEAD, unsafe-method
//! invalidation, Age), every method forwarded, and a graceful shutdown that closes the tiers.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::client::Http;
use common::origin::Origin;
use common::Server;
use strata_http::strata::CacheConfig;
use strata_proxy::{run, ProxyConfig};
use tokio::sync::oneshot;

struct Proxy {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), strata_proxy::ProxyError>>,
}

impl Proxy {
    /// A proxy to `upstream` over L1 and the redb file `disk`.
    async fn start(upstream: &str, disk: &std::path::Path) -> Proxy {
        let mut config = ProxyConfig::for_upstream(upstream);
        config.cache = Some(CacheConfig {
            disk_path: Some(disk.to_owned()),
            ..CacheConfig::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            run(&config, listener, async {
                let _ = stopped.await;
            })
            .await
        });
        Proxy {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops it the graceful way and checks that it ended without error.
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the proxy stopped within 10 s")
            .unwrap()
            .unwrap();
    }
}

async fn setup() -> (Server, Origin, Proxy, Http, tempfile::TempDir) {
    let origin = Origin::default();
    let server = Server::start(origin.router()).await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(
        &format!("http://{}", server.addr),
        &dir.path().join("p.redb"),
    )
    .await;
    (server, origin, proxy, Http::default(), dir)
}

#[tokio::test]
async fn freshness_age_and_head_through_the_proxy() {
    let (_server, origin, proxy, http, _dir) = setup().await;
    let path = "/f?cc=max-age%3D60";
    let first = http.get(&proxy.url(path)).await;
    assert_eq!(first.cache(), "MISS");
    let second = http.get(&proxy.url(path)).await;
    assert_eq!((second.cache(), second.text()), ("HIT", first.text()));
    assert!(second.header("age").is_some());
    let head = http.send(Method::HEAD, &proxy.url(path), &[]).await;
    assert_eq!(head.cache(), "HIT");
    assert!(head.body.is_empty());
    assert_eq!(origin.count(path), 1);
    // Strict RFC mode: a response without freshness or validator is not reused.
    http.get(&proxy.url("/plain")).await;
    assert_eq!(http.get(&proxy.url("/plain")).await.cache(), "MISS");
    proxy.stop().await;
}

#[tokio::test]
async fn vary_variants_and_revalidation_through_the_proxy() {
    let (_server, origin, proxy, http, _dir) = setup().await;
    let path = "/v?cc=max-age%3D60&vary=accept-language&echo=accept-language";
    for _ in 0..2 {
        for lang in ["en", "de"] {
            let reply = http
                .get_with(&proxy.url(path), &[("accept-language", lang.as_bytes())])
                .await;
            assert!(reply.text().ends_with(lang), "{}", reply.text());
        }
    }
    assert_eq!(origin.count(path), 2);
    let path = "/r?cc=max-age%3D1&etag=e1";
    let first = http.get(&proxy.url(path)).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let revalidated = http.get(&proxy.url(path)).await;
    assert_eq!(
        (revalidated.cache(), revalidated.text()),
        ("HIT", first.text())
    );
    assert_eq!(origin.count(path), 2);
    let conditional = http
        .get_with(&proxy.url(path), &[("if-none-match", b"\"e1\"")])
        .await;
    assert_eq!(conditional.status, StatusCode::NOT_MODIFIED);
    proxy.stop().await;
}

#[tokio::test]
async fn every_method_is_forwarded_and_unsafe_ones_invalidate() {
    let (_server, origin, proxy, http, _dir) = setup().await;
    let path = "/item?cc=max-age%3D60";
    // Each unsafe method on its own: fill, check the hit, send it, check it invalidated.
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        http.get(&proxy.url(path)).await;
        assert_eq!(http.get(&proxy.url(path)).await.cache(), "HIT", "{method}");
        let reply = http.send(method.clone(), &proxy.url(path), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{method}");
        assert_eq!(
            http.get(&proxy.url(path)).await.cache(),
            "MISS",
            "{method} invalidated"
        );
    }
    // A safe method is forwarded and invalidates nothing.
    let options = http.send(Method::OPTIONS, &proxy.url(path), &[]).await;
    assert_eq!(options.status, StatusCode::OK);
    assert_eq!(http.get(&proxy.url(path)).await.cache(), "HIT");
    // The first fill, a refill after each of the 4 invalidations (the next round's first GET
    // is then a hit), the 4 unsafe requests and the OPTIONS.
    assert_eq!(origin.count(path), 1 + 4 + 4 + 1);
    proxy.stop().await;
}

#[tokio::test]
async fn a_dead_origin_is_a_502_or_a_stale_serve_and_entries_survive_a_restart_on_the_disk_tier() {
    let origin = Origin::default();
    let server = Server::start(origin.router()).await;
    let upstream = format!("http://{}", server.addr);
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("p.redb");
    let http = Http::default();
    let path = "/kept?cc=max-age%3D600";
    let proxy = Proxy::start(&upstream, &disk).await;
    let first = http.get(&proxy.url(path)).await;
    assert_eq!(first.cache(), "MISS");
    let short = "/short?cc=max-age%3D1";
    let strict = "/strict?cc=max-age%3D1%2C%20must-revalidate";
    let short_first = http.get(&proxy.url(short)).await;
    http.get(&proxy.url(strict)).await;
    drop(server);
    let gone = http.get(&proxy.url("/other")).await;
    assert_eq!(gone.status, StatusCode::BAD_GATEWAY);
    // Stale entries: served while the origin is unreachable, unless they forbid it.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let stale = http.get(&proxy.url(short)).await;
    assert_eq!((stale.status, stale.cache()), (StatusCode::OK, "STALE"));
    assert_eq!(stale.text(), short_first.text());
    let refused = http.get(&proxy.url(strict)).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_GATEWAY,
        "must-revalidate is never served stale"
    );
    let old_host = proxy.addr.to_string();
    proxy.stop().await;
    // Started again on the same file, origin gone: the entry comes from the disk tier (the key
    // holds the Host the client sent, so ask with the old one).
    let proxy = Proxy::start(&upstream, &disk).await;
    let again = http
        .get_with(&proxy.url(path), &[("host", old_host.as_bytes())])
        .await;
    assert_eq!((again.status, again.cache()), (StatusCode::OK, "HIT"));
    assert_eq!(again.text(), first.text());
    proxy.stop().await;
}

/// A request whose `Connection` names an end-to-end header reaches the origin without it (the
/// proxy drops what `Connection` names), so the cache must not store its response for others.
#[tokio::test]
async fn connection_named_headers_cannot_poison_a_shared_entry() {
    let (_server, origin, proxy, http, _dir) = setup().await;
    let path = "/lang?cc=max-age%3D60&vary=accept-language&echo=accept-language";
    let attack = http
        .get_with(
            &proxy.url(path),
            &[
                ("accept-language", b"fr"),
                ("connection", b"accept-language"),
            ],
        )
        .await;
    assert_eq!(attack.cache(), "BYPASS");
    let french = http
        .get_with(&proxy.url(path), &[("accept-language", b"fr")])
        .await;
    assert!(french.text().ends_with("echo=fr"), "{}", french.text());
    assert_eq!(origin.count(path), 2);
    proxy.stop().await;
}
