//! HTTP response caching for tower services (axum 0.8, hyper 1, anything with `http` 1.x
//! bodies) over a Strata [`TieredCache`](strata::TieredCache): memory, Redis, redb.
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use strata_http::{HttpCache, HttpCacheConfig, HttpStore, Rule};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = HttpStore::builder().memory_max_entries(10_000).build();
//! let config = HttpCacheConfig::api_preset()
//!     .exclude("/admin/**")
//!     .rule(Rule::new("/reports/**").ttl(Duration::from_secs(600)));
//! let cache = HttpCache::new(store, &config)?;
//! let app: Router = Router::new()
//!     .route("/reports/{id}", get(|| async { "expensive" }))
//!     .layer(cache.layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # What it does
//! - **RFC 9111 as a shared cache**, through the `http-cache-semantics` crate: freshness from
//!   `s-maxage`, `max-age`, `Expires` or the RFC's heuristic; `no-store`, `private`,
//!   `no-cache`, `must-revalidate`, `proxy-revalidate` honoured; request `no-cache`,
//!   `no-store`, `max-age`, `min-fresh`, `max-stale` and `only-if-cached` (`504` on a miss).
//!   On top of it: `stale-while-revalidate` (serve stale, refresh in the background, once per
//!   key), `stale-if-error` (serve stale when upstream fails or answers 5xx), and stale serves
//!   while the origin cannot be reached at all (a service error, or a response marked
//!   [`Disconnected`]), which RFC 9111 §4.2.4 allows unless the response forbids it.
//! - **Vary**: one stored variant per distinct value of the varying request headers, under its
//!   own key; variants never overwrite each other (a response with another `Vary` list starts a
//!   new index, and the old list's variants become unreachable).
//! - **Revalidation**: a stale entry with a validator is revalidated with `If-None-Match` /
//!   `If-Modified-Since`; a `304` refreshes the stored headers and the stored body is served.
//!   A client's own `If-None-Match` / `If-Modified-Since` against a usable entry gets a `304`.
//! - `Age` on every response from the cache, `x-cache: HIT | MISS | STALE | BYPASS` on every
//!   response (renamable); `HEAD` served from the `GET` entry; unsafe methods pass through and,
//!   on a 2xx/3xx, invalidate the target URI and its same-host `Location` and
//!   `Content-Location`.
//! - **Credentials**: requests with `Authorization` or `Cookie` bypass the cache, and responses
//!   with `Set-Cookie` or `private` are not stored, unless the rule opts in
//!   ([`HttpCacheConfig::cache_authenticated`], [`HttpCacheConfig::cache_private`]); then the
//!   entry is per user (its key holds a hash of both headers) and evaluated as a private cache.
//! - Bodies above [`HttpCacheConfig::max_body_size`] stream through uncached; a streaming body
//!   is buffered only up to the cap.
//! - **Request collapsing**: concurrent misses of one key send one request upstream.
//! - Per-path rules with globset globs, include/exclude, ignored query parameters, keyed
//!   headers, added `Vary`, application-mode default TTLs, presets, a custom key function,
//!   stats per rule, an optional JSON admin path, and purging through the API only.
//!
//! # Keys
//! `http:GET:{host}{path}?{sorted query}` (see [`request_key`]): `HEAD` uses `GET`'s key,
//! ignored query parameters are dropped, keyed headers and per-user credentials add `#k=` and
//! a SHA-256 of their values (never the raw bytes), keys past 512 bytes end in a hash of the
//! whole, and each `Vary` variant lives under `{key}#v={generation}:{hash}`.
//!
//! # Consistency
//! - **A response stored for one request is served only to requests it was made for.** It is
//!   found under a key made of the normalized URI, the host, the keyed headers and, for a
//!   per-user entry, a hash of the credentials; a `Vary` variant under a key holding a hash of
//!   the request's values of the varying headers. It is then served only if the policy says it
//!   satisfies *this* request (same normalized URI and host, same `Vary` values, request
//!   directives met); on the fast path (a fresh entry, a request without `Cache-Control` or
//!   `Pragma`) the stored URI, host and per-user flag are compared directly instead. A request
//!   with credentials never reads or fills a shared entry; a per-user entry's key holds a hash
//!   (salted with [`HttpCacheConfig::key_secret`] when set) that no other credentials produce,
//!   and credentials themselves are never stored. No request can name a shortened key (they
//!   hold a space), and a key function decides what is the same resource, never who may see
//!   it (the hashed part of the key stays).
//! - **Collapsing never hands a response to a request it was not made for.** Only `GET`s
//!   without credentials are collapsed. When the leader has stored a shared entry, each waiter
//!   looks up its own key again (its own `Vary` variant) and uses what it finds only if it is
//!   fresh for its own request; otherwise (not storable, private, another variant, too large,
//!   an upstream error, a cancelled leader, [`HttpCacheConfig::collapse_timeout`]) every waiter
//!   goes upstream itself.
//! - **A stored response is served at most as old as its freshness allows**, except within a
//!   `stale-while-revalidate` or `stale-if-error` window the response granted, or while the
//!   origin cannot be reached (for as long as the entry is kept: its freshness plus
//!   [`HttpCacheConfig::stale_retention`]), or to a request that accepts it with `max-stale`
//!   (or widens the window with its own `stale-if-error`); never when the response says
//!   `must-revalidate`, `proxy-revalidate`, `no-cache` or (for a shared entry) `s-maxage`; and
//!   not on an error or outage when the request says `no-cache`, `max-age` or `min-fresh`.
//!   Stale serves say `x-cache: STALE`. `only-if-cached` never reaches the origin.
//! - **After an unsafe request succeeds, this process's reads of its target URI miss**: the
//!   invalidation completes before the response is returned. A fill or revalidation of that
//!   URI already in flight when it runs may still store what it fetched afterwards (the cache
//!   does not fence HTTP fills). Entries stored under a custom key function are not reached by
//!   URI invalidation (use [`HttpCache::purge_key`] or [`HttpCache::purge_pattern`]). Other processes sharing the
//!   tiers see it as the tiers' own consistency says (with Redis, their L1s are invalidated
//!   over its bus). Invalidating a URI removes every `Vary` variant (they hang off one index)
//!   and, when keys hold headers or any path caches per user, every keyed entry of the URI (a
//!   pattern invalidation, which sweeps L1 and scans a Redis tier: a cost per unsafe request in
//!   those configurations).
//! - A response is written to the tiers before the client gets it on a miss; a failed write is
//!   counted (`store_errors`) and the response is still served. Concurrent misses of one key
//!   that are not collapsed may each store; the last write wins.
//! - A revalidation carries only the stored response's validators (never the client's), and a
//!   `304` refreshes the stored headers only if they still allow storing and still vary on the
//!   same headers (else the entry is removed); they get the same edits as a new response.
//! - Requests whose headers the cache cannot read the way the origin will (a `Connection`
//!   naming an end-to-end header, two `Host` lines, an absolute target whose authority differs
//!   from `Host`, unreadable caching headers) bypass the cache.
//! - Corrupt bytes read from a tier are a miss (counted by the store), never a wrong response.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod cache;
mod collapse;
mod config;
mod error;
mod flow;
mod key;
mod request;
mod respond;
mod rules;
mod service;
mod stats;
mod stored;

pub use strata;

pub use body::CacheBody;
pub use cache::{HttpCache, HttpStore, KeyFn, PurgeError};
pub use config::{HttpCacheConfig, Rule, DEFAULT_STATUS_CODES};
pub use error::ConfigError;
pub use key::{request_key, KeyError, KeyOptions, RequestKey, MAX_KEY_LEN};
pub use respond::strip_hop_by_hop;
pub use service::{CacheLayer, CacheService, Disconnected, ResponseFuture};
pub use stats::{CacheStatus, HttpCacheStats, RuleStats};
pub use stored::{CachedResponse, HttpCodec};
