//! Wall-clock expiry in unix milliseconds: what the records and the expiry index store, so that
//! expiry survives a restart.
//!
//! Expiry rounds toward earlier: a ttl of 50 ms set at 1000.9 ms expires at 1050 ms, so an entry
//! may be forgotten up to 1 ms early and is never returned late. A wall clock stepped backwards
//! keeps entries longer by the step; one stepped forwards expires them early.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the unix epoch (0 if the clock reads before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The stored expiry for `ttl` set at `now`: 0 for none.
pub(crate) fn expiry_for(ttl: Option<Duration>, now: u64) -> u64 {
    match ttl {
        None => 0,
        Some(ttl) => {
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            // `now` is positive on any real clock; max(1) keeps 0 meaning "never" even on one that
            // reads 1970.
            now.saturating_add(ms).max(1)
        }
    }
}

/// Whether an entry with stored expiry `expiry_ms` is expired at `now`.
pub(crate) fn is_expired(expiry_ms: u64, now: u64) -> bool {
    expiry_ms != 0 && now >= expiry_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_inclusive_and_zero_means_never() {
        assert_eq!(expiry_for(None, 1000), 0);
        assert_eq!(expiry_for(Some(Duration::from_millis(50)), 1000), 1050);
        assert!(!is_expired(1050, 1049));
        assert!(is_expired(1050, 1050));
        assert!(!is_expired(0, u64::MAX));
        assert!(is_expired(expiry_for(Some(Duration::ZERO), 1000), 1000));
        assert_eq!(expiry_for(Some(Duration::MAX), 1000), u64::MAX);
    }
}
