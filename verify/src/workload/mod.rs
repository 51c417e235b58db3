//! The threaded random driver: `threads` threads run seeded random `get` / `insert` / `remove` /
//! `get_or_insert_with` calls on a small key space, recording each call (see [`crate::history`]),
//! in rounds. After each round the threads have joined, so the cache is quiescent: the main
//! thread reads every key once more (those reads join the histories, which catches a bad final
//! state), checks the counters against the bounds and the live entries, checks every key's
//! history ([`crate::checker`]: the fast rules, then the exact linearizability search unless
//! [`Config::depth`] says otherwise), and clears the cache for the next round.
//!
//! With values that are accounted ([`StressValue::ACCOUNTED`], [`crate::accounting::Tracked`]),
//! each round also has a ledger of its value ids, audited at the round's quiet point (before the
//! final reads), and again once the cache is cleared and the epoch collector has dropped the
//! round's values; after the last round the cache is filled once more and dropped whole, and
//! what it held audited (see [`crate::accounting`]).
//!
//! Guards against everything the checker does, plus: `len()`/`weighted_size()` above the
//! bounds once writes have stopped, `len()` disagreeing with the entries actually present, and
//! `clear()` leaving entries behind; with accounting, every value lost, leaked, reported twice
//! or dropped twice, by id.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_engine::EvictionCause;

use crate::accounting::{Ledger, Sabotage, Span};
use crate::checker::{check_key_with, Depth, Mode};
use crate::history::{sort_by_invoke, Kind, Op, Ticker};
use crate::report::{Checking, Failure, Findings, Progress, Report};

mod accounts;
mod worker;

use accounts::{build, Accounts};
pub use accounts::{weight_of, MAX_ENTRY_WEIGHT, WEIGHT_PER_ENTRY};
use worker::Worker;

/// A value type the driver can store: built from a unique id, which it reports back.
pub trait StressValue: Clone + Send + Sync + 'static {
    /// Whether the run accounts for every value: a recording listener, a ledger per round,
    /// audits at the quiet points ([`crate::accounting`]).
    const ACCOUNTED: bool;
    /// A value with id `id`, counted in `ledger` (given exactly when [`Self::ACCOUNTED`]).
    fn make(id: u64, ledger: Option<&Arc<Ledger>>) -> Self;
    /// The id it was built with.
    fn id(&self) -> u64;
    /// The eviction listener's report that the value left the cache (with accounting only).
    fn reported(&self, cause: EvictionCause);
}

impl StressValue for u64 {
    const ACCOUNTED: bool = false;

    fn make(id: u64, _: Option<&Arc<Ledger>>) -> Self {
        id
    }

    fn id(&self) -> u64 {
        *self
    }

    fn reported(&self, _: EvictionCause) {}
}

/// SplitMix64: a small, seedable generator (the operation sequences replay from the seed; the
/// interleavings, chosen by the OS, do not).
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// How long a run lasts.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// Rounds start until this much time has passed.
    Time(Duration),
    /// About this many operations in all threads together.
    Ops(u64),
}

/// A stress run's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Worker threads.
    pub threads: usize,
    /// Keys are `0..keys`.
    pub keys: u64,
    /// The cache's `max_capacity`.
    pub capacity: u64,
    /// The cache's default time to live (used by `insert` and `get_or_insert_with`).
    pub ttl: Option<Duration>,
    /// When to stop.
    pub budget: Budget,
    /// Seed of every thread's operation sequence.
    pub seed: u64,
    /// Apply [`crate::checker::Rule::Missing`]; requires `capacity >= keys + threads` and no TTL.
    pub no_eviction: bool,
    /// Operations per thread per round (a round's history is held in memory and checked whole).
    pub round_ops: u64,
    /// Include `get_or_insert_with` in the mix (its share goes to `get` otherwise).
    pub loaders: bool,
    /// Keep running after a round that found violations (only the first few are kept whole).
    pub keep_going: bool,
    /// How far each key's history is checked: the fast rules only, or also the exact search
    /// (the default).
    pub depth: Depth,
    /// Values weigh 0 to 9 ([`weight_of`]), under `max_weight` = capacity x
    /// [`WEIGHT_PER_ENTRY`] and `max_entry_weight` [`MAX_ENTRY_WEIGHT`] (heavier values are
    /// refused), besides the count bound.
    pub weighted: bool,
    /// A deliberate fault, for the accounting's own tests (accounted values only).
    pub sabotage: Option<Sabotage>,
}

impl Config {
    /// The weight bound: the capacity without [`weighted`](Self::weighted) (each entry weighs
    /// 1), capacity x [`WEIGHT_PER_ENTRY`] with it.
    pub fn max_weight(&self) -> u64 {
        if self.weighted {
            self.capacity * WEIGHT_PER_ENTRY
        } else {
            self.capacity
        }
    }

    /// Checks that the settings make sense together; the error says why not.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads == 0 || self.keys == 0 || self.round_ops == 0 {
            return Err("threads, keys and round size must be positive".into());
        }
        if self.threads >= 1 << 15 {
            return Err("at most 32767 threads (thread ids are 16 bits of a value)".into());
        }
        if self.no_eviction {
            if self.weighted {
                return Err("--no-eviction cannot be combined with --weighted".into());
            }
            if self.ttl.is_some() {
                return Err("--no-eviction cannot be combined with a TTL".into());
            }
            // Counters may run ahead by one entry per writer for an instant (crate docs).
            if self.capacity < self.keys + self.threads as u64 {
                return Err(format!(
                    "--no-eviction needs capacity >= keys + threads = {}",
                    self.keys + self.threads as u64
                ));
            }
        }
        Ok(())
    }
}

/// Runs the stress workload with values of type `V` and reports. The cache is dropped before
/// this returns (with accounting, after a last fill, and its values' drops checked).
pub fn run<V: StressValue>(config: &Config, progress: &mut dyn FnMut(&Progress)) -> Report {
    let cache = build::<V>(config);
    // A TTL run stamps every call with wall-clock time too, for the checker's expiry rule.
    let ticker = if config.ttl.is_some() {
        Ticker::clocked()
    } else {
        Ticker::new()
    };
    let mode = Mode {
        no_eviction: config.no_eviction,
        ttl: config.ttl,
    };
    let leak_clone = AtomicBool::new(false);
    let leak_clone =
        (V::ACCOUNTED && config.sabotage == Some(Sabotage::LeakClone)).then_some(&leak_clone);
    let start = Instant::now();
    let (mut ops, mut rounds, mut histories) = (0u64, 0u64, 0u64);
    let (mut failing_histories, mut failing_rounds) = (0u64, 0u64);
    let mut checking = Checking::default();
    let mut found = Findings::default();
    let mut accounts = Accounts::default();
    let mut next_seq = vec![0u64; config.threads];
    loop {
        let per_thread = match config.budget {
            Budget::Time(limit) if start.elapsed() >= limit => 0,
            Budget::Time(_) => config.round_ops,
            Budget::Ops(total) => config
                .round_ops
                .min(total.saturating_sub(ops).div_ceil(config.threads as u64)),
        };
        if per_thread == 0 {
            break;
        }
        let round = rounds;
        let ledger = V::ACCOUNTED.then(|| {
            let spans: Vec<Span> = next_seq
                .iter()
                .map(|&first_seq| Span {
                    first_seq,
                    count: per_thread,
                })
                .collect();
            Arc::new(Ledger::new(round, &spans))
        });
        let mut recorded: Vec<Op> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..config.threads)
                .map(|t| {
                    let worker = Worker {
                        cache: &cache,
                        ticker: &ticker,
                        ledger: ledger.as_ref(),
                        leak_clone,
                        thread: t as u32,
                        keys: config.keys,
                        loaders: config.loaders,
                    };
                    let seed = mix(config.seed, round, t as u64);
                    let first_seq = next_seq[t];
                    scope.spawn(move || worker.run(seed, per_thread, first_seq))
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a stress thread panicked"))
                .collect()
        });
        for seq in &mut next_seq {
            *seq += per_thread;
        }
        ops += recorded.len() as u64;
        // An insert the cache refused (too heavy) changed nothing: no history needs it.
        recorded.retain(|op| op.kind != Kind::Insert || op.written.is_some());
        let found_before = found.violations;

        // Quiescent: bounds and counts first, the audit, then one last read of every key.
        let (len, weighted) = (cache.len(), cache.weighted_size());
        if len as u64 > config.capacity || weighted > config.max_weight() {
            let (capacity, max_weight) = (config.capacity, config.max_weight());
            found.record_quiescent(|| Failure::Bound {
                round,
                len,
                weighted,
                capacity,
                max_weight,
            });
        }
        if let Some(ledger) = &ledger {
            // Counts every entry in the table, expired ones too, against `len()`.
            accounts.quiet(&mut found, &cache, ledger);
        } else if config.ttl.is_none() {
            let live = cache.iter().count();
            if live != len {
                found.record_quiescent(|| Failure::Count {
                    round,
                    len,
                    live,
                    after_clear: false,
                });
            }
        }
        for key in 0..config.keys {
            recorded.push(ticker.walled(|| {
                let invoke = ticker.tick();
                let got = cache.get(&key);
                let respond = ticker.tick();
                Op {
                    thread: config.threads as u32,
                    kind: Kind::Get,
                    key,
                    written: None,
                    returned: got.as_ref().map(V::id),
                    invoke,
                    respond,
                    wall: None,
                }
            }));
        }

        let check_start = Instant::now();
        recorded.sort_unstable_by_key(|op| (op.key, op.invoke));
        for history in recorded.chunk_by(|a, b| a.key == b.key) {
            histories += 1;
            let checked = check_key_with(history, mode, config.depth);
            checking.search_steps += checked.steps;
            checking.most_steps = checking.most_steps.max(checked.steps);
            checking.longest = checking.longest.max(history.len() as u64);
            let violations = checked.violations;
            failing_histories += u64::from(!violations.is_empty());
            for violation in violations {
                found.record(|| {
                    let mut history = history.to_vec();
                    sort_by_invoke(&mut history);
                    Failure::History {
                        round,
                        violation,
                        history,
                    }
                });
            }
        }
        checking.time += check_start.elapsed();
        drop(recorded);

        if ledger.is_some() && config.ttl.is_some() {
            // Expired entries the final reads did not meet leave through maintenance, reported
            // `Expired`; `clear` reports the rest `Removed`.
            cache.run_pending_maintenance();
        }
        cache.clear();
        let (len, live) = (cache.len(), cache.iter().count());
        if len != 0 || live != 0 {
            found.record_quiescent(|| Failure::Count {
                round,
                len,
                live,
                after_clear: true,
            });
        }
        if let Some(ledger) = &ledger {
            accounts.drained(&mut found, &cache, ledger);
        }
        rounds += 1;
        progress(&Progress {
            ops,
            rounds,
            elapsed: start.elapsed(),
        });
        if found.violations > found_before {
            failing_rounds += 1;
            if !config.keep_going {
                break;
            }
        }
    }
    let stats = cache.stats();
    if V::ACCOUNTED {
        accounts.fill_and_drop(&mut found, cache, config, rounds);
    } else {
        drop(cache);
    }
    Report {
        ops,
        rounds,
        histories,
        violations: found.violations,
        quiescent_violations: found.quiescent,
        failing_histories,
        failing_rounds,
        failures: found.kept,
        stats,
        checking,
        accounting: V::ACCOUNTED.then_some(accounts.tally),
    }
}

/// The seed of thread `thread` in round `round`.
fn mix(seed: u64, round: u64, thread: u64) -> u64 {
    let mut g = SplitMix::new(seed ^ round.rotate_left(32) ^ thread.wrapping_mul(0x9E37_79B9));
    g.next_u64()
}
