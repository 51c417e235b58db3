use std::error::Error;
use std::time::Duration;

/// Why a tier could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TierError {
    /// The backend cannot be reached or refused the operation (connection refused, pool
    /// exhausted, server loading, read-only replica).
    #[error("tier unavailable: {0}")]
    Unavailable(String),
    /// The operation did not finish within its deadline.
    #[error("tier operation timed out after {0:?}")]
    Timeout(Duration),
    /// The value is larger than this tier accepts.
    #[error("value of {size} bytes exceeds the tier's limit of {limit} bytes")]
    TooLarge {
        /// Size of the rejected value in bytes.
        size: usize,
        /// The tier's limit in bytes.
        limit: usize,
    },
    /// The stored data is damaged (a checksum or format check failed inside the tier).
    #[error("tier data is corrupt: {0}")]
    Corrupt(String),
    /// The tier was shut down.
    #[error("tier is closed")]
    Closed,
    /// Any other backend failure, with its source.
    #[error("tier backend error: {0}")]
    Backend(#[source] Box<dyn Error + Send + Sync + 'static>),
}

impl TierError {
    /// Wraps a backend's own error.
    pub fn backend(error: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        TierError::Backend(error.into())
    }

    /// Whether this error is a fault of the tier (it is down, slow or failing) rather than of
    /// the request (a value too large) or of one stored entry (corrupt bytes). Only faults
    /// count towards a circuit breaker: five oversize values must not take a healthy tier
    /// out of service.
    pub fn is_fault(&self) -> bool {
        match self {
            TierError::Unavailable(_) | TierError::Timeout(_) | TierError::Backend(_) => true,
            TierError::TooLarge { .. } | TierError::Corrupt(_) | TierError::Closed => false,
        }
    }
}
