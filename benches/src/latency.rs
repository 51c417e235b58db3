//! Latency distributions of `get`, from per-operation timing of every Nth call into an HdrHistogram.
//!
//! Three scenarios, each for every cache:
//! - `read-only, 1 thread` and `read-only, 2 threads`: Zipf 0.99 over `keys` keys, all resident (as in the
//!   throughput `read-only` workload).
//! - `under writes`: one thread reads through (`get`, and `insert` on a miss) a Zipf 0.99 stream on a cache
//!   of 10% of the keys while a second thread inserts new random keys as fast as it can, so every insert
//!   evicts: the pauses eviction and reclamation put on the read path. Only the reader's `get` is timed.
//!
//! Every [`LatencyArgs::sample_every`]th call is timed with two `Instant::now()` reads around it; the rest run
//! untimed, so the clock does not set the pace. The timer's own cost is shown as a row of its own (two reads
//! around nothing): every figure includes it. Each scenario runs `--latency-runs` times with the caches in rotated
//! order; tables give the median over runs of each percentile and the largest maximum; charts draw the
//! histograms of all runs merged.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::ensure;
use hdrhistogram::Histogram;

use crate::contenders::{Contender, Lookup, Moka, QuickCache, Strata, TinyUfo};
use crate::report::{median, thousands, Section, Table};
use crate::zipf::{key_of, uniform_stream, zipf_stream, Zipf};

/// Options of the `latency` subcommand.
#[derive(clap::Args, Clone, Debug)]
pub struct LatencyArgs {
    /// Repetitions of each scenario (caches in rotated order).
    #[arg(long, default_value_t = 5)]
    pub latency_runs: usize,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 1.0)]
    pub latency_secs: f64,
    /// Distinct keys.
    #[arg(long, default_value_t = 1_000_000)]
    pub latency_keys: usize,
    /// Time one call in this many (a power of two).
    #[arg(long, default_value_t = 16)]
    pub sample_every: usize,
}

/// The scenarios, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// All keys resident, readers only.
    ReadOnly {
        /// Reader threads.
        threads: usize,
    },
    /// One reader reading through, one writer flooding new keys.
    UnderWrites,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 3] = [
        Scenario::ReadOnly { threads: 1 },
        Scenario::ReadOnly { threads: 2 },
        Scenario::UnderWrites,
    ];

    /// Title used in tables and charts.
    pub fn title(self) -> String {
        match self {
            Scenario::ReadOnly { threads: 1 } => "get, read-only, 1 thread".to_owned(),
            Scenario::ReadOnly { threads } => format!("get, read-only, {threads} threads"),
            Scenario::UnderWrites => "get, 1 reader + 1 thread inserting new keys".to_owned(),
        }
    }

    /// A short name for file names.
    pub fn slug(self) -> String {
        match self {
            Scenario::ReadOnly { threads } => format!("latency-read-only-{threads}t"),
            Scenario::UnderWrites => "latency-under-writes".to_owned(),
        }
    }
}

/// The timer-only row's name.
pub const TIMER: &str = "timer alone";

/// One cache in one scenario.
pub struct Distribution {
    /// Cache name, or [`TIMER`].
    pub cache: &'static str,
    /// Every run's samples merged.
    pub merged: Histogram<u64>,
    /// Per run: p50, p99, p99.9, max (ns).
    pub runs: Vec<[u64; 4]>,
}

impl Distribution {
    /// Median over runs of percentile column `i` (0 p50, 1 p99, 2 p99.9), or the largest max (3).
    pub fn figure(&self, i: usize) -> f64 {
        if i == 3 {
            self.runs.iter().map(|r| r[3]).max().unwrap_or(0) as f64
        } else {
            median(self.runs.iter().map(|r| r[i] as f64))
        }
    }
}

/// A new histogram from 1 ns to 100 s at 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).expect("3 sigfigs"))
}

/// Runs every scenario; returns (scenario, distributions) pairs.
pub fn measure(args: &LatencyArgs) -> anyhow::Result<Vec<(Scenario, Vec<Distribution>)>> {
    ensure!(args.latency_runs >= 1, "--latency-runs must be at least 1");
    ensure!(args.latency_secs > 0.0, "--latency-secs must be positive");
    ensure!(
        args.latency_keys >= 10,
        "--latency-keys must be at least 10"
    );
    ensure!(
        args.sample_every.is_power_of_two(),
        "--sample-every must be a power of two"
    );
    eprintln!("latency: generating key streams ...");
    let zipf = Zipf::new(args.latency_keys, 0.99);
    let readers: Vec<Vec<u64>> = (0..2)
        .map(|t| zipf_stream(&zipf, 1 << 21, 0x1A7E + t))
        .collect();
    drop(zipf);
    let flood = uniform_stream(1 << 21, 0xF100D);
    let ctx = Ctx {
        args,
        readers: &readers,
        flood: &flood,
    };
    let mut out = Vec::new();
    for scenario in Scenario::ALL {
        eprintln!("latency: {} ...", scenario.title());
        let mut dists: Vec<Distribution> = Vec::new();
        let mut add = |cache: &'static str, merged: &Histogram<u64>| {
            let figures = [
                merged.value_at_quantile(0.5),
                merged.value_at_quantile(0.99),
                merged.value_at_quantile(0.999),
                merged.max(),
            ];
            match dists.iter_mut().find(|d| d.cache == cache) {
                Some(d) => {
                    d.merged.add(merged).ok();
                    d.runs.push(figures);
                }
                None => dists.push(Distribution {
                    cache,
                    merged: merged.clone(),
                    runs: vec![figures],
                }),
            }
        };
        for run in 0..args.latency_runs {
            for position in 0..5 {
                match (run + position) % 5 {
                    0 => add(Strata::NAME, &ctx.sample::<Strata>(scenario)),
                    1 => add(QuickCache::NAME, &ctx.sample::<QuickCache>(scenario)),
                    2 => add(Moka::NAME, &ctx.sample::<Moka>(scenario)),
                    3 => add(TinyUfo::NAME, &ctx.sample::<TinyUfo>(scenario)),
                    _ => add(TIMER, &ctx.timer_alone()),
                }
            }
        }
        out.push((scenario, dists));
    }
    Ok(out)
}

struct Ctx<'a> {
    args: &'a LatencyArgs,
    readers: &'a [Vec<u64>],
    flood: &'a [u64],
}

impl Ctx<'_> {
    /// One run of `scenario` on a fresh `C`: the readers' merged histogram.
    fn sample<C: Contender>(&self, scenario: Scenario) -> Histogram<u64> {
        let keys = self.args.latency_keys;
        let mask = self.args.sample_every - 1;
        let (cache, readers, writer) = match scenario {
            Scenario::ReadOnly { threads } => {
                let cache = C::with_capacity(keys + keys / 4);
                for key in (0..keys as u64).map(key_of) {
                    cache.insert(key, key);
                }
                (cache, threads, false)
            }
            Scenario::UnderWrites => {
                let cache = C::with_capacity(keys / 10);
                for &key in &self.readers[0][..(keys / 2).min(self.readers[0].len())] {
                    if cache.get(key).is_none() {
                        cache.insert(key, key);
                    }
                }
                (cache, 1, true)
            }
        };
        let through = scenario == Scenario::UnderWrites;
        let stop = AtomicBool::new(false);
        let start = Barrier::new(readers + usize::from(writer) + 1);
        let secs = self.args.latency_secs;
        std::thread::scope(|scope| {
            let (cache, stop, start) = (&cache, &stop, &start);
            let handles: Vec<_> = self.readers[..readers]
                .iter()
                .map(|stream| {
                    scope.spawn(move || {
                        let mut hist = histogram();
                        start.wait();
                        'run: loop {
                            for chunk in stream.chunks(1024) {
                                for (i, &key) in chunk.iter().enumerate() {
                                    let found = if i & mask == 0 {
                                        let began = Instant::now();
                                        let found = black_box(cache.get(key));
                                        let ns = began.elapsed().as_nanos() as u64;
                                        hist.saturating_record(ns.max(1));
                                        found
                                    } else {
                                        black_box(cache.get(key))
                                    };
                                    if through && found.is_none() {
                                        cache.insert(key, key);
                                    }
                                }
                                if stop.load(Ordering::Relaxed) {
                                    break 'run;
                                }
                            }
                        }
                        hist
                    })
                })
                .collect();
            if writer {
                let flood = self.flood;
                scope.spawn(move || {
                    start.wait();
                    // Each pass over the buffer gets keys of its own, so no flood key ever repeats
                    // (a repeat would feed moka's and TinyUFO's frequency sketches).
                    let mut pass = 0u64;
                    'run: loop {
                        pass += 1;
                        let salt = pass.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                        for chunk in flood.chunks(1024) {
                            for &key in chunk {
                                cache.insert(key ^ salt, key);
                            }
                            if stop.load(Ordering::Relaxed) {
                                break 'run;
                            }
                        }
                    }
                });
            }
            start.wait();
            std::thread::sleep(Duration::from_secs_f64(secs));
            stop.store(true, Ordering::Relaxed);
            let mut merged = histogram();
            for handle in handles {
                let hist = handle
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p));
                merged.add(&hist).ok();
            }
            merged
        })
    }

    /// The clock alone: two `Instant::now()` reads around nothing, every iteration timed, for up to
    /// half a second.
    fn timer_alone(&self) -> Histogram<u64> {
        let mut hist = histogram();
        let until = Instant::now() + Duration::from_secs_f64(self.args.latency_secs.min(0.5));
        while Instant::now() < until {
            for _ in 0..1024 {
                let began = Instant::now();
                let ns = black_box(began).elapsed().as_nanos() as u64;
                hist.saturating_record(ns.max(1));
            }
        }
        hist
    }
}

/// The report section.
pub fn section(args: &LatencyArgs, results: &[(Scenario, Vec<Distribution>)]) -> Section {
    let mut section = Section::new("Latency of get");
    section.text(format!(
        "Every {n}th call timed with two `Instant::now()` reads (the `{TIMER}` row is their own cost, included in \
         every figure), into an HdrHistogram (3 significant digits). Read-only: Zipf 0.99 over {keys} keys, all \
         resident. Under writes: one thread reads through (timed: its `get`s) a Zipf 0.99 stream on a cache of \
         {cap} entries while another inserts new random keys nonstop. {runs} runs of {secs} s per cache, order \
         rotated; p50/p99/p99.9 are medians over the runs, max the largest of any run. Figures in nanoseconds.",
        n = args.sample_every,
        keys = thousands(args.latency_keys as u64),
        cap = thousands((args.latency_keys / 10) as u64),
        runs = args.latency_runs,
        secs = args.latency_secs,
    ));
    for (scenario, dists) in results {
        let mut table = Table::new(["cache", "p50", "p99", "p99.9", "max", "samples"]);
        for d in dists {
            table.row([
                d.cache.to_owned(),
                format!("{:.0}", d.figure(0)),
                format!("{:.0}", d.figure(1)),
                format!("{:.0}", d.figure(2)),
                thousands(d.figure(3) as u64),
                thousands(d.merged.len()),
            ]);
        }
        section.text(format!("### {}", scenario.title()));
        section.table(table);
    }
    section
}
