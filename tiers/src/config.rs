//! Configuration of a whole stack from TOML, the environment, or any serde source.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::breaker::BreakerConfig;
use crate::builder::{
    TierOptions, DEFAULT_COMPRESSION_THRESHOLD, DEFAULT_MAX_VALUE_SIZE, DEFAULT_MEMORY_MAX_ENTRIES,
    DEFAULT_TIER_TIMEOUT,
};
use crate::cache::TieredCache;
use crate::codec::Codec;
use crate::registry::{RegistryError, TierRegistry};

/// The settings of a [`TieredCache`]: L1 size and TTLs, a Redis and a disk tier by their usual
/// settings, and any other tiers by URL. Durations are
/// written as `"30s"`, `"5m"`, `"1h 30m"`.
///
/// Lower tiers are, in order: `redis_url` (with `redis_ttl`), `disk_path` (a redb file, with
/// `disk_max_size` and `disk_ttl`), then each entry of `tiers`.
///
/// ```
/// let config = strata::CacheConfig::from_toml_str(r#"
///     memory_max_entries = 50_000
///     memory_ttl = "5m"
///     compression_threshold = 2048
///
///     [[tiers]]
///     url = "memory://shared"   # a scheme registered by the application
///     ttl = "1h"
///     timeout = "50ms"
/// "#).unwrap();
/// assert_eq!(config.memory_ttl, Some(std::time::Duration::from_secs(300)));
/// assert_eq!(config.tier_urls()[0].0, "memory://shared");
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// L1 capacity in entries.
    pub memory_max_entries: u64,
    /// The longest L1 keeps an entry.
    #[serde(with = "humantime_serde")]
    pub memory_ttl: Option<Duration>,
    /// The TTL of writes that give none.
    #[serde(with = "humantime_serde")]
    pub default_ttl: Option<Duration>,
    /// A Redis tier (`redis://`, `rediss://`, `redis+cluster://`).
    pub redis_url: Option<String>,
    /// The longest the Redis tier keeps an entry.
    #[serde(with = "humantime_serde")]
    pub redis_ttl: Option<Duration>,
    /// A redb disk tier at this path.
    pub disk_path: Option<PathBuf>,
    /// The disk tier's size bound in bytes.
    pub disk_max_size: Option<u64>,
    /// The longest the disk tier keeps an entry.
    #[serde(with = "humantime_serde")]
    pub disk_ttl: Option<Duration>,
    /// What to do when the disk tier's file exists but cannot be read as a cache file (damaged,
    /// or another program's file): `true` (the default) deletes it and starts empty, logging a
    /// warning, since a cache's contents can be rebuilt; `false` fails the build with the
    /// error, for deployments that would rather look first.
    pub disk_recreate_if_corrupt: bool,
    /// More tiers, by URL, below the Redis and disk tiers.
    pub tiers: Vec<TierConfig>,
    /// Whether large payloads are LZ4-compressed.
    pub enable_compression: bool,
    /// Payloads at least this large are compressed when that shrinks them.
    pub compression_threshold: usize,
    /// The largest encoded value accepted.
    pub max_value_size: usize,
    /// The default deadline for each lower-tier operation.
    #[serde(with = "humantime_serde")]
    pub tier_timeout: Duration,
    /// The default circuit breaker for each lower tier.
    pub breaker: BreakerConfig,
}

/// One tier given by URL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// The tier's URL; its scheme picks the plugin.
    pub url: String,
    /// The longest this tier keeps an entry.
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// This tier's operation deadline.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            memory_max_entries: DEFAULT_MEMORY_MAX_ENTRIES,
            memory_ttl: None,
            default_ttl: None,
            redis_url: None,
            redis_ttl: None,
            disk_path: None,
            disk_max_size: None,
            disk_ttl: None,
            disk_recreate_if_corrupt: true,
            tiers: Vec::new(),
            enable_compression: true,
            compression_threshold: DEFAULT_COMPRESSION_THRESHOLD,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            tier_timeout: DEFAULT_TIER_TIMEOUT,
            breaker: BreakerConfig::default(),
        }
    }
}

/// Why a configuration could not be read or built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML is malformed or has unknown or mistyped fields.
    #[error("invalid cache configuration: {0}")]
    Toml(#[from] toml::de::Error),
    /// An environment variable has an unknown name or a value of the wrong type.
    #[error("invalid cache configuration from the environment: {0}")]
    Env(String),
    /// A tier could not be opened.
    #[error(transparent)]
    Tier(#[from] RegistryError),
}

impl CacheConfig {
    /// Reads a configuration from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// Reads a configuration from environment variables named `{prefix}{FIELD}`, e.g. with
    /// prefix `STRATA_`: `STRATA_MEMORY_TTL=5m`, `STRATA_REDIS_URL=redis://…`; nested fields
    /// use a double underscore, `STRATA_BREAKER__FAILURE_THRESHOLD=3`. Unset fields keep their
    /// defaults; an unknown `{prefix}` variable is an error, so typos do not pass silently.
    pub fn from_env(prefix: &str) -> Result<Self, ConfigError> {
        Self::from_vars(prefix, std::env::vars())
    }

    /// [`from_env`](Self::from_env) over any list of variables.
    pub fn from_vars(
        prefix: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut root = toml::Table::new();
        for (name, value) in vars {
            let Some(field) = name.strip_prefix(prefix) else {
                continue;
            };
            let path: Vec<String> = field.split("__").map(str::to_ascii_lowercase).collect();
            let mut table = &mut root;
            for part in &path[..path.len() - 1] {
                table = table
                    .entry(part.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| ConfigError::Env(format!("{name}: {part} is not a section")))?;
            }
            table.insert(path[path.len() - 1].clone(), env_value(&value));
        }
        CacheConfig::deserialize(toml::Value::Table(root))
            .map_err(|e| ConfigError::Env(e.to_string()))
    }

    /// Every lower tier's URL and options, in stack order.
    pub fn tier_urls(&self) -> Vec<(String, TierOptions)> {
        let mut urls = Vec::new();
        if let Some(url) = &self.redis_url {
            let mut options = TierOptions::default();
            if let Some(ttl) = self.redis_ttl {
                options = options.ttl(ttl);
            }
            urls.push((url.clone(), options));
        }
        if let Some(path) = &self.disk_path {
            let mut url = format!("redb://{}?", path_in_url(path));
            if let Some(max) = self.disk_max_size {
                url.push_str(&format!("max_size={max}&"));
            }
            url.push_str(&format!(
                "recreate_if_corrupt={}",
                self.disk_recreate_if_corrupt
            ));
            let mut options = TierOptions::default();
            if let Some(ttl) = self.disk_ttl {
                options = options.ttl(ttl);
            }
            urls.push((url, options));
        }
        for tier in &self.tiers {
            let mut options = TierOptions::default();
            if let Some(ttl) = tier.ttl {
                options = options.ttl(ttl);
            }
            if let Some(timeout) = tier.timeout {
                options = options.timeout(timeout);
            }
            urls.push((tier.url.clone(), options));
        }
        urls
    }

    /// Opens every tier through `registry` and builds the cache.
    pub async fn build<V, C>(
        &self,
        registry: &TierRegistry,
    ) -> Result<TieredCache<V, C>, ConfigError>
    where
        V: Clone + Send + Sync + 'static,
        C: Codec<V> + Default,
    {
        let mut builder = TieredCache::<V, C>::builder()
            .memory_max_entries(self.memory_max_entries)
            .max_value_size(self.max_value_size)
            .tier_timeout(self.tier_timeout)
            .breaker(self.breaker)
            .compression_threshold(if self.enable_compression {
                self.compression_threshold
            } else {
                usize::MAX
            });
        if let Some(ttl) = self.memory_ttl {
            builder = builder.memory_ttl(ttl);
        }
        if let Some(ttl) = self.default_ttl {
            builder = builder.default_ttl(ttl);
        }
        for (url, options) in self.tier_urls() {
            let tier = registry.open(&url).await?;
            builder = builder.tier_with(tier, options);
        }
        Ok(builder.build())
    }
}

/// A file path as a URL's path: characters that would end the path or start an escape (`?`,
/// `#`, `%`) and spaces are percent-encoded, so the disk tier opens exactly this file.
fn path_in_url(path: &std::path::Path) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
    const IN_PATH: &AsciiSet = &CONTROLS.add(b' ').add(b'#').add(b'?').add(b'%').add(b'"');
    utf8_percent_encode(&path.to_string_lossy(), IN_PATH).to_string()
}

/// An environment value as TOML: integers, floats and booleans as such, anything else a string.
fn env_value(text: &str) -> toml::Value {
    if let Ok(int) = text.parse::<i64>() {
        toml::Value::Integer(int)
    } else if let Ok(float) = text.parse::<f64>() {
        toml::Value::Float(float)
    } else if let Ok(flag) = text.parse::<bool>() {
        toml::Value::Boolean(flag)
    } else {
        toml::Value::String(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_fields_from_toml() {
        let config = CacheConfig::from_toml_str(
            r#"
            memory_max_entries = 1000
            memory_ttl = "5m"
            redis_url = "redis://127.0.0.1:6379/0"
            redis_ttl = "1h"
            disk_path = "/var/cache/app.redb"
            disk_max_size = 1073741824
            disk_ttl = "1day"
            enable_compression = false
            [breaker]
            failure_threshold = 3
            open_for = "2s"
            "#,
        )
        .unwrap();
        assert_eq!(config.memory_max_entries, 1000);
        assert_eq!(config.breaker.failure_threshold, 3);
        assert_eq!(config.breaker.max_open_for, Duration::from_secs(30));
        let urls = config.tier_urls();
        assert_eq!(urls[0].0, "redis://127.0.0.1:6379/0");
        assert_eq!(
            urls[1].0,
            "redb:///var/cache/app.redb?max_size=1073741824&recreate_if_corrupt=true"
        );
    }

    #[test]
    fn disk_paths_with_url_characters_are_escaped() {
        let config = CacheConfig {
            disk_path: Some("/tmp/a #1?x=%20.redb".into()),
            disk_recreate_if_corrupt: false,
            ..CacheConfig::default()
        };
        assert_eq!(
            config.tier_urls()[0].0,
            "redb:///tmp/a%20%231%3Fx=%2520.redb?recreate_if_corrupt=false"
        );
    }

    #[test]
    fn unknown_and_mistyped_fields_are_errors() {
        assert!(CacheConfig::from_toml_str("memory_max_entrie = 5").is_err());
        assert!(CacheConfig::from_toml_str("memory_ttl = \"five minutes\"").is_err());
    }

    #[test]
    fn from_environment_variables() {
        let vars = [
            ("STRATA_MEMORY_TTL", "30s"),
            ("STRATA_MEMORY_MAX_ENTRIES", "77"),
            ("STRATA_BREAKER__FAILURE_THRESHOLD", "9"),
            ("PATH", "/usr/bin"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = CacheConfig::from_vars("STRATA_", vars).unwrap();
        assert_eq!(config.memory_ttl, Some(Duration::from_secs(30)));
        assert_eq!(config.memory_max_entries, 77);
        assert_eq!(config.breaker.failure_threshold, 9);
        let typo = [("STRATA_MEMORY_TTLL".to_owned(), "1s".to_owned())];
        assert!(matches!(
            CacheConfig::from_vars("STRATA_", typo),
            Err(ConfigError::Env(_))
        ));
    }
}
