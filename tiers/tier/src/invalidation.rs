//! Invalidations that reach a cache from outside this process: another instance sharing a tier
//! deleted a key, a pattern, or everything.

use std::fmt;
use std::sync::Arc;

use crate::KeyPattern;

/// An invalidation made elsewhere, to be applied to this process's L1.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalidation {
    /// One key was written or deleted.
    Key(String),
    /// Every key the pattern matches was deleted.
    Pattern(KeyPattern),
    /// The whole cache was cleared.
    Clear,
}

impl Invalidation {
    /// Whether this invalidation covers `key`.
    pub fn covers(&self, key: &str) -> bool {
        match self {
            Invalidation::Key(k) => k == key,
            Invalidation::Pattern(pattern) => pattern.matches(key),
            Invalidation::Clear => true,
        }
    }
}

impl fmt::Display for Invalidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalidation::Key(key) => write!(f, "key {key:?}"),
            Invalidation::Pattern(pattern) => write!(f, "pattern {:?}", pattern.as_str()),
            Invalidation::Clear => f.write_str("clear"),
        }
    }
}

/// Where a tier delivers invalidation events: the cache that subscribed.
///
/// [`invalidate`](Self::invalidate) is called from the tier's own task or thread, once per
/// event, in the order the tier received them. It must return promptly and never blocks on
/// the tier.
pub trait InvalidationSink: Send + Sync + 'static {
    /// Applies an invalidation made elsewhere.
    fn invalidate(&self, event: Invalidation);

    /// The tier lost its event feed for a while (a dropped connection) and may have missed
    /// events: the subscriber should treat everything it caches from this tier as suspect.
    /// The default applies [`Invalidation::Clear`].
    fn events_lost(&self) {
        self.invalidate(Invalidation::Clear);
    }
}

impl<F> InvalidationSink for F
where
    F: Fn(Invalidation) + Send + Sync + 'static,
{
    fn invalidate(&self, event: Invalidation) {
        self(event)
    }
}

/// A subscription; dropping it (or calling [`cancel`](Self::cancel)) stops the deliveries.
#[must_use = "dropping a subscription ends it"]
pub struct Subscription {
    cancel: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Subscription {
    /// A subscription that runs `cancel` when it ends.
    pub fn new(cancel: impl FnOnce() + Send + Sync + 'static) -> Self {
        Subscription {
            cancel: Some(Box::new(cancel)),
        }
    }

    /// Ends the subscription now.
    pub fn cancel(mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel();
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel();
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("active", &self.cancel.is_some())
            .finish()
    }
}

/// A shared sink, as a tier keeps it.
pub type SharedSink = Arc<dyn InvalidationSink>;
