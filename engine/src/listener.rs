//! Eviction notifications.

/// Why an entry left the cache, as told to the eviction listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvictionCause {
    /// Evicted by the policy to make room.
    Evicted,
    /// Its time to live ran out.
    Expired,
    /// Removed by `remove`, `retain` or `clear`.
    Removed,
    /// Overwritten by a new value for the same key.
    Replaced,
}

impl EvictionCause {
    /// Whether the cache itself chose to drop the entry (eviction or expiry), as opposed to a
    /// caller's removal or overwrite.
    pub fn was_evicted(self) -> bool {
        matches!(self, EvictionCause::Evicted | EvictionCause::Expired)
    }
}

pub(crate) type Listener<K, V> = Box<dyn Fn(&K, &V, EvictionCause) + Send + Sync>;
