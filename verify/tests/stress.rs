//! Short stress runs and the checker's own tests.
//!
//! Guards against: non-linearizable per-key behaviour under real threads (a read of a value never
//! written, a stale read, a value removed twice, a miss after a completed insert when nothing can
//! be evicted), `len()` above the capacity or disagreeing with the entries once writes stop,
//! `clear()` leaving entries, and, with exact accounting, any value lost without a listener
//! report, reported twice, reported while still cached, leaked or dropped twice (each by id)
//! under eviction, replacement, removal, TTL expiry and weight bounds. The sabotaged runs guard
//! against an accounting without teeth; the checker tests against a checker without teeth (a
//! broken history that passes) and against false alarms (a valid concurrent history that fails).
#![cfg(not(strata_loom))]

use std::time::Duration;

use strata_engine::{Cache, EvictionCause};
use strata_verify::accounting::{Point, Problem, Sabotage, Tracked};
use strata_verify::checker::{check_key, Depth, Mode, Rule};
use strata_verify::history::by_hand::{get, insert, op, remove, rules};
use strata_verify::history::{Kind, Op};
use strata_verify::report::{Failure, Report};
use strata_verify::workload::{run, Budget, Config};

fn config(threads: usize, keys: u64, capacity: u64, millis: u64) -> Config {
    Config {
        threads,
        keys,
        capacity,
        ttl: None,
        budget: Budget::Time(Duration::from_millis(millis)),
        seed: 0x5EED,
        no_eviction: false,
        round_ops: 50_000,
        loaders: false,
        keep_going: false,
        depth: Depth::default(),
        weighted: false,
        sabotage: None,
    }
}

fn assert_clean(report: &Report) {
    let rendered: String = report.failures.iter().map(|f| f.render(40)).collect();
    assert!(report.violations == 0, "{}{rendered}", report.summary());
    assert!(
        report.ops > 0 && report.histories > 0,
        "{}",
        report.summary()
    );
}

#[test]
fn eviction_run_has_no_violations() {
    let report = run::<u64>(&config(2, 16, 8, 3_000), &mut |_| {});
    assert_clean(&report);
    assert!(
        report.stats.evictions > 0,
        "the run must evict: {}",
        report.summary()
    );
}

#[test]
fn no_eviction_run_has_no_violations() {
    let config = Config {
        no_eviction: true,
        ..config(2, 16, 64, 2_000)
    };
    config.validate().expect("valid no-eviction config");
    let report = run::<u64>(&config, &mut |_| {});
    assert_clean(&report);
}

#[test]
fn ttl_run_has_no_violations() {
    let config = Config {
        ttl: Some(Duration::from_millis(1)),
        ..config(2, 16, 8, 1_500)
    };
    let report = run::<u64>(&config, &mut |_| {});
    assert_clean(&report);
    assert!(report.stats.expirations > 0, "{}", report.summary());
}

/// `get_or_insert_with` in the mix. This failed before c263b56: a caller that missed and joined a
/// loader's flight after the loader inserted its value, but before it completed the flight, got
/// that value even when it was overwritten or removed (by calls that completed before the caller
/// began) in between: a stale read. Followers now re-read the cache when the flight settles.
#[test]
fn get_or_insert_with_is_linearizable() {
    let config = Config {
        no_eviction: true,
        loaders: true,
        ..config(2, 16, 64, 3_000)
    };
    let report = run::<u64>(&config, &mut |_| {});
    assert_clean(&report);
}

/// The race behind `get_or_insert_with_is_linearizable`, made deterministic: an eviction listener
/// holds the loading thread right after its insert (which evicted another entry) and before it
/// completes its flight. The value is then removed; a `get_or_insert_with` that begins after the
/// remove returned must not get the removed value. It used to miss, join the still-open flight
/// and return it; a removal now detaches the flight, so the late caller loads for itself. (The
/// first form of this test held the leader in the `Replaced` listener of an insert made during
/// the load; loads no longer overwrite such inserts.)
#[test]
fn loader_joined_after_its_value_was_removed_does_not_return_it() {
    use std::sync::mpsc;
    use std::sync::Mutex;
    const NEW: u64 = 2;
    const OTHER: u64 = 3;
    const SENTINEL: u64 = 7;
    const PATIENCE: Duration = Duration::from_secs(20);
    let (in_window, held) = mpsc::channel::<()>();
    let (release, go) = mpsc::channel::<()>();
    let go = Mutex::new(go);
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(1)
        .eviction_listener(move |_, value, cause| {
            if *value == SENTINEL && matches!(cause, EvictionCause::Evicted) {
                let _ = in_window.send(());
                let _ = go.lock().unwrap().recv_timeout(PATIENCE);
            }
        })
        .build();
    cache.insert(9, SENTINEL);
    std::thread::scope(|s| {
        let leader = s.spawn(|| cache.get_or_insert_with(0, || NEW));
        // The leader has linked NEW, evicts the sentinel and waits in the listener, its flight
        // still open.
        held.recv_timeout(PATIENCE)
            .expect("the leader's insert did not evict the sentinel");
        assert_eq!(cache.remove(&0), Some(NEW));
        let follower = s.spawn(|| cache.get_or_insert_with(0, || OTHER));
        // Let the follower miss and (before the fix) join the leader's flight.
        std::thread::sleep(Duration::from_millis(200));
        release.send(()).unwrap();
        assert_eq!(leader.join().expect("leader"), NEW);
        let got = follower.join().expect("follower");
        assert_ne!(
            got, NEW,
            "get_or_insert_with began after remove() had returned NEW, yet returned NEW"
        );
    });
}

/// Asserts a run with exact accounting audited values and found nothing, and returns its tally.
fn assert_accounted(report: &Report) -> strata_verify::accounting::Tally {
    assert_clean(report);
    let tally = report.accounting.expect("a run with accounting");
    assert!(
        tally.audits == 2 * report.rounds + 2 && tally.values > 0,
        "{}",
        report.summary()
    );
    assert_eq!(tally.discrepancies, 0, "{}", report.summary());
    tally
}

#[test]
fn every_value_is_accounted_for() {
    // Small capacity (eviction), replacing inserts, removes, loaders.
    let config = Config {
        loaders: true,
        ..config(2, 16, 6, 1_500)
    };
    let report = run::<Tracked>(&config, &mut |_| {});
    let tally = assert_accounted(&report);
    assert!(
        tally.evicted > 0 && tally.removed > 0 && tally.replaced > 0 && tally.refused > 0,
        "{tally:?}"
    );
}

#[test]
fn every_value_is_accounted_for_with_ttl() {
    let config = Config {
        ttl: Some(Duration::from_millis(1)),
        loaders: true,
        ..config(2, 16, 6, 1_500)
    };
    let report = run::<Tracked>(&config, &mut |_| {});
    let tally = assert_accounted(&report);
    assert!(tally.expired > 0 && tally.evicted > 0, "{tally:?}");
}

#[test]
fn every_value_is_accounted_for_weighted() {
    let config = Config {
        weighted: true,
        loaders: true,
        ttl: Some(Duration::from_millis(2)),
        ..config(2, 16, 8, 1_500)
    };
    let report = run::<Tracked>(&config, &mut |_| {});
    let tally = assert_accounted(&report);
    assert!(
        report.stats.rejections > 0 && tally.refused > 0 && tally.evicted > 0,
        "{tally:?} {}",
        report.summary()
    );
}

/// Runs with `sabotage` and returns the accounting failures (the run must find some).
fn sabotaged(sabotage: Sabotage) -> Vec<(Point, Problem, u64)> {
    let config = Config {
        sabotage: Some(sabotage),
        loaders: true,
        ..config(2, 16, 6, 300)
    };
    let report = run::<Tracked>(&config, &mut |_| {});
    let found: Vec<_> = report
        .failures
        .iter()
        .filter_map(|f| match f {
            Failure::Accounting {
                point, discrepancy, ..
            } => Some((*point, discrepancy.problem, discrepancy.id)),
            _ => None,
        })
        .collect();
    assert!(
        !found.is_empty(),
        "{sabotage:?} passed: {}",
        report.summary()
    );
    found
}

/// One report dropped by the listener: that value, stored, is neither in the cache nor reported.
#[test]
fn accounting_catches_a_lost_report() {
    let found = sabotaged(Sabotage::DropReport);
    assert!(
        found
            .iter()
            .all(|&(_, problem, _)| problem == Problem::Neither),
        "{found:?}"
    );
    // Named at the quiet point if the value was lost during the round, and again once drained.
    let id = found[0].2;
    assert!(found.iter().all(|f| f.2 == id), "one value: {found:?}");
}

#[test]
fn accounting_catches_a_double_report() {
    let found = sabotaged(Sabotage::DoubleReport);
    assert!(
        found
            .iter()
            .all(|&(_, problem, _)| problem == Problem::ReportedTwice),
        "{found:?}"
    );
}

/// A clone leaked with `mem::forget`: the totals would still differ here, but a leak of one
/// value and a double drop of another would not; the ledger names the value either way.
#[test]
fn accounting_catches_a_leaked_clone() {
    let found = sabotaged(Sabotage::LeakClone);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].0, found[0].1),
        (Point::Drained, Problem::ClonesLeaked)
    );
}

// --- The checker on hand-written histories of key 0. ---

#[test]
fn checker_flags_a_stale_read() {
    // `b` replaced `a` entirely before the get began.
    let history = [insert(1, (0, 1)), insert(2, (2, 3)), get(Some(1), (4, 5))];
    assert!(rules(&history, false).contains(&Rule::Stale));
    // Removed entirely before the get began.
    let history = [
        insert(1, (0, 1)),
        remove(None, (2, 3)),
        get(Some(1), (4, 5)),
    ];
    assert!(rules(&history, false).contains(&Rule::Stale));
    // A miss (eviction) in between: the value may not come back.
    let history = [insert(1, (0, 1)), get(None, (2, 3)), get(Some(1), (4, 5))];
    assert!(rules(&history, false).contains(&Rule::Stale));
    // A remove that returned the value, overlapping its insert, then a read of it.
    let history = [
        insert(1, (0, 3)),
        remove(Some(1), (1, 4)),
        get(Some(1), (5, 6)),
    ];
    assert!(rules(&history, false).contains(&Rule::Stale));
}

#[test]
fn checker_flags_an_invented_value() {
    let history = [insert(1, (0, 1)), get(Some(99), (2, 3))];
    assert_eq!(rules(&history, false), [Rule::Invented]);
    // Written only after the read returned.
    let history = [get(Some(1), (0, 1)), insert(1, (2, 3))];
    assert_eq!(rules(&history, false), [Rule::Invented]);
}

#[test]
fn checker_flags_a_missing_read_only_without_eviction() {
    let history = [insert(1, (0, 1)), get(None, (2, 3))];
    assert_eq!(rules(&history, true), [Rule::Missing]);
    assert!(
        rules(&history, false).is_empty(),
        "a miss is legal with eviction"
    );
    // A remove that may take effect in between explains it.
    let history = [
        insert(1, (0, 3)),
        remove(Some(1), (1, 5)),
        get(None, (4, 6)),
    ];
    assert!(rules(&history, true).is_empty());
    // A loader that ran proves a miss too.
    let loaded = op(Kind::GetOrInsert, Some(2), Some(2), (2, 3));
    assert_eq!(rules(&[insert(1, (0, 1)), loaded], true), [Rule::Missing]);
}

#[test]
fn checker_flags_a_double_remove_and_value_order_inversions() {
    let history = [
        insert(1, (0, 1)),
        remove(Some(1), (2, 5)),
        remove(Some(1), (3, 6)),
    ];
    assert!(rules(&history, false).contains(&Rule::DoubleRemove));
    // `b` read, then `a` read, then `b` again: `b` was current over [3, 8], where `a` was read.
    let history = [
        insert(1, (0, 10)),
        insert(2, (1, 5)),
        get(Some(2), (2, 3)),
        get(Some(1), (6, 7)),
        get(Some(2), (8, 9)),
    ];
    assert!(rules(&history, false).contains(&Rule::Interrupted));
    // Two values each current over overlapping spans.
    let history = [
        insert(1, (0, 20)),
        insert(2, (1, 21)),
        get(Some(1), (2, 3)),
        get(Some(2), (4, 5)),
        get(Some(1), (6, 7)),
        get(Some(2), (8, 9)),
    ];
    let found = rules(&history, false);
    assert!(found.contains(&Rule::Overlap), "{found:?}");
}

#[test]
fn checker_accepts_valid_concurrent_histories() {
    // Overlapping inserts may take effect in either order; each read is explained.
    let history = [
        insert(1, (0, 10)),
        insert(2, (1, 5)),
        get(Some(2), (2, 3)),
        get(Some(1), (6, 7)),
        get(None, (8, 9)),
        op(Kind::GetOrInsert, Some(3), Some(3), (11, 12)),
        op(Kind::GetOrInsert, None, Some(3), (11, 13)),
        remove(Some(3), (14, 16)),
        get(Some(3), (15, 17)),
        get(None, (18, 19)),
    ];
    assert!(
        rules(&history, false).is_empty(),
        "{:?}",
        check_key(&history, Mode::default())
    );
    // Without eviction too, as no read misses without a remove to explain it.
    let history = [
        insert(1, (0, 1)),
        remove(Some(1), (2, 6)),
        get(Some(1), (3, 4)),
        get(None, (5, 8)),
        insert(2, (7, 9)),
        get(Some(2), (10, 11)),
    ];
    assert!(
        rules(&history, true).is_empty(),
        "{:?}",
        check_key(
            &history,
            Mode {
                no_eviction: true,
                ttl: None
            }
        )
    );
}

/// The expiry rule: with a 1 ms TTL, a read stamped (by the wall clock) 5 ms after its value's
/// write returned is flagged `Expired`; the same read 0.5 ms after is not; and without a TTL in
/// the mode, or without stamps, nothing is checked.
#[test]
fn a_read_past_the_ttl_breaks_the_expiry_rule() {
    let ms = 1_000_000;
    let stamped = |op: Op, wall: (u64, u64)| Op {
        wall: Some(wall),
        ..op
    };
    let ttl = Mode {
        no_eviction: false,
        ttl: Some(Duration::from_millis(1)),
    };
    let late = vec![
        stamped(insert(1, (0, 1)), (0, ms)),
        stamped(get(Some(1), (2, 3)), (6 * ms, 7 * ms)),
    ];
    let found = check_key(&late, ttl);
    assert!(
        found.iter().any(|v| v.rule == Rule::Expired),
        "a read 5 ms after a 1 ms TTL passed: {found:?}"
    );
    let in_time = vec![
        stamped(insert(1, (0, 1)), (0, ms)),
        stamped(get(Some(1), (2, 3)), (ms + ms / 2, 2 * ms)),
    ];
    assert!(check_key(&in_time, ttl).is_empty());
    assert!(check_key(
        &late,
        Mode {
            no_eviction: false,
            ttl: None
        }
    )
    .is_empty());
    let unstamped = vec![insert(1, (0, 1)), get(Some(1), (2, 3))];
    assert!(check_key(&unstamped, ttl).is_empty());
}
