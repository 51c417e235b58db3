use std::error::Error;
use std::sync::Arc;

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
    /// The loader of `get_or_load` failed; nothing was cached. Every caller that shared the
    /// load gets the same error (hence the `Arc`).
    #[error("loader failed: {0}")]
    Loader(#[source] Arc<dyn Error + Send + Sync + 'static>),
    /// An invalidation (delete, pattern, clear) failed in at least one tier, so an old entry
    /// may remain there. L1 was invalidated, and each failed tier skips the affected keys for
    /// reads until a later write, invalidation or clear succeeds there; retry to clean up.
    #[error("invalidation failed in {} tier(s): {}", .0.len(), join(.0))]
    Invalidation(Vec<TierFailure>),
    /// At least one tier failed to close (flush and stop).
    #[error("close failed in {} tier(s): {}", .0.len(), join(.0))]
    Close(Vec<TierFailure>),
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
