//! [`RedbTierBuilder`]: every option of the tier, with its default.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, Durability, WriteAck};
use crate::error::RedbTierError;
use crate::tier::RedbTier;

/// Configures and opens a [`RedbTier`]. Made by [`RedbTier::builder`].
///
/// | option | default |
/// | --- | --- |
/// | [`max_size`](Self::max_size) | 1 GiB of live data |
/// | [`max_entry_size`](Self::max_entry_size) | `max_size / 8` |
/// | [`purge_interval`](Self::purge_interval) | 1 s |
/// | [`purge_batch`](Self::purge_batch) | 1024 index rows per purge transaction |
/// | [`durability`](Self::durability) | `Durability::Periodic(1 s)` |
/// | [`ack`](Self::ack) | `WriteAck::Enqueued` |
/// | [`recreate_if_corrupt`](Self::recreate_if_corrupt) | `false` |
/// | [`check_integrity_on_open`](Self::check_integrity_on_open) | `false` |
/// | [`page_cache_size`](Self::page_cache_size) | 64 MiB |
/// | [`queue_bytes`](Self::queue_bytes) | 64 MiB |
/// | [`max_batch`](Self::max_batch) | 4096 operations per group commit |
/// | [`max_batch_bytes`](Self::max_batch_bytes) | `max_size / 16`, within 256 KiB ..= 16 MiB |
/// | [`compaction_slack`](Self::compaction_slack) | `max_size / 2 + 8 MiB` |
/// | [`min_compaction_interval`](Self::min_compaction_interval) | 1 s |
#[derive(Clone, Debug)]
#[must_use]
pub struct RedbTierBuilder {
    config: Config,
}

impl RedbTierBuilder {
    pub(crate) fn new(path: PathBuf) -> Self {
        RedbTierBuilder {
            config: Config::new(path),
        }
    }

    /// The bound on live bytes (each entry counts its framed value, its key three times and 64
    /// bytes of index overhead). Above it, the writer purges expired entries and then evicts the
    /// least recently used.
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.config.max_size = bytes;
        self
    }

    /// The largest entry `set` accepts (key and framed value), clamped to `max_size`; larger
    /// ones get `TierError::TooLarge`. 0 restores the default, `max_size / 8`.
    pub fn max_entry_size(mut self, bytes: u64) -> Self {
        self.config.max_entry_size = bytes;
        self
    }

    /// How often the writer purges expired entries. Reads never return expired entries
    /// whatever this is; it only decides how long they occupy the file.
    pub fn purge_interval(mut self, interval: Duration) -> Self {
        self.config.purge_interval = interval;
        self
    }

    /// Expiry index rows one purge transaction visits at most; a longer backlog continues in
    /// the next transaction at once.
    pub fn purge_batch(mut self, rows: usize) -> Self {
        self.config.purge_batch = rows;
        self
    }

    /// When commits are made durable: see [`Durability`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.config.durability = durability;
        self
    }

    /// The same as [`durability`](Self::durability) with a plain type: `Duration::ZERO` for
    /// [`Durability::EveryCommit`], else [`Durability::Periodic`] with this interval.
    pub fn durable_interval(self, interval: Duration) -> Self {
        self.durability(if interval.is_zero() {
            Durability::EveryCommit
        } else {
            Durability::Periodic(interval)
        })
    }

    /// When `set` returns: see [`WriteAck`]. [`WriteAck`] also parses (`FromStr`) from
    /// `"enqueued"`, `"committed"` and `"durable"`, as the `ack` parameter of a
    /// [`RedbFactory`](crate::RedbFactory) URL does.
    pub fn ack(mut self, ack: WriteAck) -> Self {
        self.config.ack = ack;
        self
    }

    /// If the file is corrupt or not a tier file, delete it and start with an empty one instead
    /// of failing with [`RedbTierError::Corrupt`] or [`RedbTierError::Incompatible`].
    pub fn recreate_if_corrupt(mut self, recreate: bool) -> Self {
        self.config.recreate_if_corrupt = recreate;
        self
    }

    /// Have redb verify every page checksum at open (reads the whole file). Without it, a file
    /// damaged while closed may only show the damage later, as corrupt reads.
    pub fn check_integrity_on_open(mut self, check: bool) -> Self {
        self.config.check_integrity_on_open = check;
        self
    }

    /// Memory for redb's own page cache (on top of the operating system's).
    pub fn page_cache_size(mut self, bytes: usize) -> Self {
        self.config.page_cache_size = bytes;
        self
    }

    /// Bytes of writes that may wait for the writer thread; past it, `set` waits (asynchronously)
    /// for room.
    pub fn queue_bytes(mut self, bytes: u64) -> Self {
        self.config.queue_bytes = bytes;
        self
    }

    /// Operations in one group commit at most.
    pub fn max_batch(mut self, operations: usize) -> Self {
        self.config.max_batch = operations;
        self
    }

    /// Bytes of keys and values in one group commit at most (a single larger write still
    /// commits, alone). 0 restores the default, `max_size / 16` clamped to 256 KiB ..= 16 MiB.
    pub fn max_batch_bytes(mut self, bytes: u64) -> Self {
        self.config.max_batch_bytes = bytes;
        self
    }

    /// How far the file may grow past `max_size` before the writer compacts it. 0 restores the
    /// default, `max_size / 2 + 8 MiB`.
    pub fn compaction_slack(mut self, bytes: u64) -> Self {
        self.config.compaction_slack = bytes;
        self
    }

    /// The shortest time between two compactions.
    pub fn min_compaction_interval(mut self, interval: Duration) -> Self {
        self.config.min_compaction_interval = interval;
        self
    }

    /// The options as set so far.
    #[cfg(test)]
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Opens (or creates) the file and starts the writer thread.
    ///
    /// **Blocks**: after a crash, redb repairs the file at open, which reads all of it. From
    /// async code use [`open_async`](Self::open_async).
    pub fn open(self) -> Result<RedbTier, RedbTierError> {
        self.config
            .validate()
            .map_err(RedbTierError::InvalidConfig)?;
        RedbTier::open(self.config)
    }

    /// [`open`](Self::open) on tokio's blocking pool.
    pub async fn open_async(self) -> Result<RedbTier, RedbTierError> {
        let path = self.config.path.clone();
        tokio::task::spawn_blocking(move || self.open())
            .await
            .map_err(|error| RedbTierError::Io {
                path,
                source: std::io::Error::other(format!("the open task failed: {error}")),
            })?
    }
}
