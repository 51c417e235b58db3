//! Recorded operations: what each call was asked, what it answered, and when it ran.
//!
//! Every operation takes two ticks of one global counter (`SeqCst` fetch-adds): one right before
//! the call (`invoke`) and one right after it returns (`respond`). Ticks are unique and totally
//! ordered, so `a.respond < b.invoke` proves that `a` returned before `b` was called: the
//! real-time order the checker's rules are stated in. Overlapping operations are concurrent and
//! may take effect in either order.
//!
//! Values are unique per write (see [`value_id`]), so a value read back names the one write that
//! produced it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub mod by_hand;

/// What an operation did to the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `get(&key)`: returns a value or misses.
    Get,
    /// `insert(key, value)`: writes `written`.
    Insert,
    /// `remove(&key)`: returns the value it removed, if any.
    Remove,
    /// `get_or_insert_with(key, loader)`: if the loader ran, it wrote `written` (and the call
    /// returned it); otherwise the call read the cached value, or a concurrent loader's.
    GetOrInsert,
}

/// One operation on one key, as invoked and as answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The thread that ran it (for display only).
    pub thread: u32,
    /// Which call.
    pub kind: Kind,
    /// The key it was called with.
    pub key: u64,
    /// The value this call stored: an insert's value, or the value a `get_or_insert_with`'s own
    /// loader produced. `None` for pure reads and removes, and for an insert the cache refused
    /// (too heavy), which the stress run leaves out of the histories it checks.
    pub written: Option<u64>,
    /// The value the call returned (`get`, `remove`, `get_or_insert_with`); `None` for a miss,
    /// for a remove that found nothing, and for inserts.
    pub returned: Option<u64>,
    /// Tick taken right before the call.
    pub invoke: u64,
    /// Tick taken right after it returned.
    pub respond: u64,
    /// Wall-clock nanoseconds since the run began, read right before the call and right after
    /// it returned, in runs with a TTL (see [`Ticker::clocked`]): what the checker's
    /// [`Rule::Expired`](crate::checker::Rule::Expired) compares with the TTL. `None` otherwise.
    pub wall: Option<(u64, u64)>,
}

impl Op {
    /// Whether the call stored a value (an insert, or a `get_or_insert_with` whose loader ran).
    pub fn is_write(&self) -> bool {
        self.written.is_some()
    }

    /// Whether the call saw `key` absent at some instant between invocation and response: a
    /// `get` or `remove` that found nothing, or a `get_or_insert_with` that ran its loader (it
    /// runs only after the call found no entry).
    pub fn observed_absent(&self) -> bool {
        match self.kind {
            Kind::Get | Kind::Remove => self.returned.is_none(),
            Kind::GetOrInsert => self.written.is_some(),
            Kind::Insert => false,
        }
    }

    /// The value this call read out of the cache (as opposed to one it wrote itself).
    pub fn read_value(&self) -> Option<u64> {
        match self.kind {
            Kind::Get | Kind::Remove => self.returned,
            Kind::GetOrInsert if self.written.is_none() => self.returned,
            // A loader's value returned by its own call is not a read; a different value
            // returned after the loader ran is (and the checker will ask who wrote it).
            Kind::GetOrInsert => self.returned.filter(|&v| Some(v) != self.written),
            Kind::Insert => None,
        }
    }

    /// Whether this call may have made the key absent: a remove (that removed something).
    pub fn is_successful_remove(&self) -> bool {
        self.kind == Kind::Remove && self.returned.is_some()
    }
}

/// A value id that encodes its writer: thread in the top 16 bits, that thread's sequence number
/// below. Distinct writes therefore never store equal values.
pub fn value_id(thread: u32, seq: u64) -> u64 {
    (u64::from(thread) << 48) | (seq & ((1 << 48) - 1))
}

/// A value id as `t<thread>#<sequence>` (`-` for none), as histories print it.
pub fn show_value(value: Option<u64>) -> String {
    match value {
        None => "-".to_string(),
        Some(v) => format!("t{}#{}", v >> 48, v & ((1 << 48) - 1)),
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = match self.kind {
            Kind::Get => "get".to_string(),
            Kind::Insert => format!("insert({})", show_value(self.written)),
            Kind::Remove => "remove".to_string(),
            Kind::GetOrInsert if self.written.is_some() => {
                format!("get_or_insert_with[loaded {}]", show_value(self.written))
            }
            Kind::GetOrInsert => "get_or_insert_with[cached]".to_string(),
        };
        let answer = match self.kind {
            Kind::Insert => String::new(),
            _ => format!(" -> {}", show_value(self.returned)),
        };
        write!(
            f,
            "[{:>10} .. {:>10}] thread {:>2} key {:>3} {call}{answer}",
            self.invoke, self.respond, self.thread, self.key
        )
    }
}

/// The global tick counter operations are stamped with.
#[derive(Debug, Default)]
pub struct Ticker {
    next: AtomicU64,
    /// The run's start, if operations are also stamped with wall-clock time.
    clock: Option<Instant>,
}

impl Ticker {
    /// A counter starting at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter starting at 0 whose [`wall`](Self::wall) reads the time since now.
    pub fn clocked() -> Self {
        Ticker {
            next: AtomicU64::new(0),
            clock: Some(Instant::now()),
        }
    }

    /// Nanoseconds since the run began, if this ticker is [`clocked`](Self::clocked).
    #[inline]
    fn wall(&self) -> Option<u64> {
        self.clock
            .map(|start| u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Runs `call` (which takes its own ticks) between two readings of the wall clock, and
    /// stamps what it recorded with them ([`Op::wall`]; `None` unless [`clocked`](Self::clocked)).
    /// The first reading comes before the call and the second after, so the span contains it.
    #[inline]
    pub fn walled(&self, call: impl FnOnce() -> Op) -> Op {
        let before = self.wall();
        let mut op = call();
        op.wall = before.zip(self.wall());
        op
    }

    /// The next tick. `SeqCst` so that all ticks form one order consistent with every thread's
    /// program order.
    #[inline]
    pub fn tick(&self) -> u64 {
        self.next.fetch_add(1, Ordering::SeqCst)
    }
}

/// Sorts a key's operations by invocation, the order they are printed and checked in.
pub fn sort_by_invoke(ops: &mut [Op]) {
    ops.sort_by_key(|op| (op.invoke, op.respond));
}
