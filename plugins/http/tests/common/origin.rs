//! The test origin: one handler whose response each request describes in its query:
//!
//! - `cc=` Cache-Control; `etag=` ETag (a matching `If-None-Match` gets a 304); `lm=` seconds
//!   before now for Last-Modified (an `If-Modified-Since` at or after it gets a 304);
//! - `vary=` Vary; `echo=` a request header whose value goes into the body;
//! - `status=` the status; `fail_after=N` 500 from the N+1th request on; `sleep=` ms;
//! - `cookie=1` a Set-Cookie; `size=` a body of that many bytes; `location=` a Location
//!   (`content_location=` a Content-Location, on unsafe methods);
//! - `etag=auto` an ETag that changes every request (`"v{n}"`); `age=` an Age header;
//! - `nm_cc=` the Cache-Control a 304 carries; `chunks=N` a streamed body of N 10,000-byte
//!   chunks with no length known up front.
//!
//! The body is `n={how many requests this path and query has seen} echo={value}`, so a test
//! tells a cached response from a fresh one, and `origin.count(path_and_query)` says how many
//! requests reached it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;

#[derive(Clone, Default)]
pub struct Origin {
    counts: Arc<Mutex<HashMap<String, u64>>>,
}

impl Origin {
    pub fn router(&self) -> Router {
        Router::new().fallback(respond).with_state(self.clone())
    }

    /// Requests seen for a path and query (all methods).
    pub fn count(&self, path_and_query: &str) -> u64 {
        self.counts
            .lock()
            .unwrap()
            .get(path_and_query)
            .copied()
            .unwrap_or(0)
    }

    fn bump(&self, key: &str) -> u64 {
        let mut counts = self.counts.lock().unwrap();
        let n = counts.entry(key.to_owned()).or_insert(0);
        *n += 1;
        *n
    }
}

fn param<'a>(query: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    param_bytes(query, name).and_then(|v| std::str::from_utf8(v).ok())
}

/// A parameter's raw bytes (a header value may hold any byte).
fn param_bytes<'a>(query: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

async fn respond(State(origin): State<Origin>, request: Request) -> Response {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let n = origin.bump(&path_and_query);
    let query: Vec<(String, Vec<u8>)> = request
        .uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_owned(), percent_decode(v)))
                .collect()
        })
        .unwrap_or_default();
    if let Some(ms) = param(&query, "sleep").and_then(|v| v.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut builder = Response::builder();
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let status = param(&query, "status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(200);
        if let Some(location) = param(&query, "location") {
            builder = builder.header(header::LOCATION, location);
        }
        if let Some(location) = param(&query, "content_location") {
            builder = builder.header(header::CONTENT_LOCATION, location);
        }
        return builder
            .status(status)
            .body(Body::from(format!("n={n}")))
            .unwrap();
    }
    let mut status: u16 = param(&query, "status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    if let Some(after) = param(&query, "fail_after").and_then(|v| v.parse::<u64>().ok()) {
        if n > after {
            status = 500;
        }
    }
    if let Some(cc) = param_bytes(&query, "cc") {
        builder = builder.header(header::CACHE_CONTROL, HeaderValue::from_bytes(cc).unwrap());
    }
    if let Some(vary) = param(&query, "vary") {
        builder = builder.header(header::VARY, vary);
    }
    if param(&query, "cookie") == Some("1") {
        builder = builder.header(header::SET_COOKIE, format!("session={n}"));
    }
    if let Some(location) = param(&query, "location") {
        builder = builder.header(header::LOCATION, location);
    }
    let mut not_modified = false;
    if let Some(age) = param_bytes(&query, "age") {
        builder = builder.header(header::AGE, HeaderValue::from_bytes(age).unwrap());
    }
    if let Some(etag) = param(&query, "etag") {
        let tag = if etag == "auto" {
            format!("\"v{n}\"")
        } else {
            format!("\"{etag}\"")
        };
        builder = builder.header(header::ETAG, &tag);
        not_modified |= request
            .headers()
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    }
    if let Some(ago) = param(&query, "lm").and_then(|v| v.parse::<u64>().ok()) {
        let modified = SystemTime::now() - Duration::from_secs(ago);
        builder = builder.header(header::LAST_MODIFIED, httpdate::fmt_http_date(modified));
        if let Some(since) = request
            .headers()
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
        {
            not_modified |= since + Duration::from_secs(1) >= modified;
        }
    }
    if not_modified && status == 200 {
        if let Some(cc) = param(&query, "nm_cc") {
            builder = builder.header("cache-control", cc);
        }
        return builder.status(304).body(Body::empty()).unwrap();
    }
    let echo = param(&query, "echo")
        .and_then(|name| request.headers().get(name))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let chunks = param(&query, "chunks").and_then(|v| v.parse::<usize>().ok());
    let body = match (
        param(&query, "size").and_then(|v| v.parse::<usize>().ok()),
        chunks,
    ) {
        (Some(size), _) => Body::from(vec![b'x'; size]),
        (None, Some(chunks)) => Body::from_stream(futures_util::stream::iter(
            (0..chunks).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 10_000]))),
        )),
        (None, None) => Body::from(format!("n={n} echo={echo}")),
    };
    builder
        .status(StatusCode::from_u16(status).unwrap())
        .header(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))
        .body(body)
        .unwrap()
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    out
}
