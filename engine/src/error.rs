//! The engine's errors.

use thiserror::Error;

/// Why an entry was not inserted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InsertError {
    /// The entry weighs more than the cache's `max_entry_weight` (or its whole capacity), so it
    /// could never be kept. Nothing was written, and an older value under the key is untouched.
    #[error("entry weighs {weight}, above the limit of {limit} per entry")]
    TooHeavy {
        /// The entry's weight, as the weigher returned it.
        weight: u64,
        /// The most one entry may weigh.
        limit: u64,
    },
}
