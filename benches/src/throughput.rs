//! Operations per second of each cache under three workloads, at several thread counts, and the
//! single-thread cost of a hit against a plain hashbrown lookup.
//!
//! - `read-only`: Zipf 0.99 over `keys` distinct keys; every key is inserted first into a cache with room
//!   for all of them (capacity `keys * 5 / 4`), then the threads only `get`.
//! - `read-through`: the same key streams into a cache holding 10% of the keys; each operation is a `get`,
//!   and on a miss an `insert` of the key. Reports the hit ratio too.
//! - `insert-churn`: every operation inserts a uniformly random (so practically always new) key into a full
//!   cache holding 10% of `keys`, so every insert also evicts.
//! - `hit-cost`: the 1-thread `read-only` runs as nanoseconds per operation, with the hashbrown baseline.
//!
//! Key streams are precomputed per thread ([`STREAM_LEN`] keys each, looped over), so sampling is not
//! measured. Each measurement runs for `--secs`; the caches are interleaved within each of the `--runs`
//! repetitions, and the median is reported.

use std::hint::black_box;

use anyhow::ensure;
use indicatif::{ProgressBar, ProgressStyle};

use crate::contenders::{
    Contender, Hashbrown, Lookup, Moka, QuickCache, Strata, StrataWeighted, TinyUfo,
};
use crate::report::{median, thousands, Section, Table};
use crate::timed::{timed, Rate};
use crate::zipf::{key_of, uniform_stream, zipf_stream, Zipf};

/// Keys in each thread's precomputed stream (16 MiB of `u64`).
pub const STREAM_LEN: usize = 1 << 21;

/// Caches measured in every run (hashbrown aside): strata bounded by count and by weight,
/// quick_cache, moka and TinyUFO.
const CONTENDERS: usize = 5;

/// Exponent of the Zipf key distribution.
const ZIPF_EXPONENT: f64 = 0.99;

/// Options of the `throughput` subcommand.
#[derive(clap::Args, Clone, Debug)]
pub struct ThroughputArgs {
    /// Repetitions of every measurement (caches interleaved); the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 1.0)]
    pub secs: f64,
    /// Distinct keys of the Zipf workloads (capacity is derived from it).
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: usize,
    /// Thread counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2])]
    pub threads: Vec<usize>,
}

/// The throughput workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Zipf gets, every key resident.
    ReadOnly,
    /// Zipf gets, insert on a miss, capacity 10% of the keys.
    ReadThrough,
    /// New keys into a full cache.
    InsertChurn,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 3] = [Self::ReadOnly, Self::ReadThrough, Self::InsertChurn];

    /// Name used in tables and charts.
    pub fn name(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::ReadThrough => "read-through",
            Self::InsertChurn => "insert-churn",
        }
    }

    fn capacity(self, keys: usize) -> usize {
        match self {
            Self::ReadOnly => keys + keys / 4,
            Self::ReadThrough | Self::InsertChurn => (keys / 10).max(1),
        }
    }
}

/// One timed measurement.
#[derive(Clone, Copy, Debug)]
struct Sample {
    rate: Rate,
    /// Entries resident when the measurement started (read-only: all keys should be).
    resident: usize,
}

/// All the samples of one cache at one workload and thread count.
#[derive(Debug)]
pub struct Series {
    /// The workload.
    pub workload: Workload,
    /// Threads running it.
    pub threads: usize,
    /// The cache's name.
    pub cache: &'static str,
    samples: Vec<Sample>,
}

impl Series {
    /// Median operations per second over the runs.
    pub fn median_ops(&self) -> f64 {
        median(self.samples.iter().map(|s| s.rate.ops_per_sec))
    }

    fn median_hit_ratio(&self) -> f64 {
        median(self.samples.iter().map(|s| s.rate.hit_ratio))
    }
}

/// Runs every workload and returns the report sections.
pub fn run(args: &ThroughputArgs) -> anyhow::Result<Vec<Section>> {
    let (threads, series) = measure(args)?;
    Ok(sections(args, &threads, &series))
}

/// Runs every workload; returns the thread counts measured and every series.
pub fn measure(args: &ThroughputArgs) -> anyhow::Result<(Vec<usize>, Vec<Series>)> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(args.secs > 0.0, "--secs must be positive");
    ensure!(args.keys >= 10, "--keys must be at least 10");
    ensure!(
        !args.threads.is_empty() && args.threads.iter().all(|&t| t >= 1),
        "--threads must list positive thread counts"
    );
    let mut threads = args.threads.clone();
    threads.sort_unstable();
    threads.dedup();
    let max_threads = threads[threads.len() - 1];

    eprintln!("generating {max_threads} Zipf and uniform key streams of {STREAM_LEN} keys ...");
    let zipf = Zipf::new(args.keys, ZIPF_EXPONENT);
    let zipf_streams: Vec<Vec<u64>> = (0..max_threads)
        .map(|t| zipf_stream(&zipf, STREAM_LEN, 0x2545_F491 + t as u64))
        .collect();
    drop(zipf);
    let uniform_streams: Vec<Vec<u64>> = (0..max_threads)
        .map(|t| uniform_stream(STREAM_LEN, 0x9E37_79B9 + t as u64))
        .collect();
    let churn_warmup = uniform_stream(2 * Workload::InsertChurn.capacity(args.keys), 0xDEAD_BEEF);

    // Hashbrown joins the read-only runs (the limit; its 1-thread runs also give the hit cost).
    let per_run = Workload::ALL.len() * threads.len() * CONTENDERS + threads.len();
    let progress = ProgressBar::new((per_run * args.runs) as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let mut all_series: Vec<Series> = Vec::new();
    for workload in Workload::ALL {
        let streams = match workload {
            Workload::InsertChurn => &uniform_streams,
            Workload::ReadOnly | Workload::ReadThrough => &zipf_streams,
        };
        for &t in &threads {
            let streams = &streams[..t];
            let mut measure = |cache: &'static str, sample: Sample| {
                match all_series
                    .iter_mut()
                    .find(|s| s.workload == workload && s.threads == t && s.cache == cache)
                {
                    Some(series) => series.samples.push(sample),
                    None => all_series.push(Series {
                        workload,
                        threads: t,
                        cache,
                        samples: vec![sample],
                    }),
                }
                progress.inc(1);
            };
            for run in 0..args.runs {
                progress.set_message(format!("{} x{t} run {}", workload.name(), run + 1));
                let ctx = Context {
                    workload,
                    keys: args.keys,
                    secs: args.secs,
                    streams,
                    churn_warmup: &churn_warmup,
                };
                // Rotate the order from run to run, so that no cache always goes first or last.
                for position in 0..CONTENDERS {
                    match (run + position) % CONTENDERS {
                        0 => measure(Strata::NAME, ctx.measure::<Strata>()),
                        1 => measure(QuickCache::NAME, ctx.measure::<QuickCache>()),
                        2 => measure(Moka::NAME, ctx.measure::<Moka>()),
                        3 => measure(TinyUfo::NAME, ctx.measure::<TinyUfo>()),
                        _ => measure(StrataWeighted::NAME, ctx.measure::<StrataWeighted>()),
                    }
                }
                if workload == Workload::ReadOnly {
                    measure(Hashbrown::NAME, ctx.measure_hashbrown());
                }
            }
        }
    }
    progress.finish_and_clear();
    Ok((threads, all_series))
}

/// What one measurement needs.
struct Context<'a> {
    workload: Workload,
    keys: usize,
    secs: f64,
    streams: &'a [Vec<u64>],
    churn_warmup: &'a [u64],
}

impl Context<'_> {
    /// Builds a fresh cache of type `C`, prepares it for the workload, and times the workload on it.
    fn measure<C: Contender>(&self) -> Sample {
        let capacity = self.workload.capacity(self.keys);
        let cache = C::with_capacity(capacity);
        match self.workload {
            Workload::ReadOnly => {
                for key in (0..self.keys as u64).map(key_of) {
                    cache.insert(key, key);
                }
            }
            Workload::ReadThrough => {
                for &key in &self.streams[0][..(4 * capacity).min(STREAM_LEN)] {
                    read_through(&cache, key);
                }
            }
            Workload::InsertChurn => {
                for &key in self.churn_warmup {
                    cache.insert(key, key);
                }
            }
        }
        let resident = cache.resident();
        let rate = match self.workload {
            Workload::ReadOnly => timed(&cache, self.streams, self.secs, |c, key| {
                black_box(c.get(key)).is_some()
            }),
            Workload::ReadThrough => timed(&cache, self.streams, self.secs, read_through),
            Workload::InsertChurn => timed(&cache, self.streams, self.secs, |c, key| {
                c.insert(key, key);
                false
            }),
        };
        Sample { rate, resident }
    }

    /// The read-only workload on a hashbrown map holding every key (read-only, so shared by the threads).
    fn measure_hashbrown(&self) -> Sample {
        let map = Hashbrown::filled(self.keys, (0..self.keys as u64).map(key_of));
        let resident = map.0.len();
        let rate = timed(&map, self.streams, self.secs, |m, key| {
            black_box(m.get(key)).is_some()
        });
        Sample { rate, resident }
    }
}

/// `get`, and on a miss `insert`; true on a hit.
#[inline]
fn read_through<C: Contender>(cache: &C, key: u64) -> bool {
    if black_box(cache.get(key)).is_some() {
        true
    } else {
        cache.insert(key, key);
        false
    }
}

/// Tables and ratios from the medians.
pub fn sections(args: &ThroughputArgs, threads: &[usize], all: &[Series]) -> Vec<Section> {
    let find = |workload: Workload, t: usize, cache: &str| {
        all.iter()
            .find(|s| s.workload == workload && s.threads == t && s.cache == cache)
    };
    let mut section = Section::new("Throughput");
    section.text(format!(
        "Zipf {ZIPF_EXPONENT} over {keys} distinct keys (read-only: capacity {ro}, all keys inserted first; \
         read-through: capacity {rt}, warmed up with 4x capacity operations first); insert-churn: uniformly random \
         new keys into a full cache of capacity {rt}. Each thread loops over its own precomputed stream of \
         {stream} keys. Median of {runs} runs of {secs} s; every run measures every cache, in an order rotated from run to run. \
         'resident' is the entry count when timing started. moka is used as a user would, without calling \
         `run_pending_tasks`.",
        keys = thousands(args.keys as u64),
        ro = thousands(Workload::ReadOnly.capacity(args.keys) as u64),
        rt = thousands(Workload::ReadThrough.capacity(args.keys) as u64),
        stream = thousands(STREAM_LEN as u64),
        runs = args.runs,
        secs = args.secs,
    ));
    for workload in Workload::ALL {
        let mut table = Table::new([
            "cache",
            "threads",
            "Mops/s (median)",
            "min..max",
            "hit ratio",
            "resident",
        ]);
        for series in all.iter().filter(|s| s.workload == workload) {
            let ops: Vec<f64> = series
                .samples
                .iter()
                .map(|s| s.rate.ops_per_sec / 1e6)
                .collect();
            let min = ops.iter().copied().fold(f64::INFINITY, f64::min);
            let max = ops.iter().copied().fold(0.0, f64::max);
            let hit_ratio = match workload {
                Workload::InsertChurn => "-".to_owned(),
                _ => format!("{:.4}", series.median_hit_ratio()),
            };
            let resident = series.samples.iter().map(|s| s.resident).min().unwrap_or(0);
            table.row([
                series.cache.to_owned(),
                series.threads.to_string(),
                format!("{:.2}", series.median_ops() / 1e6),
                format!("{min:.2}..{max:.2}"),
                hit_ratio,
                thousands(resident as u64),
            ]);
        }
        section.text(format!("### {}", workload.name()));
        section.table(table);
    }

    let ns_per_op = |cache: &str| find(Workload::ReadOnly, 1, cache).map(|s| 1e9 / s.median_ops());
    let mut hit_cost = Table::new(["cache", "ns/op (median)", "x hashbrown"]);
    if let Some(baseline) = ns_per_op(Hashbrown::NAME) {
        for cache in [
            Strata::NAME,
            StrataWeighted::NAME,
            QuickCache::NAME,
            Moka::NAME,
            TinyUfo::NAME,
            Hashbrown::NAME,
        ] {
            if let Some(ns) = ns_per_op(cache) {
                hit_cost.row([
                    cache.to_owned(),
                    format!("{ns:.1}"),
                    format!("{:.2}", ns / baseline),
                ]);
            }
        }
    }
    section.text(
        "### hit-cost\n\nThe 1-thread read-only runs as time per `get` (every key resident). \
         The hashbrown baseline is a `HashMap<u64, u64, ahash::RandomState>`.",
    );
    if hit_cost.is_empty() {
        section.text("(not measured: --threads did not include 1)");
    } else {
        section.table(hit_cost);
    }

    let mut ratios = Table::new(["ratio", "value", "goal"]);
    if let (Some(strata), Some(base)) = (ns_per_op(Strata::NAME), ns_per_op(Hashbrown::NAME)) {
        ratios.row([
            "hit cost, strata / hashbrown (1 thread)".to_owned(),
            format!("{:.2}x", strata / base),
            "<= 1.2x".to_owned(),
        ]);
    }
    if let (Some(weighted), Some(counted)) =
        (ns_per_op(StrataWeighted::NAME), ns_per_op(Strata::NAME))
    {
        ratios.row([
            "hit cost, strata weight-bounded / count-bounded (1 thread)".to_owned(),
            format!("{:.2}x", weighted / counted),
            "~1x".to_owned(),
        ]);
    }
    for &t in threads {
        let goal = |workload: Workload, peer: &str| match (workload, peer, t) {
            (_, "moka", _) => ">= 10x",
            (Workload::ReadOnly, _, 1) => ">= 1.3x",
            (Workload::ReadThrough, _, 1) => ">= 1.0x",
            (Workload::ReadOnly, _, _) => ">= 2x",
            (Workload::ReadThrough, _, _) => ">= 1.5x",
            (Workload::InsertChurn, _, _) => "-",
        };
        for workload in Workload::ALL {
            for peer in [QuickCache::NAME, Moka::NAME, TinyUfo::NAME] {
                if let (Some(strata), Some(peer_series)) =
                    (find(workload, t, Strata::NAME), find(workload, t, peer))
                {
                    let goal = if peer == TinyUfo::NAME {
                        "-"
                    } else {
                        goal(workload, peer)
                    };
                    ratios.row([
                        format!(
                            "{} throughput, strata / {peer} ({t} threads)",
                            workload.name()
                        ),
                        format!("{:.2}x", strata.median_ops() / peer_series.median_ops()),
                        goal.to_owned(),
                    ]);
                }
            }
        }
    }
    section.text(
        "### ratios\n\nFrom the medians above. Goals from the engine speed issue (18): read-only \
         >= 1.3x quick_cache on 1 thread and >= 2x on 2, read-through >= 1.0x and >= 1.5x, >= 10x moka \
         everywhere; none for TinyUFO.",
    );
    section.table(ratios);
    vec![section]
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert!(median(std::iter::empty()).is_nan());
    }
}
