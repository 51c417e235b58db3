//! Opening a tier from a URL: the factory a tier plugin implements so that a registry (the
//! `strata` crate's `TierRegistry`, or your own) can open it by scheme.

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::Tier;

/// Why a factory could not open a tier.
pub type OpenError = Box<dyn Error + Send + Sync + 'static>;

/// What [`TierFactory::open`] returns.
pub type OpenFuture = Pin<Box<dyn Future<Output = Result<Arc<dyn Tier>, OpenError>> + Send>>;

/// Opens tiers of one plugin from URLs of its schemes. Each plugin parses its own URL: the
/// registry only routes by scheme, so a plugin's options, their spelling and their errors live
/// with the plugin.
///
/// A factory must reject what it does not understand (an unknown query parameter, a malformed
/// value) with an error naming it, rather than ignore it: a typo must not silently give a
/// tier with default settings.
pub trait TierFactory: Send + Sync + 'static {
    /// The URL schemes this factory opens, lowercase, without `://` (`["redb"]`).
    fn schemes(&self) -> &[&'static str];

    /// Opens the tier `url` names. `url` is the whole URL as given, scheme included.
    fn open(&self, url: &str) -> OpenFuture;
}
