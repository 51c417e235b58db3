//! The exact per-key check (`checker::search`) against a brute-force enumeration of the same
//! model (the `checker` module docs), on hand-written histories and on generated ones.
//!
//! Guards against: a search that passes a history no order explains (a miss: its pruning or
//! memo cuts off the only explanation's complement wrongly) or fails one that some order
//! explains (a false alarm: a pruning rule, a greedy step or the flight bookkeeping too strict),
//! and against the fast rules alone being taken for a linearizability check (they miss some
//! broken histories, counted here; `SHOW_MISSES=1` prints the first few).
#![cfg(not(strata_loom))]

use strata_verify::checker::search::{search, Verdict};
use strata_verify::checker::{check_key, check_key_with, excerpt, Depth, Mode, Rule};
use strata_verify::history::by_hand::{get, insert, load, op, remove, rules, shared};
use strata_verify::history::{Kind, Op};
use strata_verify::workload::SplitMix;

fn fast_rules(history: &[Op], no_eviction: bool) -> Vec<Rule> {
    check_key_with(
        history,
        Mode {
            no_eviction,
            ttl: None,
        },
        Depth::Rules,
    )
    .violations
    .into_iter()
    .map(|v| v.rule)
    .collect()
}

/// Issue 14's example: after both inserts returned, two readers disagree on the current value.
/// The fast rules pass it.
#[test]
fn readers_disagreeing_after_both_inserts_are_flagged() {
    let history = [
        insert(1, (0, 4)),
        insert(2, (1, 2)),
        get(Some(1), (3, 6)),
        get(Some(2), (5, 7)),
    ];
    for no_eviction in [false, true] {
        assert_eq!(fast_rules(&history, no_eviction), []);
        assert_eq!(rules(&history, no_eviction), [Rule::NotLinearizable]);
        assert_eq!(brute_force(&history, no_eviction), Some(false));
    }
    // The report names a call that could not go next and what blocked it, so that the excerpt
    // printed with it covers the evidence.
    let violation = &check_key(&history, Mode::default())[0];
    assert_eq!(excerpt(&history, violation, 80).len(), 4, "{violation}");
    print!("{violation}");
    // The readers the other way round agree with an order: insert 2, read it, insert 1, read it.
    let history = [
        insert(1, (0, 4)),
        insert(2, (1, 2)),
        get(Some(2), (3, 6)),
        get(Some(1), (5, 7)),
    ];
    assert_eq!(rules(&history, false), []);
    assert_eq!(brute_force(&history, false), Some(true));
}

#[test]
fn followers_of_a_load_are_checked() {
    // A follower of a load that a removal cancelled returns the value although it was never
    // cached; a get during the load misses.
    let history = [
        load(1, (0, 10)),
        shared(1, (1, 11)),
        remove(None, (2, 3)),
        get(None, (4, 5)),
    ];
    assert_eq!(rules(&history, true), []);
    assert_eq!(brute_force(&history, true), Some(true));
    // c263b56's bug: the loaded value was read and removed, then a call that began afterwards
    // still returned it as a follower.
    let history = [
        load(1, (0, 10)),
        get(Some(1), (1, 2)),
        remove(Some(1), (3, 4)),
        shared(1, (5, 11)),
    ];
    assert_ne!(rules(&history, false), []);
    assert!(!linearizable(&history, false));
    assert_eq!(brute_force(&history, false), Some(false));
    // Two followers that do not overlap cannot have waited on one flight (the second began after
    // the first had its answer), so the value was current in between, where a get missed.
    let history = [
        load(1, (0, 20)),
        shared(1, (1, 3)),
        get(None, (4, 5)),
        shared(1, (6, 8)),
    ];
    assert!(!linearizable(&history, false));
    assert_eq!(brute_force(&history, false), Some(false));
    // Overlapping followers may both have waited.
    let history = [
        load(1, (0, 20)),
        shared(1, (1, 7)),
        get(None, (4, 5)),
        shared(1, (6, 8)),
    ];
    assert!(linearizable(&history, false));
    assert_eq!(brute_force(&history, false), Some(true));
}

#[test]
fn a_search_out_of_budget_is_reported_as_undecided() {
    let history = [insert(1, (0, 2)), insert(2, (1, 3)), get(Some(2), (4, 5))];
    let checked = check_key_with(&history, Mode::default(), Depth::Exact { budget: 0 });
    let found: Vec<Rule> = checked.violations.iter().map(|v| v.rule).collect();
    assert_eq!(found, [Rule::Undecided]);
    assert_eq!(rules(&history, false), []);
}

/// The search's answer (within a budget no test history comes near).
fn linearizable(history: &[Op], no_eviction: bool) -> bool {
    match search(
        history,
        Mode {
            no_eviction,
            ttl: None,
        },
        1_000_000,
    )
    .verdict
    {
        Verdict::Linearizable => true,
        Verdict::NotLinearizable { .. } => false,
        Verdict::OutOfBudget { .. } => panic!("out of budget on {history:?}"),
    }
}

// --- The brute force: every order, every choice. ---

/// Whether some order of `history` (at most 16 calls; meant for 7 or fewer), each call at an
/// instant inside it, explains every result under the model of the `checker` module docs.
/// `None` for a call shape the engine never records (a loader returning another value).
fn brute_force(history: &[Op], no_eviction: bool) -> Option<bool> {
    let odd =
        |op: &Op| op.kind == Kind::GetOrInsert && op.written.is_some() && op.returned != op.written;
    if history.iter().any(odd) {
        return None;
    }
    let start = Conf {
        state: None,
        installed: Vec::new(),
        at: vec![0; history.len()],
        followed: Vec::new(),
    };
    Some(explains(history, no_eviction, 0, 0, start))
}

#[derive(Clone)]
struct Conf {
    state: Option<u64>,
    /// Loaded values made current so far.
    installed: Vec<u64>,
    /// Per call placed: the latest invocation among it and the calls before it (its instant is
    /// just after that: the earliest it can be).
    at: Vec<u64>,
    /// (follower, leader) pairs, each a follower that took its leader's value without reading it.
    followed: Vec<(usize, usize)>,
}

/// Places the calls not in `placed`, one at a time, after `latest` (the latest invocation so far).
fn explains(history: &[Op], no_eviction: bool, placed: u32, latest: u64, conf: Conf) -> bool {
    if placed.count_ones() as usize == history.len() {
        return flights_complete(history, &conf);
    }
    for (i, call) in history.iter().enumerate() {
        let at = latest.max(call.invoke);
        if placed & (1 << i) != 0 || at >= call.respond {
            continue;
        }
        let mut before = vec![conf.state];
        if !no_eviction && conf.state.is_some() {
            before.push(None); // evicted just before
        }
        for state in before {
            for mut next in outcomes(history, i, state, &conf) {
                next.at[i] = at;
                if explains(history, no_eviction, placed | (1 << i), at, next) {
                    return true;
                }
            }
        }
    }
    false
}

/// The configurations call `i` can leave, with the key holding `state` at its instant.
fn outcomes(history: &[Op], i: usize, state: Option<u64>, conf: &Conf) -> Vec<Conf> {
    let call = &history[i];
    let with = |state: Option<u64>| Conf {
        state,
        ..conf.clone()
    };
    match (call.kind, call.written, call.returned) {
        (Kind::Get, _, returned) if returned == state => vec![with(state)],
        (Kind::Insert, Some(w), _) => vec![with(Some(w))],
        (Kind::Remove, _, returned) if returned == state => vec![with(None)],
        (Kind::GetOrInsert, Some(w), _) if state.is_none() => {
            let mut cached = with(Some(w));
            cached.installed.push(w);
            vec![cached, with(None)]
        }
        (Kind::GetOrInsert, None, Some(v)) => {
            let mut out = Vec::new();
            if state == Some(v) {
                out.push(with(state));
            }
            let leader = history
                .iter()
                .position(|l| l.kind == Kind::GetOrInsert && l.written == Some(v));
            if let Some(l) = leader.filter(|&l| l != i) {
                if state.is_none() && !conf.installed.contains(&v) {
                    let mut follows = with(None);
                    follows.followed.push((i, l));
                    out.push(follows);
                }
            }
            out
        }
        (Kind::GetOrInsert, None, None) if state.is_none() => vec![with(None)],
        _ => Vec::new(),
    }
}

/// Each followed flight completes at an instant after its leader's and its followers' instants,
/// before all of them respond.
fn flights_complete(history: &[Op], conf: &Conf) -> bool {
    conf.followed.iter().all(|&(_, leader)| {
        let members: Vec<usize> = std::iter::once(leader)
            .chain(conf.followed.iter().filter(|f| f.1 == leader).map(|f| f.0))
            .collect();
        let latest = members.iter().map(|&m| conf.at[m]).max().unwrap_or(0);
        let earliest_respond = members
            .iter()
            .map(|&m| history[m].respond)
            .min()
            .unwrap_or(0);
        latest < earliest_respond
    })
}

// --- Generated histories. ---

/// A random history of 1 to 7 calls by 1 to 4 threads: half of the time with random results
/// ([`random_results`]), else a legal run of the model, then, half of the time, one or two results
/// changed (most changes break it, some do not).
fn generate(rng: &mut SplitMix, no_eviction: bool) -> Vec<Op> {
    let n = 1 + rng.below(7) as usize;
    let threads = 1 + rng.below(4);
    if rng.below(2) == 0 {
        let mut ops = interleave(rng, n, threads);
        random_results(rng, &mut ops);
        return ops;
    }
    let mut ops = legal_run(rng, n, threads, no_eviction);
    // Half of the histories: one or two results changed.
    if rng.below(2) == 0 {
        let count = 1 + rng.below(2);
        change_results(rng, &mut ops, count);
    }
    ops
}

/// `n` calls of random kinds by `threads` threads, results not yet set.
fn interleave(rng: &mut SplitMix, n: usize, threads: u64) -> Vec<Op> {
    // Each thread's calls run one after another; the threads' ticks interleave at random.
    let thread_of: Vec<u64> = (0..n).map(|_| rng.below(threads)).collect();
    let mut queue: Vec<Vec<usize>> = (0..threads)
        .map(|t| (0..n).filter(|&i| thread_of[i] == t).collect())
        .collect();
    let mut spans = vec![(0u64, 0u64); n];
    let mut open: Vec<Option<usize>> = vec![None; threads as usize];
    let mut tick = 0;
    while queue.iter().any(|q| !q.is_empty()) || open.iter().any(Option::is_some) {
        let t = rng.below(threads) as usize;
        match open[t] {
            Some(i) => {
                spans[i].1 = tick;
                open[t] = None;
            }
            None if !queue[t].is_empty() => {
                let i = queue[t].remove(0);
                spans[i].0 = tick;
                open[t] = Some(i);
            }
            None => continue,
        }
        tick += 1;
    }
    spans
        .iter()
        .enumerate()
        .map(|(i, &span)| {
            let kind = match rng.below(100) {
                0..35 => Kind::Get,
                35..60 => Kind::Insert,
                60..75 => Kind::Remove,
                _ => Kind::GetOrInsert,
            };
            Op {
                thread: thread_of[i] as u32,
                ..op(kind, None, None, span)
            }
        })
        .collect()
}

/// `n` calls by `threads` threads with the results of a legal run of the model: an instant inside
/// each call, the calls in that order, with random evictions, loads left uncached, and followers
/// of loads where the instants allow them.
fn legal_run(rng: &mut SplitMix, n: usize, threads: u64, no_eviction: bool) -> Vec<Op> {
    let mut ops = interleave(rng, n, threads);
    let mut instants: Vec<(u64, usize)> = ops
        .iter()
        .enumerate()
        .map(|(i, o)| {
            (
                o.invoke * 1000 + 1 + rng.below((o.respond - o.invoke) * 1000 - 1),
                i,
            )
        })
        .collect();
    instants.sort_unstable();
    let mut instant = vec![0; n];
    let mut cached_at = vec![None; n];
    let (mut state, mut fresh) = (None, 1u64);
    for &(at, i) in &instants {
        instant[i] = at;
        if !no_eviction && state.is_some() && rng.below(5) == 0 {
            state = None;
        }
        let call = &mut ops[i];
        match call.kind {
            Kind::Get => call.returned = state,
            Kind::Insert => {
                call.written = Some(fresh);
                state = Some(fresh);
                fresh += 1;
            }
            Kind::Remove => call.returned = state.take(),
            Kind::GetOrInsert => match state {
                Some(v) => call.returned = Some(v),
                None => {
                    (call.written, call.returned) = (Some(fresh), Some(fresh));
                    if rng.below(4) != 0 {
                        state = Some(fresh);
                        cached_at[i] = Some(at);
                    }
                    fresh += 1;
                }
            },
        }
    }
    // Some loads that left the key absent become followers of another load, where the run
    // allows it: that value not cached before, and an instant for the flight to complete.
    let mut followers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(at, i) in &instants {
        let uncached = ops[i].written.is_some() && cached_at[i].is_none();
        if ops[i].kind != Kind::GetOrInsert || !uncached || !followers[i].is_empty() {
            continue;
        }
        let fits = |l: usize| {
            let members = || {
                std::iter::once(l)
                    .chain(followers[l].iter().copied())
                    .chain([i])
            };
            let latest = members().map(|m| instant[m]).max().unwrap_or(0);
            let earliest = members().map(|m| ops[m].respond * 1000).min().unwrap_or(0);
            l != i
                && ops[l].kind == Kind::GetOrInsert
                && ops[l].written.is_some()
                && cached_at[l].is_none_or(|c| c > at)
                && latest < earliest
        };
        let leaders: Vec<usize> = (0..n).filter(|&l| fits(l)).collect();
        if !leaders.is_empty() && rng.below(3) != 0 {
            let l = leaders[rng.below(leaders.len() as u64) as usize];
            followers[l].push(i);
            (ops[i].written, ops[i].returned) = (None, ops[l].written);
        }
    }
    ops
}

/// Changes the results of `count` random calls (a changed result may still be explainable).
fn change_results(rng: &mut SplitMix, ops: &mut [Op], count: u64) {
    let values: Vec<u64> = ops.iter().filter_map(|o| o.written).collect();
    for _ in 0..count {
        let i = rng.below(ops.len() as u64) as usize;
        let call = &mut ops[i];
        let pick = rng.below(values.len() as u64 + 1) as usize;
        let other = values.get(pick).copied();
        match call.kind {
            Kind::Get | Kind::Remove => call.returned = other,
            Kind::GetOrInsert if call.written.is_none() && other.is_some() => {
                call.returned = other;
            }
            _ => {}
        }
    }
}

/// Results drawn at random: each write a fresh value, each read one of them or nothing (a
/// `get_or_insert_with` loads half of the time, else returns one of them).
fn random_results(rng: &mut SplitMix, ops: &mut [Op]) {
    let mut values = Vec::new();
    for (i, call) in ops.iter_mut().enumerate() {
        let fresh = 1 + i as u64;
        match call.kind {
            Kind::Insert => call.written = Some(fresh),
            Kind::GetOrInsert if rng.below(2) == 0 => {
                (call.written, call.returned) = (Some(fresh), Some(fresh));
            }
            _ => continue,
        }
        values.push(fresh);
    }
    for call in ops.iter_mut().filter(|c| c.written.is_none()) {
        let pick = rng.below(values.len() as u64 + 1) as usize;
        call.returned = values.get(pick).copied();
        if call.kind == Kind::GetOrInsert && call.returned.is_none() {
            call.kind = Kind::Get;
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    histories: u64,
    broken: u64,
    rules_miss: u64,
    rules_false_alarm: u64,
    search_miss: u64,
    search_false_alarm: u64,
    undecided: u64,
    most_steps: u64,
}

fn tally(no_eviction: bool, count: u64, seed: u64) -> Tally {
    let mut rng = SplitMix::new(seed);
    let mut t = Tally::default();
    let mode = Mode {
        no_eviction,
        ttl: None,
    };
    for _ in 0..count {
        let history = generate(&mut rng, no_eviction);
        let Some(legal) = brute_force(&history, no_eviction) else {
            continue;
        };
        t.histories += 1;
        let searched = search(&history, mode, 100_000);
        t.most_steps = t.most_steps.max(searched.steps);
        let flagged_by_rules = !fast_rules(&history, no_eviction).is_empty();
        t.broken += u64::from(!legal);
        t.rules_miss += u64::from(!legal && !flagged_by_rules);
        let show = t.rules_miss <= 4 && std::env::var_os("SHOW_MISSES").is_some();
        if !legal && !flagged_by_rules && show {
            eprintln!("rules miss (no_eviction {no_eviction}):");
            for call in &history {
                eprintln!("    {call}");
            }
        }
        t.rules_false_alarm += u64::from(legal && flagged_by_rules);
        let disagree = match searched.verdict {
            Verdict::Linearizable if !legal => {
                t.search_miss += 1;
                true
            }
            Verdict::NotLinearizable { .. } if legal => {
                t.search_false_alarm += 1;
                true
            }
            Verdict::OutOfBudget { .. } => {
                t.undecided += 1;
                true
            }
            _ => false,
        };
        if disagree && t.search_miss + t.search_false_alarm + t.undecided <= 3 {
            eprintln!("disagreement (brute force: linearizable = {legal}):");
            for call in &history {
                eprintln!("    {call}");
            }
        }
    }
    t
}

/// 20,000 generated histories of up to 7 calls per mode (`STRATA_LINEARIZABILITY_CASES` to change
/// it): the search must agree with the brute force on every one. Prints the counts
/// (`--nocapture` to see them).
#[test]
fn search_agrees_with_brute_force_on_generated_histories() {
    let cases = std::env::var("STRATA_LINEARIZABILITY_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    for (no_eviction, seed) in [(false, 0x14_0001), (true, 0x14_0002)] {
        let t = tally(no_eviction, cases, seed);
        println!(
            "no_eviction = {no_eviction}: {} histories, {} not linearizable; fast rules alone \
             miss {} of those (false alarms: {}); search misses {}, false alarms {}, undecided \
             {}; at most {} search steps",
            t.histories,
            t.broken,
            t.rules_miss,
            t.rules_false_alarm,
            t.search_miss,
            t.search_false_alarm,
            t.undecided,
            t.most_steps
        );
        assert_eq!(
            (t.search_miss, t.search_false_alarm, t.undecided),
            (0, 0, 0),
            "{t:?}"
        );
        assert_eq!(t.rules_false_alarm, 0, "{t:?}");
        assert!(t.broken > cases / 20 && t.rules_miss > 0, "{t:?}");
    }
}

/// Histories of 2,000 calls by 3 threads, too long for the brute force: legal runs must pass the
/// search (no false alarm at scale, well within its budget), and each changed one that the fast
/// rules flag (they are sound) must fail it.
#[test]
fn search_on_long_histories_agrees_with_the_construction_and_the_rules() {
    let mut rng = SplitMix::new(0x14_0003);
    let (mut flagged_by_rules, mut flagged_by_search_only, mut most_steps) = (0, 0, 0);
    for round in 0..200 {
        let no_eviction = round % 2 == 1;
        let mode = Mode {
            no_eviction,
            ttl: None,
        };
        let mut history = legal_run(&mut rng, 2_000, 3, no_eviction);
        let searched = search(&history, mode, 10_000_000);
        most_steps = most_steps.max(searched.steps);
        assert_eq!(searched.verdict, Verdict::Linearizable, "round {round}");
        change_results(&mut rng, &mut history, 1);
        let by_rules = !fast_rules(&history, no_eviction).is_empty();
        let by_search = !linearizable(&history, no_eviction);
        assert!(
            by_search || !by_rules,
            "round {round}: the rules flag it, the search passes it"
        );
        flagged_by_rules += u64::from(by_rules);
        flagged_by_search_only += u64::from(by_search && !by_rules);
    }
    println!(
        "200 long histories: at most {most_steps} search steps on a legal one; of the changed \
         ones the rules flag {flagged_by_rules}, the search {flagged_by_search_only} more"
    );
    assert!(flagged_by_rules > 50, "{flagged_by_rules}");
}
