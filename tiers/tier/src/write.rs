//! What a write to a tier means: its intent, a batch item, and what the tier did with it.

use std::time::Duration;

use bytes::Bytes;

/// Why the cache writes an entry to a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum WriteIntent {
    /// The application wrote a new value (`set`): it replaces whatever the tier holds.
    #[default]
    Update,
    /// The cache copies a value it read elsewhere (a promotion from a lower tier, a loader's
    /// result). A fill must never replace a newer value: a tier that can do an
    /// insert-if-absent (Redis `SET NX`, a conditional insert in a transaction) should do so
    /// and answer [`Stored::Kept`] when the key was present, and say so in
    /// [`Capabilities::fill_if_absent`](crate::Capabilities). A tier that cannot may store a
    /// fill like an update; the cache then undoes a fill that raced with a write by deleting
    /// the key.
    Fill,
}

/// What a tier did with a write it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stored {
    /// The value is stored.
    Written,
    /// A [`WriteIntent::Fill`] found the key present and left the stored value in place.
    Kept,
}

/// One write of a batch: [`Tier::set_many`](crate::Tier::set_many).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierWrite {
    /// The key.
    pub key: String,
    /// The bytes to store.
    pub value: Bytes,
    /// How long the tier may keep them; `None` for no expiry.
    pub ttl: Option<Duration>,
    /// Why the write is made.
    pub intent: WriteIntent,
}

impl TierWrite {
    /// An update of `key` (the application's own write).
    pub fn update(key: impl Into<String>, value: Bytes, ttl: Option<Duration>) -> Self {
        TierWrite {
            key: key.into(),
            value,
            ttl,
            intent: WriteIntent::Update,
        }
    }

    /// A fill of `key` (a copy the cache read elsewhere).
    pub fn fill(key: impl Into<String>, value: Bytes, ttl: Option<Duration>) -> Self {
        TierWrite {
            intent: WriteIntent::Fill,
            ..TierWrite::update(key, value, ttl)
        }
    }
}

/// What a tier can do beyond the required methods, so that the cache can rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`WriteIntent::Fill`] is an insert-if-absent: it never replaces a stored value.
    pub fill_if_absent: bool,
    /// [`Tier::subscribe`](crate::Tier::subscribe) delivers invalidations made by other
    /// processes sharing this tier.
    pub invalidation_events: bool,
}

impl Capabilities {
    /// No capability beyond the required methods.
    pub const NONE: Capabilities = Capabilities {
        fill_if_absent: false,
        invalidation_events: false,
    };

    /// These capabilities with insert-if-absent fills.
    pub const fn with_fill_if_absent(mut self) -> Self {
        self.fill_if_absent = true;
        self
    }

    /// These capabilities with invalidation events.
    pub const fn with_invalidation_events(mut self) -> Self {
        self.invalidation_events = true;
        self
    }
}
