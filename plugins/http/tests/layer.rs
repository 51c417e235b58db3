//! The layer over real HTTP: a real axum origin behind `CacheLayer` on a loopback port, a real
//! client; one test per rule of the layer.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::client::Http;
use common::origin::Origin;
use common::Server;
use strata_http::{HttpCache, HttpCacheConfig, HttpStore, Rule};

struct App {
    server: Server,
    origin: Origin,
    cache: HttpCache,
    http: Http,
}

impl App {
    async fn start(config: HttpCacheConfig) -> App {
        Self::with_cache(|store| HttpCache::new(store, &config).unwrap()).await
    }

    async fn with_cache(make: impl FnOnce(HttpStore) -> HttpCache) -> App {
        let origin = Origin::default();
        let cache = make(HttpStore::builder().memory_max_entries(10_000).build());
        let server = Server::start(origin.router().layer(cache.layer())).await;
        App {
            server,
            origin,
            cache,
            http: Http::default(),
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    async fn get(&self, path: &str) -> common::client::Reply {
        self.http.get(&self.url(path)).await
    }

    async fn get_with(&self, path: &str, headers: &[(&str, &[u8])]) -> common::client::Reply {
        self.http.get_with(&self.url(path), headers).await
    }
}

#[tokio::test]
async fn a_fresh_response_is_served_from_the_cache_with_age() {
    let app = App::start(HttpCacheConfig::default()).await;
    let path = "/fresh?cc=max-age%3D60";
    let first = app.get(path).await;
    assert_eq!(first.cache(), "MISS");
    let second = app.get(path).await;
    assert_eq!(second.cache(), "HIT");
    assert_eq!(second.text(), first.text());
    assert!(second.header("age").is_some(), "a hit carries Age");
    assert_eq!(app.origin.count(path), 1);
    let stats = app.cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.stored), (1, 1, 1));
}

#[tokio::test]
async fn no_store_private_and_expired_responses_are_not_reused() {
    let app = App::start(HttpCacheConfig::default()).await;
    for path in ["/ns?cc=no-store", "/pv?cc=private%2C%20max-age%3D60"] {
        app.get(path).await;
        let again = app.get(path).await;
        assert_eq!(again.cache(), "MISS", "{path}");
        assert_eq!(app.origin.count(path), 2, "{path}");
    }
    let path = "/short?cc=max-age%3D1";
    app.get(path).await;
    assert_eq!(app.get(path).await.cache(), "HIT");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = app.get(path).await;
    assert_eq!(
        late.cache(),
        "MISS",
        "an expired entry without a validator is fetched again"
    );
    assert_eq!(app.origin.count(path), 2);
}

#[tokio::test]
async fn request_directives_no_cache_max_age_and_only_if_cached() {
    let app = App::start(HttpCacheConfig::default()).await;
    let path = "/rd?cc=max-age%3D60";
    app.get(path).await;
    let forced = app.get_with(path, &[("cache-control", b"no-cache")]).await;
    assert_eq!(forced.cache(), "MISS");
    let old_enough = app
        .get_with(path, &[("cache-control", b"max-age=3600")])
        .await;
    assert_eq!(old_enough.cache(), "HIT");
    let missing = app
        .get_with("/never-seen", &[("cache-control", b"only-if-cached")])
        .await;
    assert_eq!(missing.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(app.origin.count("/never-seen"), 0);
}

#[tokio::test]
async fn each_vary_variant_is_stored_separately() {
    let app = App::start(HttpCacheConfig::default()).await;
    let path = "/v?cc=max-age%3D60&vary=accept-language&echo=accept-language";
    let en = app.get_with(path, &[("accept-language", b"en")]).await;
    let fr = app.get_with(path, &[("accept-language", b"fr")]).await;
    assert_eq!((en.cache(), fr.cache()), ("MISS", "MISS"));
    for _ in 0..3 {
        let en_again = app.get_with(path, &[("accept-language", b"en")]).await;
        let fr_again = app.get_with(path, &[("accept-language", b"fr")]).await;
        assert_eq!((en_again.cache(), fr_again.cache()), ("HIT", "HIT"));
        assert!(en_again.text().ends_with("echo=en"), "{}", en_again.text());
        assert!(fr_again.text().ends_with("echo=fr"), "{}", fr_again.text());
    }
    let none = app.get(path).await;
    assert_eq!(none.cache(), "MISS", "no header is a third variant");
    assert_eq!(app.origin.count(path), 3);
}

#[tokio::test]
async fn a_stale_entry_is_revalidated_and_a_304_serves_the_stored_body() {
    let app = App::start(HttpCacheConfig::default()).await;
    let path = "/reval?cc=max-age%3D1&etag=v1";
    let first = app.get(path).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let second = app.get(path).await;
    assert_eq!(second.cache(), "HIT");
    assert_eq!(
        second.text(),
        first.text(),
        "the stored body, refreshed by a 304"
    );
    assert_eq!(app.origin.count(path), 2, "one full response, one 304");
    assert_eq!(app.cache.stats().revalidations, 1);
    // Refreshed: fresh again for another second.
    assert_eq!(app.get(path).await.cache(), "HIT");
    assert_eq!(app.origin.count(path), 2);
    // Last-Modified works the same way.
    let path = "/reval-lm?cc=no-cache&lm=3600";
    let first = app.get(path).await;
    let second = app.get(path).await;
    assert_eq!((second.cache(), second.text()), ("HIT", first.text()));
    assert_eq!(app.origin.count(path), 2);
}

#[tokio::test]
async fn a_clients_conditional_request_gets_a_304_from_the_cache() {
    let app = App::start(HttpCacheConfig::default()).await;
    let path = "/cond?cc=max-age%3D60&etag=abc";
    let first = app.get_with(path, &[("if-none-match", b"\"abc\"")]).await;
    assert_eq!(
        first.status,
        StatusCode::NOT_MODIFIED,
        "answered from the response just stored"
    );
    let hit = app.get_with(path, &[("if-none-match", b"W/\"abc\"")]).await;
    assert_eq!((hit.status, hit.cache()), (StatusCode::NOT_MODIFIED, "HIT"));
    assert!(hit.body.is_empty());
    let other = app.get_with(path, &[("if-none-match", b"\"zzz\"")]).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(app.origin.count(path), 1);
    assert_eq!(app.cache.stats().not_modified, 2);
}

#[tokio::test]
async fn head_is_served_from_the_get_entry() {
    let app = App::start(HttpCacheConfig::default()).await;
    let path = "/head?cc=max-age%3D60";
    let get = app.get(path).await;
    let head = app.http.send(Method::HEAD, &app.url(path), &[]).await;
    assert_eq!(head.cache(), "HIT");
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), get.header("content-length"));
    assert_eq!(app.origin.count(path), 1);
}

#[tokio::test]
async fn a_successful_unsafe_method_invalidates_the_uri_and_its_location() {
    let app = App::start(HttpCacheConfig::default()).await;
    let target = "/item?cc=max-age%3D60";
    let other = "/other?cc=max-age%3D60";
    app.get(target).await;
    app.get(other).await;
    assert_eq!(app.get(target).await.cache(), "HIT");
    // A failed POST invalidates nothing.
    let failed = app
        .http
        .send(
            Method::POST,
            &app.url("/item?cc=max-age%3D60&status=500"),
            &[],
        )
        .await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(app.get(target).await.cache(), "HIT");
    // The POST's own URI carries other query parameters: it invalidates that URI, and the
    // Location it answers with.
    let location = "/other?cc=max-age%3D60";
    let post_uri = format!(
        "/item?cc=max-age%3D60&location={}",
        location
            .replace('%', "%25")
            .replace('?', "%3F")
            .replace('&', "%26")
            .replace('=', "%3D")
    );
    let posted = app.http.send(Method::POST, &app.url(&post_uri), &[]).await;
    assert_eq!(posted.cache(), "BYPASS");
    assert_eq!(
        app.get(other).await.cache(),
        "MISS",
        "Location was invalidated"
    );
    let put = app.http.send(Method::PUT, &app.url(target), &[]).await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(
        app.get(target).await.cache(),
        "MISS",
        "the target URI was invalidated"
    );
}

#[tokio::test]
async fn set_cookie_responses_and_credentialed_requests_bypass_unless_opted_in() {
    let app = App::start(HttpCacheConfig::default()).await;
    let cookie = "/c?cc=max-age%3D60&cookie=1";
    app.get(cookie).await;
    assert_eq!(app.get(cookie).await.cache(), "MISS");
    assert_eq!(app.origin.count(cookie), 2);
    let path = "/auth?cc=public%2C%20max-age%3D60&echo=authorization";
    let alice = app
        .get_with(path, &[("authorization", b"Bearer alice")])
        .await;
    assert_eq!(alice.cache(), "BYPASS");
    let anonymous = app.get(path).await;
    assert_eq!(anonymous.cache(), "MISS");
    assert!(!anonymous.text().contains("alice"));
    let bob = app.get_with(path, &[("cookie", b"user=bob")]).await;
    assert_eq!(bob.cache(), "BYPASS");

    // Opted in for /me/**: one entry per user, and private responses allowed there.
    let config = HttpCacheConfig::default().rule(
        Rule::new("/me/**")
            .cache_authenticated(true)
            .cache_private(true),
    );
    let app = App::start(config).await;
    let path = "/me/profile?cc=private%2C%20max-age%3D60&echo=authorization";
    for _ in 0..2 {
        let alice = app
            .get_with(path, &[("authorization", b"Bearer alice")])
            .await;
        let bob = app
            .get_with(path, &[("authorization", b"Bearer bob")])
            .await;
        assert!(alice.text().ends_with("Bearer alice"), "{}", alice.text());
        assert!(bob.text().ends_with("Bearer bob"), "{}", bob.text());
    }
    assert_eq!(
        app.origin.count(path),
        2,
        "one upstream call per user, then hits"
    );
    let anonymous = app.get(path).await;
    assert_eq!(
        anonymous.cache(),
        "MISS",
        "a private response is never shared"
    );
    assert!(!anonymous.text().contains("Bearer"));
}

#[tokio::test]
async fn bodies_over_the_cap_stream_through_whole_and_uncached() {
    let app = App::start(HttpCacheConfig::default().max_body_size(64 * 1024)).await;
    let path = "/big?cc=max-age%3D60&size=300000";
    for _ in 0..2 {
        let reply = app.get(path).await;
        assert_eq!(reply.body.len(), 300_000);
        assert_eq!(reply.cache(), "MISS");
    }
    assert_eq!(app.origin.count(path), 2);
    assert_eq!(app.cache.stats().too_large, 2);
    let small = "/small?cc=max-age%3D60&size=60000";
    app.get(small).await;
    assert_eq!(app.get(small).await.body.len(), 60_000);
    assert_eq!(app.origin.count(small), 1);
    // Streamed bodies of unknown length: buffered up to the cap, then streamed on whole.
    let streamed = "/stream?cc=max-age%3D60&chunks=30";
    for _ in 0..2 {
        let reply = app.get(streamed).await;
        assert_eq!(reply.body.len(), 300_000);
        assert!(reply.body.iter().all(|&b| b == b'y'));
        assert_eq!(reply.cache(), "MISS");
    }
    assert_eq!(app.origin.count(streamed), 2);
    let short_stream = "/stream?cc=max-age%3D60&chunks=3";
    app.get(short_stream).await;
    let hit = app.get(short_stream).await;
    assert_eq!((hit.cache(), hit.body.len()), ("HIT", 30_000));
    assert_eq!(app.cache.stats().too_large, 4);
}

#[tokio::test]
async fn concurrent_misses_are_collapsed_into_one_upstream_call() {
    let app = App::start(HttpCacheConfig::default()).await;
    let path = "/slow?cc=max-age%3D60&sleep=300";
    let replies = futures_join(&app, path, 16, |_| Vec::new()).await;
    assert_eq!(app.origin.count(path), 1);
    let first = replies[0].text();
    assert!(replies
        .iter()
        .all(|r| r.text() == first && r.status == StatusCode::OK));
    assert_eq!(app.cache.stats().collapsed, 15);
}

#[tokio::test]
async fn collapsing_never_hands_a_private_or_other_variant_response_to_a_waiter() {
    let app = App::start(HttpCacheConfig::default()).await;
    // Private: every waiter goes upstream itself and gets its own answer.
    let path = "/slow-private?cc=private%2C%20max-age%3D60&sleep=300&echo=x-user";
    let replies = futures_join(&app, path, 8, |i| vec![("x-user", format!("user{i}"))]).await;
    for (i, reply) in replies.iter().enumerate() {
        assert!(
            reply.text().ends_with(&format!("echo=user{i}")),
            "{}",
            reply.text()
        );
    }
    assert_eq!(app.origin.count(path), 8);
    // Vary: the waiters whose header differs from the leader's go upstream.
    let path = "/slow-vary?cc=max-age%3D60&sleep=300&vary=x-user&echo=x-user";
    let replies = futures_join(&app, path, 8, |i| {
        vec![("x-user", format!("user{}", i % 2))]
    })
    .await;
    for (i, reply) in replies.iter().enumerate() {
        assert!(
            reply.text().ends_with(&format!("echo=user{}", i % 2)),
            "{}",
            reply.text()
        );
    }
}

/// `n` concurrent GETs of `path`, request `i` with `headers(i)`.
async fn futures_join(
    app: &App,
    path: &str,
    n: usize,
    headers: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> Vec<common::client::Reply> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let http = app.http.clone();
        let url = app.url(path);
        let headers = headers(i);
        tasks.push(tokio::spawn(async move {
            let headers: Vec<(&str, &[u8])> =
                headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
            http.get_with(&url, &headers).await
        }));
    }
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}

#[tokio::test]
async fn stale_while_revalidate_serves_stale_and_refreshes_in_the_background() {
    let app = App::start(HttpCacheConfig::default()).await;
    let path = "/swr?cc=max-age%3D1%2C%20stale-while-revalidate%3D30";
    let first = app.get(path).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let stale = app.get(path).await;
    assert_eq!((stale.cache(), stale.text()), ("STALE", first.text()));
    // The refresh lands shortly after.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let reply = app.get(path).await;
        if reply.cache() == "HIT" && reply.text() != first.text() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no refresh within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.origin.count(path), 2);
}

#[tokio::test]
async fn stale_if_error_serves_stale_when_upstream_fails() {
    let app = App::start(HttpCacheConfig::default()).await;
    let path = "/sie?cc=max-age%3D1%2C%20stale-if-error%3D30&fail_after=1";
    let first = app.get(path).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let stale = app.get(path).await;
    assert_eq!((stale.status, stale.cache()), (StatusCode::OK, "STALE"));
    assert_eq!(stale.text(), first.text());
    // Without the directive, the error goes through.
    let path = "/no-sie?cc=max-age%3D1&fail_after=1";
    app.get(path).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        app.get(path).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn application_mode_gives_responses_without_freshness_a_default_ttl() {
    let strict = App::start(HttpCacheConfig::default()).await;
    strict.get("/plain").await;
    assert_eq!(
        strict.get("/plain").await.cache(),
        "MISS",
        "strict RFC mode stores nothing fresh"
    );
    let app = App::start(HttpCacheConfig::default().default_ttl(Duration::from_secs(60))).await;
    app.get("/plain").await;
    let hit = app.get("/plain").await;
    assert_eq!(hit.cache(), "HIT");
    assert_eq!(hit.header("cache-control"), Some("max-age=60"));
    // A response that says no-store still is not stored.
    app.get("/ns?cc=no-store").await;
    assert_eq!(app.get("/ns?cc=no-store").await.cache(), "MISS");
}

#[tokio::test]
async fn methods_and_status_codes_are_configurable() {
    let app = App::start(
        HttpCacheConfig::default()
            .default_ttl(Duration::from_secs(60))
            .status_codes([200])
            .rule(Rule::new("/head-only/**").methods(["HEAD"])),
    )
    .await;
    app.get("/missing?status=404").await;
    assert_eq!(
        app.get("/missing?status=404").await.cache(),
        "MISS",
        "404 is not listed"
    );
    app.get("/head-only/x").await;
    assert_eq!(app.get("/head-only/x").await.cache(), "BYPASS");
    let default = App::start(HttpCacheConfig::default().default_ttl(Duration::from_secs(60))).await;
    default.get("/missing?status=404").await;
    assert_eq!(
        default.get("/missing?status=404").await.cache(),
        "HIT",
        "404 is cacheable by default"
    );
}

#[tokio::test]
async fn ignored_query_parameters_and_keyed_headers_shape_the_key() {
    let app = App::start(
        HttpCacheConfig::default()
            .default_ttl(Duration::from_secs(60))
            .ignore_query_param("utm_*")
            .key_header("x-tenant"),
    )
    .await;
    let first = app.get("/q?b=2&a=1&utm_source=mail").await;
    let same = app.get("/q?a=1&b=2&utm_campaign=x").await;
    assert_eq!((same.cache(), same.text()), ("HIT", first.text()));
    let tenant_a = app
        .get_with("/t?echo=x-tenant", &[("x-tenant", b"a")])
        .await;
    let tenant_b = app
        .get_with("/t?echo=x-tenant", &[("x-tenant", b"b")])
        .await;
    assert_eq!(tenant_b.cache(), "MISS");
    assert!(tenant_b.text().ends_with("echo=b"));
    let tenant_a_again = app
        .get_with("/t?echo=x-tenant", &[("x-tenant", b"a")])
        .await;
    assert_eq!(
        (tenant_a_again.cache(), tenant_a_again.text()),
        ("HIT", tenant_a.text())
    );
}

#[tokio::test]
async fn added_vary_headers_make_variants() {
    let app = App::start(
        HttpCacheConfig::default()
            .default_ttl(Duration::from_secs(60))
            .vary("accept-encoding"),
    )
    .await;
    let gzip = app
        .get_with("/enc?echo=accept-encoding", &[("accept-encoding", b"gzip")])
        .await;
    assert_eq!(gzip.header("vary"), Some("accept-encoding"));
    let br = app
        .get_with("/enc?echo=accept-encoding", &[("accept-encoding", b"br")])
        .await;
    assert_eq!(br.cache(), "MISS");
    let gzip_again = app
        .get_with("/enc?echo=accept-encoding", &[("accept-encoding", b"gzip")])
        .await;
    assert_eq!(
        (gzip_again.cache(), gzip_again.text()),
        ("HIT", gzip.text())
    );
}

#[tokio::test]
async fn include_exclude_and_per_path_rules() {
    let app = App::start(
        HttpCacheConfig::default()
            .include("/api/**")
            .include("/static/**")
            .exclude("/api/admin/**")
            .rule(
                Rule::new("/api/slow/**")
                    .name("slow")
                    .ttl(Duration::from_secs(60)),
            )
            .rule(Rule::new("/api/live/**").no_cache()),
    )
    .await;
    for (path, expected) in [
        ("/elsewhere?cc=max-age%3D60", "BYPASS"),
        ("/api/admin/users?cc=max-age%3D60", "BYPASS"),
        ("/api/live/feed?cc=max-age%3D60", "BYPASS"),
        ("/api/slow/report", "HIT"),
        ("/api/plain", "MISS"),
        ("/static/app.js?cc=max-age%3D60", "HIT"),
    ] {
        app.get(path).await;
        assert_eq!(app.get(path).await.cache(), expected, "{path}");
    }
    let stats = app.cache.stats();
    let slow = stats.rules.iter().find(|r| r.name == "slow").unwrap();
    assert_eq!((slow.hits, slow.misses), (1, 1));
    assert_eq!(slow.hit_ratio(), 0.5);
    let live = stats
        .rules
        .iter()
        .find(|r| r.name == "/api/live/**")
        .unwrap();
    assert_eq!(live.bypasses, 2);
}

#[tokio::test]
async fn a_custom_key_function_decides_the_key() {
    let app = App::with_cache(|store| {
        HttpCache::with_key_fn(
            store,
            &HttpCacheConfig::default().default_ttl(Duration::from_secs(60)),
            // Key on the path only; requests under /nokey bypass.
            |parts| {
                let path = parts.uri.path();
                (!path.starts_with("/nokey")).then(|| path.to_owned())
            },
        )
        .unwrap()
    })
    .await;
    let first = app.get("/k?x=1").await;
    let second = app.get("/k?x=2").await;
    assert_eq!((second.cache(), second.text()), ("HIT", first.text()));
    app.get("/nokey").await;
    assert_eq!(app.get("/nokey").await.cache(), "BYPASS");
}

#[tokio::test]
async fn presets_apply_their_rules() {
    let api = App::start(HttpCacheConfig::api_preset()).await;
    api.get("/users?utm_source=x").await;
    let hit = api.get("/users").await;
    assert_eq!(hit.cache(), "HIT");
    assert_eq!(hit.header("vary"), Some("accept, accept-encoding"));
    let assets = App::start(HttpCacheConfig::static_assets_preset()).await;
    assets.get("/img/logo.png").await;
    assert_eq!(assets.get("/img/logo.png").await.cache(), "HIT");
    assets.get("/index.html").await;
    assert_eq!(assets.get("/index.html").await.cache(), "BYPASS");
}

#[tokio::test]
async fn the_admin_path_serves_stats_and_health_and_purging_is_api_only() {
    let app = App::start(
        HttpCacheConfig::default()
            .default_ttl(Duration::from_secs(60))
            .admin_path("/_cache"),
    )
    .await;
    app.get("/a").await;
    app.get("/a").await;
    let admin = app.get("/_cache").await;
    let json: serde_json::Value = serde_json::from_slice(&admin.body).unwrap();
    assert_eq!(json["http"]["hits"], 1);
    assert_eq!(json["http"]["misses"], 1);
    assert_eq!(json["healthy"], true);
    // No request a client can send purges: not a PURGE method the origin refuses, not headers.
    let app2 = App::start(HttpCacheConfig::default().default_ttl(Duration::from_secs(60))).await;
    app2.get("/r").await;
    let purge = app2
        .http
        .send(
            Method::from_bytes(b"PURGE").unwrap(),
            &app2.url("/r?status=405"),
            &[],
        )
        .await;
    assert_eq!(purge.status, StatusCode::METHOD_NOT_ALLOWED);
    for (name, value) in [
        ("cache-control", &b"purge"[..]),
        ("x-purge", b"1"),
        ("x-cache-purge", b"/r"),
        ("pragma", b"purge"),
    ] {
        let reply = app2.get_with("/r", &[(name, value)]).await;
        assert_eq!(reply.cache(), "HIT", "{name} did not purge");
    }
    assert_eq!(app2.get("/r").await.cache(), "HIT");
    assert_eq!(app2.origin.count("/r"), 1);
    // The API does (keys hold the host, so the URI is absolute).
    assert!(app2.cache.purge(&app2.url("/r")).await.unwrap());
    assert_eq!(app2.get("/r").await.cache(), "MISS");
    app2.cache.purge_pattern("http:GET:*").await.unwrap();
    assert_eq!(app2.get("/r").await.cache(), "MISS");
}

#[tokio::test]
async fn a_request_with_no_store_bypasses_and_stores_nothing() {
    let app = App::start(HttpCacheConfig::default()).await;
    let path = "/rns?cc=max-age%3D60";
    let reply = app.get_with(path, &[("cache-control", b"no-store")]).await;
    assert_eq!(reply.cache(), "BYPASS");
    assert_eq!(app.get(path).await.cache(), "MISS", "nothing was stored");
}

#[tokio::test]
async fn content_location_is_invalidated_and_the_status_header_can_be_renamed() {
    let app = App::start(HttpCacheConfig::default().status_header("x-edge")).await;
    let other = "/cl?cc=max-age%3D60";
    app.get(other).await;
    let hit = app.get(other).await;
    assert_eq!(hit.header("x-edge"), Some("HIT"));
    assert_eq!(hit.header("x-cache"), None);
    // A PUT elsewhere whose answer's Content-Location names the cached URI.
    let put = "/w?content_location=/cl%3Fcc%3Dmax-age%253D60";
    app.http.send(Method::PUT, &app.url(put), &[]).await;
    assert_eq!(app.get(other).await.header("x-edge"), Some("MISS"));
}

#[tokio::test]
async fn max_stale_never_serves_a_response_that_forbids_stale_serves() {
    let app = App::start(HttpCacheConfig::default()).await;
    // no-cache with a validator: a max-stale request still revalidates.
    let path = "/ms?cc=no-cache&etag=e1";
    app.get(path).await;
    let reply = app
        .get_with(path, &[("cache-control", b"max-stale=3600")])
        .await;
    assert_eq!(reply.cache(), "HIT");
    assert_eq!(app.origin.count(path), 2, "revalidated, not served stale");
    // A plain max-age response may be served stale to max-stale, and says so.
    let path = "/ms2?cc=max-age%3D1";
    app.get(path).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reply = app
        .get_with(path, &[("cache-control", b"max-stale=3600")])
        .await;
    assert_eq!(reply.cache(), "STALE");
    assert_eq!(app.origin.count(path), 1);
}

#[tokio::test]
async fn a_304_that_forbids_storing_removes_the_entry() {
    let app = App::start(HttpCacheConfig::default()).await;
    let path = "/nm?cc=max-age%3D1&etag=e&nm_cc=no-store";
    let first = app.get(path).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let revalidated = app.get(path).await;
    assert_eq!(revalidated.text(), first.text());
    assert_eq!(revalidated.cache(), "MISS", "served once, not stored");
    let next = app.get(path).await;
    assert_eq!(next.cache(), "MISS");
    assert_eq!(app.origin.count(path), 3);
}

#[tokio::test]
async fn an_absurd_age_is_a_stale_response_not_a_panic() {
    let app = App::start(HttpCacheConfig::default()).await;
    for age in [
        "99999999999999999999999",
        "18446744073709551615",
        "2147483649",
    ] {
        let path = format!("/age-{}?cc=max-age%3D60&etag=a&age={age}", age.len());
        for _ in 0..3 {
            let reply = app.get(&path).await;
            assert_eq!(reply.status, StatusCode::OK);
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let reply = app.get(&path).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            app.origin.count(&path),
            4,
            "stale from the start: every request after the first revalidated"
        );
    }
}

#[tokio::test]
async fn only_if_cached_never_reaches_the_origin_even_for_a_stale_entry() {
    let app = App::start(HttpCacheConfig::default()).await;
    let path = "/oic?cc=max-age%3D1&etag=o";
    app.get(path).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reply = app
        .get_with(path, &[("cache-control", b"only-if-cached")])
        .await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(app.origin.count(path), 1);
}
