//! `strata-bench crosscheck-export`: the Rust half of the independent policy check
//! (`benches/policy_crosscheck.sh`).
//!
//! Writes every synthetic generator as a plain-text trace (one key per line, libCacheSim's `txt` format) and
//! replays each through Strata's engine in its deterministic single-threaded mode: one thread, a hasher with
//! fixed seeds (so shard choice and ghost fingerprints are the same on every run), `get` and `insert` on a
//! miss. The miss ratios go to `strata.json` beside the traces; the script replays the same files through
//! libCacheSim's S3-FIFO and compares.

use std::io::{BufWriter, Write as _};
use std::path::PathBuf;

use anyhow::{ensure, Context as _};
use serde::Serialize;

use crate::{generators, opt};

/// Options of `crosscheck-export`.
#[derive(clap::Args, Clone, Debug)]
pub struct ExportArgs {
    /// Folder for the traces and `strata.json`.
    #[arg(long, default_value = "target/crosscheck")]
    pub out: PathBuf,
    /// Capacities as fractions of each trace's unique keys, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0.01, 0.05, 0.10, 0.25])]
    pub fractions: Vec<f64>,
}

/// One replay's result, as the script reads it.
#[derive(Serialize)]
struct Replay {
    trace: String,
    file: String,
    requests: usize,
    unique: usize,
    fraction: f64,
    capacity: usize,
    strata_miss_ratio: f64,
    opt_miss_ratio: f64,
}

/// Writes `keys` one per line.
fn write_keys(path: &std::path::Path, keys: impl Iterator<Item = u64>) -> anyhow::Result<()> {
    let mut writer = BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    for key in keys {
        writeln!(writer, "{key}")?;
    }
    writer.flush()?;
    Ok(())
}

/// Strata's miss ratio over `keys` at `capacity`, deterministic: one thread and a fixed-seed hasher.
pub fn strata_miss_ratio(keys: &[u64], capacity: usize) -> f64 {
    let cache = strata_engine::Cache::builder()
        .max_capacity(capacity as u64)
        .hasher(ahash::RandomState::with_seeds(1, 2, 3, 4))
        .build();
    let mut misses = 0u64;
    for &key in keys {
        if cache.get(&key).is_none() {
            misses += 1;
            cache.insert(key, key);
        }
    }
    misses as f64 / keys.len().max(1) as f64
}

/// Writes the traces and `strata.json`.
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    ensure!(
        !args.fractions.is_empty() && args.fractions.iter().all(|&f| f > 0.0 && f <= 1.0),
        "--fractions must list values in (0, 1]"
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut replays = Vec::new();
    for generated in generators::all() {
        let file = format!("{}.txt", generated.name);
        let path = args.out.join(&file);
        eprintln!("writing {} ...", path.display());
        write_keys(&path, generated.keys.iter().copied())?;
        let unique = generated
            .keys
            .iter()
            .collect::<hashbrown::HashSet<_>>()
            .len();
        for &fraction in &args.fractions {
            let capacity = ((unique as f64 * fraction).round() as usize).max(1);
            let replay = Replay {
                trace: generated.name.to_owned(),
                file: file.clone(),
                requests: generated.keys.len(),
                unique,
                fraction,
                capacity,
                strata_miss_ratio: strata_miss_ratio(&generated.keys, capacity),
                opt_miss_ratio: 1.0 - opt::hit_ratio(&generated.keys, capacity),
            };
            eprintln!(
                "  {} at {fraction}: strata miss ratio {:.4}",
                generated.name, replay.strata_miss_ratio
            );
            replays.push(replay);
        }
    }
    let json = args.out.join("strata.json");
    std::fs::write(&json, serde_json::to_string_pretty(&replays)?)
        .with_context(|| format!("writing {}", json.display()))?;
    eprintln!("wrote {}", json.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deterministic_replay_repeats_itself() {
        let generated = generators::by_name("scan-hot").expect("a generator");
        let keys = &generated.keys[..100_000];
        let first = strata_miss_ratio(keys, 5_000);
        assert_eq!(first, strata_miss_ratio(keys, 5_000));
        assert!(first > 0.0 && first < 1.0, "{first}");
    }
}
