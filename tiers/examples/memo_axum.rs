//! `#[cached]` and `#[invalidates]` behind an axum app: `GET /users/{id}` serves a memoized
//! lookup, `PUT /users/{id}` renames and invalidates it. The example starts the app on a free
//! loopback port, sends it a few real HTTP requests, prints what came back, and stops.
//!
//! `cargo run -p strata --example memo_axum`

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use strata::{cached, invalidates, Postcard, TieredCache};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Clone, Debug)]
enum DbError {
    NotFound,
}

/// The cache of users: L1 here; add `.tier(...)` for Redis or redb.
static USERS: LazyLock<TieredCache<Arc<User>, Postcard<Arc<User>>>> = LazyLock::new(|| {
    TieredCache::builder()
        .memory_max_entries(10_000)
        .default_ttl(Duration::from_secs(300))
        .build()
});

/// How many times the "database" was asked.
static QUERIES: AtomicU64 = AtomicU64::new(0);

#[cached(cache = USERS, key = "user:{id}", ttl = "5m")]
async fn load_user(id: u64) -> Result<Arc<User>, DbError> {
    QUERIES.fetch_add(1, Relaxed);
    tokio::time::sleep(Duration::from_millis(20)).await; // the slow query
    if id == 0 {
        return Err(DbError::NotFound);
    }
    Ok(Arc::new(User {
        id,
        name: format!("user {id}"),
    }))
}

#[invalidates("user:{id}", cache = USERS)]
async fn rename_user(id: u64, name: String) -> Result<(), DbError> {
    let _ = (id, name); // the UPDATE
    Ok(())
}

async fn get_user(Path(id): Path<u64>) -> Result<Json<Arc<User>>, StatusCode> {
    match load_user(id).await {
        Ok(user) => Ok(Json(user)),
        Err(DbError::NotFound) => Err(StatusCode::NOT_FOUND),
    }
}

async fn put_user(Path(id): Path<u64>, name: String) -> StatusCode {
    match rename_user(id, name).await {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(DbError::NotFound) => StatusCode::NOT_FOUND,
    }
}

/// One HTTP/1.1 request over a fresh connection; the status line and the body.
async fn request(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let text = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(text.as_bytes()).await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    let status = reply.lines().next().unwrap_or_default().to_owned();
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok(format!("{status} {body}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = Router::new().route("/users/{id}", get(get_user).put(put_user));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    for (method, path, body) in [
        ("GET", "/users/7", ""),
        ("GET", "/users/7", ""),      // an L1 hit: no query
        ("PUT", "/users/7", "Grace"), // invalidates user:7
        ("GET", "/users/7", ""),      // queried again
        ("GET", "/users/0", ""),      // an error: not cached
        ("GET", "/users/0", ""),      // so queried again
    ] {
        let reply = request(port, method, path, body).await?;
        println!(
            "{method} {path} -> {reply} (queries so far: {})",
            QUERIES.load(Relaxed)
        );
    }
    assert_eq!(
        QUERIES.load(Relaxed),
        4,
        "7 twice (before and after the rename), 0 twice"
    );

    let _ = stop.send(());
    server.await??;
    Ok(())
}
