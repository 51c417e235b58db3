//! Helpers shared by the integration tests: temporary tier files, bounded waits, a seeded
//! generator.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use strata_redb::{RedbTier, RedbTierBuilder};
use tempfile::TempDir;

mod seeded;
// Not every test binary uses both.
#[allow(unused_imports)]
pub use seeded::{crash_value, Rng};

/// A temporary directory holding one tier file; both go away on drop.
pub struct TempTier {
    pub dir: TempDir,
    pub path: PathBuf,
}

impl TempTier {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("tier.redb");
        TempTier { dir, path }
    }

    /// A builder for the file with test-friendly defaults: 64 MiB, 20 ms purges.
    pub fn builder(&self) -> RedbTierBuilder {
        RedbTier::builder(&self.path)
            .max_size(64 << 20)
            .purge_interval(Duration::from_millis(20))
    }

    pub fn open(&self) -> RedbTier {
        self.builder().open().expect("open the tier")
    }
}

/// Polls `check` every 5 ms until it is true or `limit` passes; returns whether it became true.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A seed from `SEED` in the environment, else from the clock; printed so a failure replays.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("{test}: SEED={seed}");
    seed
}
