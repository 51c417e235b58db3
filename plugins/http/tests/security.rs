//! Security: one user's response never reaches another, unkeyed headers cannot poison the
//! cache, hostile headers bypass cleanly. Real HTTP on loopback against a real axum origin.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::client::Http;
use common::origin::Origin;
use common::Server;
use strata_http::{HttpCache, HttpCacheConfig, HttpStore};

async fn start(config: HttpCacheConfig) -> (Server, Origin, HttpCache, Http) {
    let origin = Origin::default();
    let cache = HttpCache::new(HttpStore::builder().build(), &config).unwrap();
    let server = Server::start(origin.router().layer(cache.layer())).await;
    (server, origin, cache, Http::default())
}

/// Many users ask for one URL at the same moment, each with their own credentials; the origin
/// answers with their identity and (wrongly) cacheable headers. Each user must see only their
/// own identity, in the default config and with per-user caching on.
#[tokio::test]
async fn simultaneous_users_never_see_each_others_responses() {
    for config in [
        HttpCacheConfig::default().default_ttl(Duration::from_secs(60)),
        HttpCacheConfig::default()
            .default_ttl(Duration::from_secs(60))
            .cache_authenticated(true)
            .cache_private(true),
    ] {
        let (server, _origin, _cache, http) = start(config).await;
        for (header, path) in [
            (
                "cookie",
                "/me?cc=public%2C%20max-age%3D60&sleep=100&echo=cookie",
            ),
            (
                "authorization",
                "/me2?cc=public%2C%20max-age%3D60&sleep=100&echo=authorization",
            ),
            (
                "cookie",
                "/me3?cc=private%2C%20max-age%3D60&sleep=100&echo=cookie&cookie=1",
            ),
        ] {
            for round in 0..2 {
                let mut tasks = Vec::new();
                for user in 0..24 {
                    let http = http.clone();
                    let url = server.url(path);
                    tasks.push(tokio::spawn(async move {
                        let value = format!("user{user}");
                        let reply = http.get_with(&url, &[(header, value.as_bytes())]).await;
                        (value, reply)
                    }));
                }
                for task in tasks {
                    let (value, reply) = task.await.unwrap();
                    assert!(
                        reply.text().ends_with(&format!("echo={value}")),
                        "round {round}, {header}: {value} got {:?}",
                        reply.text()
                    );
                }
            }
            // And an anonymous request afterwards gets nobody's response.
            let anonymous = http.get(&server.url(path)).await;
            assert!(!anonymous.text().contains("user"), "{}", anonymous.text());
        }
    }
}

/// A response that depends on a header the key does not hold, announced with Vary, is never
/// served to a request with another value of that header; one that does not announce it is a
/// bug of the origin the cache cannot see, so the test uses Vary as the RFC requires.
#[tokio::test]
async fn an_unkeyed_header_cannot_poison_the_cache() {
    let (server, origin, _cache, http) = start(HttpCacheConfig::default()).await;
    let path = "/page?cc=max-age%3D60&vary=x-forwarded-host&echo=x-forwarded-host";
    let evil = http
        .get_with(&server.url(path), &[("x-forwarded-host", b"evil.example")])
        .await;
    assert!(evil.text().ends_with("evil.example"));
    for _ in 0..3 {
        let victim = http.get(&server.url(path)).await;
        assert!(!victim.text().contains("evil"), "{}", victim.text());
        let other = http
            .get_with(&server.url(path), &[("x-forwarded-host", b"good.example")])
            .await;
        assert!(other.text().ends_with("good.example"), "{}", other.text());
    }
    assert_eq!(origin.count(path), 3, "three variants, each fetched once");
    // A Host that could forge a key separator is not cached at all.
    let forged = http
        .get_with(&server.url("/h?cc=max-age%3D60"), &[("host", b"a#k=00")])
        .await;
    assert_eq!(forged.cache(), "BYPASS");
}

#[tokio::test]
async fn hostile_headers_bypass_cleanly_and_the_server_stays_up() {
    let (server, _origin, cache, http) = start(HttpCacheConfig::default()).await;
    let path = "/hostile?cc=max-age%3D60";
    http.get(&server.url(path)).await;
    let huge = vec![b'a'; 70 * 1024];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("cache-control", b"max-age=\xff\xfe".to_vec()),
        ("if-none-match", b"\"\xc3\x28\"".to_vec()),
        ("x-huge", huge),
        ("pragma", b"\x80no-cache".to_vec()),
    ];
    for (name, value) in &cases {
        let reply = http
            .get_with(&server.url(path), &[(name, value.as_slice())])
            .await;
        assert_eq!(reply.cache(), "BYPASS", "{name}");
        assert_eq!(reply.status, StatusCode::OK, "{name}");
    }
    // Duplicate Cache-Control lines.
    let reply = http
        .get_with(
            &server.url(path),
            &[
                ("cache-control", b"max-age=0"),
                ("cache-control", b"max-stale"),
            ],
        )
        .await;
    assert_eq!(reply.cache(), "BYPASS");
    // Hostile response headers from the origin: an unreadable Cache-Control is not stored.
    let bad = "/bad?cc=max-age%3D60%FF";
    http.get(&server.url(bad)).await;
    assert_eq!(http.get(&server.url(bad)).await.cache(), "MISS");
    // Still serving.
    assert_eq!(http.get(&server.url(path)).await.cache(), "HIT");
    assert!(cache.stats().bypasses >= 5);
}

/// A client's own validators never reach a revalidation: otherwise a client that learned the
/// origin's current ETag could get a 304 for it and make the cache keep serving its old body.
#[tokio::test]
async fn a_clients_validators_cannot_keep_an_outdated_response_alive() {
    let (server, origin, _cache, http) = start(HttpCacheConfig::default()).await;
    let path = "/doc?cc=max-age%3D1&etag=auto";
    let v1 = http.get(&server.url(path)).await;
    assert!(v1.text().starts_with("n=1"));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // The current ETag at the origin is "v2"; the attacker sends it (and `*`).
    http.get_with(&server.url(path), &[("if-none-match", b"\"v2\", *")])
        .await;
    let victim = http.get(&server.url(path)).await;
    assert!(
        !victim.text().starts_with("n=1"),
        "the outdated body was kept: {}",
        victim.text()
    );
    assert!(origin.count(path) >= 2);
}

/// A key function decides what is the same resource, never who may see it: per-user entries
/// keep their credential hash under a custom key.
#[tokio::test]
async fn a_key_function_keeps_per_user_entries_apart() {
    let origin = Origin::default();
    let cache = HttpCache::with_key_fn(
        HttpStore::builder().build(),
        &HttpCacheConfig::default()
            .cache_authenticated(true)
            .cache_private(true),
        |parts| Some(parts.uri.path().to_owned()),
    )
    .unwrap();
    let server = Server::start(origin.router().layer(cache.layer())).await;
    let http = Http::default();
    let path = "/me?cc=private%2C%20max-age%3D60&echo=authorization";
    for _ in 0..2 {
        for user in ["alice", "bob"] {
            let token = format!("Bearer {user}");
            let reply = http
                .get_with(&server.url(path), &[("authorization", token.as_bytes())])
                .await;
            assert!(
                reply.text().ends_with(&token),
                "{user} got {}",
                reply.text()
            );
        }
    }
    let anonymous = http.get(&server.url(path)).await;
    assert!(!anonymous.text().contains("Bearer"), "{}", anonymous.text());
}

/// With per-user caching but without `cache_private`, a `private` response is not stored.
#[tokio::test]
async fn private_per_user_responses_need_cache_private() {
    let (server, origin, _cache, http) =
        start(HttpCacheConfig::default().cache_authenticated(true)).await;
    let path = "/pv?cc=private%2C%20max-age%3D60";
    for _ in 0..2 {
        http.get_with(&server.url(path), &[("authorization", b"Bearer a")])
            .await;
    }
    assert_eq!(origin.count(path), 2);
}

/// Credentials are never written to the tiers: a per-user entry's stored bytes hold neither
/// the token nor the cookie.
#[tokio::test]
async fn credentials_are_not_stored() {
    let origin = Origin::default();
    let store = HttpStore::builder().build();
    let cache = HttpCache::new(
        store.clone(),
        &HttpCacheConfig::default()
            .cache_authenticated(true)
            .key_secret("s3cret"),
    )
    .unwrap();
    let server = Server::start(origin.router().layer(cache.layer())).await;
    let http = Http::default();
    let path = "/acct?cc=max-age%3D60";
    http.get_with(
        &server.url(path),
        &[
            ("authorization", b"Bearer TOPSECRET"),
            ("cookie", b"sid=COOKIEVALUE"),
        ],
    )
    .await;
    let keys: Vec<String> = store.l1().keys().collect();
    assert_eq!(keys.len(), 1);
    let value = store.get(&keys[0]).await.unwrap();
    let bytes = strata_http::strata::Codec::encode(&strata_http::HttpCodec, &value).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("TOPSECRET") && !text.contains("COOKIEVALUE"));
    assert!(!keys[0].contains("TOPSECRET"));
}
