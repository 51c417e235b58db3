//! The engine's eviction victims against an independent reference S3-FIFO
//! (`strata_verify::reference`), victim for victim.
//!
//! Guards against a policy that keeps the cache within its bound but evicts the wrong entries:
//! a ghost that is ignored, an entry read in the small queue that is not promoted, a main
//! CLOCK that gives no second chance, the wrong queue chosen. The model test cannot see these
//! (it only checks that evictions happen when they must), and neither can the hit ratio benches
//! unless the loss is large.
//!
//! A count-bounded cache of fewer than 8,192 entries has one shard and evicts inline on the
//! writing thread, so single-threaded it is deterministic once its hasher is: the tests give it
//! [`SlotHasher`], which also places keys in the ghost filter as the reference does. Generated
//! cases come from a fixed seed (`STRATA_ORACLE_CASES` sets their number) and print what they
//! reached, so a run shows it was not vacuous.
#![cfg(not(strata_loom))]

use std::sync::{Arc, Mutex, PoisonError};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use strata_engine::{Cache, EvictionCause};
use strata_verify::reference::{Reference, Tally};
use strata_verify::slot_hasher::SlotHasher;

/// One call, on both caches.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// `insert` of a fresh value (a replacement if the key is present).
    Insert(u64),
    Get(u64),
    Remove(u64),
}

/// The engine in its single-shard mode, and the victims its listener reported.
struct Engine {
    cache: Cache<u64, u64, SlotHasher>,
    victims: Arc<Mutex<Vec<u64>>>,
    next_value: u64,
}

impl Engine {
    fn new(capacity: usize) -> Self {
        let victims = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&victims);
        let cache = Cache::builder()
            .max_capacity(capacity as u64)
            .hasher(SlotHasher::new(Reference::ghost_buckets(capacity)))
            .eviction_listener(move |key: &u64, _: &u64, cause| {
                if cause == EvictionCause::Evicted {
                    record
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(*key);
                }
            })
            .build();
        Engine {
            cache,
            victims,
            next_value: 0,
        }
    }

    fn take_victims(&self) -> Vec<u64> {
        std::mem::take(&mut *self.victims.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Applies `ops` to a fresh engine and reference of `capacity` entries and compares them after
/// each: the victims in order, whether a read hit, the entry count. Returns the reference's
/// tally, or the first difference.
fn compare(capacity: usize, ops: &[Op]) -> Result<Tally, String> {
    let engine = Engine::new(capacity);
    let mut engine = engine;
    let mut reference = Reference::new(capacity);
    for (i, &op) in ops.iter().enumerate() {
        let (got, want) = match op {
            Op::Insert(key) => {
                engine.next_value += 1;
                engine.cache.insert(key, engine.next_value);
                (engine.take_victims(), reference.insert(key))
            }
            Op::Get(key) => {
                let (hit, want_hit) = (engine.cache.get(&key).is_some(), reference.get(key));
                if hit != want_hit {
                    return Err(format!(
                        "op {i} {op:?} (capacity {capacity}): engine hit {hit}, reference {want_hit}"
                    ));
                }
                (engine.take_victims(), Vec::new())
            }
            Op::Remove(key) => {
                let (gone, want_gone) =
                    (engine.cache.remove(&key).is_some(), reference.remove(key));
                if gone != want_gone {
                    return Err(format!(
                        "op {i} {op:?} (capacity {capacity}): engine removed {gone}, reference \
                         {want_gone}"
                    ));
                }
                (engine.take_victims(), Vec::new())
            }
        };
        if got != want {
            return Err(format!(
                "op {i} {op:?} (capacity {capacity}): engine evicted {got:?}, reference {want:?}"
            ));
        }
        if engine.cache.len() != reference.len() {
            return Err(format!(
                "op {i} {op:?} (capacity {capacity}): engine holds {} entries, reference {}",
                engine.cache.len(),
                reference.len()
            ));
        }
    }
    Ok(reference.tally())
}

/// Calls on keys `0..3 * capacity`, skewed: half of them on a hot set of a sixth of the keys,
/// so that hot keys are read in the small queue, reach main and are spared there, and cold ones
/// come back while the ghost still remembers them.
fn ops(capacity: usize) -> impl Strategy<Value = Vec<Op>> {
    let keys = 3 * capacity as u64;
    let hot = (keys / 6).max(2);
    let key = prop_oneof![1 => 0..hot, 1 => 0..keys];
    let op = prop_oneof![
        5 => key.clone().prop_map(Op::Insert),
        6 => key.clone().prop_map(Op::Get),
        1 => key.prop_map(Op::Remove),
    ];
    proptest::collection::vec(op, 1..40 * capacity)
}

/// Cases for the generated comparison: 1,024 by default, `STRATA_ORACLE_CASES` to change it.
fn oracle_cases() -> u32 {
    std::env::var("STRATA_ORACLE_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(1024)
}

/// Generated workloads, capacities 4 to 64, from a fixed seed: the victims must be the same.
/// Also requires that the cases reached every rule (ghost hits, main evictions, second chances,
/// riders and their hits).
#[test]
fn engine_evicts_as_the_reference_does() {
    let config = Config {
        cases: oracle_cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let total = Mutex::new(Tally::default());
    let strategy = (4usize..=64).prop_flat_map(|capacity| (Just(capacity), ops(capacity)));
    let result = runner.run(&strategy, |(capacity, ops)| {
        let tally = compare(capacity, &ops).map_err(TestCaseError::fail)?;
        let mut total = total.lock().unwrap_or_else(PoisonError::into_inner);
        total.ghost_hits += tally.ghost_hits;
        total.small_evictions += tally.small_evictions;
        total.main_evictions += tally.main_evictions;
        total.promotions += tally.promotions;
        total.riders += tally.riders;
        total.rider_hits += tally.rider_hits;
        total.second_chances += tally.second_chances;
        total.forced += tally.forced;
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let total = total.into_inner().unwrap_or_else(PoisonError::into_inner);
    println!("oracle: {} cases reached {total:?}", oracle_cases());
    assert!(total.ghost_hits > 0, "no ghost hit: {total:?}");
    assert!(total.main_evictions > 0, "no main eviction: {total:?}");
    assert!(total.second_chances > 0, "no second chance: {total:?}");
    assert!(total.promotions > 0, "no promotion: {total:?}");
    assert!(total.riders > 0, "no rider: {total:?}");
    assert!(total.rider_hits > 0, "no rider hit: {total:?}");
}

/// Runs `ops` on both, requires them to agree, and returns the victims of each op as the
/// engine reported them.
fn victims(capacity: usize, ops: &[Op]) -> Vec<Vec<u64>> {
    if let Err(difference) = compare(capacity, ops) {
        panic!("{difference}");
    }
    let engine = Engine::new(capacity);
    let mut engine = engine;
    ops.iter()
        .map(|&op| {
            match op {
                Op::Insert(key) => {
                    engine.next_value += 1;
                    engine.cache.insert(key, engine.next_value);
                }
                Op::Get(key) => drop(engine.cache.get(&key)),
                Op::Remove(key) => drop(engine.cache.remove(&key)),
            }
            engine.take_victims()
        })
        .collect()
}

fn inserts(keys: std::ops::Range<u64>) -> impl Iterator<Item = Op> {
    keys.map(Op::Insert)
}

/// Capacity 10 (a small share of 1): key 0, read while in the small queue, moves to main when
/// the cache first overflows; 1, the next unread one, is evicted in its place, then 2, 3, ...
/// while 0 stays.
#[test]
fn an_entry_read_in_the_small_queue_is_promoted() {
    let mut ops: Vec<Op> = inserts(0..10).collect();
    ops.push(Op::Get(0));
    ops.extend(inserts(10..15));
    ops.push(Op::Get(0));
    let got = victims(10, &ops);
    let evicted: Vec<u64> = got.concat();
    assert_eq!(evicted, [1, 2, 3, 4, 5]);
}

/// Capacity 10: key 0, evicted unread from the small queue, is remembered by the ghost; inserted
/// again it goes straight to main, so the next inserts evict the small queue's entries, those
/// inserted after it included, and not it.
#[test]
fn a_ghost_hit_is_inserted_into_main() {
    let mut ops: Vec<Op> = inserts(0..11).collect();
    ops.push(Op::Insert(0));
    ops.extend(inserts(11..21));
    ops.push(Op::Get(0));
    let got = victims(10, &ops);
    assert_eq!(
        got[21],
        [11],
        "0 went to main: 11, inserted after it, goes first"
    );
    assert_eq!(
        got[10],
        [0],
        "the first overflow evicts the oldest unread entry"
    );
    assert_eq!(
        got[11],
        [1],
        "0 went to main: the small queue's oldest goes"
    );
    assert_eq!(got[12..21].concat(), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
}

/// Capacity 40 (a small share of 2): every entry is read in the small queue, so when the cache
/// overflows they move to main one by one (main has no bound of its own) until the small queue
/// is under its share; then main's hand evicts its oldest entry, 0, cold since it entered main.
/// Then 40 (the small queue's last), 1 and 2 are read; the next insert moves 40 to main, whose
/// hand spares 1 and 2 (cooling them) and evicts 3 for it.
#[test]
fn main_clock_gives_a_second_chance() {
    let mut ops: Vec<Op> = inserts(0..40).collect();
    ops.extend((0..40).map(Op::Get));
    ops.push(Op::Insert(40));
    ops.extend([Op::Get(40), Op::Get(1), Op::Get(2), Op::Insert(41)]);
    let got = victims(40, &ops);
    assert_eq!(got[80], [0]);
    assert_eq!(got[84], [3], "1 and 2 were spared");
    assert_eq!(got.concat(), [0, 3]);
}
