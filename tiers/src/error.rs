use std::error::Error;

use strata_tier::{PatternError, TierError};

/// A lower tier's failure, named.
#[derive(Debug, thiserror::Error)]
#[error("tier {tier}: {error}")]
pub struct TierFailure {
    /// The tier's name.
    pub tier: String,
    /// What went wrong.
    #[source]
    pub error: TierError,
}

/// Why a `TieredCache` operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The encoded value is larger than `max_value_size`; nothing was written anywhere.
    #[error("value of {size} bytes exceeds max_value_size of {limit} bytes; nothing was written")]
    ValueTooLarge {
        /// The encoded size in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The value could not be serialised; nothing was written.
    #[error("value could not be encoded: {0}")]
    Encode(#[source] Box<dyn Error + Send + Sync + 'static>),
    /// The L1 refused the value (heavier than its `max_entry_weight`); nothing was written.
    #[error("the L1 refused the value: {0}")]
    L1(#[from] strata_engine::InsertError),
    /// The loader of `get_or_load` failed; nothing was cached.
    #[error("loader failed: {0}")]
    Loader(#[source] Box<dyn Error + Send + Sync + 'static>),
    /// An invalidation (delete, pattern, clear) failed in at least one tier, so a stale entry
    /// may remain there. The L1 was invalidated; retry the call.
    #[error("invalidation failed in {} tier(s): {}", .0.len(), join(.0))]
    Invalidation(Vec<TierFailure>),
    /// The pattern could not be parsed.
    #[error(transparent)]
    Pattern(#[from] PatternError),
}

fn join(failures: &[TierFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
