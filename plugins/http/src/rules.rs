//! The config compiled for the request path: globsets for include/exclude and the rules, and
//! each rule's settings resolved against the defaults once.

use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};
use http::{HeaderName, Method};

use crate::config::{HttpCacheConfig, Rule};
use crate::error::ConfigError;
use crate::key::KeyOptions;

/// What applies to one request: the defaults, or a rule's settings over them.
#[derive(Debug)]
pub(crate) struct Settings {
    /// Index into the stats' per-rule table (0 is the defaults).
    pub(crate) index: usize,
    pub(crate) cache: bool,
    pub(crate) ttl: Option<Duration>,
    pub(crate) methods: Vec<Method>,
    pub(crate) status_codes: Vec<u16>,
    pub(crate) vary: Vec<HeaderName>,
    pub(crate) cache_authenticated: bool,
    pub(crate) cache_private: bool,
}

/// The compiled config.
#[derive(Debug)]
pub(crate) struct Rules {
    include: Option<GlobSet>,
    exclude: GlobSet,
    paths: GlobSet,
    /// `settings[0]` is the defaults, `settings[i + 1]` rule `i`.
    settings: Vec<Settings>,
    pub(crate) names: Vec<String>,
    pub(crate) key: KeyOptions,
    pub(crate) max_body_size: usize,
    pub(crate) status_header: HeaderName,
    pub(crate) stale_retention: Duration,
    pub(crate) collapse_timeout: Duration,
    pub(crate) admin_path: Option<String>,
    /// Whether any path caches per user (then invalidating a URI also sweeps its keyed entries).
    pub(crate) any_per_user: bool,
}

/// What the path rules decide for a path.
pub(crate) enum PathDecision<'a> {
    /// Excluded, not included, or a rule that turns caching off.
    Bypass(usize),
    Cache(&'a Settings),
}

impl Rules {
    pub(crate) fn compile(config: &HttpCacheConfig) -> Result<Rules, ConfigError> {
        let include = if config.include.is_empty() {
            None
        } else {
            Some(glob_set(&config.include)?)
        };
        let exclude = glob_set(&config.exclude)?;
        let paths = glob_set(config.rules.iter().map(|rule| &rule.path))?;
        let methods = methods(&config.methods)?;
        let vary = header_names(&config.vary)?;
        let defaults = Settings {
            index: 0,
            cache: true,
            ttl: config.default_ttl,
            methods: methods.clone(),
            status_codes: config.status_codes.clone(),
            vary: vary.clone(),
            cache_authenticated: config.cache_authenticated,
            cache_private: config.cache_private,
        };
        let mut settings = vec![defaults];
        let mut names = vec!["default".to_owned()];
        for (i, rule) in config.rules.iter().enumerate() {
            settings.push(rule_settings(i + 1, rule, config, &methods, &vary)?);
            names.push(rule.name.clone().unwrap_or_else(|| rule.path.clone()));
        }
        let status_header = HeaderName::from_bytes(config.status_header.as_bytes())
            .map_err(|_| ConfigError::HeaderName(config.status_header.clone()))?;
        if let Some(path) = &config.admin_path {
            if !path.starts_with('/') {
                return Err(ConfigError::AdminPath(path.clone()));
            }
        }
        if config
            .key_prefix
            .contains(['*', '?', '[', ']', '\\', '#', ' '])
        {
            return Err(ConfigError::KeyPrefix(config.key_prefix.clone()));
        }
        let any_per_user = settings.iter().any(|s| s.cache_authenticated);
        Ok(Rules {
            any_per_user,
            include,
            exclude,
            paths,
            settings,
            names,
            key: KeyOptions {
                prefix: config.key_prefix.clone(),
                host: config.key_host,
                ignore_query_params: config.ignore_query_params.clone(),
                headers: header_names(&config.key_headers)?,
                secret: config.key_secret.clone().unwrap_or_default().into_bytes(),
            },
            max_body_size: config.max_body_size,
            status_header,
            stale_retention: config.stale_retention,
            collapse_timeout: config.collapse_timeout,
            admin_path: config.admin_path.clone(),
        })
    }

    /// The settings at `index` (0 is the defaults).
    pub(crate) fn settings(&self, index: usize) -> Option<&Settings> {
        self.settings.get(index)
    }

    /// The settings for `path`, or why it bypasses the cache.
    pub(crate) fn for_path(&self, path: &str) -> PathDecision<'_> {
        if !self.exclude.is_empty() && self.exclude.is_match(path) {
            return PathDecision::Bypass(0);
        }
        if let Some(include) = &self.include {
            if !include.is_match(path) {
                return PathDecision::Bypass(0);
            }
        }
        let rule = if self.paths.is_empty() {
            None
        } else {
            // The first rule in the config's order that matches (globset reports them sorted).
            self.paths.matches(path).first().copied()
        };
        let settings = match rule {
            Some(rule) => &self.settings[rule + 1],
            None => &self.settings[0],
        };
        if settings.cache {
            PathDecision::Cache(settings)
        } else {
            PathDecision::Bypass(settings.index)
        }
    }
}

fn rule_settings(
    index: usize,
    rule: &Rule,
    config: &HttpCacheConfig,
    default_methods: &[Method],
    default_vary: &[HeaderName],
) -> Result<Settings, ConfigError> {
    let mut vary = default_vary.to_vec();
    vary.extend(header_names(&rule.vary)?);
    Ok(Settings {
        index,
        cache: rule.cache,
        ttl: rule.ttl.or(config.default_ttl),
        methods: match &rule.methods {
            Some(list) => methods(list)?,
            None => default_methods.to_vec(),
        },
        status_codes: rule
            .status_codes
            .clone()
            .unwrap_or_else(|| config.status_codes.clone()),
        vary,
        cache_authenticated: rule
            .cache_authenticated
            .unwrap_or(config.cache_authenticated),
        cache_private: rule.cache_private.unwrap_or(config.cache_private),
    })
}

fn glob_set<'a>(globs: impl IntoIterator<Item = &'a String>) -> Result<GlobSet, ConfigError> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let compiled = Glob::new(glob).map_err(|error| ConfigError::Glob {
            glob: glob.clone(),
            reason: error.kind().to_string(),
        })?;
        builder.add(compiled);
    }
    builder.build().map_err(|error| ConfigError::Glob {
        glob: error.glob().unwrap_or_default().to_owned(),
        reason: error.kind().to_string(),
    })
}

fn methods(names: &[String]) -> Result<Vec<Method>, ConfigError> {
    names
        .iter()
        .map(|name| {
            let method = Method::from_bytes(name.to_ascii_uppercase().as_bytes())
                .map_err(|_| ConfigError::Method(name.clone()))?;
            // Only safe methods have responses a cache may reuse.
            if method == Method::GET || method == Method::HEAD {
                Ok(method)
            } else {
                Err(ConfigError::Method(name.clone()))
            }
        })
        .collect()
}

fn header_names(names: &[String]) -> Result<Vec<HeaderName>, ConfigError> {
    names
        .iter()
        .map(|name| {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ConfigError::HeaderName(name.clone()))
        })
        .collect()
}
