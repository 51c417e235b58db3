//! The threaded random driver: `threads` threads run seeded random `get` / `insert` / `remove` /
//! `get_or_insert_with` calls on a small key space, recording each call (see [`crate::history`]),
//! in rounds. After each round the threads have joined, so the cache is quiescent: the main
//! thread reads every key once more (those reads join the histories, which catches a bad final
//! state), checks the counters against the capacity and the live entries, checks every key's
//! history ([`crate::checker`]: the fast rules, then the exact linearizability search unless
//! [`Config::depth`] says otherwise), and clears the cache for the next round.
//!
//! Guards against everything the checker does, plus: `len()`/`weighted_size()` above the
//! capacity once writes have stopped, `len()` disagreeing with the entries actually present, and
//! `clear()` leaving entries behind.

use std::cell::Cell;
use std::time::{Duration, Instant};

use strata_engine::Cache;

use crate::checker::{check_key_with, Depth, Mode};
use crate::history::{sort_by_invoke, value_id, Kind, Op, Ticker};
use crate::report::{Checking, Failure, Findings, Progress, Report};

/// A value type the driver can store: built from a unique id, which it reports back.
pub trait StressValue: Clone + Send + Sync + 'static {
    /// What building a value needs (drop counters, or nothing).
    type Source: Sync;
    /// A value with id `id`.
    fn make(id: u64, source: &Self::Source) -> Self;
    /// The id it was built with.
    fn id(&self) -> u64;
}

impl StressValue for u64 {
    type Source = ();

    fn make(id: u64, _: &()) -> Self {
        id
    }

    fn id(&self) -> u64 {
        *self
    }
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
}

impl Config {
    /// Checks that the settings make sense together; the error says why not.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads == 0 || self.keys == 0 || self.round_ops == 0 {
            return Err("threads, keys and round size must be positive".into());
        }
        if self.threads >= 1 << 15 {
            return Err("at most 32767 threads (thread ids are 16 bits of a value)".into());
        }
        if self.no_eviction {
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
/// this returns, so with [`crate::tracked::Tracked`] values only epoch-deferred drops remain.
pub fn run<V: StressValue>(
    config: &Config,
    source: &V::Source,
    progress: &mut dyn FnMut(&Progress),
) -> Report {
    let mut builder = Cache::<u64, V>::builder().max_capacity(config.capacity);
    if let Some(ttl) = config.ttl {
        builder = builder.time_to_live(ttl);
    }
    let cache = builder.build();
    let ticker = Ticker::new();
    let mode = Mode {
        no_eviction: config.no_eviction,
    };
    let start = Instant::now();
    let (mut ops, mut rounds, mut histories) = (0u64, 0u64, 0u64);
    let (mut failing_histories, mut failing_rounds) = (0u64, 0u64);
    let mut checking = Checking::default();
    let mut found = Findings::default();
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
        let mut recorded: Vec<Op> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..config.threads)
                .map(|t| {
                    let (cache, ticker) = (&cache, &ticker);
                    let seed = mix(config.seed, round, t as u64);
                    let first_seq = next_seq[t];
                    scope.spawn(move || {
                        let worker = Worker {
                            cache,
                            ticker,
                            source,
                            thread: t as u32,
                            keys: config.keys,
                            loaders: config.loaders,
                        };
                        worker.run(seed, per_thread, first_seq)
                    })
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
        let found_before = found.violations;

        // Quiescent: bounds and counts first, then one last read of every key.
        let (len, weighted) = (cache.len(), cache.weighted_size());
        if len as u64 > config.capacity || weighted > config.capacity {
            let capacity = config.capacity;
            found.record_quiescent(|| Failure::Bound {
                round,
                len,
                weighted,
                capacity,
            });
        }
        if config.ttl.is_none() {
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
            let invoke = ticker.tick();
            let got = cache.get(&key);
            let respond = ticker.tick();
            recorded.push(Op {
                thread: config.threads as u32,
                kind: Kind::Get,
                key,
                written: None,
                returned: got.as_ref().map(V::id),
                invoke,
                respond,
            });
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
    drop(cache);
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
    }
}

/// The seed of thread `thread` in round `round`.
fn mix(seed: u64, round: u64, thread: u64) -> u64 {
    let mut g = SplitMix::new(seed ^ round.rotate_left(32) ^ thread.wrapping_mul(0x9E37_79B9));
    g.next_u64()
}

/// One worker thread's view of a round.
struct Worker<'a, V: StressValue> {
    cache: &'a Cache<u64, V>,
    ticker: &'a Ticker,
    source: &'a V::Source,
    thread: u32,
    keys: u64,
    loaders: bool,
}

impl<V: StressValue> Worker<'_, V> {
    /// Runs `count` random operations; values written get ids `first_seq..`.
    fn run(&self, seed: u64, count: u64, first_seq: u64) -> Vec<Op> {
        let mut rng = SplitMix::new(seed);
        let mut out = Vec::with_capacity(count as usize);
        for i in 0..count {
            // Half the calls hit the two hottest keys, for more contention per key.
            let key = if rng.below(2) == 0 {
                rng.below(self.keys.min(2))
            } else {
                rng.below(self.keys)
            };
            let id = value_id(self.thread, first_seq + i);
            let dice = rng.below(100);
            let spin = if rng.below(8) == 0 {
                rng.below(2_000)
            } else {
                0
            };
            out.push(match dice {
                0..45 => self.get(key),
                45..70 => self.insert(key, id),
                70..80 => self.remove(key),
                _ if !self.loaders => self.get(key),
                _ => self.get_or_insert(key, id, spin),
            });
        }
        out
    }

    fn op(&self, kind: Kind, key: u64, invoke: u64, respond: u64) -> Op {
        Op {
            thread: self.thread,
            kind,
            key,
            written: None,
            returned: None,
            invoke,
            respond,
        }
    }

    fn get(&self, key: u64) -> Op {
        let invoke = self.ticker.tick();
        let got = self.cache.get(&key);
        let respond = self.ticker.tick();
        Op {
            returned: got.as_ref().map(V::id),
            ..self.op(Kind::Get, key, invoke, respond)
        }
    }

    fn insert(&self, key: u64, id: u64) -> Op {
        let value = V::make(id, self.source);
        let invoke = self.ticker.tick();
        self.cache.insert(key, value);
        let respond = self.ticker.tick();
        Op {
            written: Some(id),
            ..self.op(Kind::Insert, key, invoke, respond)
        }
    }

    fn remove(&self, key: u64) -> Op {
        let invoke = self.ticker.tick();
        let got = self.cache.remove(&key);
        let respond = self.ticker.tick();
        Op {
            returned: got.as_ref().map(V::id),
            ..self.op(Kind::Remove, key, invoke, respond)
        }
    }

    /// `spin`: busy iterations inside the loader, so that other threads pile up behind it.
    fn get_or_insert(&self, key: u64, id: u64, spin: u64) -> Op {
        let loaded = Cell::new(false);
        let invoke = self.ticker.tick();
        let got = self.cache.get_or_insert_with(key, || {
            loaded.set(true);
            for _ in 0..spin {
                std::hint::spin_loop();
            }
            V::make(id, self.source)
        });
        let respond = self.ticker.tick();
        Op {
            written: loaded.get().then_some(id),
            returned: Some(got.id()),
            ..self.op(Kind::GetOrInsert, key, invoke, respond)
        }
    }
}
