//! The same workloads under jemalloc and under the system allocator (glibc malloc here), to test the seeds'
//! claim that jemalloc saves 35% of memory.
//!
//! Each measurement is a child process (this binary, `alloc-child`) started with
//! `STRATA_BENCH_ALLOCATOR=jemalloc|system`, so each allocator serves a whole fresh process. A child runs one
//! workload and prints one JSON line: the live heap bytes the program asked for (the counting allocator's
//! total, the same under both by construction), the resident set size (RSS, `/proc/self/statm`) at the end
//! with the cache still alive, the peak RSS (`VmHWM`), and the time taken.
//!
//! - `fill-u64`: a Strata cache with a 1 h TTL filled with 1,000,000 `u64 -> u64` entries (the `memory` row).
//! - `churn-bytes`: a Strata cache of 100,000 entries taking 2,000,000 inserts of new keys whose values are
//!   byte vectors of 16 to 4,096 bytes (uniform), so from the 100,001st insert on every insert evicts and
//!   frees a block of another size: the fragmentation workload where allocators differ most.
//! - `churn-bytes-moka`: the same churn into moka, a peer with a different allocation pattern.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use serde::{Deserialize, Serialize};

use crate::alloc_counter::ALLOCATOR_VAR;
use crate::report::{median, thousands, Section, Table};
use crate::zipf::{key_of, SplitMix64};
use crate::ALLOCATOR;

/// The workloads, in report order.
pub const WORKLOADS: [&str; 3] = ["fill-u64", "churn-bytes", "churn-bytes-moka"];

/// The allocators compared.
pub const ALLOCATORS: [&str; 2] = ["jemalloc", "system"];

/// Options of the `allocators` subcommand.
#[derive(clap::Args, Clone, Debug)]
pub struct AllocatorArgs {
    /// Child processes per workload and allocator; medians are reported.
    #[arg(long, default_value_t = 5)]
    pub alloc_runs: usize,
}

/// Options of the hidden `alloc-child` subcommand.
#[derive(clap::Args, Clone, Debug)]
pub struct ChildArgs {
    /// One of [`WORKLOADS`].
    #[arg(long)]
    pub workload: String,
}

/// What one child measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChildReport {
    /// "jemalloc" or "system".
    pub allocator: String,
    /// The workload's name.
    pub workload: String,
    /// Entries resident at the end.
    pub entries: u64,
    /// Live requested heap bytes added by the workload.
    pub heap_bytes: i64,
    /// Resident set size when the workload started, in bytes (the binary, the runtime).
    pub start_rss_bytes: u64,
    /// Resident set size at the end, in bytes.
    pub rss_bytes: u64,
    /// Peak resident set size, in bytes.
    pub peak_rss_bytes: u64,
    /// Wall-clock seconds of the workload.
    pub secs: f64,
}

/// Resident and peak resident bytes of this process, from /proc.
fn rss() -> anyhow::Result<(u64, u64)> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("reading /proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .context("no resident field in /proc/self/statm")?
        .parse()
        .context("parsing /proc/self/statm")?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let peak_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok((pages * page, peak_kib * 1024))
}

/// Value lengths of the churn workloads: uniform in 16..=4096.
fn value_len(rng: &mut SplitMix64) -> usize {
    16 + (rng.next_u64() % 4081) as usize
}

const CHURN_CAPACITY: u64 = 100_000;
const CHURN_INSERTS: u64 = 2_000_000;

/// Runs one workload in this process and prints its JSON report.
pub fn child(args: &ChildArgs) -> anyhow::Result<()> {
    let (start_rss_bytes, _) = rss()?;
    let before = ALLOCATOR.live_bytes();
    let started = Instant::now();
    // Each arm keeps its cache alive until the readings are taken.
    let (entries, heap, (rss_bytes, peak)) = match args.workload.as_str() {
        "fill-u64" => {
            let cache = strata_engine::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(3600))
                .build();
            for i in 0..1_000_000u64 {
                cache.insert(key_of(i), i);
            }
            (cache.len() as u64, ALLOCATOR.live_bytes() - before, rss()?)
        }
        "churn-bytes" => {
            let cache = strata_engine::Cache::<u64, Vec<u8>>::new(CHURN_CAPACITY);
            let mut rng = SplitMix64::new(0xC4);
            for i in 0..CHURN_INSERTS {
                let len = value_len(&mut rng);
                cache.insert(key_of(i), vec![i as u8; len]);
            }
            cache.run_pending_tasks();
            (cache.len() as u64, ALLOCATOR.live_bytes() - before, rss()?)
        }
        "churn-bytes-moka" => {
            let cache = moka::sync::Cache::<u64, Vec<u8>>::new(CHURN_CAPACITY);
            let mut rng = SplitMix64::new(0xC4);
            for i in 0..CHURN_INSERTS {
                let len = value_len(&mut rng);
                cache.insert(key_of(i), vec![i as u8; len]);
            }
            cache.run_pending_tasks();
            (cache.entry_count(), ALLOCATOR.live_bytes() - before, rss()?)
        }
        other => bail!("unknown workload {other:?}; expected one of {WORKLOADS:?}"),
    };
    let report = ChildReport {
        allocator: ALLOCATOR.backend_name().to_owned(),
        workload: args.workload.clone(),
        entries,
        heap_bytes: heap as i64,
        start_rss_bytes,
        rss_bytes,
        peak_rss_bytes: peak,
        secs: started.elapsed().as_secs_f64(),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Every child's report, `runs` per workload and allocator, allocators alternating.
pub fn measure(args: &AllocatorArgs) -> anyhow::Result<Vec<ChildReport>> {
    ensure!(args.alloc_runs >= 1, "--alloc-runs must be at least 1");
    let exe = std::env::current_exe().context("finding this executable")?;
    let mut reports = Vec::new();
    for workload in WORKLOADS {
        for run in 0..args.alloc_runs {
            for position in 0..ALLOCATORS.len() {
                let allocator = ALLOCATORS[(run + position) % ALLOCATORS.len()];
                eprintln!(
                    "allocators: {workload} under {allocator}, run {} ...",
                    run + 1
                );
                let output = Command::new(&exe)
                    .args(["alloc-child", "--workload", workload])
                    .env(OsStr::from_bytes(ALLOCATOR_VAR.to_bytes()), allocator)
                    .output()
                    .with_context(|| format!("starting {}", exe.display()))?;
                ensure!(
                    output.status.success(),
                    "alloc-child {workload} under {allocator} failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                let line = String::from_utf8_lossy(&output.stdout);
                let report: ChildReport = serde_json::from_str(line.trim())
                    .with_context(|| format!("parsing the child's report {line:?}"))?;
                ensure!(
                    report.allocator == allocator,
                    "the child ran {} instead of {allocator}",
                    report.allocator
                );
                reports.push(report);
            }
        }
    }
    Ok(reports)
}

/// Median of one field over the reports of a workload and allocator.
pub fn median_of(
    reports: &[ChildReport],
    workload: &str,
    allocator: &str,
    field: fn(&ChildReport) -> f64,
) -> f64 {
    median(
        reports
            .iter()
            .filter(|r| r.workload == workload && r.allocator == allocator)
            .map(field),
    )
}

/// The report section, with the conclusion about the 35% claim.
pub fn section(reports: &[ChildReport], runs: usize) -> Section {
    let mib = |bytes: f64| format!("{:.1}", bytes / (1024.0 * 1024.0));
    let mut table = Table::new([
        "workload",
        "allocator",
        "entries",
        "heap asked (MiB)",
        "RSS at start (MiB)",
        "RSS at end (MiB)",
        "peak RSS (MiB)",
        "RSS added / heap asked",
        "seconds",
    ]);
    let mut savings = Vec::new();
    for workload in WORKLOADS {
        for allocator in ALLOCATORS {
            let of =
                |field: fn(&ChildReport) -> f64| median_of(reports, workload, allocator, field);
            let heap = of(|r| r.heap_bytes as f64);
            let added = of(|r| r.rss_bytes as f64 - r.start_rss_bytes as f64);
            table.row([
                workload.to_owned(),
                allocator.to_owned(),
                thousands(of(|r| r.entries as f64) as u64),
                mib(heap),
                mib(of(|r| r.start_rss_bytes as f64)),
                mib(of(|r| r.rss_bytes as f64)),
                mib(of(|r| r.peak_rss_bytes as f64)),
                format!("{:.2}", added / heap),
                format!("{:.2}", of(|r| r.secs)),
            ]);
        }
        let rss = |a| {
            median_of(reports, workload, a, |r| {
                r.rss_bytes as f64 - r.start_rss_bytes as f64
            })
        };
        let peak = |a| {
            median_of(reports, workload, a, |r| {
                r.peak_rss_bytes as f64 - r.start_rss_bytes as f64
            })
        };
        savings.push((
            workload,
            1.0 - rss("jemalloc") / rss("system"),
            1.0 - peak("jemalloc") / peak("system"),
        ));
    }
    let mut verdict = Table::new([
        "workload",
        "jemalloc saves (RSS added by the workload)",
        "jemalloc saves (peak RSS added)",
    ]);
    for (workload, at_end, at_peak) in &savings {
        verdict.row([
            (*workload).to_owned(),
            format!("{:+.1}%", 100.0 * at_end),
            format!("{:+.1}%", 100.0 * at_peak),
        ]);
    }
    let mut section = Section::new("Allocators: jemalloc against the system allocator");
    section.text(format!(
        "Each row: the median of {runs} fresh processes (`strata-bench alloc-child`) under that allocator, \
         allocators alternating. 'heap asked' is the sum of the sizes the program requested (the same under both \
         allocators); RSS is what the operating system holds for the process (`/proc/self/statm`), read with the \
         cache still alive, and at the start of the workload (the binary and its runtime, before the cache); \
         peak RSS is `VmHWM`. Savings compare what the workload added (end or peak minus start). The system \
         allocator is glibc malloc. Negative savings mean jemalloc used more."
    ));
    section.table(table);
    section.text("The seeds' claim is that jemalloc saves 35% of memory. Here:");
    section.table(verdict);
    section
}
