//! Errors of the Redis tier, and how a Redis error becomes a [`TierError`].

use std::time::Duration;

use strata_tier::TierError;

/// Why a Redis tier could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisTierError {
    /// The URL is malformed, names an unknown option, or gives an option a bad value.
    #[error("invalid Redis tier URL: {0}")]
    InvalidUrl(String),
    /// A setting is out of range.
    #[error("invalid Redis tier setting: {0}")]
    InvalidConfig(String),
    /// The server (or no seed of the cluster) could be reached within the connect timeout.
    #[error("could not connect to Redis at {target}: {reason}")]
    Connect {
        /// The server or seeds, without passwords.
        target: String,
        /// What failed.
        reason: String,
    },
    /// Opening must happen inside a tokio runtime.
    #[error("the Redis tier must be opened inside a tokio runtime")]
    NoRuntime,
}

/// A server URL with its password replaced by `***`, for errors and logs.
pub(crate) fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A Redis error as a tier error: connection trouble is `Unavailable`, a timeout `Timeout`,
/// anything else (a server error reply) `Backend`. All three count towards a circuit breaker.
pub(crate) fn tier_error(error: redis::RedisError, timeout: Duration) -> TierError {
    if error.is_timeout() {
        TierError::Timeout(timeout)
    } else if error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_unrecoverable_error()
        || error.is_cluster_error()
    {
        TierError::Unavailable(error.to_string())
    } else {
        TierError::backend(error)
    }
}

/// Whether the connection an error came from should be discarded rather than reused.
pub(crate) fn breaks_connection(error: &redis::RedisError) -> bool {
    error.is_timeout()
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_unrecoverable_error()
}
