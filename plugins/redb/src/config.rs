//! The tier's options: what the builder fills in, with the defaults it documents.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// When commits reach the disk (fsync). Either way, a commit is atomic: a crash leaves the file
/// at some committed state, never a half-applied batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every group commit is durable (redb `Durability::Immediate`, one fsync per commit). A
    /// crash loses only writes not yet committed.
    EveryCommit,
    /// Group commits are not durable (redb `Durability::None`, no fsync); a durable commit
    /// follows at most this long after the first non-durable one, and at shutdown. A crash can
    /// lose the commits of the last interval. Writes acknowledged with [`WriteAck::Durable`] and
    /// invalidations still get a durable commit of their own batch.
    Periodic(Duration),
}

/// When [`Tier::set`](strata_tier::Tier::set) and `set_many` return `Ok`.
///
/// Whatever the choice, a `get` from this process sees the value as soon as `set` has
/// returned (the pending-writes overlay answers until the commit lands), and invalidations
/// (`delete`, `delete_matching`, `clear`) always wait for a durable commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteAck {
    /// As soon as the write is queued for the writer thread. Fastest; an I/O failure after the
    /// return turns the tier [down](strata_tier::Health::Down) rather than reporting it to the
    /// caller.
    Enqueued,
    /// Once the group commit holding the write has committed (durable or not, per
    /// [`Durability`]).
    Committed,
    /// Once a durable commit holds the write: it survives a crash of the process or machine.
    Durable,
}

/// Why a [`Durability`] or [`WriteAck`] spelling did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseOptionError(String);

impl fmt::Display for ParseOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseOptionError {}

/// The one parser of ack spellings (the builder's docs and the `ack` URL parameter use it):
/// `enqueued` (or `queued`), `committed` (or `commit`), `durable`, in any case.
impl FromStr for WriteAck {
    type Err = ParseOptionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "enqueued" | "queued" => Ok(WriteAck::Enqueued),
            "committed" | "commit" => Ok(WriteAck::Committed),
            "durable" => Ok(WriteAck::Durable),
            _ => Err(ParseOptionError(format!(
                "unknown write ack {s:?} (expected enqueued, committed or durable)"
            ))),
        }
    }
}

/// `every_commit` (or `immediate`) for [`Durability::EveryCommit`], else a positive
/// [humantime](https://docs.rs/humantime) period (`500ms`, `1s`, `2m`) for
/// [`Durability::Periodic`].
impl FromStr for Durability {
    type Err = ParseOptionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        match text.to_ascii_lowercase().as_str() {
            "every_commit" | "immediate" => return Ok(Durability::EveryCommit),
            _ => {}
        }
        match humantime::parse_duration(text) {
            Ok(period) if !period.is_zero() => Ok(Durability::Periodic(period)),
            Ok(_) => Err(ParseOptionError(format!(
                "durability {s:?}: a period must be positive (or use every_commit)"
            ))),
            Err(error) => Err(ParseOptionError(format!(
                "durability {s:?}: expected every_commit or a period such as 500ms ({error})"
            ))),
        }
    }
}

/// Everything the builder sets.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub path: PathBuf,
    pub max_size: u64,
    pub max_entry_size: u64,
    pub purge_interval: Duration,
    pub purge_batch: usize,
    pub durability: Durability,
    pub ack: WriteAck,
    pub recreate_if_corrupt: bool,
    pub check_integrity_on_open: bool,
    pub page_cache_size: usize,
    pub queue_bytes: u64,
    pub max_batch: usize,
    pub max_batch_bytes: u64,
    pub compaction_slack: u64,
    pub min_compaction_interval: Duration,
}

impl Config {
    pub(crate) fn new(path: PathBuf) -> Self {
        Config {
            path,
            max_size: 1 << 30,
            max_entry_size: 0,
            purge_interval: Duration::from_secs(1),
            purge_batch: 1024,
            durability: Durability::Periodic(Duration::from_secs(1)),
            ack: WriteAck::Enqueued,
            recreate_if_corrupt: false,
            check_integrity_on_open: false,
            page_cache_size: 64 << 20,
            queue_bytes: 64 << 20,
            max_batch: 4096,
            max_batch_bytes: 0,
            compaction_slack: 0,
            min_compaction_interval: Duration::from_secs(1),
        }
    }

    /// The largest entry (key plus framed value) accepted: the configured limit, or an eighth of
    /// `max_size`.
    pub(crate) fn entry_limit(&self) -> u64 {
        if self.max_entry_size > 0 {
            self.max_entry_size.min(self.max_size)
        } else {
            (self.max_size / 8).max(1)
        }
    }

    /// The file size above which the writer compacts: `max_size` plus the slack (by default
    /// `max_size / 2 + 8 MiB`, see the crate docs).
    pub(crate) fn compaction_threshold(&self) -> u64 {
        let slack = if self.compaction_slack > 0 {
            self.compaction_slack
        } else {
            self.max_size / 2 + (8 << 20)
        };
        self.max_size.saturating_add(slack)
    }

    /// Bytes of values one group commit takes at most (it always takes at least one request):
    /// the configured limit, or `max_size / 16` clamped to 256 KiB ..= 16 MiB. A batch far larger
    /// than the bound would make the file hold it whole before eviction frees room.
    pub(crate) fn batch_bytes(&self) -> u64 {
        if self.max_batch_bytes > 0 {
            self.max_batch_bytes
        } else {
            (self.max_size / 16).clamp(256 << 10, 16 << 20)
        }
    }

    /// Bytes that non-durable commits may write before a durable one is forced: a quarter of
    /// `max_size`, at least 1 MiB.
    pub(crate) fn undurable_bytes_limit(&self) -> u64 {
        (self.max_size / 4).max(1 << 20)
    }

    /// Eviction runs until live bytes are at or below this: 1/32 under `max_size`, so that a
    /// full tier does not evict on every write.
    pub(crate) fn eviction_target(&self) -> u64 {
        self.max_size - self.max_size / 32
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.max_size == 0 {
            return Err("max_size must be at least 1 byte".into());
        }
        if self.purge_interval.is_zero() {
            return Err("purge_interval must be positive".into());
        }
        if self.purge_batch == 0 || self.max_batch == 0 {
            return Err("purge_batch and max_batch must be at least 1".into());
        }
        if let Durability::Periodic(interval) = self.durability {
            if interval.is_zero() {
                return Err(
                    "a periodic durability interval must be positive (or use EveryCommit)".into(),
                );
            }
        }
        if self.queue_bytes < 1024 {
            return Err("queue_bytes must be at least 1 KiB".into());
        }
        Ok(())
    }
}
