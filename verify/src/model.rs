//! A single-threaded reference model of the cache, driven by [`Step`]s on a `Cache<u8, u32>` with
//! a mocked clock. Shared by the proptest in `tests/model.rs` and the cargo-fuzz target in
//! `fuzz/`, so that the two check the same rules and cannot drift apart.
//!
//! The model installs an eviction listener and uses it to stay exact even with eviction: an entry
//! the listener has not reported as leaving is still in the cache. So, after every step:
//!
//! * every answer (`get`, `remove`, `contains_key`, `get_or_insert_with` and whether its loader
//!   ran, `time_to_live_of`, `iter`, `run_pending_maintenance`'s count) equals the model's, except
//!   that a read may miss an entry that the listener reported as evicted during that same call;
//! * the listener reports each value at most once, only values the cache held, with the right
//!   cause: `Replaced` only by an insert of that key, `Removed` only by `remove` / `retain` /
//!   `clear`, `Expired` only once the TTL has passed (never early at whole-millisecond times),
//!   `Evicted` only by a write (`insert`, a load's insert in `get_or_insert_with`) and only
//!   while the cache is over a bound, its entries counted as the write left them (the written
//!   entry in, the one it replaced out) less those already reported gone: so no more victims
//!   than it takes to get back within the bounds; and every entry a step removes itself
//!   (replace, remove, retain, clear, maintenance) is reported during that step;
//! * `len()` and `weighted_size()` equal the entries not yet reported (expired ones not yet
//!   reclaimed included), within `max_capacity` and `max_weight`;
//! * the statistics (hits, misses, inserts, evictions, expirations, rejections) are exact;
//! * dropping the cache tells the listener nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use strata_engine::{Cache, CacheStats, Clock, EvictionCause, MockClock};

/// Keys are `0..KEYS`.
pub const KEYS: u8 = 12;

/// One call on the cache (or on its mocked clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `insert`; `insert_with_ttl` with a TTL of that many milliseconds if given. Each insert
    /// writes a fresh value.
    Insert(u8, Option<u64>),
    /// `get`.
    Get(u8),
    /// `remove`.
    Remove(u8),
    /// `contains_key`.
    Contains(u8),
    /// `get_or_insert_with`, whose loader would write a fresh value.
    GetOrInsert(u8),
    /// `time_to_live_of`.
    TimeToLive(u8),
    /// `retain`, keeping the entries whose value is not a multiple of this (`>= 1`).
    Retain(u32),
    /// `clear`.
    Clear,
    /// `iter`.
    Iter,
    /// `run_pending_maintenance`.
    Maintenance,
    /// Advance the mocked clock by this many whole milliseconds.
    Advance(u64),
}

/// How the cache is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// `max_capacity`, if set.
    pub max_capacity: Option<u64>,
    /// `max_weight`, if set; it also installs the weigher [`weight_of`].
    pub max_weight: Option<u64>,
    /// The default `time_to_live`, in milliseconds, if set.
    pub time_to_live_ms: Option<u64>,
}

impl Setup {
    /// A count bound of `capacity` entries, nothing else.
    pub fn capacity(capacity: u64) -> Self {
        Setup {
            max_capacity: Some(capacity),
            max_weight: None,
            time_to_live_ms: None,
        }
    }

    /// Whether the cache may evict: a bound is set that the entries of [`KEYS`] keys can reach.
    /// With `max_capacity` above the key space (and no weight bound) nothing may be evicted.
    pub fn may_evict(&self) -> bool {
        self.max_weight.is_some() || self.max_capacity.is_some_and(|c| c <= u64::from(KEYS))
    }

    /// The weight of `value` as the cache sees it: [`weight_of`] with a weight bound, else 1.
    fn weight(&self, value: u32) -> u64 {
        if self.max_weight.is_some() {
            weight_of(value)
        } else {
            1
        }
    }

    /// Whether an entry with `value` is stored at all (`max_entry_weight` defaults to
    /// `max_weight`; heavier entries are rejected).
    fn storable(&self, value: u32) -> bool {
        self.max_weight.is_none_or(|max| self.weight(value) <= max)
    }
}

/// The weigher of setups with a weight bound: 0 to 4, so some entries weigh nothing and, under
/// small bounds, some are too heavy to be stored.
pub fn weight_of(value: u32) -> u64 {
    u64::from(value % 5)
}

/// A disagreement between the cache and the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch(pub String);

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Mismatch {}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(Mismatch(format!($($fmt)+)));
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    value: u32,
    /// Milliseconds of mocked time at which it expires.
    deadline: Option<u64>,
}

/// The counters of [`CacheStats`] that the model predicts exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counters {
    hits: u64,
    misses: u64,
    inserts: u64,
    evictions: u64,
    expirations: u64,
    rejections: u64,
}

impl From<CacheStats> for Counters {
    fn from(s: CacheStats) -> Self {
        Counters {
            hits: s.hits,
            misses: s.misses,
            inserts: s.inserts,
            evictions: s.evictions,
            expirations: s.expirations,
            rejections: s.rejections,
        }
    }
}

type Events = Arc<Mutex<Vec<(u8, u32, EvictionCause)>>>;

/// An entry the step itself removes, and the causes it may be reported with.
#[derive(Debug)]
struct Own {
    key: u8,
    value: u32,
    /// Its TTL had passed when the step began.
    expired: bool,
    causes: &'static [EvictionCause],
}

/// What a step returned, checked once the listener's reports are in.
enum Answer {
    None,
    Value(Option<u32>),
    Contains(bool),
    Loaded { got: u32, fresh: u32, loaded: bool },
    TimeToLive(Option<Option<Duration>>),
    Iter(BTreeMap<u8, u32>),
    Maintenance(usize),
}

/// The cache under test and what it must hold.
pub struct Model {
    cache: Cache<u8, u32>,
    mock: MockClock,
    setup: Setup,
    events: Events,
    /// Every entry the cache holds: written and not yet reported leaving, expired ones included.
    held: BTreeMap<u8, Entry>,
    now_ms: u64,
    next_value: u32,
    expected: Counters,
}

impl Model {
    /// A new cache built from `setup`, with a mocked clock and a recording listener.
    pub fn new(setup: Setup) -> Self {
        let (clock, mock) = Clock::mock();
        let events: Events = Arc::default();
        let record = Arc::clone(&events);
        let mut builder =
            Cache::builder()
                .clock(clock)
                .eviction_listener(move |key: &u8, value: &u32, cause| {
                    lock(&record).push((*key, *value, cause));
                });
        if let Some(capacity) = setup.max_capacity {
            builder = builder.max_capacity(capacity);
        }
        if let Some(weight) = setup.max_weight {
            builder = builder
                .max_weight(weight)
                // The model's rule: an entry may weigh up to the whole bound.
                .max_entry_weight(weight)
                .weigher(|_, value: &u32| weight_of(*value) as u32);
        }
        if let Some(ms) = setup.time_to_live_ms {
            builder = builder.time_to_live(Duration::from_millis(ms));
        }
        Model {
            cache: builder.build(),
            mock,
            setup,
            events,
            held: BTreeMap::new(),
            now_ms: 0,
            next_value: 0,
            expected: Counters::default(),
        }
    }

    fn fresh(&mut self) -> u32 {
        self.next_value += 1;
        self.next_value
    }

    fn expired(&self, entry: &Entry) -> bool {
        entry.deadline.is_some_and(|d| self.now_ms >= d)
    }

    /// `key`'s entry `old`, which this step removes itself, reported for one of `causes`.
    fn own(&self, key: u8, old: Entry, causes: &'static [EvictionCause]) -> Own {
        Own {
            key,
            value: old.value,
            expired: self.expired(&old),
            causes,
        }
    }

    /// The live (unexpired) entry of `key` in `entries`.
    fn live_in(&self, entries: &BTreeMap<u8, Entry>, key: u8) -> Option<Entry> {
        entries.get(&key).filter(|e| !self.expired(e)).copied()
    }

    fn live_entries(&self) -> BTreeMap<u8, u32> {
        self.held
            .iter()
            .filter(|(_, e)| !self.expired(e))
            .map(|(k, e)| (*k, e.value))
            .collect()
    }

    fn deadline(&self, ttl_ms: Option<u64>) -> Option<u64> {
        ttl_ms.map(|ms| self.now_ms.saturating_add(ms))
    }

    /// Applies one step to the cache and checks it against the model.
    pub fn apply(&mut self, step: Step) -> Result<(), Mismatch> {
        use EvictionCause::{Expired, Removed, Replaced};
        let before = self.held.clone();
        let mut own: Vec<Own> = Vec::new();
        let answer = match step {
            Step::Insert(key, ttl) => {
                let value = self.fresh();
                match ttl {
                    None => self.cache.insert(key, value),
                    Some(ms) => self
                        .cache
                        .insert_with_ttl(key, value, Duration::from_millis(ms)),
                }
                if self.setup.storable(value) {
                    let deadline = self.deadline(ttl.or(self.setup.time_to_live_ms));
                    if let Some(old) = self.held.insert(key, Entry { value, deadline }) {
                        own.push(self.own(key, old, &[Replaced]));
                    }
                    self.expected.inserts += 1;
                } else {
                    self.expected.rejections += 1;
                }
                Answer::None
            }
            Step::Get(key) => {
                let got = self.cache.get(&key);
                if got.is_some() {
                    self.expected.hits += 1;
                } else {
                    self.expected.misses += 1;
                }
                Answer::Value(got)
            }
            Step::Remove(key) => {
                let got = self.cache.remove(&key);
                if let Some(old) = self.held.remove(&key) {
                    let causes: &[_] = if self.expired(&old) {
                        &[Expired]
                    } else {
                        &[Removed]
                    };
                    own.push(self.own(key, old, causes));
                }
                Answer::Value(got)
            }
            Step::Contains(key) => Answer::Contains(self.cache.contains_key(&key)),
            Step::GetOrInsert(key) => {
                let fresh = self.fresh();
                let mut loaded = false;
                let got = self.cache.get_or_insert_with(key, || {
                    loaded = true;
                    fresh
                });
                if loaded {
                    self.expected.misses += 1;
                    if self.setup.storable(fresh) {
                        let deadline = self.deadline(self.setup.time_to_live_ms);
                        let entry = Entry {
                            value: fresh,
                            deadline,
                        };
                        if let Some(old) = self.held.insert(key, entry) {
                            // An expired entry, reclaimed by the loader's read (or replaced),
                            // or one the cache evicted while the loader ran.
                            own.push(self.own(
                                key,
                                old,
                                &[Expired, Replaced, EvictionCause::Evicted],
                            ));
                        }
                        self.expected.inserts += 1;
                    } else {
                        self.expected.rejections += 1;
                    }
                } else {
                    self.expected.hits += 1;
                }
                Answer::Loaded { got, fresh, loaded }
            }
            Step::TimeToLive(key) => Answer::TimeToLive(self.cache.time_to_live_of(&key)),
            Step::Retain(m) => {
                self.cache.retain(|_, v| v % m != 0);
                let gone: Vec<u8> = self
                    .held
                    .iter()
                    .filter(|(_, e)| e.value % m == 0)
                    .map(|(k, _)| *k)
                    .collect();
                for key in gone {
                    let old = self.held.remove(&key).expect("listed above");
                    own.push(self.own(key, old, &[Removed]));
                }
                Answer::None
            }
            Step::Clear => {
                self.cache.clear();
                for (key, old) in std::mem::take(&mut self.held) {
                    own.push(self.own(key, old, &[Removed]));
                }
                Answer::None
            }
            Step::Iter => Answer::Iter(self.cache.iter().collect()),
            Step::Maintenance => {
                let removed = self.cache.run_pending_maintenance();
                let now = self.now_ms;
                let gone: Vec<u8> = self
                    .held
                    .iter()
                    .filter(|(_, e)| e.deadline.is_some_and(|d| now >= d))
                    .map(|(k, _)| *k)
                    .collect();
                for key in gone {
                    let old = self.held.remove(&key).expect("listed above");
                    own.push(Own {
                        key,
                        value: old.value,
                        expired: true,
                        causes: &[Expired],
                    });
                }
                Answer::Maintenance(removed)
            }
            Step::Advance(ms) => {
                self.mock.advance(Duration::from_millis(ms));
                self.now_ms += ms;
                Answer::None
            }
        };

        let write = matches!(step, Step::Insert(..) | Step::GetOrInsert(_));
        let reported = self.take_reports(own, write)?;
        self.check_answer(step, answer, &before, &reported)?;
        self.check_counters()
    }

    /// Whether the entries held, with one more of `extra` weight if given, are over a bound.
    fn over_bound(&self, extra: Option<u64>) -> bool {
        let count = self.held.len() as u64 + u64::from(extra.is_some());
        let weight = self
            .held
            .values()
            .map(|e| self.setup.weight(e.value))
            .sum::<u64>()
            + extra.unwrap_or(0);
        self.setup.max_capacity.is_some_and(|max| count > max)
            || self.setup.max_weight.is_some_and(|max| weight > max)
    }

    /// Matches the listener's reports of this step against the entries it removed itself and
    /// those the cache held; returns each reported value's cause. `write`: the step writes an
    /// entry, and may evict while that leaves the cache over a bound.
    fn take_reports(
        &mut self,
        mut own: Vec<Own>,
        write: bool,
    ) -> Result<BTreeMap<u32, EvictionCause>, Mismatch> {
        let events = std::mem::take(&mut *lock(&self.events));
        let mut reported = BTreeMap::new();
        for (key, value, cause) in events {
            if let Some(&first) = reported.get(&value) {
                return Err(Mismatch(format!(
                    "listener reported value {value} of key {key} twice ({first:?}, then {cause:?})"
                )));
            }
            if let Some(at) = own.iter().position(|o| o.value == value) {
                let o = own.swap_remove(at);
                ensure!(
                    o.key == key,
                    "listener reported value {value} under key {key}, written under key {}",
                    o.key
                );
                ensure!(
                    o.causes.contains(&cause),
                    "listener reported value {value} of key {key} as {cause:?}; expected one of {:?}",
                    o.causes
                );
                ensure!(
                    cause != EvictionCause::Expired || o.expired,
                    "value {value} of key {key} reported expired before its deadline, at {} ms",
                    self.now_ms
                );
                // The step's own entry, evicted before the step replaced it: it was still
                // counted then.
                ensure!(
                    cause != EvictionCause::Evicted
                        || (write && self.over_bound(Some(self.setup.weight(value)))),
                    "value {value} of key {key} evicted by a step that is not a write, or while \
                     the cache was within its bounds"
                );
            } else {
                let entry = self.held.get(&key).copied();
                ensure!(
                    entry.is_some_and(|e| e.value == value),
                    "listener reported value {value} of key {key} ({cause:?}), which the cache \
                     does not hold (it holds {entry:?})"
                );
                let entry = entry.expect("checked");
                match cause {
                    EvictionCause::Evicted => {
                        ensure!(
                            write,
                            "value {value} of key {key} evicted by a step that writes nothing"
                        );
                        ensure!(
                            self.over_bound(None),
                            "value {value} of key {key} evicted while the cache was within its \
                             bounds, holding {:?}: more victims than needed",
                            self.held
                        );
                    }
                    EvictionCause::Expired => ensure!(
                        self.expired(&entry),
                        "value {value} of key {key} reported expired at {} ms, deadline {:?}",
                        self.now_ms,
                        entry.deadline
                    ),
                    other => {
                        return Err(Mismatch(format!(
                            "value {value} of key {key} reported {other:?} by a step that does \
                             not remove or replace it"
                        )))
                    }
                }
                self.held.remove(&key);
            }
            match cause {
                EvictionCause::Evicted => self.expected.evictions += 1,
                EvictionCause::Expired => self.expected.expirations += 1,
                // Removed, Replaced, and any cause added later (each was checked above): no
                // counter.
                _ => {}
            }
            reported.insert(value, cause);
        }
        ensure!(
            own.is_empty(),
            "entries removed without telling the listener: {own:?}"
        );
        Ok(reported)
    }

    fn check_answer(
        &self,
        step: Step,
        answer: Answer,
        before: &BTreeMap<u8, Entry>,
        reported: &BTreeMap<u32, EvictionCause>,
    ) -> Result<(), Mismatch> {
        let now = self.now_ms;
        // A step may miss a live entry only if the listener reported it evicted meanwhile.
        let evicted = |e: &Entry| reported.get(&e.value) == Some(&EvictionCause::Evicted);
        let key_of = |step: Step| match step {
            Step::Get(k)
            | Step::Remove(k)
            | Step::Contains(k)
            | Step::GetOrInsert(k)
            | Step::TimeToLive(k) => k,
            _ => 0,
        };
        let key = key_of(step);
        let live = self.live_in(before, key);
        match answer {
            Answer::None => {}
            Answer::Value(got) => {
                let expected = live.map(|e| e.value);
                let missed_evicted = got.is_none() && live.is_some_and(|e| evicted(&e));
                ensure!(
                    got == expected || missed_evicted,
                    "{step:?} returned {got:?} at {now} ms; the model has {expected:?}"
                );
            }
            Answer::Contains(got) => {
                let missed_evicted = !got && live.is_some_and(|e| evicted(&e));
                ensure!(
                    got == live.is_some() || missed_evicted,
                    "{step:?} returned {got} at {now} ms; the model has {live:?}"
                );
            }
            Answer::Loaded { got, fresh, loaded } => match live {
                Some(e) if !(loaded && evicted(&e)) => ensure!(
                    !loaded && got == e.value,
                    "{step:?} returned {got} (loader ran: {loaded}) at {now} ms; the model has {}",
                    e.value
                ),
                _ => ensure!(
                    loaded && got == fresh,
                    "{step:?} returned {got} without running its loader at {now} ms; the model \
                     has no live entry"
                ),
            },
            Answer::TimeToLive(got) => {
                let expected = live.map(|e| e.deadline.map(|d| Duration::from_millis(d - now)));
                let missed_evicted = got.is_none() && live.is_some_and(|e| evicted(&e));
                ensure!(
                    got == expected || missed_evicted,
                    "{step:?} returned {got:?} at {now} ms; expected {expected:?}"
                );
            }
            Answer::Iter(seen) => {
                let expected = self.live_entries();
                ensure!(
                    seen == expected,
                    "iter yielded {seen:?} at {now} ms; the live entries are {expected:?}"
                );
            }
            Answer::Maintenance(removed) => {
                let expired = reported
                    .values()
                    .filter(|c| **c == EvictionCause::Expired)
                    .count();
                ensure!(
                    removed == expired,
                    "run_pending_maintenance returned {removed}, but {expired} entries were \
                     reported expired"
                );
                ensure!(
                    self.held.values().all(|e| !self.expired(e)),
                    "run_pending_maintenance left expired entries at {now} ms: {:?}",
                    self.held
                );
            }
        }
        Ok(())
    }

    /// `len()`, `weighted_size()`, the bounds and the statistics, after every step.
    fn check_counters(&self) -> Result<(), Mismatch> {
        let len = self.cache.len();
        ensure!(
            len == self.held.len(),
            "len() is {len}; the cache holds {} entries: {:?}",
            self.held.len(),
            self.held
        );
        let weight = self.cache.weighted_size();
        let held_weight: u64 = self.held.values().map(|e| self.setup.weight(e.value)).sum();
        ensure!(
            weight == held_weight,
            "weighted_size() is {weight}; the entries held weigh {held_weight}: {:?}",
            self.held
        );
        if let Some(capacity) = self.setup.max_capacity {
            ensure!(
                len as u64 <= capacity,
                "len {len} above max_capacity {capacity}"
            );
        }
        if let Some(max) = self.setup.max_weight {
            ensure!(
                weight <= max,
                "weighted_size {weight} above max_weight {max}"
            );
        }
        let stats = Counters::from(self.cache.stats());
        ensure!(
            stats == self.expected,
            "stats {stats:?}; expected {:?}",
            self.expected
        );
        Ok(())
    }

    /// Drops the cache: the listener must hear nothing of it.
    pub fn finish(self) -> Result<(), Mismatch> {
        let events = Arc::clone(&self.events);
        drop(self.cache);
        let after = lock(&events);
        ensure!(
            after.is_empty(),
            "dropping the cache told the listener {:?}",
            *after
        );
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `steps` on a cache built from `setup`, checking each against the model. The error names
/// the failing step.
pub fn run(setup: Setup, steps: &[Step]) -> Result<(), Mismatch> {
    let mut model = Model::new(setup);
    for (i, &step) in steps.iter().enumerate() {
        model
            .apply(step)
            .map_err(|e| Mismatch(format!("step {i} {step:?} ({setup:?}): {e}")))?;
    }
    model.finish()
}
