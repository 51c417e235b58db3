//! The plugin registry: lower tiers opened from URLs, keyed by scheme.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;

use strata_tier::{OpenFuture, Tier, TierFactory};
use url::Url;

type Factory = Arc<dyn TierFactory>;

/// A factory made from a closure over the parsed URL.
struct ClosureFactory<F> {
    scheme: [&'static str; 0],
    open: F,
}

impl<F> TierFactory for ClosureFactory<F>
where
    F: Fn(Url) -> OpenFuture + Send + Sync + 'static,
{
    fn schemes(&self) -> &[&'static str] {
        &self.scheme
    }

    fn open(&self, url: &str) -> OpenFuture {
        match Url::parse(url) {
            Ok(parsed) => (self.open)(parsed),
            Err(error) => {
                let error = format!("invalid URL: {error}");
                Box::pin(async move { Err(error.into()) })
            }
        }
    }
}

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
        source: Box<dyn Error + Send + Sync + 'static>,
    },
}

/// Maps URL schemes to tier factories. [`TierRegistry::default`] knows the schemes of the
/// plugins compiled in (`redb://` with the `redb` feature; `redis://`, `rediss://`,
/// `redis+cluster://` and `rediss+cluster://` with the `redis` feature). A plugin implements
/// [`TierFactory`](crate::TierFactory) and parses its own URL; register it with
/// [`register_factory`](Self::register_factory), or register a closure over the parsed URL
/// with [`register`](Self::register):
///
/// ```
/// use std::sync::Arc;
/// use strata::{Tier, TierRegistry};
/// use strata_testing::MemoryTier;
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
        #[allow(unused_mut)]
        let mut registry = TierRegistry::empty();
        #[cfg(feature = "redb")]
        registry.register_factory(Arc::new(strata_redb::RedbFactory));
        #[cfg(feature = "redis")]
        registry.register_factory(Arc::new(strata_redis::RedisFactory));
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

    /// Registers (or replaces) a closure as the factory for `scheme` (without `://`,
    /// case-insensitive); it receives the parsed URL.
    pub fn register<F>(&mut self, scheme: &str, factory: F) -> &mut Self
    where
        F: Fn(Url) -> OpenFuture + Send + Sync + 'static,
    {
        self.factories.insert(
            scheme.to_ascii_lowercase(),
            Arc::new(ClosureFactory {
                scheme: [],
                open: factory,
            }),
        );
        self
    }

    /// Registers (or replaces) a plugin's factory for every scheme it names.
    pub fn register_factory(&mut self, factory: Arc<dyn TierFactory>) -> &mut Self {
        for scheme in factory.schemes() {
            self.factories
                .insert(scheme.to_ascii_lowercase(), Arc::clone(&factory));
        }
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
        factory
            .open(url)
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

impl std::fmt::Debug for TierRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.schemes()).finish()
    }
}
