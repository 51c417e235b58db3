//! Helpers shared by the integration tests: temporary tier files, bounded waits, a seeded
//! generator.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use strata_redb::{RedbTier, RedbTierBuilder};
use tempfile::TempDir;

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

/// SplitMix64: a small seeded generator, so failures replay from a printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
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
