//! The crate's typed errors.

/// A config the layer cannot run with; each variant names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A path glob that globset refuses.
    #[error("invalid path glob {glob:?}: {reason}")]
    Glob {
        /// The glob as written.
        glob: String,
        /// globset's reason.
        reason: String,
    },
    /// A method that is not a cacheable (safe) method, or not a method at all.
    #[error("{0:?} is not a cacheable method (GET and HEAD are)")]
    Method(String),
    /// A header name that is not a valid HTTP header name.
    #[error("{0:?} is not a valid header name")]
    HeaderName(String),
    /// An admin path that does not start with `/`.
    #[error("admin path {0:?} must start with '/'")]
    AdminPath(String),
    /// A key prefix holding glob or separator characters (`* ? [ ] \ #` or a space).
    #[error("key prefix {0:?} may not hold '*', '?', '[', ']', '\\', '#' or a space")]
    KeyPrefix(String),
}
