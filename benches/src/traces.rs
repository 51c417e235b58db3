//! Hit ratio of each cache, and Belady's optimum, on real traces and on the synthetic generators, at
//! capacities that are fractions of each workload's unique keys.
//!
//! Every request is replayed single-threaded as `get`, and on a miss `insert`; hit ratio = hits / requests.
//! moka applies its admission and eviction decisions in deferred maintenance, so the replay calls its
//! `run_pending_tasks` every [`MOKA_MAINTENANCE_EVERY`] requests; the other caches need nothing of the kind.
//! Traces are read by [`crate::trace_formats`] (ARC, LIRS, libCacheSim CSV; plain or zstd): the `*.lis.zst`
//! files of `--dir`, and any `--trace` files a user names.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context as _};
use indicatif::{ProgressBar, ProgressStyle};

use crate::contenders::{Contender, Lookup, Moka, QuickCache, Strata, TinyUfo};
use crate::report::{thousands, Section, Table};
use crate::trace_formats::{self, ReadOptions, TraceFormat};
use crate::{generators, opt};

/// Requests between two calls to moka's `run_pending_tasks` during a replay.
pub const MOKA_MAINTENANCE_EVERY: usize = 1000;

/// Options of the `traces` subcommand.
#[derive(clap::Args, Clone, Debug)]
pub struct TracesArgs {
    /// Folder whose `*.lis.zst` traces are replayed [default: ../shared/traces from the workspace root].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Do not replay the traces of `--dir` (only `--trace` files and generators).
    #[arg(long)]
    pub no_dir: bool,
    /// A trace file of your own to replay too (repeatable): ARC `.lis`, LIRS, or libCacheSim CSV, plain or `.zst`.
    #[arg(long = "trace")]
    pub traces: Vec<PathBuf>,
    /// Format of the `--trace` files [default: from the file name].
    #[arg(long, value_enum, default_value_t = TraceFormat::Auto)]
    pub format: TraceFormat,
    /// CSV traces without a header naming `obj_id`: the 1-based column holding the key.
    #[arg(long, default_value_t = 2)]
    pub csv_column: usize,
    /// Skip the synthetic generators.
    #[arg(long)]
    pub no_generators: bool,
    /// Cache capacities to replay at, as fractions of each workload's unique keys, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0.01, 0.05, 0.10, 0.25])]
    pub fractions: Vec<f64>,
    /// Replay only the first N requests (after expansion) of each trace, for quick checks.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Replay only these caches (comma-separated names as in the table's header, `OPT` included),
    /// for quick checks of one policy; the others' columns show NaN, and the lead column compares
    /// Strata with the peers replayed (NaN if none was).
    #[arg(long, value_delimiter = ',')]
    pub caches: Vec<String>,
}

/// `shared/traces` beside the workspace root: `../shared/traces` from the current directory when it exists
/// (running from the workspace root), otherwise the same place found from this crate's source folder.
fn default_dir() -> PathBuf {
    let from_cwd = PathBuf::from("../shared/traces");
    if from_cwd.is_dir() {
        return from_cwd;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces")
}

/// The caches of every replay, in column order; `OPT` follows them.
pub const CACHES: [&str; 4] = [Strata::NAME, Moka::NAME, QuickCache::NAME, TinyUfo::NAME];

/// The name of Belady's optimum in results.
pub const OPT: &str = "OPT";

/// One workload's results.
pub struct WorkloadRatios {
    /// Trace or generator name.
    pub name: String,
    /// "trace" or "generator".
    pub kind: &'static str,
    /// Requests replayed.
    pub requests: usize,
    /// Distinct keys.
    pub unique: usize,
    /// One point per fraction.
    pub points: Vec<RatioPoint>,
}

/// The hit ratios at one capacity.
pub struct RatioPoint {
    /// Capacity as a fraction of the unique keys.
    pub fraction: f64,
    /// Capacity in entries.
    pub capacity: usize,
    /// Hit ratio per cache name of [`CACHES`], then [`OPT`].
    pub ratios: Vec<(&'static str, f64)>,
}

impl RatioPoint {
    /// The hit ratio of `cache`, NaN if it was not replayed.
    pub fn of(&self, cache: &str) -> f64 {
        self.ratios
            .iter()
            .find(|(name, _)| *name == cache)
            .map_or(f64::NAN, |&(_, r)| r)
    }

    /// Strata's hit ratio minus the best peer's, in points (negative: behind); NaN if no peer, or
    /// Strata, was replayed.
    pub fn strata_lead(&self) -> f64 {
        let best_peer = CACHES[1..]
            .iter()
            .map(|&c| self.of(c))
            .filter(|r| !r.is_nan())
            .fold(f64::NAN, f64::max);
        100.0 * (self.of(Strata::NAME) - best_peer)
    }
}

/// A workload's requests before replay.
struct Workload {
    name: String,
    kind: &'static str,
    keys: Vec<u64>,
}

/// The workloads `args` names: `--dir` traces, `--trace` files, generators.
fn workloads(args: &TracesArgs) -> anyhow::Result<(Vec<Workload>, String)> {
    let mut paths: Vec<(PathBuf, TraceFormat)> = Vec::new();
    let mut sources = Vec::new();
    if !args.no_dir {
        let dir = args.dir.clone().unwrap_or_else(default_dir);
        let dir = dir.canonicalize().unwrap_or(dir);
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| {
                format!(
                    "listing trace folder {} (pass --dir, or --no-dir)",
                    dir.display()
                )
            })?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .with_context(|| format!("listing trace folder {}", dir.display()))?;
        found.retain(|p| p.to_str().is_some_and(|s| s.ends_with(".lis.zst")));
        found.sort();
        ensure!(!found.is_empty(), "no *.lis.zst trace in {}", dir.display());
        sources.push(format!("the ARC traces of {}", dir.display()));
        paths.extend(found.into_iter().map(|p| (p, TraceFormat::Arc)));
    }
    for path in &args.traces {
        sources.push(format!("{}", path.display()));
        paths.push((path.clone(), args.format));
    }
    let mut out = Vec::new();
    for (path, format) in paths {
        eprintln!("loading {} ...", path.display());
        let options = ReadOptions {
            format,
            csv_column: args.csv_column,
            limit: args.limit,
        };
        let trace = trace_formats::read(&path, &options)?;
        out.push(Workload {
            name: trace.name,
            kind: "trace",
            keys: trace.keys,
        });
    }
    if !args.no_generators {
        sources.push("the synthetic generators".to_owned());
        for generated in generators::all() {
            out.push(Workload {
                name: generated.name.to_owned(),
                kind: "generator",
                keys: generated.keys,
            });
        }
    }
    ensure!(
        !out.is_empty(),
        "nothing to replay: no trace and --no-generators"
    );
    Ok((out, sources.join(", ")))
}

/// Hit ratio of a fresh `C` of `capacity` entries over `keys`.
fn replay<C: Contender>(capacity: usize, keys: &[u64]) -> f64 {
    let cache = C::with_capacity(capacity);
    let mut hits = 0u64;
    for (i, &key) in keys.iter().enumerate() {
        if cache.get(key).is_some() {
            hits += 1;
        } else {
            cache.insert(key, key);
        }
        if i % MOKA_MAINTENANCE_EVERY == MOKA_MAINTENANCE_EVERY - 1 {
            cache.run_pending_tasks();
        }
    }
    hits as f64 / keys.len() as f64
}

/// Replays every workload at every fraction.
pub fn measure(args: &TracesArgs) -> anyhow::Result<(Vec<WorkloadRatios>, String)> {
    ensure!(
        !args.fractions.is_empty() && args.fractions.iter().all(|&f| f > 0.0 && f <= 1.0),
        "--fractions must list values in (0, 1]"
    );
    for name in &args.caches {
        ensure!(
            CACHES.contains(&name.as_str()) || name == OPT,
            "--caches: unknown cache {name:?} (known: {}, {OPT})",
            CACHES.join(", ")
        );
    }
    let (workloads, sources) = workloads(args)?;
    let progress = ProgressBar::new((workloads.len() * args.fractions.len() * 5) as u64)
        .with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    let mut results = Vec::new();
    for workload in workloads {
        let unique = workload
            .keys
            .iter()
            .collect::<hashbrown::HashSet<_>>()
            .len();
        let mut points = Vec::new();
        for &fraction in &args.fractions {
            let capacity = ((unique as f64 * fraction).round() as usize).max(1);
            let mut ratios = Vec::new();
            for (name, replay_with) in [
                (Strata::NAME, replay::<Strata> as fn(usize, &[u64]) -> f64),
                (Moka::NAME, replay::<Moka>),
                (QuickCache::NAME, replay::<QuickCache>),
                (TinyUfo::NAME, replay::<TinyUfo>),
                (OPT, |capacity, keys| opt::hit_ratio(keys, capacity)),
            ] {
                if !args.caches.is_empty() && !args.caches.iter().any(|c| c == name) {
                    progress.inc(1);
                    continue;
                }
                progress.set_message(format!("{} at {fraction}: {name}", workload.name));
                ratios.push((name, replay_with(capacity, &workload.keys)));
                progress.inc(1);
            }
            points.push(RatioPoint {
                fraction,
                capacity,
                ratios,
            });
        }
        results.push(WorkloadRatios {
            name: workload.name,
            kind: workload.kind,
            requests: workload.keys.len(),
            unique,
            points,
        });
    }
    progress.finish_and_clear();
    Ok((results, sources))
}

/// The report section for measured results.
pub fn section(results: &[WorkloadRatios], sources: &str, limit: Option<usize>) -> Section {
    let mut headers = vec![
        "workload".to_owned(),
        "requests".to_owned(),
        "unique keys".to_owned(),
        "fraction".to_owned(),
        "capacity".to_owned(),
    ];
    headers.extend(CACHES.iter().map(|&c| c.to_owned()));
    headers.push(OPT.to_owned());
    headers.push("strata - best peer (points)".to_owned());
    let mut table = Table::new(headers);
    for workload in results {
        for point in &workload.points {
            let mut row = vec![
                workload.name.clone(),
                thousands(workload.requests as u64),
                thousands(workload.unique as u64),
                format!("{:.2}", point.fraction),
                thousands(point.capacity as u64),
            ];
            row.extend(CACHES.iter().map(|&c| format!("{:.4}", point.of(c))));
            row.push(format!("{:.4}", point.of(OPT)));
            row.push(format!("{:+.2}", point.strata_lead()));
            table.row(row);
        }
    }
    let mut section = Section::new("Hit ratio on traces and generators");
    section.text(format!(
        "Workloads: {sources}{limit}. Each request is a `get`, and on a miss an `insert`; hit ratio = hits / \
         requests, single-threaded, capacity = fraction x unique keys. moka's `run_pending_tasks` is called every \
         {MOKA_MAINTENANCE_EVERY} requests so that its deferred admission and eviction keep up (a fairness \
         allowance a plain user would not make). OPT is Belady's MIN with the option to not store a missed key: \
         the most hits any policy holding at most that many entries can get. ARC traces: Megiddo and Modha, \"ARC: A Self-Tuning, \
         Low Overhead Replacement Cache\", FAST 03. Generators: see `benches/src/generators.rs`.",
        limit = limit.map_or_else(String::new, |n| format!(", first {} requests of each trace", thousands(n as u64))),
    ));
    section.table(table);
    section
}

/// Replays every workload and returns the report section.
pub fn run(args: &TracesArgs) -> anyhow::Result<Vec<Section>> {
    let (results, sources) = measure(args)?;
    Ok(vec![section(&results, &sources, args.limit)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cache_stays_below_opt_on_a_generator() {
        let generated = generators::by_name("zipf-0.9").expect("a generator");
        let keys = &generated.keys[..200_000];
        let unique = keys.iter().collect::<hashbrown::HashSet<_>>().len();
        let capacity = unique / 10;
        let opt = opt::hit_ratio(keys, capacity);
        for (name, ratio) in [
            (Strata::NAME, replay::<Strata>(capacity, keys)),
            (Moka::NAME, replay::<Moka>(capacity, keys)),
            (QuickCache::NAME, replay::<QuickCache>(capacity, keys)),
            (TinyUfo::NAME, replay::<TinyUfo>(capacity, keys)),
        ] {
            assert!(ratio > 0.1 && ratio <= opt, "{name}: {ratio} vs OPT {opt}");
        }
    }
}
