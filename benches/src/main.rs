//! `strata-bench`: compares Strata's L1 engine with moka, quick_cache and a plain hashbrown map, in the same
//! process on the same machine, as GOALS.md asks.
//!
//! Subcommands: `throughput` (ops/s of three workloads and the hit cost), `traces` (hit ratio on real traces,
//! your own and synthetic generators, with Belady's optimum), `memory` (bytes per entry), `latency` (get
//! percentiles), `allocators` (jemalloc against the system allocator), the tier suites, `crosscheck-export`
//! (for `benches/policy_crosscheck.sh`), `all` (the first three as one markdown report) and `report` (every
//! suite, written as `BENCHMARKS.md` with SVG charts). See `benches/README.md` for what each number means.

mod alloc_counter;
mod allocators;
mod charts;
mod contenders;
mod crosscheck;
mod generators;
mod http_server;
mod latency;
mod memory;
mod opt;
mod page;
mod redb;
mod redis;
mod report;
mod throughput;
mod tiered;
mod timed;
mod trace_formats;
mod traces;
mod zipf;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::alloc_counter::CountingAlloc;
use crate::report::Section;

/// Jemalloc (or the system allocator, see [`alloc_counter`]), counting live bytes for the `memory`
/// subcommand. Every cache runs on it.
#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc::new();

/// Benchmarks Strata's L1 engine against moka, quick_cache and hashbrown.
#[derive(Parser, Debug)]
#[command(name = "strata-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ops/s under read-only, read-through and insert-churn workloads, and the single-thread hit cost.
    Throughput(throughput::ThroughputArgs),
    /// Hit ratio on the block traces at several capacities.
    Traces(traces::TracesArgs),
    /// Heap bytes per entry.
    Memory(memory::MemoryArgs),
    /// Latency percentiles of `get` (sampled into HdrHistograms), read-only and under a write flood.
    Latency(latency::LatencyArgs),
    /// Memory of the same workloads under jemalloc and the system allocator (one child process each).
    Allocators(allocators::AllocatorArgs),
    /// One allocator workload in this process (what `allocators` starts; prints JSON).
    #[command(hide = true)]
    AllocChild(allocators::ChildArgs),
    /// Runs every suite and writes BENCHMARKS.md with SVG charts.
    Report(Box<page::PageArgs>),
    /// Writes the generators as plain-text traces with Strata's miss ratios, for benches/policy_crosscheck.sh.
    CrosscheckExport(crosscheck::ExportArgs),
    /// What the `strata` crate adds: an L1 hit through TieredCache, LZ4 on/off, serde formats.
    Tiered(tiered::TieredArgs),
    /// The redb disk tier: hit latency at 1 KiB and 64 KiB, group commits against one durable commit per write.
    Redb(redb::RedbArgs),
    /// The Redis tier through TieredCache, side by side with redis-benchmark on the same server.
    Redis(redis::RedisArgs),
    /// Serves the app that `benches/http_load.sh` loads with wrk (the HTTP layer's load test).
    HttpServer(http_server::HttpServerArgs),
    /// All of the above, as one markdown report.
    All {
        #[command(flatten)]
        throughput: throughput::ThroughputArgs,
        #[command(flatten)]
        traces: traces::TracesArgs,
        #[command(flatten)]
        memory: memory::MemoryArgs,
        /// Write the report to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Throughput(args) => print(&throughput::run(&args)?),
        Command::Traces(args) => print(&traces::run(&args)?),
        Command::Memory(args) => print(&memory::run(&args)?),
        Command::Latency(args) => print(&[latency::section(&args, &latency::measure(&args)?)]),
        Command::Allocators(args) => print(&[allocators::section(
            &allocators::measure(&args)?,
            args.alloc_runs,
        )]),
        Command::AllocChild(args) => allocators::child(&args)?,
        Command::Report(args) => page::run(&args)?,
        Command::CrosscheckExport(args) => crosscheck::export(&args)?,
        Command::Tiered(args) => print(&tiered::run(&args)?),
        Command::Redb(args) => print(&redb::run(&args)?),
        Command::Redis(args) => print(&redis::run(&args)?),
        Command::HttpServer(args) => http_server::run(&args)?,
        Command::All {
            throughput,
            traces,
            memory,
            out,
        } => {
            // Memory first, while the heap is still small and unfragmented by the other runs.
            let mut sections = memory::run(&memory)?;
            sections.extend(throughput::run(&throughput)?);
            sections.extend(traces::run(&traces)?);
            let command_line = std::env::args().collect::<Vec<_>>().join(" ");
            let text = report::markdown_report(&command_line, &sections);
            match out {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing the report to {}", path.display()))?;
                    eprintln!("report written to {}", path.display());
                }
                None => print!("{text}"),
            }
        }
    }
    Ok(())
}

/// Prints sections as markdown to standard output.
fn print(sections: &[Section]) {
    for section in sections {
        print!("{section}");
    }
}
