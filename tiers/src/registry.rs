//! The plugin registry: lower tiers opened from URLs, keyed by scheme.

use std::collections::BTreeMap;
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use strata_tier::Tier;
use url::Url;

use crate::memory_tier::MemoryTier;

/// What a factory returns: the opened tier, or why it could not be opened.
pub type OpenFuture =
    Pin<Box<dyn Future<Output = Result<Arc<dyn Tier>, Box<dyn Error + Send + Sync>>> + Send>>;

type Factory = Arc<dyn Fn(Url) -> OpenFuture + Send + Sync>;

/// Why a tier URL could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Not a URL.
    #[error("invalid tier URL {url:?}: {reason}")]
    BadUrl {
        /// The text given.
        url: String,
        /// The parser's complaint.
        reason: url::ParseError,
    },
    /// No factory registered for the scheme.
    #[error("no tier plugin for scheme {scheme:?} (registered: {known})")]
    UnknownScheme {
        /// The URL's scheme.
        scheme: String,
        /// The registered schemes, comma-separated.
        known: String,
    },
    /// The factory failed (bad options, unreachable server, unreadable file).
    #[error("could not open tier {url}: {source}")]
    Open {
        /// The URL, with any password removed.
        url: String,
        /// The factory's error.
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
}

/// Maps URL schemes to tier factories. [`TierRegistry::default`] knows `memory://` and the
/// schemes of the plugins compiled in (`redb://` with the `redb` feature); register your own
/// with [`register`](Self::register):
///
/// ```
/// use std::sync::Arc;
/// use strata::{MemoryTier, Tier, TierRegistry};
///
/// let mut registry = TierRegistry::default();
/// registry.register("scratch", |url| {
///     Box::pin(async move {
///         let name = url.host_str().unwrap_or("scratch").to_owned();
///         Ok(Arc::new(MemoryTier::new(name)) as Arc<dyn Tier>)
///     })
/// });
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let tier = registry.open("scratch://l2").await.unwrap();
/// assert_eq!(tier.name(), "l2");
/// assert!(registry.open("nope://x").await.is_err());
/// # });
/// ```
#[derive(Clone)]
pub struct TierRegistry {
    factories: BTreeMap<String, Factory>,
}

impl Default for TierRegistry {
    fn default() -> Self {
        let mut registry = TierRegistry::empty();
        registry.register("memory", |url| {
            Box::pin(async move { open_memory(&url).map_err(Into::into) })
        });
        #[cfg(feature = "redb")]
        crate::redb_plugin::register(&mut registry);
        registry
    }
}

impl TierRegistry {
    /// A registry that knows no scheme.
    pub fn empty() -> Self {
        TierRegistry {
            factories: BTreeMap::new(),
        }
    }

    /// Registers (or replaces) the factory for `scheme` (without `://`, case-insensitive).
    pub fn register<F>(&mut self, scheme: &str, factory: F) -> &mut Self
    where
        F: Fn(Url) -> OpenFuture + Send + Sync + 'static,
    {
        self.factories
            .insert(scheme.to_ascii_lowercase(), Arc::new(factory));
        self
    }

    /// The registered schemes.
    pub fn schemes(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// Opens the tier `url` names.
    pub async fn open(&self, url: &str) -> Result<Arc<dyn Tier>, RegistryError> {
        let parsed = Url::parse(url).map_err(|reason| RegistryError::BadUrl {
            url: url.to_owned(),
            reason,
        })?;
        let factory =
            self.factories
                .get(parsed.scheme())
                .ok_or_else(|| RegistryError::UnknownScheme {
                    scheme: parsed.scheme().to_owned(),
                    known: self.schemes().collect::<Vec<_>>().join(", "),
                })?;
        let shown = redacted(url, &parsed);
        factory(parsed)
            .await
            .map_err(|source| RegistryError::Open { url: shown, source })
    }
}

/// The URL as given, or with its password replaced if it has one, for errors and logs.
fn redacted(text: &str, parsed: &Url) -> String {
    if parsed.password().is_none() {
        return text.to_owned();
    }
    let mut shown = parsed.clone();
    let _ = shown.set_password(Some("***"));
    shown.to_string()
}

/// A query parameter parsed as `T`, with an error naming it.
pub fn query_param<T: std::str::FromStr>(url: &Url, name: &str) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    match url.query_pairs().find(|(key, _)| key == name) {
        None => Ok(None),
        Some((_, value)) => value
            .parse()
            .map(Some)
            .map_err(|e| format!("query parameter {name}={value:?}: {e}")),
    }
}

fn open_memory(url: &Url) -> Result<Arc<dyn Tier>, String> {
    let name = url.host_str().filter(|h| !h.is_empty()).unwrap_or("memory");
    let tier = match query_param::<usize>(url, "max_entries")? {
        Some(max) => MemoryTier::with_max_entries(name, max),
        None => MemoryTier::new(name),
    };
    Ok(Arc::new(tier))
}

impl std::fmt::Debug for TierRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.schemes()).finish()
    }
}
