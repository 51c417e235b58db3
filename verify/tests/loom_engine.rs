//! loom models of the real engine (`strata-engine` built with `--cfg strata_loom`): every
//! interleaving of a few operations, up to `LOOM_MAX_PREEMPTIONS` preemptions, explored against
//! the guarantees in the engine's *Consistency* docs. Each model names the race it guards.
//! Internal constants shrink under the cfg, so eviction happens with one or two entries.
//!
//! Run (bounded, as CI does): `bash scripts/loom.sh`; exhaustively: `STRATA_LOOM_EXHAUSTIVE=1
//! bash scripts/loom.sh`. The mutants in `scripts/loom.sh --mutants` must make these models fail.
//!
//! Each model counts the executions (interleavings) loom explores and reports the count when it
//! completes (see [`explore`]); `scripts/loom.sh` adds them up.
#![cfg(strata_loom)]

// The mutant gate's check of itself (`scripts/loom.sh --mutants unbuildable`): a mutant that does
// not build must fail the gate, not pass as "caught".
#[cfg(strata_mutant = "unbuildable")]
compile_error!("the `unbuildable` mutant does not build, on purpose");

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as StdOrdering};
use std::sync::Arc as StdArc;
use std::time::Instant;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;
use strata_engine::__loom::SmallQueue;
use strata_engine::{Cache, Clock, EvictionCause, MockClock};

/// loom replays executions and needs each to take the same path: a fixed hasher.
type Fixed = BuildHasherDefault<DefaultHasher>;

fn cache<V: Send + Sync + 'static>(capacity: u64) -> Cache<u64, V, Fixed> {
    Cache::builder()
        .max_capacity(capacity)
        .hasher(Fixed::default())
        .build()
}

/// A value that detects being read after it was freed, and being freed twice. The copy the cache
/// owns is the *primary*; copies cloned out by reads are not. (std atomics: they are assertions,
/// not part of the model.)
#[derive(Debug)]
struct Canary {
    id: u64,
    primary: bool,
    freed: StdArc<AtomicBool>,
}

std::thread_local! {
    /// Primary canaries alive on this OS thread. loom runs a model's threads as coroutines on
    /// the test's own OS thread and drops everything an execution left (the epoch collector
    /// included, which runs its deferred frees) before the next one starts, so this is zero
    /// between executions unless a value leaked (see [`explore`]).
    static LIVE: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// Takes the count of primary canaries alive, leaving zero.
fn take_live() -> i64 {
    LIVE.with(|live| live.replace(0))
}

impl Canary {
    fn new(id: u64) -> Self {
        LIVE.with(|live| live.set(live.get() + 1));
        Canary {
            id,
            primary: true,
            freed: StdArc::new(AtomicBool::new(false)),
        }
    }
}

impl Clone for Canary {
    fn clone(&self) -> Self {
        assert!(
            !self.freed.load(StdOrdering::SeqCst),
            "value {} read after the cache freed it",
            self.id
        );
        Canary {
            id: self.id,
            primary: false,
            freed: StdArc::clone(&self.freed),
        }
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        if self.primary {
            let was = self.freed.swap(true, StdOrdering::SeqCst);
            assert!(!was, "value {} freed twice", self.id);
            LIVE.with(|live| live.set(live.get() - 1));
        }
    }
}

/// Pushes this thread's garbage to the collector and tries to advance the epoch, so that
/// reclamation happens inside the model instead of after it. (The same loom build of
/// crossbeam-epoch that the engine links.)
fn flush() {
    crossbeam_epoch::pin().flush();
}

/// Every this many executions, a model reports how far it has got (to stderr), so that a run cut
/// short (an exhaustive one under a time limit) still tells how much it explored.
const PROGRESS_EVERY: u64 = 250_000;

/// The largest models get one preemption instead of `LOOM_MAX_PREEMPTIONS` in a bounded run (any
/// run that sets it, as CI does); an exhaustive run, which leaves it unset, explores them fully.
fn one_preemption_when_bounded(builder: &mut loom::model::Builder) {
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_some() {
        builder.preemption_bound = Some(1);
    }
}

/// Whether the long models run: always in an exhaustive run (no `LOOM_MAX_PREEMPTIONS`), and in
/// a bounded one only with `STRATA_LOOM_LONG=1` (as `scripts/long.sh` and the mutant gate set it).
/// CI's bounded suite skips them: each takes millions of interleavings.
fn long_models() -> bool {
    std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none()
        || std::env::var_os("STRATA_LOOM_LONG").is_some_and(|v| v == "1")
}

/// Runs `model` under loom with `builder` (as `loom::model` does with `Builder::new()`), checking
/// that no interleaving leaked a canary (every primary [`Canary`] created was dropped once the
/// execution was torn down), and counting
/// the executions loom explores: each is one interleaving of the model's threads within the
/// preemption bound. When loom has explored them all, prints `loom model <name>: <n>
/// interleavings ...` and appends that line to the file named by `STRATA_LOOM_COUNTS`, if set.
/// (The counter is a `std` atomic: not part of the model, invisible to loom's scheduler.)
fn explore(name: &str, builder: loom::model::Builder, model: impl Fn() + Sync + Send + 'static) {
    let executions = StdArc::new(AtomicU64::new(0));
    let counter = StdArc::clone(&executions);
    let label = name.to_string();
    let start = Instant::now();
    take_live();
    builder.check(move || {
        let leaked = take_live();
        assert_eq!(
            leaked, 0,
            "the previous interleaving leaked {leaked} values"
        );
        let n = counter.fetch_add(1, StdOrdering::Relaxed) + 1;
        if n % PROGRESS_EVERY == 0 {
            eprintln!(
                "loom model {label}: {n} interleavings so far ({:.0} s)",
                start.elapsed().as_secs_f64()
            );
        }
        model();
    });
    let leaked = take_live();
    assert_eq!(leaked, 0, "the last interleaving leaked {leaked} values");
    let bound = builder
        .preemption_bound
        .map_or("none (exhaustive)".to_string(), |b| b.to_string());
    let line = format!(
        "loom model {name}: {} interleavings, preemption bound {bound}, {:.1} s",
        executions.load(StdOrdering::Relaxed),
        start.elapsed().as_secs_f64()
    );
    println!("{line}");
    if let Some(path) = std::env::var_os("STRATA_LOOM_COUNTS") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open STRATA_LOOM_COUNTS");
        writeln!(file, "{line}").expect("write STRATA_LOOM_COUNTS");
    }
}

/// Two threads insert key 1 at once: one value stays, and the key is in the table once.
fn racing_inserts_leave_one_entry(cache: Cache<u64, u64, Fixed>) {
    let other = cache.clone();
    let t = thread::spawn(move || other.insert(1, 1));
    cache.insert(1, 2);
    t.join().unwrap();
    let value = cache.get(&1);
    assert!(value == Some(1) || value == Some(2), "{value:?}");
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.iter().count(), 1, "the key is in the table once");
}

/// insert/insert on one key: both see the key absent and claim a slot each; one publishes
/// first, and the other's publication must fail and find the key, never land a second entry.
#[test]
fn racing_inserts_of_one_key_leave_one_entry() {
    explore(
        "racing_inserts_of_one_key_leave_one_entry",
        loom::model::Builder::new(),
        || racing_inserts_leave_one_entry(cache::<u64>(4)),
    );
}

/// The same race in the split-ordered list of a cache without an entry bound (the table of
/// unbounded and weight-bounded caches; a count-bounded one uses cache-line buckets).
#[test]
fn racing_inserts_of_one_key_in_the_split_list_leave_one_entry() {
    explore(
        "racing_inserts_of_one_key_in_the_split_list_leave_one_entry",
        loom::model::Builder::new(),
        || {
            racing_inserts_leave_one_entry(
                Cache::builder()
                    .initial_capacity(2)
                    .hasher(Fixed::default())
                    .build(),
            )
        },
    );
}

/// Two new keys racing into a bucket whose home line is full (under loom: 2 home slots, then
/// overflow lines of 1): both writers may allocate the overflow line, one publishes it, and
/// every key lands once.
#[test]
fn racing_inserts_past_a_full_home_line_lose_nothing() {
    explore(
        "racing_inserts_past_a_full_home_line_lose_nothing",
        loom::model::Builder::new(),
        || {
            let cache = cache::<u64>(4);
            cache.insert(1, 1);
            cache.insert(2, 2);
            let other = cache.clone();
            let t = thread::spawn(move || other.insert(3, 3));
            cache.insert(4, 4);
            t.join().unwrap();
            for k in 1..=4 {
                assert_eq!(cache.get(&k), Some(k), "key {k}");
            }
            assert_eq!(cache.len(), 4);
            assert_eq!(cache.iter().count(), 4, "each key once");
        },
    );
}

/// A removal marks the entry before it empties its slot; a writer that inserts the key again
/// meanwhile takes another slot. A read after that insert must find it, not stop at the marked
/// entry still in its slot (the remover may stall there for any time).
#[test]
fn reinsert_during_a_removal_is_found() {
    explore(
        "reinsert_during_a_removal_is_found",
        loom::model::Builder::new(),
        || {
            let cache = cache::<u64>(4);
            cache.insert(1, 10);
            let remover = cache.clone();
            let t = thread::spawn(move || remover.remove(&1));
            cache.insert(1, 11);
            let seen = cache.get(&1);
            let removed = t.join().unwrap();
            match removed {
                // The remove took the first value: the second was inserted after it, and nothing
                // removed that one.
                Some(10) => assert_eq!(seen, Some(11)),
                // The remove came after the second insert (and may come before the get).
                Some(11) => assert!(seen.is_none() || seen == Some(11), "{seen:?}"),
                other => panic!("remove returned {other:?}"),
            }
            assert_eq!(cache.len() as usize, cache.iter().count());
        },
    );
}

/// insert/get: a reader racing the first insert of a key sees nothing or the whole value, never
/// a node whose fields are not yet published.
#[test]
fn get_racing_insert_sees_nothing_or_the_value() {
    explore(
        "get_racing_insert_sees_nothing_or_the_value",
        loom::model::Builder::new(),
        || {
            let cache = cache::<Canary>(4);
            let reader = cache.clone();
            let t = thread::spawn(move || reader.get(&7).map(|c| c.id));
            cache.insert(7, Canary::new(70));
            let seen = t.join().unwrap();
            assert!(seen.is_none() || seen == Some(70), "{seen:?}");
            assert_eq!(
                cache.get(&7).map(|c| c.id),
                Some(70),
                "get after insert hits"
            );
        },
    );
}

/// insert/remove: the outcomes must agree on one order. If `remove` found the value, the key is
/// gone afterwards; if it found nothing, the insert came after it and the key is present.
#[test]
fn insert_racing_remove_agree_on_an_order() {
    explore(
        "insert_racing_remove_agree_on_an_order",
        loom::model::Builder::new(),
        || {
            let cache = cache::<u64>(4);
            let remover = cache.clone();
            let t = thread::spawn(move || remover.remove(&3));
            cache.insert(3, 30);
            let removed = t.join().unwrap();
            match removed {
                Some(v) => {
                    assert_eq!(v, 30);
                    assert_eq!(cache.get(&3), None);
                    assert_eq!(cache.len(), 0);
                }
                None => {
                    assert_eq!(cache.get(&3), Some(30));
                    assert_eq!(cache.len(), 1);
                }
            }
        },
    );
}

/// Replace while reading: the replacement is linked through the old node's marked `next`, so a
/// reader racing it sees the old value or the new one, never a gap (a miss) and never a freed
/// value.
#[test]
fn replace_is_atomic_for_a_racing_reader() {
    explore(
        "replace_is_atomic_for_a_racing_reader",
        loom::model::Builder::new(),
        || {
            let cache = cache::<Canary>(4);
            cache.insert(5, Canary::new(1));
            let reader = cache.clone();
            let t = thread::spawn(move || {
                let seen = reader.get(&5).map(|c| c.id);
                flush();
                seen
            });
            cache.insert(5, Canary::new(2));
            flush();
            let seen = t.join().unwrap();
            assert!(
                seen == Some(1) || seen == Some(2),
                "replace left a gap: {seen:?}"
            );
            assert_eq!(cache.get(&5).map(|c| c.id), Some(2));
        },
    );
}

/// Keys for the table-growth model, found from the fixed hasher (as the engine hashes them: the
/// top two bits set, buckets by the low bits, split order by the reversed bits): three keys of
/// one bucket of a 2-bucket table, the last of them sorting after the other two (so that its
/// insert walks past them and, as the third entry, doubles the table to 4 buckets), the first of
/// which lands in a bucket of the new half; and a new key of that same new bucket.
fn growth_keys() -> ([u64; 3], u64) {
    use std::hash::BuildHasher as _;
    let hash = |k: u64| Fixed::default().hash_one(k) | (0b11 << 62);
    let order = |k: u64| hash(k).reverse_bits();
    for parity in 0..2u64 {
        let new_bucket = parity + 2;
        let olds: Vec<u64> = (0..64u64)
            .filter(|&k| hash(k) & 3 == new_bucket)
            .take(1)
            .collect();
        let others: Vec<u64> = (0..256u64)
            .filter(|&k| hash(k) & 1 == parity && !olds.contains(&k))
            .collect();
        let Some(&old) = olds.first() else { continue };
        // Two more keys of the same 2-bucket run, the last sorting after both others.
        for &a in &others {
            for &c in &others {
                if a != c && order(c) > order(old) && order(c) > order(a) {
                    let fresh = (256..1024u64)
                        .find(|&k| hash(k) & 3 == new_bucket)
                        .expect("a key of the new bucket");
                    return ([old, a, c], fresh);
                }
            }
        }
    }
    panic!("no keys for the growth model under this hasher");
}

/// Table growth: the third insert into a 2-bucket table doubles it; then a writer inserting a
/// key of a new bucket links that bucket's sentinel into the list while a reader looks up an
/// entry of the same bucket that was there all along. The reader must find it (a search may
/// start only from a sentinel that is linked: the `early_sentinel` mutant, which lets searches
/// start from it as soon as it is claimed, fails here), and nothing is lost or duplicated.
#[test]
fn readers_during_table_growth_miss_nothing() {
    let ([old, second, third], fresh) = growth_keys();
    explore(
        "readers_during_table_growth_miss_nothing",
        loom::model::Builder::new(),
        move || {
            let cache: Cache<u64, u64, Fixed> = Cache::builder()
                .initial_capacity(2)
                .hasher(Fixed::default())
                .build();
            for k in [old, second, third] {
                cache.insert(k, k);
            }
            let debug = format!("{cache:?}");
            assert!(
                debug.contains("buckets: 4,"),
                "the third insert doubles: {debug}"
            );
            let writer = cache.clone();
            let t = thread::spawn(move || writer.insert(fresh, fresh));
            assert_eq!(
                cache.get(&old),
                Some(old),
                "a reader missed key {old} during growth"
            );
            let seen = cache.get(&fresh);
            assert!(seen.is_none() || seen == Some(fresh), "{seen:?}");
            t.join().unwrap();
            for k in [old, second, third, fresh] {
                assert_eq!(cache.get(&k), Some(k));
            }
            assert_eq!(cache.len(), 4);
            assert_eq!(cache.iter().count(), 4, "each key in the list once");
        },
    );
}

/// get during eviction: with room for one entry, inserting a second evicts the first while a
/// reader holds it. The reader gets the value or a miss; the evicted node is not freed under it;
/// the bound holds afterwards.
#[test]
fn get_during_eviction_reads_a_live_value_or_misses() {
    explore(
        "get_during_eviction_reads_a_live_value_or_misses",
        loom::model::Builder::new(),
        || {
            let cache = cache::<Canary>(1);
            cache.insert(1, Canary::new(10));
            let reader = cache.clone();
            let t = thread::spawn(move || {
                let seen = reader.get(&1).map(|c| c.id);
                flush();
                seen
            });
            cache.insert(2, Canary::new(20));
            flush();
            let seen = t.join().unwrap();
            assert!(seen.is_none() || seen == Some(10), "{seen:?}");
            assert!(cache.len() <= 1, "bound restored: {}", cache.len());
        },
    );
}

/// Reclamation: a node removed while another thread reads it stays valid until the reader
/// unpins, and is freed exactly once (the canary panics on a read after free or a double free).
#[test]
fn removed_node_is_not_freed_under_a_reader() {
    explore(
        "removed_node_is_not_freed_under_a_reader",
        loom::model::Builder::new(),
        || {
            let cache = cache::<Canary>(4);
            cache.insert(9, Canary::new(90));
            let reader = cache.clone();
            let t = thread::spawn(move || {
                let seen = reader.get(&9).map(|c| c.id);
                flush();
                seen
            });
            let removed = cache.remove(&9).map(|c| c.id);
            flush();
            let seen = t.join().unwrap();
            assert_eq!(removed, Some(90));
            assert!(seen.is_none() || seen == Some(90));
            drop(cache);
            flush();
        },
    );
}

/// Two inserts racing over a full cache, each evicting: each node is released by exactly one of
/// its two owners (table, queue) last, so nothing is freed twice or while still queued (the
/// canaries check at the cache's drop and the collections after it; collecting inside the
/// threads too makes this model too large for a bounded run). Also: the capacity bound holds once
/// both inserts have returned.
#[test]
fn racing_evictions_free_each_node_once() {
    // Two full eviction paths make this the largest model: in the bounded run it gets one
    // preemption, which is what the race it caught (a writer paused between claiming a queue slot
    // and filling it) needs; the exhaustive run explores it fully.
    let mut builder = loom::model::Builder::new();
    one_preemption_when_bounded(&mut builder);
    explore("racing_evictions_free_each_node_once", builder, || {
        let cache = cache::<Canary>(1);
        let other = cache.clone();
        let t = thread::spawn(move || other.insert(1, Canary::new(1)));
        cache.insert(2, Canary::new(2));
        t.join().unwrap();
        assert!(cache.len() <= 1, "bound restored: {}", cache.len());
        drop(cache);
        flush();
        flush();
    });
}

/// Eviction past dead entries: an overwrite leaves the old node dead in the small queue, and
/// eviction releases such nodes on its way without counting them as steps (the fix for the bound
/// that the cargo-fuzz target found broken). Over a full cache whose small queue holds a dead
/// node and then the live one that replaced it, an insert of a new key evicts past the dead node
/// while a remove races it for the live one: every node is freed exactly once and never while
/// queued (the canaries), the value is removed once at most, and the bound holds afterwards.
#[test]
fn eviction_past_dead_entries_frees_each_node_once() {
    // Since a removal from a shard that has been full also steps the small FIFO (the racing
    // `remove` here does), this model with two preemptions ran for over 30 minutes without
    // finishing; the bounded run gives it one (1.51M interleavings, 2-5 minutes), and the
    // exhaustive run explores it fully.
    let mut builder = loom::model::Builder::new();
    one_preemption_when_bounded(&mut builder);
    explore(
        "eviction_past_dead_entries_frees_each_node_once",
        builder,
        || {
            let cache = cache::<Canary>(1);
            cache.insert(1, Canary::new(1));
            // The node of value 1 is now dead in the small queue, ahead of value 2's.
            cache.insert(1, Canary::new(2));
            let other = cache.clone();
            let t = thread::spawn(move || {
                let removed = other.remove(&1).map(|c| c.id);
                flush();
                removed
            });
            cache.insert(2, Canary::new(3));
            flush();
            let removed = t.join().unwrap();
            assert!(removed.is_none() || removed == Some(2), "{removed:?}");
            assert!(cache.len() <= 1, "bound restored: {}", cache.len());
            assert_eq!(cache.get(&1).map(|c| c.id), None, "value 2 gone either way");
            drop(cache);
            flush();
        },
    );
}

/// What an eviction listener was told: (value id, cause), in order. (A `std` mutex: recording
/// is not part of the model, and nothing inside it can yield to loom's scheduler.)
type Reports = StdArc<std::sync::Mutex<Vec<(u64, EvictionCause)>>>;

/// A cache of canaries with a recording listener and a mocked clock.
fn listened(capacity: u64) -> (Cache<u64, Canary, Fixed>, Reports, MockClock) {
    let reports: Reports = StdArc::default();
    let record = StdArc::clone(&reports);
    let (clock, time) = Clock::mock();
    let cache = Cache::builder()
        .max_capacity(capacity)
        .hasher(Fixed::default())
        .clock(clock)
        .eviction_listener(move |_key: &u64, value: &Canary, cause| {
            record.lock().unwrap().push((value.id, cause));
        })
        .build();
    (cache, reports, time)
}

/// The causes the listener gave for value `id`.
fn causes(reports: &Reports, id: u64) -> Vec<EvictionCause> {
    let reports = reports.lock().unwrap();
    reports
        .iter()
        .filter(|(v, _)| *v == id)
        .map(|(_, c)| *c)
        .collect()
}

/// TTL expiry racing a replace and a read (mocked clock). Value 1 has a 10 ms TTL; one thread
/// moves the clock past it and then reads, while the other replaces the key with value 2 (no
/// TTL). The read after the clock moved never returns value 1; it returns value 2 or nothing.
/// Value 1 is reported once, as expired or replaced, never both; value 2 is never reported and
/// is what the key holds at the end.
#[test]
fn expiry_racing_a_replace_and_a_read() {
    explore(
        "expiry_racing_a_replace_and_a_read",
        loom::model::Builder::new(),
        || {
            let (cache, reports, time) = listened(4);
            cache.insert_with_ttl(1, Canary::new(1), Duration::from_millis(10));
            let reader = cache.clone();
            let t = thread::spawn(move || {
                time.advance(Duration::from_millis(20));
                reader.get(&1).map(|c| c.id)
            });
            cache.insert(1, Canary::new(2));
            let seen = t.join().unwrap();
            assert!(
                seen.is_none() || seen == Some(2),
                "read after expiry saw {seen:?}"
            );
            assert_eq!(cache.get(&1).map(|c| c.id), Some(2));
            let first = causes(&reports, 1);
            assert!(
                first == [EvictionCause::Replaced] || first == [EvictionCause::Expired],
                "value 1 reported as {first:?}"
            );
            assert_eq!(causes(&reports, 2), [], "value 2 is still cached");
            flush();
        },
    );
}

/// TTL expiry racing eviction, with a listener: a cache of one entry holds value 1 (10 ms TTL);
/// one thread moves the clock past it and reads, the other inserts key 2, which needs room.
/// Value 1 is reported exactly once, as evicted or expired; value 2 is either present and
/// unreported or evicted and reported once (an insert that judged the cache full just before
/// the expiry took value 1 out may evict it too); the read after the clock moved misses.
#[test]
fn expiry_racing_eviction_reports_each_entry_once() {
    explore(
        "expiry_racing_eviction_reports_each_entry_once",
        loom::model::Builder::new(),
        || {
            let (cache, reports, time) = listened(1);
            cache.insert_with_ttl(1, Canary::new(1), Duration::from_millis(10));
            let reader = cache.clone();
            let t = thread::spawn(move || {
                time.advance(Duration::from_millis(20));
                reader.get(&1).map(|c| c.id)
            });
            cache.insert(2, Canary::new(2));
            let seen = t.join().unwrap();
            assert_eq!(seen, None, "a read after expiry saw value 1");
            cache.run_pending_tasks();
            let first = causes(&reports, 1);
            assert!(
                first == [EvictionCause::Evicted] || first == [EvictionCause::Expired],
                "value 1 reported as {first:?}"
            );
            // An expiry that takes value 1 out after the insert judged the shard full lets that
            // insert evict value 2 as well (the documented over-eviction under a racing removal).
            let present = cache.get(&2).is_some();
            match (present, causes(&reports, 2).as_slice()) {
                (true, []) | (false, [EvictionCause::Evicted]) => {}
                other => panic!("value 2: present and reported as {other:?}"),
            }
            flush();
        },
    );
}

/// `clear` racing a writer: the entry present before the clear is reported removed once and is
/// gone afterwards; the racing insert either landed before the clear (then it was removed and
/// reported) or after it (then it is present and unreported): never both, never neither.
#[test]
fn clear_racing_a_writer_reports_each_entry_once() {
    explore(
        "clear_racing_a_writer_reports_each_entry_once",
        loom::model::Builder::new(),
        || {
            let (cache, reports, _time) = listened(4);
            cache.insert(1, Canary::new(1));
            let writer = cache.clone();
            let t = thread::spawn(move || writer.insert(2, Canary::new(2)));
            cache.clear();
            t.join().unwrap();
            assert_eq!(cache.get(&1).map(|c| c.id), None, "clear left key 1");
            assert_eq!(causes(&reports, 1), [EvictionCause::Removed]);
            let present = cache.get(&2).is_some();
            let reported = causes(&reports, 2);
            match (present, reported.as_slice()) {
                (true, []) | (false, [EvictionCause::Removed]) => {}
                other => panic!("value 2: present and reported as {other:?}"),
            }
            assert_eq!(cache.len(), usize::from(present));
            flush();
        },
    );
}

/// `retain` racing a replace of a key it removes: value 1 goes, by the retain or by the
/// replace, and is reported once; value 3, which the predicate keeps, is never removed by the
/// retain, however the two interleave.
#[test]
fn retain_racing_a_replace_keeps_what_it_keeps() {
    explore(
        "retain_racing_a_replace_keeps_what_it_keeps",
        loom::model::Builder::new(),
        || {
            let (cache, reports, _time) = listened(4);
            cache.insert(1, Canary::new(1));
            let writer = cache.clone();
            let t = thread::spawn(move || writer.insert(1, Canary::new(3)));
            cache.retain(|_, v| v.id != 1);
            t.join().unwrap();
            assert_eq!(
                cache.get(&1).map(|c| c.id),
                Some(3),
                "retain removed a kept value"
            );
            let first = causes(&reports, 1);
            assert!(
                first == [EvictionCause::Removed] || first == [EvictionCause::Replaced],
                "value 1 reported as {first:?}"
            );
            assert_eq!(causes(&reports, 3), []);
            flush();
        },
    );
}

/// Iteration racing an insert and a remove: a key present throughout is yielded exactly once,
/// a key removed during the walk at most once, and nothing is read after it was freed.
#[test]
fn iteration_racing_writers_yields_a_stable_key_once() {
    explore(
        "iteration_racing_writers_yields_a_stable_key_once",
        loom::model::Builder::new(),
        || {
            let cache = cache::<Canary>(4);
            cache.insert(1, Canary::new(1));
            cache.insert(2, Canary::new(2));
            let writer = cache.clone();
            let t = thread::spawn(move || {
                writer.remove(&2);
                writer.insert(3, Canary::new(3));
                flush();
            });
            let keys: Vec<u64> = cache.iter().map(|(k, _)| k).collect();
            t.join().unwrap();
            let count = |k: u64| keys.iter().filter(|&&x| x == k).count();
            assert_eq!(count(1), 1, "the stable key: {keys:?}");
            assert!(count(2) <= 1 && count(3) <= 1, "{keys:?}");
            flush();
        },
    );
}

/// Single-flight with two callers: whichever leads, the loader runs once and both callers get
/// its value.
#[test]
fn single_flight_runs_the_loader_once() {
    explore(
        "single_flight_runs_the_loader_once",
        loom::model::Builder::new(),
        || {
            let cache = cache::<u64>(4);
            let runs = Arc::new(AtomicUsize::new(0));
            let (other, other_runs) = (cache.clone(), Arc::clone(&runs));
            let t = thread::spawn(move || {
                other.get_or_insert_with(4, || {
                    other_runs.fetch_add(1, Ordering::SeqCst);
                    40
                })
            });
            let mine = cache.get_or_insert_with(4, || {
                runs.fetch_add(1, Ordering::SeqCst);
                40
            });
            let theirs = t.join().unwrap();
            assert_eq!((mine, theirs), (40, 40));
            assert_eq!(runs.load(Ordering::SeqCst), 1, "the loader ran twice");
        },
    );
}

/// Single-flight with a failing leader: every caller of the flight gets its error (shared),
/// nothing is cached, and a caller that did not join it loads for itself (no caller waits
/// forever: loom reports a deadlock).
#[test]
fn failed_loader_shares_its_error() {
    explore(
        "failed_loader_shares_its_error",
        loom::model::Builder::new(),
        || {
            let cache = cache::<u64>(4);
            let other = cache.clone();
            let t = thread::spawn(move || other.try_get_or_insert_with(8, || Err::<u64, ()>(())));
            let mine = cache.try_get_or_insert_with(8, || Ok::<u64, ()>(80));
            let theirs = t.join().unwrap();
            match (&mine, &theirs) {
                // Mine loaded; theirs joined it, or came after.
                (Ok(80), Ok(80)) => {}
                // Theirs failed after mine was cached? No: a caller that finds a value never
                // loads. Theirs failed first and mine came after it.
                (Ok(80), Err(_)) => {}
                // Mine joined their failing flight.
                (Err(_), Err(_)) => {}
                other => panic!("{other:?}"),
            }
            assert_eq!(cache.get(&8), mine.ok(), "cached iff mine loaded it");
        },
    );
}

/// A removal that starts after a loader began wins over the load: the loaded value is returned
/// but not cached (a load does not put back a value removed during it).
#[test]
fn removal_during_a_load_wins() {
    explore(
        "removal_during_a_load_wins",
        loom::model::Builder::new(),
        || {
            let cache = cache::<u64>(4);
            let started = Arc::new(AtomicUsize::new(0));
            let (other, loading) = (cache.clone(), Arc::clone(&started));
            let t = thread::spawn(move || {
                other.get_or_insert_with(5, || {
                    loading.store(1, Ordering::SeqCst);
                    50
                })
            });
            let during = started.load(Ordering::SeqCst) == 1;
            cache.remove(&5);
            if during {
                // Not even for a moment after the removal returned (an insert that checked
                // for the removal only afterwards showed it briefly).
                assert_eq!(cache.get(&5), None, "a read after the removal saw the load");
            }
            assert_eq!(t.join().unwrap(), 50);
            if during {
                assert_eq!(
                    cache.get(&5),
                    None,
                    "the load put back what a removal took out"
                );
            }
        },
    );
}

/// An insert that starts after a loader began is not overwritten by the load.
#[test]
fn insert_during_a_load_wins() {
    explore(
        "insert_during_a_load_wins",
        loom::model::Builder::new(),
        || {
            let cache = cache::<u64>(4);
            let started = Arc::new(AtomicUsize::new(0));
            let (other, loading) = (cache.clone(), Arc::clone(&started));
            let t = thread::spawn(move || {
                other.get_or_insert_with(5, || {
                    loading.store(1, Ordering::SeqCst);
                    50
                })
            });
            let during = started.load(Ordering::SeqCst) == 1;
            cache.insert(5, 51);
            let loaded = t.join().unwrap();
            assert!(loaded == 50 || loaded == 51, "{loaded}");
            if during {
                assert_eq!(cache.get(&5), Some(51), "the load overwrote a later insert");
            }
        },
    );
}

/// A follower never returns a value that expired before its call began. The leader misses,
/// joins the flight, and then (looking once more) finds a value another thread inserted
/// meanwhile; that value then expires, and a caller that starts only after it expired joins the
/// still-open flight. It must not be handed what the leader found (it looks again, misses, and
/// loads). The value expires by a mocked clock moved inside the model. A long model (see
/// [`long_models`]).
#[test]
fn a_follower_never_gets_a_value_expired_before_it_began() {
    // Three threads and two preemptions: over 3M interleavings.
    if !long_models() {
        println!("loom model a_follower_never_gets_a_value_expired_before_it_began: skipped (long; STRATA_LOOM_LONG=1 runs it)");
        return;
    }
    explore(
        "a_follower_never_gets_a_value_expired_before_it_began",
        loom::model::Builder::new(),
        || {
            let (clock, time) = strata_engine::Clock::mock();
            let cache: Cache<u64, u64, Fixed> = Cache::builder()
                .max_capacity(4)
                .hasher(Fixed::default())
                .clock(clock)
                .build();
            let (leading, writing) = (cache.clone(), cache.clone());
            let leader = thread::spawn(move || leading.get_or_insert_with(3, || 30));
            let writer = thread::spawn(move || {
                writing.insert_with_ttl(3, 7, std::time::Duration::from_millis(10));
            });
            writer.join().unwrap();
            time.advance(std::time::Duration::from_millis(20));
            // Value 7 has expired; this call begins after that.
            let mine = cache.get_or_insert_with(3, || 31);
            assert_ne!(
                mine, 7,
                "a load returned a value that expired before it began"
            );
            let theirs = leader.join().unwrap();
            assert!(theirs == 30 || theirs == 31 || theirs == 7, "{theirs}");
        },
    );
}

/// Single-flight with a panicking leader: the panic unwinds through the loader's caller, whose
/// dropped leader handle abandons the flight, so the waiting caller is released and loads itself
/// (no caller waits forever: loom reports a deadlock), and the panic leaves nothing cached.
#[test]
fn panicking_loader_releases_the_waiter() {
    // One expected panic per interleaving: keep them out of the log, and report any other.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"loader panicked") {
            report(info);
        }
    }));
    explore(
        "panicking_loader_releases_the_waiter",
        loom::model::Builder::new(),
        || {
            let cache = cache::<u64>(4);
            let other = cache.clone();
            let t = thread::spawn(move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    other.get_or_insert_with(8, || panic!("loader panicked"))
                }))
                .ok()
            });
            let mine = cache.get_or_insert_with(8, || 80);
            let theirs = t.join().unwrap();
            assert_eq!(mine, 80);
            assert!(theirs.is_none() || theirs == Some(80), "{theirs:?}");
            assert_eq!(cache.get(&8), Some(80));
        },
    );
}

/// The main ring growing under racing writers: a cache bounded by weight alone and sized for one
/// entry has room for eight, so once its small queue (four slots) is full every new entry pushes
/// an older one into main, whose ring must double rather than evict. Six single-threaded inserts
/// fill the small queue and grow the ring to two slots; two racing inserts then both promote into
/// a full ring and race to grow it. Nothing may be evicted (every key is still there), no slot
/// may be taken twice and no node freed twice or while queued (the canaries).
#[test]
fn racing_writers_grow_the_main_ring_without_losing_entries() {
    // The single-threaded fill alone takes more atomic operations than loom's default limit on
    // one execution's length. Two promotions through a full ring are as long as the two eviction
    // paths of `racing_evictions_free_each_node_once`: the bounded run gives it one preemption.
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 20_000;
    one_preemption_when_bounded(&mut builder);
    explore(
        "racing_writers_grow_the_main_ring_without_losing_entries",
        builder,
        || {
            let cache: Cache<u64, Canary, Fixed> = Cache::builder()
                .max_weight(8)
                .weigher(|_, _| 1)
                .initial_capacity(1)
                .hasher(Fixed::default())
                .build();
            for k in 1..=6 {
                cache.insert(k, Canary::new(k));
            }
            let other = cache.clone();
            let t = thread::spawn(move || other.insert(7, Canary::new(7)));
            cache.insert(8, Canary::new(8));
            t.join().unwrap();
            let missing: Vec<u64> = (1..=8).filter(|k| cache.get(k).is_none()).collect();
            assert_eq!(
                cache.len(),
                8,
                "an entry was evicted under the bound: {missing:?} missing, {:?}",
                cache.stats()
            );
            for k in 1..=8 {
                assert_eq!(cache.get(&k).map(|c| c.id), Some(k));
            }
            drop(cache);
            flush();
        },
    );
}

/// The small FIFO's ring on its own (issue 13, item 3): a popper that reads `head == t` must
/// happen-after the pop of ticket `t - len`, or its load of slot `t % len` may read the full word
/// of two laps ago (same lap parity, an item already popped) and its CAS of `head` still succeeds:
/// the item comes out twice (a node's queue reference released twice in the engine) and the one
/// pushed in its place is lost. In a ring of two slots one thread goes round it twice and pushes
/// once more, while another thread, started first, pops once whenever the schedule lets it: every
/// item pushed comes out exactly once, across the two threads' pops and a final drain. With the
/// ring's old `Relaxed` counters (the `relaxed_ring` mutant) this model fails. The push side of
/// the race has its own model, `stalled_pusher_overwrites_no_ring_item`.
#[test]
fn stalled_popper_takes_each_ring_item_once() {
    explore(
        "stalled_popper_takes_each_ring_item_once",
        loom::model::Builder::new(),
        || {
            // Aligned fake addresses: the ring never dereferences them.
            let item = |i: usize| (i * 8) as *mut u64;
            let ring = Arc::new(SmallQueue::<u64>::new(2));
            let stalled = Arc::clone(&ring);
            // Raw pointers are not `Send`: the popper hands back the address.
            let t = thread::spawn(move || stalled.pop().map(|p| p as usize));
            let mut pushed = Vec::new();
            let mut popped = Vec::new();
            let mut push = |i: usize| {
                // A push may find the ring full while the other thread is mid-pop: then the
                // item never entered it.
                if ring.push(item(i)).is_ok() {
                    pushed.push(item(i) as usize);
                }
            };
            // Two laps: tickets 0-3, each slot filled and emptied twice.
            push(1);
            push(2);
            popped.extend(ring.pop().map(|p| p as usize));
            popped.extend(ring.pop().map(|p| p as usize));
            push(3);
            push(4);
            popped.extend(ring.pop().map(|p| p as usize));
            popped.extend(ring.pop().map(|p| p as usize));
            // Ticket 4: slot 0 again, in a lap of the same parity as item 1's.
            push(5);
            popped.extend(t.join().unwrap());
            while let Some(p) = ring.pop() {
                popped.push(p as usize);
            }
            pushed.sort_unstable();
            popped.sort_unstable();
            let mut once = popped.clone();
            once.dedup();
            assert_eq!(
                once.len(),
                popped.len(),
                "an item was popped twice: {popped:x?}"
            );
            assert_eq!(popped, pushed, "popped items are not the pushed ones");
        },
    );
}

/// The same race on the push side: a pusher that reads `tail == t` must happen-after the push of
/// ticket `t - len`, or its load of slot `t % len` may read the empty word of two laps ago (same
/// lap parity) while the slot holds the previous lap's item, not yet popped, and its CAS of `tail`
/// still succeeds: it overwrites that item, which is lost. In a ring of two slots one thread
/// fills and empties both slots, refills them, pops one and pushes once more, so that the ring is
/// full with an item of lap 1 in slot 1 when the next ticket (lap 2, same parity as slot 1's
/// initial empty word) comes up; another thread, started first, pushes once whenever the schedule
/// lets it. Every item whose push succeeded comes out exactly once, across the pops and a final
/// drain. With `Relaxed` on `tail` (the `relaxed_ring` mutant) this model fails.
#[test]
fn stalled_pusher_overwrites_no_ring_item() {
    explore(
        "stalled_pusher_overwrites_no_ring_item",
        loom::model::Builder::new(),
        || {
            // Aligned fake addresses: the ring never dereferences them.
            let item = |i: usize| (i * 8) as *mut u64;
            let ring = Arc::new(SmallQueue::<u64>::new(2));
            let stalled = Arc::clone(&ring);
            // Raw pointers are not `Send`: the pusher hands back whether its item went in.
            let t = thread::spawn(move || stalled.push(item(9)).is_ok());
            let mut pushed = Vec::new();
            let mut popped = Vec::new();
            let mut push = |i: usize| {
                // A push finds the ring full whenever the other thread's item took a slot.
                if ring.push(item(i)).is_ok() {
                    pushed.push(item(i) as usize);
                }
            };
            // Lap 0 (tickets 0-1), then lap 1 (tickets 2-3), of which one item is popped.
            push(1);
            push(2);
            popped.extend(ring.pop().map(|p| p as usize));
            popped.extend(ring.pop().map(|p| p as usize));
            push(3);
            push(4);
            popped.extend(ring.pop().map(|p| p as usize));
            // Ticket 4 (slot 0, lap 2): the ring is full again, slot 1 holding lap 1's item.
            push(5);
            if t.join().unwrap() {
                pushed.push(item(9) as usize);
            }
            while let Some(p) = ring.pop() {
                popped.push(p as usize);
            }
            pushed.sort_unstable();
            popped.sort_unstable();
            let mut once = popped.clone();
            once.dedup();
            assert_eq!(
                once.len(),
                popped.len(),
                "an item was popped twice: {popped:x?}"
            );
            assert_eq!(
                popped, pushed,
                "an item pushed was lost (or one never pushed popped)"
            );
        },
    );
}
