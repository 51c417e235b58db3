//! Random operation sequences, applied single-threaded to a `Cache<u8, u32>` with a mocked clock,
//! against a `HashMap` model with expiry deadlines (proptest).
//!
//! Guards against: a wrong answer from any single-threaded call (`get`, `remove`,
//! `contains_key`, `get_or_insert_with`, `time_to_live_of`, `iter`), TTL expiry early or late at
//! whole-millisecond times, `clear` / `retain` / `run_pending_maintenance` removing too much or
//! too little, `len()` disagreeing with the live entries; and, with eviction on, an evicted or
//! replaced value coming back, or `len()` above the capacity after any call.
#![cfg(not(strata_loom))]

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use proptest::prelude::*;
use strata_engine::{Cache, Clock, MockClock};

/// Keys are `0..KEYS`; values are unique per write.
const KEYS: u8 = 12;

#[derive(Clone, Debug)]
enum Step {
    /// Insert; with a TTL of that many milliseconds (>= 2) if given.
    Insert(u8, Option<u64>),
    Get(u8),
    Remove(u8),
    Contains(u8),
    GetOrInsert(u8),
    TimeToLive(u8),
    /// Keep the entries whose value is not a multiple of this.
    Retain(u32),
    Clear,
    Iter,
    Maintenance,
    /// Advance the mocked clock by this many whole milliseconds.
    Advance(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0..KEYS;
    prop_oneof![
        6 => (key.clone(), proptest::option::of(2u64..12)).prop_map(|(k, t)| Step::Insert(k, t)),
        6 => key.clone().prop_map(Step::Get),
        2 => key.clone().prop_map(Step::Remove),
        2 => key.clone().prop_map(Step::Contains),
        3 => key.clone().prop_map(Step::GetOrInsert),
        1 => key.prop_map(Step::TimeToLive),
        1 => (2u32..5).prop_map(Step::Retain),
        1 => Just(Step::Clear),
        1 => Just(Step::Iter),
        1 => Just(Step::Maintenance),
        3 => (1u64..6).prop_map(Step::Advance),
    ]
}

/// The model: each key's last value and its deadline in milliseconds of mocked time. With
/// eviction on, an entry here means "if the cache has the key, this is its value".
struct Model {
    cache: Cache<u8, u32>,
    mock: MockClock,
    entries: HashMap<u8, (u32, Option<u64>)>,
    now_ms: u64,
    next_value: u32,
    /// `Some(capacity)`: eviction on.
    capacity: Option<u64>,
}

impl Model {
    fn new(capacity: u64, evicting: bool) -> Self {
        let (clock, mock): (Clock, MockClock) = Clock::mock();
        let cache = Cache::builder().max_capacity(capacity).clock(clock).build();
        Model {
            cache,
            mock,
            entries: HashMap::new(),
            now_ms: 0,
            next_value: 0,
            capacity: evicting.then_some(capacity),
        }
    }

    /// The live (unexpired) value of `key`: expired once the mocked time reaches the deadline.
    fn live(&self, key: u8) -> Option<u32> {
        let &(value, deadline) = self.entries.get(&key)?;
        deadline.is_none_or(|d| self.now_ms < d).then_some(value)
    }

    fn live_entries(&self) -> BTreeMap<u8, u32> {
        (0..KEYS).filter_map(|k| Some((k, self.live(k)?))).collect()
    }

    fn evicting(&self) -> bool {
        self.capacity.is_some()
    }

    /// Checks an answer that should be `expected`: exact without eviction; with eviction a miss
    /// is allowed (and the key is then known gone), a hit must match.
    fn expect(
        &mut self,
        key: u8,
        got: Option<u32>,
        expected: Option<u32>,
        call: &str,
    ) -> Result<(), TestCaseError> {
        if self.evicting() && got.is_none() {
            self.entries.remove(&key);
            return Ok(());
        }
        prop_assert_eq!(
            got,
            expected,
            "{} of key {} at {} ms",
            call,
            key,
            self.now_ms
        );
        Ok(())
    }

    fn apply(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match *step {
            Step::Insert(key, ttl) => {
                let value = self.fresh();
                match ttl {
                    None => self.cache.insert(key, value),
                    Some(ms) => self
                        .cache
                        .insert_with_ttl(key, value, Duration::from_millis(ms)),
                }
                self.entries
                    .insert(key, (value, ttl.map(|ms| self.now_ms + ms)));
            }
            Step::Get(key) => {
                let got = self.cache.get(&key);
                self.expect(key, got, self.live(key), "get")?;
            }
            Step::Remove(key) => {
                let got = self.cache.remove(&key);
                self.expect(key, got, self.live(key), "remove")?;
                self.entries.remove(&key);
            }
            Step::Contains(key) => {
                let got = self.cache.contains_key(&key).then_some(0);
                self.expect(key, got, self.live(key).map(|_| 0), "contains_key")?;
            }
            Step::GetOrInsert(key) => {
                let fresh = self.fresh();
                let loaded = Cell::new(false);
                let got = self.cache.get_or_insert_with(key, || {
                    loaded.set(true);
                    fresh
                });
                if loaded.get() {
                    prop_assert_eq!(got, fresh);
                    // A loader runs only on a miss: without eviction the key must be absent.
                    let was = self.live(key);
                    prop_assert!(
                        self.evicting() || was.is_none(),
                        "loader ran for key {} holding {:?}",
                        key,
                        was
                    );
                    self.entries.insert(key, (fresh, None));
                } else {
                    prop_assert_eq!(
                        Some(got),
                        self.live(key),
                        "get_or_insert_with of key {}",
                        key
                    );
                }
            }
            Step::TimeToLive(key) => {
                let got = self.cache.time_to_live_of(&key);
                let expected = self.live(key).map(|_| {
                    let deadline = self.entries[&key].1;
                    deadline.map(|d| Duration::from_millis(d - self.now_ms))
                });
                if self.evicting() && got.is_none() {
                    self.entries.remove(&key);
                } else {
                    prop_assert_eq!(
                        got,
                        expected,
                        "time_to_live_of key {} at {} ms",
                        key,
                        self.now_ms
                    );
                }
            }
            Step::Retain(m) => {
                self.cache.retain(|_, v| v % m != 0);
                self.entries.retain(|_, (v, _)| *v % m != 0);
            }
            Step::Clear => {
                self.cache.clear();
                self.entries.clear();
                prop_assert_eq!(self.cache.len(), 0);
            }
            Step::Iter => self.check_iter()?,
            Step::Maintenance => {
                self.cache.run_pending_maintenance();
                let now = self.now_ms;
                self.entries.retain(|_, (_, d)| d.is_none_or(|d| now < d));
                self.check_iter()?;
                // Quiescent, and nothing expired is left: `len()` counts exactly the live entries.
                prop_assert_eq!(self.cache.len(), self.cache.iter().count());
            }
            Step::Advance(ms) => {
                self.mock.advance(Duration::from_millis(ms));
                self.now_ms += ms;
            }
        }
        self.check_len()
    }

    fn fresh(&mut self) -> u32 {
        self.next_value += 1;
        self.next_value
    }

    /// `iter()` yields the live entries: exactly the model's without eviction, a subset with.
    fn check_iter(&mut self) -> Result<(), TestCaseError> {
        let seen: BTreeMap<u8, u32> = self.cache.iter().collect();
        let expected = self.live_entries();
        if self.evicting() {
            for (key, value) in &seen {
                prop_assert_eq!(Some(value), expected.get(key), "iter yielded key {}", key);
            }
            // What iter did not yield was evicted (or expired) and is gone for good.
            self.entries
                .retain(|k, _| seen.contains_key(k) || !expected.contains_key(k));
        } else {
            prop_assert_eq!(seen, expected, "iter at {} ms", self.now_ms);
        }
        Ok(())
    }

    /// `len()` after every call: within the capacity with eviction; without, between the live
    /// entries and those plus the expired ones not yet reclaimed.
    fn check_len(&self) -> Result<(), TestCaseError> {
        let len = self.cache.len();
        match self.capacity {
            Some(capacity) => prop_assert!(
                len as u64 <= capacity,
                "len {} above capacity {}",
                len,
                capacity
            ),
            None => {
                let live = self.live_entries().len();
                prop_assert!(
                    live <= len && len <= self.entries.len(),
                    "len {} outside [{}, {}]",
                    len,
                    live,
                    self.entries.len()
                );
            }
        }
        Ok(())
    }
}

fn run(steps: &[Step], capacity: u64, evicting: bool) -> Result<(), TestCaseError> {
    let mut model = Model::new(capacity, evicting);
    for (i, step) in steps.iter().enumerate() {
        model
            .apply(step)
            .map_err(|e| TestCaseError::fail(format!("step {i} {step:?}: {e}")))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Capacity above the key space: every answer must equal the model's.
    #[test]
    fn matches_model_without_eviction(steps in proptest::collection::vec(step(), 1..300)) {
        run(&steps, 4 * u64::from(KEYS), false)?;
    }

    /// Capacity 4 for 12 keys: answers may miss, but a hit must be the model's current value
    /// (and a key that missed stays gone until written), and `len()` stays within 4.
    #[test]
    fn never_returns_a_wrong_value_with_eviction(steps in proptest::collection::vec(step(), 1..300)) {
        run(&steps, 4, true)?;
    }
}
