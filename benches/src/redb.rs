//! `strata-bench redb`: the embedded disk tier (`strata-redb`) on its own.
//!
//! - **Hit latency**: `Tier::get` of a resident key, 1 KiB and 64 KiB values, page cache warm (every
//!   key read once before timing), one caller on a current-thread tokio runtime; p50 and p99 over
//!   `--redb-reads` uniformly random keys, compared with the 2,000 us per L3 hit that the project's
//!   seed claims. Each get includes its `spawn_blocking` round trip, measured alone for reference.
//! - **Write throughput**: 1 KiB sets for `--redb-write-secs`, three ways: one writer whose every
//!   set waits for its own durable commit (`Durability::EveryCommit`, `WriteAck::Durable`, one fsync
//!   per write); `--redb-writers` concurrent writers with the same durable acks, coalesced into group
//!   commits; and the same writers with the default configuration (`WriteAck::Enqueued`, a durable
//!   commit every second), timed until a final `flush` has made everything durable. Reported as
//!   ops/s and as ratios to the one-commit-per-write baseline (target: at least 20x).
//!
//! Files go in `--redb-dir` (default: the system temp directory); each measurement starts from a new
//! file, which is deleted afterwards.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use strata_redb::{Durability, RedbTier, WriteAck};
use strata_tier::{Bytes, Tier, TierWrite};

use crate::report::{median, thousands, Section, Table};

/// The seed's claim for one L3 (disk tier) hit.
const SEED_CLAIM_MICROS: f64 = 2_000.0;
/// Distinct keys of the write measurements.
const WRITE_KEYS: u64 = 100_000;

#[derive(clap::Args, Debug, Clone)]
pub struct RedbArgs {
    /// Repetitions of each measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub redb_runs: usize,
    /// Timed gets per value size and run.
    #[arg(long, default_value_t = 20_000)]
    pub redb_reads: usize,
    /// Seconds each write-throughput measurement runs.
    #[arg(long, default_value_t = 1.5)]
    pub redb_write_secs: f64,
    /// Concurrent writers in the group-commit measurements.
    #[arg(long, default_value_t = 64)]
    pub redb_writers: usize,
    /// Directory for the tier files (default: the system temp directory).
    #[arg(long)]
    pub redb_dir: Option<PathBuf>,
}

pub fn run(args: &RedbArgs) -> anyhow::Result<Vec<Section>> {
    anyhow::ensure!(args.redb_runs > 0, "--redb-runs must be at least 1");
    let dir = tempfile::Builder::new()
        .prefix("strata-bench-redb-")
        .tempdir_in(args.redb_dir.clone().unwrap_or_else(std::env::temp_dir))
        .context("creating the benchmark directory")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let hits = runtime.block_on(hit_latency(args, dir.path()))?;
    let writes = runtime.block_on(write_throughput(args, dir.path()))?;

    let mut section = Section::new("redb disk tier (strata-redb)");
    section.text(format!(
        "Files in {} (deleted afterwards). Median of {} runs; one caller on a current-thread tokio \
         runtime for the gets, whose blocking redb reads run on tokio's blocking pool.",
        dir.path().display(),
        args.redb_runs
    ));
    section.table(hits);
    section.table(writes.table);
    section.table(writes.ratios);
    Ok(vec![section])
}

fn range(samples: &[f64], digits: usize) -> String {
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.digits$}..{max:.digits$}")
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("constant histogram bounds are valid")
}

fn micros(nanos: u64) -> f64 {
    nanos as f64 / 1000.0
}

/// A xorshift stream of indexes below `n`.
fn indexes(n: usize, count: usize, mut state: u64) -> Vec<usize> {
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        })
        .collect()
}

fn value_of(len: usize, salt: u64) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u64).wrapping_mul(31).wrapping_add(salt) as u8)
            .collect::<Vec<u8>>(),
    )
}

async fn hit_latency(args: &RedbArgs, dir: &Path) -> anyhow::Result<Table> {
    let mut table = Table::new([
        "value",
        "resident keys",
        "p50 us",
        "p50 min..max",
        "p99 us",
        "p99 min..max",
        "seed claim us",
        "claim / p50",
        "spawn_blocking alone p50 us",
    ]);
    for (label, value_len, keys) in [("1 KiB", 1024usize, 10_000usize), ("64 KiB", 65_536, 1_000)] {
        eprintln!("redb: hit latency, {label} values");
        let path = dir.join(format!("hits-{value_len}.redb"));
        let tier = RedbTier::builder(&path)
            .max_size(1 << 30)
            .open_async()
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        let names: Vec<String> = (0..keys).map(|i| format!("user:{i}:blob")).collect();
        for chunk in names.chunks(64) {
            let writes = chunk
                .iter()
                .enumerate()
                .map(|(i, key)| TierWrite::update(key.clone(), value_of(value_len, i as u64), None))
                .collect();
            for result in tier.set_many(writes).await {
                result?;
            }
        }
        tier.flush().await?;
        for key in &names {
            anyhow::ensure!(tier.get(key).await.is_hit(), "{key} missing after the fill");
        }
        let (mut p50s, mut p99s, mut blocking_p50s) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..args.redb_runs {
            let order = indexes(keys, args.redb_reads, 0x2545_F491_4F6C_DD1D ^ run as u64);
            let (mut gets, mut round_trips) = (histogram(), histogram());
            for &i in &order {
                let started = Instant::now();
                let hit = tier.get(&names[i]).await.is_hit();
                gets.saturating_record(started.elapsed().as_nanos() as u64);
                anyhow::ensure!(hit, "a resident key missed");
                // Interleaved, so both see the same state of the blocking pool.
                let started = Instant::now();
                tokio::task::spawn_blocking(|| ()).await?;
                round_trips.saturating_record(started.elapsed().as_nanos() as u64);
            }
            p50s.push(micros(gets.value_at_quantile(0.5)));
            p99s.push(micros(gets.value_at_quantile(0.99)));
            blocking_p50s.push(micros(round_trips.value_at_quantile(0.5)));
        }
        tier.close().await?;
        std::fs::remove_file(&path).ok();
        let p50 = median(p50s.clone());
        table.row([
            label.to_owned(),
            thousands(keys as u64),
            format!("{p50:.1}"),
            range(&p50s, 1),
            format!("{:.1}", median(p99s.clone())),
            range(&p99s, 1),
            format!("{SEED_CLAIM_MICROS:.0}"),
            format!("{:.0}x", SEED_CLAIM_MICROS / p50),
            format!("{:.1}", median(blocking_p50s)),
        ]);
    }
    Ok(table)
}

/// One way of writing, measured.
#[derive(Clone, Copy)]
struct Mode {
    label: &'static str,
    writers: usize,
    durability: Durability,
    ack: WriteAck,
}

struct WriteRun {
    ops_per_sec: f64,
    ops_per_commit: f64,
    commit_p50_us: f64,
    commit_p99_us: f64,
}

struct WriteTables {
    table: Table,
    ratios: Table,
}

async fn write_throughput(args: &RedbArgs, dir: &Path) -> anyhow::Result<WriteTables> {
    let modes = [
        Mode {
            label: "one durable commit per write (EveryCommit, Durable ack)",
            writers: 1,
            durability: Durability::EveryCommit,
            ack: WriteAck::Durable,
        },
        Mode {
            label: "group commits, durable acks (EveryCommit, Durable ack)",
            writers: args.redb_writers,
            durability: Durability::EveryCommit,
            ack: WriteAck::Durable,
        },
        Mode {
            label: "group commits, default (Periodic 1 s, Enqueued ack, timed to a final flush)",
            writers: args.redb_writers,
            durability: Durability::Periodic(Duration::from_secs(1)),
            ack: WriteAck::Enqueued,
        },
    ];
    let mut results: Vec<Vec<WriteRun>> = modes.iter().map(|_| Vec::new()).collect();
    for run in 0..args.redb_runs {
        // Rotate the order from run to run, so no mode always runs on a freshly quiet machine.
        for offset in 0..modes.len() {
            let index = (run + offset) % modes.len();
            eprintln!(
                "redb: write throughput, run {}, {}",
                run + 1,
                modes[index].label
            );
            let path = dir.join(format!("writes-{run}-{index}.redb"));
            results[index].push(write_run(args, &path, modes[index]).await?);
            std::fs::remove_file(&path).ok();
        }
    }
    let mut table = Table::new([
        "mode",
        "writers",
        "sets/s (median)",
        "min..max",
        "sets per commit",
        "commit p50 us",
        "commit p99 us",
    ]);
    let mut medians = Vec::new();
    for (mode, runs) in modes.iter().zip(&results) {
        let ops: Vec<f64> = runs.iter().map(|r| r.ops_per_sec).collect();
        let ops_median = median(ops.clone());
        medians.push(ops_median);
        table.row([
            mode.label.to_owned(),
            mode.writers.to_string(),
            thousands(ops_median as u64),
            range(&ops, 0),
            format!("{:.1}", median(runs.iter().map(|r| r.ops_per_commit))),
            format!("{:.0}", median(runs.iter().map(|r| r.commit_p50_us))),
            format!("{:.0}", median(runs.iter().map(|r| r.commit_p99_us))),
        ]);
    }
    // Ratios are taken within each run (the three modes ran back to back), then the median: the
    // machine's fsync cost moves between runs, and it moves the baseline most.
    let per_run = |mode: usize| -> Vec<f64> {
        results[mode]
            .iter()
            .zip(&results[0])
            .map(|(group, single)| group.ops_per_sec / single.ops_per_sec)
            .collect()
    };
    let mut ratios = Table::new([
        "ratio",
        "median of per-run ratios",
        "min..max",
        "ratio of medians",
        "target",
    ]);
    for (mode, label) in [
        (
            1,
            "group commits with durable acks / one durable commit per write",
        ),
        (
            2,
            "group commits, default configuration / one durable commit per write",
        ),
    ] {
        let ratio = per_run(mode);
        ratios.row([
            label.to_owned(),
            format!("{:.1}x", median(ratio.clone())),
            range(&ratio, 1),
            format!("{:.1}x", medians[mode] / medians[0]),
            ">= 20x".to_owned(),
        ]);
    }
    Ok(WriteTables { table, ratios })
}

async fn write_run(args: &RedbArgs, path: &Path, mode: Mode) -> anyhow::Result<WriteRun> {
    let tier = Arc::new(
        RedbTier::builder(path)
            .max_size(4 << 30)
            .durability(mode.durability)
            .ack(mode.ack)
            .open_async()
            .await
            .with_context(|| format!("opening {}", path.display()))?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let writers: Vec<_> = (0..mode.writers)
        .map(|writer| {
            let (tier, stop, done) = (Arc::clone(&tier), Arc::clone(&stop), Arc::clone(&done));
            tokio::spawn(async move {
                let keys = indexes(WRITE_KEYS as usize, 4096, 0x9E37_79B9 + writer as u64);
                let mut i = 0;
                while !stop.load(Relaxed) {
                    let key = format!("w:{}", keys[i % keys.len()]);
                    tier.set(
                        &key,
                        value_of(1024, i as u64),
                        None,
                        strata_tier::WriteIntent::Update,
                    )
                    .await?;
                    done.fetch_add(1, Relaxed);
                    i += 1;
                }
                Ok::<_, strata_tier::TierError>(())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(args.redb_write_secs)).await;
    stop.store(true, Relaxed);
    for writer in writers {
        writer.await??;
    }
    // Everything acknowledged is durable only after this (a no-op wait for durable acks).
    tier.flush().await?;
    let elapsed = started.elapsed().as_secs_f64();
    let stats = tier.stats();
    tier.close().await?;
    let ops = done.load(Relaxed) as f64;
    Ok(WriteRun {
        ops_per_sec: ops / elapsed,
        ops_per_commit: ops / stats.commits.max(1) as f64,
        commit_p50_us: stats.commit_p50.as_secs_f64() * 1e6,
        commit_p99_us: stats.commit_p99.as_secs_f64() * 1e6,
    })
}
