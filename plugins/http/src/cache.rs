//! `HttpCache`: the store, the compiled rules and the stats behind the layer, and the purge API.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, Method, Uri};
use strata::{CacheError, SetOptions, TieredCache};

use crate::collapse::Collapser;
use crate::config::HttpCacheConfig;
use crate::error::ConfigError;
use crate::key::{hex_hash, request_key};
use crate::rules::Rules;
use crate::service::CacheLayer;
use crate::stats::{HttpCacheStats, Stats};
use crate::stored::{CachedResponse, Entry, HttpCodec, StoredResponse, Variants};

/// The tiered store behind an [`HttpCache`]: build it like any `TieredCache` (tiers, L1 size,
/// timeouts), or from a [`strata::CacheConfig`] with `config.build::<CachedResponse,
/// HttpCodec>(&registry)`.
pub type HttpStore = TieredCache<CachedResponse, HttpCodec>;

/// Builds a custom key from a request's parts: `Some(material)` replaces method, host, path and
/// query in the key (it is still prefixed, bounded and hashed if long; the hash of keyed
/// headers and credentials and the `Vary` variants still apply), `None` makes the request
/// bypass the cache. Entries under custom keys are not reached by URI invalidation.
pub type KeyFn = Arc<dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync>;

/// An HTTP response cache over a [`HttpStore`]: make one per process, take its
/// [`layer`](Self::layer) for each service, and use it for stats and purges. Cheap to clone.
#[derive(Clone)]
pub struct HttpCache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: HttpStore,
    pub(crate) rules: Rules,
    pub(crate) stats: Stats,
    pub(crate) collapser: Arc<Collapser>,
    pub(crate) key_fn: Option<KeyFn>,
    generation_seed: u64,
    generations: AtomicU64,
}

/// What a lookup found.
pub(crate) struct Found {
    /// The usable response and the key it is under, if any.
    pub(crate) response: Option<(String, CachedResponse)>,
    /// The variant index at the primary key, if there is one.
    pub(crate) variants: Option<Variants>,
}

impl HttpCache {
    /// A cache with `config` over `store`; the config is checked here (globs, header names,
    /// methods) and a bad one is a [`ConfigError`].
    pub fn new(store: HttpStore, config: &HttpCacheConfig) -> Result<HttpCache, ConfigError> {
        Self::build(store, config, None)
    }

    /// Like [`new`](Self::new), with a custom key function (see [`KeyFn`]).
    pub fn with_key_fn<F>(
        store: HttpStore,
        config: &HttpCacheConfig,
        key_fn: F,
    ) -> Result<HttpCache, ConfigError>
    where
        F: Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    {
        Self::build(store, config, Some(Arc::new(key_fn)))
    }

    fn build(
        store: HttpStore,
        config: &HttpCacheConfig,
        key_fn: Option<KeyFn>,
    ) -> Result<HttpCache, ConfigError> {
        let rules = Rules::compile(config)?;
        let stats = Stats::new(rules.names.len());
        let generation_seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (std::process::id() as u64).rotate_left(32);
        Ok(HttpCache {
            inner: Arc::new(Inner {
                store,
                rules,
                stats,
                collapser: Arc::new(Collapser::default()),
                key_fn,
                generation_seed,
                generations: AtomicU64::new(0),
            }),
        })
    }

    /// The tower layer that caches through this cache.
    pub fn layer(&self) -> CacheLayer {
        CacheLayer::new(self.clone())
    }

    /// The counters so far.
    pub fn stats(&self) -> HttpCacheStats {
        self.inner.stats.snapshot(&self.inner.rules.names)
    }

    /// The store (for its own stats, health and invalidation).
    pub fn store(&self) -> &HttpStore {
        &self.inner.store
    }

    /// Stats and tier health as JSON (what the admin path serves).
    pub async fn admin_json(&self) -> serde_json::Value {
        let health = self.inner.store.health_check().await;
        serde_json::json!({
            "http": self.stats(),
            "tiers": health.to_json(),
            "healthy": health.is_healthy(),
        })
    }

    /// Removes the cached `GET` response for `uri` (a path such as `/a?b=1`, or an absolute URI
    /// whose host is then part of the key) and all its variants and keyed-header entries.
    /// Returns whether anything was there. The API is the only way to purge: no request
    /// header a client can send does it.
    pub async fn purge(&self, uri: &str) -> Result<bool, PurgeError> {
        let uri: Uri = uri
            .parse()
            .map_err(|_| PurgeError::BadUri(uri.to_owned()))?;
        let key = request_key(
            &Method::GET,
            &uri,
            &HeaderMap::new(),
            &self.inner.rules.key,
            &[],
        )
        .map_err(|_| PurgeError::BadUri(uri.to_string()))?;
        let primary = &key.key[..key.uri_key_len];
        Ok(self.inner.invalidate_uri(primary, true).await?)
    }

    /// Removes one key as stored (see [`crate::request_key`]).
    pub async fn purge_key(&self, key: &str) -> Result<bool, PurgeError> {
        Stats::bump(&self.inner.stats.invalidations);
        Ok(self.inner.store.delete(key).await?)
    }

    /// Removes every key matching a Redis-style glob (`http:GET:example.com/users/*`).
    pub async fn purge_pattern(&self, pattern: &str) -> Result<(), PurgeError> {
        Stats::bump(&self.inner.stats.invalidations);
        self.inner.store.invalidate_pattern(pattern).await?;
        Ok(())
    }

    /// Flushes and closes the store's tiers (call before the process exits).
    pub async fn close(&self) -> Result<(), CacheError> {
        self.inner.store.close().await
    }
}

/// Why a purge failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PurgeError {
    /// The URI does not parse or has an invalid host.
    #[error("cannot purge {0:?}: not a valid URI with a path")]
    BadUri(String),
    /// A tier failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl Inner {
    /// The response stored for a request whose primary key is `primary`.
    pub(crate) async fn lookup(&self, primary: &str, headers: &HeaderMap) -> Found {
        let Some(entry) = self.store.get(primary).await else {
            return Found {
                response: None,
                variants: None,
            };
        };
        match &*entry.0 {
            Entry::Response(_) => Found {
                response: Some((primary.to_owned(), entry)),
                variants: None,
            },
            Entry::Variants(variants) => {
                let key = variant_key(primary, variants, headers, &self.rules.key.secret);
                let response = self.store.get(&key).await.and_then(|found| {
                    matches!(&*found.0, Entry::Response(_)).then_some((key, found))
                });
                Found {
                    response,
                    variants: Some(variants.clone()),
                }
            }
        }
    }

    /// What L1 holds for a request whose primary key is `primary` (synchronous: the hit fast
    /// path's lookup).
    pub(crate) fn lookup_l1(&self, primary: &str, headers: &HeaderMap) -> Option<CachedResponse> {
        let l1 = self.store.l1();
        let entry = l1.get(primary)?;
        match &*entry.0 {
            Entry::Response(_) => Some(entry),
            Entry::Variants(variants) => l1.get(&variant_key(
                primary,
                variants,
                headers,
                &self.rules.key.secret,
            )),
        }
    }

    /// Stores `stored` under `primary` (directly, or as a variant when it varies on `vary`),
    /// living `ttl` in the tiers. Returns the stored value (also when a tier failed the write,
    /// which is counted in `store_errors`).
    pub(crate) async fn put(
        &self,
        primary: &str,
        stored: StoredResponse,
        vary: &[HeaderName],
        known: Option<&Variants>,
        request_headers: &HeaderMap,
        ttl: Duration,
    ) -> CachedResponse {
        let value = CachedResponse(Arc::new(Entry::Response(stored)));
        let options = SetOptions::default().ttl(ttl);
        let result = if vary.is_empty() {
            self.store.set_with(primary, value.clone(), options).await
        } else {
            let variants = match known {
                Some(known) if known.vary == vary => known.clone(),
                _ => Variants {
                    vary: vary.to_vec(),
                    generation: self.next_generation(),
                },
            };
            // (Re)written with every variant, so that it lives at least as long as the newest
            // one; an index outliving its variants costs nothing (a variant that is gone is a
            // miss).
            let index = CachedResponse(Arc::new(Entry::Variants(variants.clone())));
            let index_ttl = ttl
                .saturating_add(self.rules.stale_retention)
                .max(Duration::from_secs(24 * 3600));
            if let Err(error) = self
                .store
                .set_with(primary, index, SetOptions::default().ttl(index_ttl))
                .await
            {
                tracing::warn!(%error, key = primary, "storing a variant index failed");
            }
            let key = variant_key(primary, &variants, request_headers, &self.rules.key.secret);
            self.store.set_with(&key, value.clone(), options).await
        };
        match result {
            Ok(_) => Stats::bump(&self.stats.stored),
            Err(error) => {
                Stats::bump(&self.stats.store_errors);
                tracing::warn!(%error, key = primary, "storing a response failed");
            }
        }
        value
    }

    /// Overwrites the response at `key` (after a revalidation), keeping its place.
    pub(crate) async fn put_refreshed(
        &self,
        key: &str,
        stored: StoredResponse,
        ttl: Duration,
    ) -> CachedResponse {
        let value = CachedResponse(Arc::new(Entry::Response(stored)));
        match self
            .store
            .set_with(key, value.clone(), SetOptions::default().ttl(ttl))
            .await
        {
            Ok(_) => Stats::bump(&self.stats.stored),
            Err(error) => {
                Stats::bump(&self.stats.store_errors);
                tracing::warn!(%error, key, "storing a revalidated response failed");
            }
        }
        value
    }

    /// Removes what is cached for a URI: its primary key (and with it every variant, which
    /// hangs off the index there) and, with `keyed`, the per-user and keyed-header entries
    /// (`{uri key}#*`).
    pub(crate) async fn invalidate_uri(
        &self,
        primary: &str,
        keyed: bool,
    ) -> Result<bool, CacheError> {
        Stats::bump(&self.stats.invalidations);
        let removed = self.store.delete(primary).await?;
        if keyed {
            let pattern = format!("{}#*", strata::KeyPattern::escape(primary));
            self.store.invalidate_pattern(&pattern).await?;
        }
        Ok(removed)
    }

    /// Whether invalidating a URI must also sweep its keyed entries (`{key}#*`): when keys
    /// hold headers or any path caches per user.
    pub(crate) fn keyed(&self) -> bool {
        !self.rules.key.headers.is_empty() || self.rules.any_per_user
    }

    fn next_generation(&self) -> u64 {
        let n = self.generations.fetch_add(1, Relaxed);
        // Distinct per process (seed) and per call (counter, spread by an odd multiplier).
        self.generation_seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// A variant's key: the primary key, the index's generation and a hash of the request's values
/// of the varying headers.
pub(crate) fn variant_key(
    primary: &str,
    variants: &Variants,
    headers: &HeaderMap,
    secret: &[u8],
) -> String {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(variants.vary.len() * 2 + 1);
    parts.push(secret);
    let mut values: Vec<Vec<u8>> = Vec::with_capacity(variants.vary.len());
    for name in &variants.vary {
        let mut joined = Vec::new();
        for value in headers.get_all(name) {
            joined.extend_from_slice(&(value.len() as u64).to_le_bytes());
            joined.extend_from_slice(value.as_bytes());
        }
        values.push(joined);
    }
    for (name, value) in variants.vary.iter().zip(&values) {
        parts.push(name.as_str().as_bytes());
        parts.push(value);
    }
    format!("{primary}#v={:x}:{}", variants.generation, hex_hash(&parts))
}
