//! The recorder: every call on the tiered stack, stamped with a global logical clock at its
//! invocation and at its return, with what it wrote, read or got wrong.
//!
//! Stamps come from one `AtomicU64` (`fetch_add`, `SeqCst`), so they are unique and totally
//! ordered, and `a.end < b.start` proves that `a` returned before `b` was called. A loader's
//! run is recorded as its own [`Kind::Loader`] operation, stamped when the loader *starts*
//! (its value is "as of" that instant, like a read of the source of truth) and when it ends.
//!
//! Values are globally unique ([`Recorder::fresh_value`]), so a value read back names the one
//! `set` or loader run that produced it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// What an operation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `get(key)`: `value` is what it returned (`None`: a miss).
    Get,
    /// One key of a `get_many`: `value` is that key's answer; all keys share the stamps.
    GetMany,
    /// `get_or_load(key, loader)`: `value` is what it returned; `ok == false` if it failed.
    Load,
    /// A loader's run (inside some `get_or_load` of `key`): `start` is when the loader began,
    /// `value` the fresh value it produced (`ok == false`: it failed, `value` is `None`).
    Loader,
    /// `set(key, value)` or `set_with_ttl`: an update.
    Set,
    /// `delete(key)`: an update; `ok == false` if it returned `CacheError::Invalidation`.
    Delete,
    /// `invalidate_pattern("<group>:*")`: `key` holds the group; an update of every key of
    /// that group.
    Pattern,
    /// `clear()`: an update of every key.
    Clear,
    /// `l1().remove(key)`: not an update (an eviction as far as the contract goes). With a
    /// `value`, a sabotaged run put that old value into L1 instead.
    L1Remove,
    /// `l1().clear()`: not an update.
    L1Clear,
    /// Quiescent probe: what L1 held (`l1().get`), checked as a read.
    ProbeL1,
    /// Quiescent probe: a real `get` after clearing L1, checked as a read.
    ProbeGet,
    /// Quiescent probe: the value decoded from tier `key`'s raw storage (`tier` says which);
    /// *counted*, never a violation by itself, since a tier may keep an old value that reads
    /// skip (a stale mark after a failed write).
    ProbeTier,
}

impl Kind {
    /// Whether its `value` is a value returned to a caller (or held by L1) that the staleness
    /// rule applies to.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Kind::Get | Kind::GetMany | Kind::Load | Kind::ProbeL1 | Kind::ProbeGet
        )
    }

    /// Whether it is an update of the keys it covers.
    pub fn is_update(self) -> bool {
        matches!(self, Kind::Set | Kind::Delete | Kind::Pattern | Kind::Clear)
    }

    /// A short name for reports.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Get => "get",
            Kind::GetMany => "get_many",
            Kind::Load => "get_or_load",
            Kind::Loader => "loader",
            Kind::Set => "set",
            Kind::Delete => "delete",
            Kind::Pattern => "invalidate_pattern",
            Kind::Clear => "clear",
            Kind::L1Remove => "l1.remove",
            Kind::L1Clear => "l1.clear",
            Kind::ProbeL1 => "probe.l1",
            Kind::ProbeGet => "probe.get",
            Kind::ProbeTier => "probe.tier",
        }
    }
}

/// How keys are named: key `i` belongs to group `i % GROUPS.len()` and is `"<group>:<i / 2>"`,
/// so `user:0, item:0, user:1, item:1, ...`; `invalidate_pattern("user:*")` covers group 0.
pub const GROUPS: [&str; 2] = ["user", "item"];

/// The group of key `key`.
pub fn group_of(key: u32) -> u32 {
    key % GROUPS.len() as u32
}

/// The name of key `key` in the cache.
pub fn key_name(key: u32) -> String {
    let groups = GROUPS.len() as u32;
    format!("{}:{}", GROUPS[(key % groups) as usize], key / groups)
}

/// One recorded operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The task that ran it (`u32::MAX` for the checker's probes).
    pub task: u32,
    /// Which call.
    pub kind: Kind,
    /// The key (a group for [`Kind::Pattern`], the tier index for [`Kind::ProbeTier`] is in
    /// `tier`; unused for clears).
    pub key: u32,
    /// For [`Kind::ProbeTier`]: 2 for L2, 3 for L3.
    pub tier: u8,
    /// Stamp at invocation (a loader's: when it started).
    pub start: u64,
    /// Stamp at return.
    pub end: u64,
    /// Written (set, loader) or returned (reads) value.
    pub value: Option<u64>,
    /// Whether the call succeeded.
    pub ok: bool,
}

impl Op {
    /// Whether this update covers `key`.
    pub fn covers(&self, key: u32) -> bool {
        match self.kind {
            Kind::Set | Kind::Delete => self.key == key,
            Kind::Pattern => self.key == group_of(key),
            Kind::Clear => true,
            _ => false,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = if self.task == u32::MAX {
            "checker".to_owned()
        } else {
            format!("task {}", self.task)
        };
        let what = match self.kind {
            Kind::Pattern => format!("{}(\"{}:*\")", self.kind.label(), GROUPS[self.key as usize]),
            Kind::Clear | Kind::L1Clear => format!("{}()", self.kind.label()),
            Kind::ProbeTier => format!(
                "{}(l{}, {})",
                self.kind.label(),
                self.tier,
                key_name(self.key)
            ),
            _ => format!("{}({})", self.kind.label(), key_name(self.key)),
        };
        let value = match (self.kind, self.value) {
            (Kind::Set | Kind::Loader, Some(v)) => format!(" wrote {v}"),
            (Kind::Set | Kind::Loader | Kind::Delete | Kind::Pattern | Kind::Clear, None) => {
                String::new()
            }
            (Kind::L1Remove, Some(v)) => format!(" [sabotage: put {v} into L1 instead]"),
            (Kind::L1Remove | Kind::L1Clear, _) => String::new(),
            (_, Some(v)) => format!(" -> {v}"),
            (_, None) => " -> miss".to_owned(),
        };
        let failed = if self.ok { "" } else { " [failed]" };
        write!(
            f,
            "[{:>9} .. {:>9}] {who:>8}: {what}{value}{failed}",
            self.start, self.end
        )
    }
}

/// The shared clock, value counter and per-task logs.
#[derive(Debug, Default)]
pub struct Recorder {
    clock: AtomicU64,
    values: AtomicU64,
    logs: Mutex<Vec<Arc<Mutex<Vec<Op>>>>>,
}

impl Recorder {
    /// A recorder at stamp 0.
    pub fn new() -> Self {
        Recorder::default()
    }

    /// The next stamp (unique, increasing in real time).
    pub fn stamp(&self) -> u64 {
        self.clock.fetch_add(1, SeqCst) + 1
    }

    /// A value never handed out before (starting at 1).
    pub fn fresh_value(&self) -> u64 {
        self.values.fetch_add(1, SeqCst) + 1
    }

    /// A log for one task; [`drain`](Self::drain) collects every log's operations.
    pub fn log(&self) -> Log {
        let ops = Arc::new(Mutex::new(Vec::new()));
        lock(&self.logs).push(Arc::clone(&ops));
        Log { ops }
    }

    /// Takes every operation recorded so far, from every log.
    pub fn drain(&self) -> Vec<Op> {
        let logs = lock(&self.logs);
        let mut all = Vec::new();
        for log in logs.iter() {
            all.append(&mut lock(log));
        }
        all
    }
}

/// One task's operations (pushed under an uncontended mutex; drained at quiescent points).
#[derive(Clone, Debug)]
pub struct Log {
    ops: Arc<Mutex<Vec<Op>>>,
}

impl Log {
    /// Records one operation.
    pub fn push(&self, op: Op) {
        lock(&self.ops).push(op);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
