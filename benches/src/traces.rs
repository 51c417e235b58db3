//! Hit ratio of each cache on real block traces, at capacities that are fractions of the unique keys.
//!
//! Each `*.lis.zst` file holds lines `START_BLOCK NUMBER_OF_BLOCKS IGNORED REQUEST_NUMBER`; a line expands to
//! `NUMBER_OF_BLOCKS` requests for the consecutive keys from `START_BLOCK`. Every request is replayed
//! single-threaded as `get`, and on a miss `insert`; hit ratio = hits / requests. moka applies its admission
//! and eviction decisions in deferred maintenance, so the replay calls its `run_pending_tasks` every
//! [`MOKA_MAINTENANCE_EVERY`] requests; the other caches need nothing of the kind.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context as _};
use indicatif::{ProgressBar, ProgressStyle};

use crate::contenders::{Contender, Lookup, Moka, QuickCache, Strata};
use crate::report::{thousands, Section, Table};

/// Requests between two calls to moka's `run_pending_tasks` during a replay.
pub const MOKA_MAINTENANCE_EVERY: usize = 1000;

/// Options of the `traces` subcommand.
#[derive(clap::Args, Clone, Debug)]
pub struct TracesArgs {
    /// Folder holding the `*.lis.zst` traces [default: ../shared/traces from the workspace root].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Cache capacities to replay at, as fractions of each trace's unique keys, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0.01, 0.05, 0.10, 0.25])]
    pub fractions: Vec<f64>,
    /// Replay only the first N requests (after expansion) of each trace, for quick checks.
    #[arg(long)]
    pub limit: Option<usize>,
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

/// One trace, expanded into its request keys.
struct Trace {
    name: String,
    keys: Vec<u64>,
    unique: usize,
}

/// Reads and expands one trace, stopping after `limit` requests.
fn load(path: &Path, limit: Option<usize>) -> anyhow::Result<Trace> {
    let file = File::open(path).with_context(|| format!("opening trace {}", path.display()))?;
    let decoder = zstd::stream::read::Decoder::new(file)
        .with_context(|| format!("starting zstd decoding of {}", path.display()))?;
    let limit = limit.unwrap_or(usize::MAX);
    let mut keys = Vec::new();
    for (index, line) in BufReader::new(decoder).lines().enumerate() {
        let line_number = index + 1;
        let line =
            line.with_context(|| format!("reading {} at line {line_number}", path.display()))?;
        let mut fields = line.split_ascii_whitespace();
        let Some(start) = fields.next() else {
            continue; // blank line
        };
        let parse = |field: Option<&str>, what: &str| -> anyhow::Result<u64> {
            let Some(field) = field else {
                bail!(
                    "{}:{line_number}: missing {what} in {line:?}",
                    path.display()
                );
            };
            field
                .parse()
                .with_context(|| format!("{}:{line_number}: bad {what} {field:?}", path.display()))
        };
        let start = parse(Some(start), "START_BLOCK")?;
        let count = parse(fields.next(), "NUMBER_OF_BLOCKS")?;
        for offset in 0..count {
            if keys.len() == limit {
                break;
            }
            keys.push(start.wrapping_add(offset));
        }
        if keys.len() == limit {
            break;
        }
    }
    ensure!(
        !keys.is_empty(),
        "trace {} holds no requests",
        path.display()
    );
    let unique = keys.iter().collect::<hashbrown::HashSet<_>>().len();
    let name = path.file_name().and_then(|n| n.to_str()).map_or_else(
        || path.display().to_string(),
        |n| n.trim_end_matches(".lis.zst").to_owned(),
    );
    Ok(Trace { name, keys, unique })
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

/// Replays every trace in the folder at every fraction and returns the report section.
pub fn run(args: &TracesArgs) -> anyhow::Result<Vec<Section>> {
    ensure!(
        !args.fractions.is_empty() && args.fractions.iter().all(|&f| f > 0.0 && f <= 1.0),
        "--fractions must list values in (0, 1]"
    );
    let dir = args.dir.clone().unwrap_or_else(default_dir);
    let dir = dir.canonicalize().unwrap_or(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing trace folder {} (pass --dir)", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("listing trace folder {}", dir.display()))?;
    paths.retain(|p| p.to_str().is_some_and(|s| s.ends_with(".lis.zst")));
    paths.sort();
    ensure!(!paths.is_empty(), "no *.lis.zst trace in {}", dir.display());

    let mut table = Table::new([
        "trace",
        "requests",
        "unique keys",
        "fraction",
        "capacity",
        Strata::NAME,
        Moka::NAME,
        QuickCache::NAME,
        "strata - best peer (points)",
    ]);
    for path in &paths {
        eprintln!("loading {} ...", path.display());
        let trace = load(path, args.limit)?;
        let progress = ProgressBar::new((args.fractions.len() * 3) as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        for &fraction in &args.fractions {
            let capacity = ((trace.unique as f64 * fraction).round() as usize).max(1);
            let ratio = |name: &str, replay_with: fn(usize, &[u64]) -> f64| {
                progress.set_message(format!("{} at {fraction}: {name}", trace.name));
                let r = replay_with(capacity, &trace.keys);
                progress.inc(1);
                r
            };
            let strata = ratio(Strata::NAME, replay::<Strata>);
            let moka = ratio(Moka::NAME, replay::<Moka>);
            let quick = ratio(QuickCache::NAME, replay::<QuickCache>);
            table.row([
                trace.name.clone(),
                thousands(trace.keys.len() as u64),
                thousands(trace.unique as u64),
                format!("{fraction:.2}"),
                thousands(capacity as u64),
                format!("{strata:.4}"),
                format!("{moka:.4}"),
                format!("{quick:.4}"),
                format!("{:+.2}", 100.0 * (strata - moka.max(quick))),
            ]);
        }
        progress.finish_and_clear();
    }

    let mut section = Section::new("Hit ratio on traces");
    section.text(format!(
        "Traces from {dir}{limit}. Each request is a `get`, and on a miss an `insert`; hit ratio = hits / \
         requests, single-threaded, capacity = fraction x unique keys. moka's `run_pending_tasks` is called every \
         {MOKA_MAINTENANCE_EVERY} requests so that its deferred admission and eviction keep up (a fairness \
         allowance a plain user would not make). Traces: Megiddo and Modha, \"ARC: A Self-Tuning, Low Overhead \
         Replacement Cache\", FAST 03.",
        dir = dir.display(),
        limit = args.limit.map_or_else(String::new, |n| format!(", first {} requests of each", thousands(n as u64))),
    ));
    section.table(table);
    Ok(vec![section])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_expands_lines_and_honours_the_limit() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("strata-bench-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("tiny.lis.zst");
        let text = "10 3 0 0\n\n11 2 0 1\n";
        std::fs::write(&path, zstd::encode_all(text.as_bytes(), 3)?)?;
        let trace = load(&path, None)?;
        assert_eq!(trace.name, "tiny");
        assert_eq!(trace.keys, [10, 11, 12, 11, 12]);
        assert_eq!(trace.unique, 3);
        assert_eq!(load(&path, Some(4))?.keys, [10, 11, 12, 11]);

        std::fs::write(&path, zstd::encode_all("10 x 0 0\n".as_bytes(), 3)?)?;
        let err = load(&path, None)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains(":1: bad NUMBER_OF_BLOCKS"), "{err}");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
