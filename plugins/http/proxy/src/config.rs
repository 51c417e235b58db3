//! The proxy's config file (TOML):
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! upstream = "http://127.0.0.1:8000"
//!
//! [cache]                  # strata::CacheConfig: L1 size, redis_url, disk_path, tiers …
//! disk_path = "/var/cache/strata-proxy.redb"
//!
//! [http]                   # strata_http::HttpCacheConfig: rules, key options, body cap …
//! max_body_size = 16777216
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use strata_http::strata::CacheConfig;
use strata_http::HttpCacheConfig;

/// Everything the proxy runs with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// The address to listen on.
    pub listen: Option<SocketAddr>,
    /// The origin, `http://host:port` (a path prefix is not supported).
    pub upstream: Option<String>,
    /// The tiers (default: L1 and a redb file `strata-proxy.redb` in the working directory).
    #[serde(default)]
    pub cache: Option<CacheConfig>,
    /// The HTTP cache's rules (default: strict RFC mode, nothing beyond RFC 9111).
    #[serde(default)]
    pub http: HttpCacheConfig,
}

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The config file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for a [`ProxyConfig`].
    #[error("invalid config {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// No upstream, or one that is not an `http://host[:port]` URL.
    #[error("upstream {0:?} is not an http://host[:port] URL")]
    Upstream(String),
    /// The HTTP cache's rules are invalid.
    #[error(transparent)]
    Rules(#[from] strata_http::ConfigError),
    /// The tiers cannot be opened.
    #[error(transparent)]
    Tiers(#[from] strata_http::strata::ConfigError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving failed: {0}")]
    Serve(std::io::Error),
}

impl ProxyConfig {
    /// Reads a TOML config file.
    pub fn from_file(path: &std::path::Path) -> Result<ProxyConfig, ProxyError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProxyError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ProxyError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// A config with defaults for everything but the upstream.
    pub fn for_upstream(upstream: &str) -> ProxyConfig {
        ProxyConfig {
            listen: None,
            upstream: Some(upstream.to_owned()),
            cache: None,
            http: HttpCacheConfig::default(),
        }
    }

    /// The tiers: the configured ones, or L1 over `strata-proxy.redb`.
    pub fn cache_config(&self) -> CacheConfig {
        self.cache.clone().unwrap_or_else(|| CacheConfig {
            disk_path: Some(PathBuf::from("strata-proxy.redb")),
            ..CacheConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_holds_the_tiers_and_the_rules_and_refuses_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.toml");
        std::fs::write(
            &path,
            r#"
                listen = "127.0.0.1:8080"
                upstream = "http://127.0.0.1:8000"
                [cache]
                memory_max_entries = 1000
                disk_path = "/var/cache/p.redb"
                [http]
                exclude = ["/private/**"]
                [[http.rules]]
                path = "/api/**"
                ttl = "30s"
            "#,
        )
        .unwrap();
        let config = ProxyConfig::from_file(&path).unwrap();
        assert_eq!(config.upstream.as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(config.cache_config().memory_max_entries, 1000);
        assert_eq!(
            config.http.rules[0].ttl,
            Some(std::time::Duration::from_secs(30))
        );

        std::fs::write(&path, "upstream = \"http://x\"\nbogus = 1\n").unwrap();
        let error = ProxyConfig::from_file(&path).unwrap_err();
        assert!(error.to_string().contains("bogus"), "{error}");
        let missing = ProxyConfig::from_file(&dir.path().join("none.toml")).unwrap_err();
        assert!(matches!(missing, ProxyError::Read { .. }));
    }

    #[test]
    fn without_a_cache_section_the_default_is_l1_over_a_redb_file() {
        let config = ProxyConfig::for_upstream("http://127.0.0.1:8000");
        assert_eq!(
            config.cache_config().disk_path,
            Some(PathBuf::from("strata-proxy.redb"))
        );
    }
}
