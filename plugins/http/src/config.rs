//! The layer's options, as a typed config that is both a builder and a serde type (TOML, JSON,
//! environment through your own loader), and the two presets.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Status codes stored by default: those the cache understands (RFC 9110 §15.1's heuristically
/// cacheable codes and the redirects `302`, `303`, `307`, which are stored only with explicit
/// freshness; `206` is left out: partial content is not cached).
pub const DEFAULT_STATUS_CODES: &[u16] = &[
    200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501,
];

/// The HTTP cache's options. Every field has a default (`HttpCacheConfig::default()`): a strict
/// RFC 9111 shared cache of `GET`/`HEAD` responses that never stores anything for requests with
/// credentials.
///
/// ```
/// use std::time::Duration;
/// use strata_http::{HttpCacheConfig, Rule};
///
/// let config = HttpCacheConfig::default()
///     .default_ttl(Duration::from_secs(30))
///     .ignore_query_param("utm_*")
///     .exclude("/admin/**")
///     .rule(Rule::new("/api/slow/**").ttl(Duration::from_secs(300)));
/// assert_eq!(config.rules.len(), 1);
///
/// let from_toml: HttpCacheConfig = toml::from_str(r#"
///     default_ttl = "30s"
///     exclude = ["/admin/**"]
///     [[rules]]
///     path = "/api/slow/**"
///     ttl = "5m"
/// "#).unwrap();
/// assert_eq!(from_toml.rules[0].ttl, Some(Duration::from_secs(300)));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpCacheConfig {
    /// Freshness for a response that carries none (no `max-age`, `s-maxage` or `Expires`) and
    /// whose status is heuristically cacheable (200, 203, 204, 300, 301, 308, 404, 405, 410,
    /// 414, 501): *application mode*. `None` (the default, and what `strata-proxy` uses) is strict RFC
    /// mode, where such a response is only fresh by the RFC's heuristic (10% of the time
    /// since its `Last-Modified`), else stored only to be revalidated.
    #[serde(with = "humantime_serde")]
    pub default_ttl: Option<Duration>,
    /// Methods whose responses are cached (default `GET`, `HEAD`). `HEAD` is served from the
    /// `GET` entry.
    pub methods: Vec<String>,
    /// Status codes whose responses are stored (default [`DEFAULT_STATUS_CODES`]).
    pub status_codes: Vec<u16>,
    /// Query parameters left out of the key (`utm_*` matches a prefix).
    pub ignore_query_params: Vec<String>,
    /// Request headers whose values are part of the key (hashed), for responses that depend on
    /// a header without saying so in `Vary`.
    pub key_headers: Vec<String>,
    /// Headers added to every cached response's `Vary` (for example `Accept-Encoding` when a
    /// compression layer sits inside this one).
    pub vary: Vec<String>,
    /// Cache responses for requests carrying `Authorization` or `Cookie`, one entry per user
    /// (the key includes a hash of both headers). Off by default: such requests bypass the
    /// cache. Per-user requests are never collapsed.
    pub cache_authenticated: bool,
    /// With `cache_authenticated`, also store per-user responses marked `private` or carrying
    /// `Set-Cookie` (evaluated as a private cache). Never shared between users.
    pub cache_private: bool,
    /// Path globs (globset syntax) the cache applies to; empty means every path.
    pub include: Vec<String>,
    /// Path globs the cache never applies to (checked before `include`).
    pub exclude: Vec<String>,
    /// Per-path rules; the first whose glob matches a path decides for it.
    pub rules: Vec<Rule>,
    /// Bodies above this many bytes stream through uncached (default 8 MiB); a streaming body is
    /// buffered only up to it.
    pub max_body_size: usize,
    /// The response header that says how a response was served (`HIT`, `MISS`, `STALE`,
    /// `BYPASS`); default `x-cache`.
    pub status_header: String,
    /// How long a response that has gone stale is kept for revalidation (if it has a validator)
    /// or for `stale-while-revalidate` / `stale-if-error` (default 5 minutes).
    #[serde(with = "humantime_serde")]
    pub stale_retention: Duration,
    /// Whether the host is part of the key (default true; turn off only in front of one site).
    pub key_host: bool,
    /// Prefix of every key in the tiers (default `http:`).
    pub key_prefix: String,
    /// A secret mixed into the hashes of header values in keys (credentials, keyed headers,
    /// `Vary` values), so that key names read from a shared tier do not let anyone test guesses
    /// of those values. Every instance sharing the tiers must use the same one. Default none.
    pub key_secret: Option<String>,
    /// The longest a request waits for a concurrent miss of the same key to finish before going
    /// upstream itself (default 10 s).
    #[serde(with = "humantime_serde")]
    pub collapse_timeout: Duration,
    /// A path the layer answers itself with the cache's stats and tier health as JSON (off by
    /// default). It never purges anything.
    pub admin_path: Option<String>,
}

impl Default for HttpCacheConfig {
    fn default() -> Self {
        HttpCacheConfig {
            default_ttl: None,
            methods: vec!["GET".into(), "HEAD".into()],
            status_codes: DEFAULT_STATUS_CODES.to_vec(),
            ignore_query_params: Vec::new(),
            key_headers: Vec::new(),
            vary: Vec::new(),
            cache_authenticated: false,
            cache_private: false,
            include: Vec::new(),
            exclude: Vec::new(),
            rules: Vec::new(),
            max_body_size: 8 << 20,
            status_header: "x-cache".into(),
            stale_retention: Duration::from_secs(300),
            key_host: true,
            key_prefix: "http:".into(),
            key_secret: None,
            collapse_timeout: Duration::from_secs(10),
            admin_path: None,
        }
    }
}

impl HttpCacheConfig {
    /// For JSON APIs: responses without freshness information live 60 s, only `200`, `203`,
    /// `204`, `404` and `410` are stored, variants per `Accept` and `Accept-Encoding`, and
    /// tracking parameters (`utm_*`, `fbclid`, `gclid`) are left out of keys.
    pub fn api_preset() -> Self {
        HttpCacheConfig {
            default_ttl: Some(Duration::from_secs(60)),
            status_codes: vec![200, 203, 204, 404, 410],
            ignore_query_params: vec!["utm_*".into(), "fbclid".into(), "gclid".into()],
            vary: vec!["accept".into(), "accept-encoding".into()],
            ..HttpCacheConfig::default()
        }
    }

    /// For static files: responses without freshness information live a day, only successful
    /// ones are stored, variants per `Accept-Encoding`, and only typical asset paths are cached.
    pub fn static_assets_preset() -> Self {
        HttpCacheConfig {
            default_ttl: Some(Duration::from_secs(24 * 3600)),
            status_codes: vec![200, 203, 204, 301, 308],
            vary: vec!["accept-encoding".into()],
            include: vec![
                "/static/**".into(),
                "/assets/**".into(),
                "**/*.{css,js,mjs,map,png,jpg,jpeg,gif,webp,avif,svg,ico,woff,woff2,ttf,otf,wasm}"
                    .into(),
            ],
            ..HttpCacheConfig::default()
        }
    }

    /// Sets [`default_ttl`](Self::default_ttl) (application mode).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Sets the cached methods.
    pub fn methods<I: IntoIterator<Item = S>, S: Into<String>>(mut self, methods: I) -> Self {
        self.methods = methods.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the stored status codes.
    pub fn status_codes<I: IntoIterator<Item = u16>>(mut self, codes: I) -> Self {
        self.status_codes = codes.into_iter().collect();
        self
    }

    /// Leaves a query parameter (or a `prefix*`) out of keys.
    pub fn ignore_query_param(mut self, name: impl Into<String>) -> Self {
        self.ignore_query_params.push(name.into());
        self
    }

    /// Makes a request header part of the key.
    pub fn key_header(mut self, name: impl Into<String>) -> Self {
        self.key_headers.push(name.into());
        self
    }

    /// Adds a header to every cached response's `Vary`.
    pub fn vary(mut self, name: impl Into<String>) -> Self {
        self.vary.push(name.into());
        self
    }

    /// Caches per user for requests with credentials (see the field).
    pub fn cache_authenticated(mut self, on: bool) -> Self {
        self.cache_authenticated = on;
        self
    }

    /// Also stores per-user `private` and `Set-Cookie` responses (see the field).
    pub fn cache_private(mut self, on: bool) -> Self {
        self.cache_private = on;
        self
    }

    /// Adds an include glob.
    pub fn include(mut self, glob: impl Into<String>) -> Self {
        self.include.push(glob.into());
        self
    }

    /// Adds an exclude glob.
    pub fn exclude(mut self, glob: impl Into<String>) -> Self {
        self.exclude.push(glob.into());
        self
    }

    /// Adds a per-path rule (after the existing ones).
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Sets the body size cap.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// Renames the `x-cache` header.
    pub fn status_header(mut self, name: impl Into<String>) -> Self {
        self.status_header = name.into();
        self
    }

    /// Sets how long stale responses are kept.
    pub fn stale_retention(mut self, retention: Duration) -> Self {
        self.stale_retention = retention;
        self
    }

    /// Leaves the host out of keys.
    pub fn key_host(mut self, on: bool) -> Self {
        self.key_host = on;
        self
    }

    /// Sets the secret mixed into hashed key parts.
    pub fn key_secret(mut self, secret: impl Into<String>) -> Self {
        self.key_secret = Some(secret.into());
        self
    }

    /// Sets how long a request waits for a concurrent miss of its key.
    pub fn collapse_timeout(mut self, timeout: Duration) -> Self {
        self.collapse_timeout = timeout;
        self
    }

    /// Serves stats and health as JSON at `path`.
    pub fn admin_path(mut self, path: impl Into<String>) -> Self {
        self.admin_path = Some(path.into());
        self
    }
}

/// A per-path rule: what differs from the defaults for paths matching `path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Rule {
    /// A globset glob over the request path (`/api/**`, `/img/*.png`).
    pub path: String,
    /// The name the rule's stats go under (default: its glob).
    #[serde(default)]
    pub name: Option<String>,
    /// `false` makes matching paths bypass the cache.
    #[serde(default = "yes")]
    pub cache: bool,
    /// Freshness for responses that carry none (overrides `default_ttl`).
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// Cached methods (overrides `methods`).
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Stored status codes (overrides `status_codes`).
    #[serde(default)]
    pub status_codes: Option<Vec<u16>>,
    /// Headers added to `Vary` (on top of the global ones).
    #[serde(default)]
    pub vary: Vec<String>,
    /// Overrides `cache_authenticated`.
    #[serde(default)]
    pub cache_authenticated: Option<bool>,
    /// Overrides `cache_private`.
    #[serde(default)]
    pub cache_private: Option<bool>,
}

fn yes() -> bool {
    true
}

impl Rule {
    /// A rule for paths matching `glob` that changes nothing yet.
    pub fn new(glob: impl Into<String>) -> Self {
        Rule {
            path: glob.into(),
            name: None,
            cache: true,
            ttl: None,
            methods: None,
            status_codes: None,
            vary: Vec::new(),
            cache_authenticated: None,
            cache_private: None,
        }
    }

    /// Names the rule in stats.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Matching paths bypass the cache.
    pub fn no_cache(mut self) -> Self {
        self.cache = false;
        self
    }

    /// Freshness for matching responses that carry none.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Cached methods for matching paths.
    pub fn methods<I: IntoIterator<Item = S>, S: Into<String>>(mut self, methods: I) -> Self {
        self.methods = Some(methods.into_iter().map(Into::into).collect());
        self
    }

    /// Stored status codes for matching paths.
    pub fn status_codes<I: IntoIterator<Item = u16>>(mut self, codes: I) -> Self {
        self.status_codes = Some(codes.into_iter().collect());
        self
    }

    /// Adds a `Vary` header for matching responses.
    pub fn vary(mut self, name: impl Into<String>) -> Self {
        self.vary.push(name.into());
        self
    }

    /// Per-user caching for matching paths.
    pub fn cache_authenticated(mut self, on: bool) -> Self {
        self.cache_authenticated = Some(on);
        self
    }

    /// Per-user `private` / `Set-Cookie` responses for matching paths.
    pub fn cache_private(mut self, on: bool) -> Self {
        self.cache_private = Some(on);
        self
    }
}
