//! `rediss://`: the tier over TLS to a real TLS-only server, trusting a throw-away CA given in
//! the URL (`tls_ca=`), with the invalidation bus over TLS too; and a server whose certificate
//! is not trusted is a typed error. Needs the `tls` feature and `openssl` (to make the
//! certificate); skipped loudly without them unless `STRATA_REQUIRE_REDIS=1`.
#![cfg(feature = "tls")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_redis::{RedisFactory, RedisTierError};
use strata_testing::redis_server::RedisServer;
use strata_tier::{Bytes, Invalidation, TierFactory, WriteIntent};

/// A throw-away CA and a server certificate for 127.0.0.1 signed by it, as
/// `(server cert, server key, CA cert)`; `None` without openssl.
fn certificates(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let path = |name: &str| dir.join(name);
    std::fs::write(
        path("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .ok()?;
    let steps: [Vec<String>; 3] = [
        vec![
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=strata-test-ca",
        ]
        .into_iter()
        .map(String::from)
        .chain([
            "-keyout".into(),
            p(&path("ca.key")),
            "-out".into(),
            p(&path("ca.pem")),
        ])
        .collect(),
        vec![
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
        ]
        .into_iter()
        .map(String::from)
        .chain([
            "-keyout".into(),
            p(&path("server.key")),
            "-out".into(),
            p(&path("server.csr")),
        ])
        .collect(),
        vec!["x509", "-req", "-days", "1", "-CAcreateserial"]
            .into_iter()
            .map(String::from)
            .chain([
                "-in".into(),
                p(&path("server.csr")),
                "-CA".into(),
                p(&path("ca.pem")),
                "-CAkey".into(),
                p(&path("ca.key")),
                "-extfile".into(),
                p(&path("server.ext")),
                "-out".into(),
                p(&path("server.pem")),
            ])
            .collect(),
    ];
    for args in steps {
        match Command::new("openssl").args(&args).output() {
            Ok(output) if output.status.success() => {}
            _ if std::env::var("STRATA_REQUIRE_REDIS").is_ok_and(|v| v == "1") => {
                panic!(
                    "openssl is needed to make the test certificates (apt-get install -y openssl)"
                )
            }
            _ => {
                eprintln!(
                    "!!! SKIPPED: openssl failed or is not installed, so the TLS test does not run"
                );
                return None;
            }
        }
    }
    Some((path("server.pem"), path("server.key"), path("ca.pem")))
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rediss_tier_works_over_tls_with_a_ca_from_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key, ca)) = certificates(dir.path()) else {
        return;
    };
    let Some(server) = RedisServer::start_tls(&cert, &key, &ca).expect("start a TLS redis-server")
    else {
        return;
    };
    assert!(server.url().starts_with("rediss://"));
    let ca: String = url_encoded(&ca.display().to_string());
    let url = format!("{}?namespace=tls&tls_ca={ca}&timeout=500ms", server.url());
    let tier = RedisFactory
        .open(&url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let peer = RedisFactory.open(&url).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let seen = Arc::clone(&seen);
        move |event: Invalidation| seen.lock().unwrap().push(event)
    };
    let _subscription = tier.subscribe(Arc::new(sink)).expect("a bus");
    let delivered = common::eventually_async(Duration::from_secs(10), || {
        let peer = Arc::clone(&peer);
        let seen = Arc::clone(&seen);
        async move {
            peer.set("k", Bytes::from_static(b"v"), None, WriteIntent::Update)
                .await
                .unwrap();
            seen.lock()
                .unwrap()
                .contains(&Invalidation::Key("k".into()))
        }
    })
    .await;
    assert!(delivered, "no invalidation over TLS");
    assert_eq!(
        tier.get("k").await.into_hit(),
        Some(Bytes::from_static(b"v"))
    );

    // Without the CA, the server's self-signed certificate is not trusted.
    let untrusted =
        RedisFactory::builder_from_url(&format!("{}?connect_timeout=500ms", server.url()))
            .unwrap()
            .open()
            .await
            .unwrap_err();
    assert!(
        matches!(untrusted, RedisTierError::Connect { .. }),
        "{untrusted}"
    );
    // A CA file that is not there is a configuration error naming it.
    let missing =
        RedisFactory::builder_from_url(&format!("{}?tls_ca=/nonexistent/ca.pem", server.url()))
            .unwrap()
            .open()
            .await
            .unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/ca.pem"),
        "{missing}"
    );
}

fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
