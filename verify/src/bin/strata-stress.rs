//! `strata-stress`: threads of random `get` / `insert` / `remove` / `get_or_insert_with` on a
//! small key space, every call's invocation and response recorded, every key's history checked
//! for reads of values never written, stale reads and (with `--no-eviction`) missing reads, then
//! by an exact linearizability search (unless `--rules-only`), and the bounds checked once the
//! threads have stopped. With `--count-drops`, every value written is accounted for by id at each
//! quiet point (see `strata_verify::accounting`).
//!
//! ```text
//! cargo run --release -p strata-verify --bin strata-stress -- --threads 4 --secs 60
//! cargo run --release -p strata-verify --bin strata-stress -- --no-eviction --ops 10000000
//! cargo run --release -p strata-verify --bin strata-stress -- --count-drops --weighted --ttl-ms 1
//! ```
//!
//! Exits with status 1 on any violation, after printing the offending history and the seed.
//! The seed replays each thread's sequence of operations; the interleaving is the OS's.

// Loom builds compile every binary of the package along with its tests; this one needs crates
// that loom builds leave out.
#[cfg(strata_loom)]
fn main() {}

#[cfg(not(strata_loom))]
fn main() -> anyhow::Result<std::process::ExitCode> {
    stress::main()
}

#[cfg(not(strata_loom))]
mod stress {
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::time::Duration;

    use anyhow::{bail, Context, Result};
    use clap::Parser;
    use indicatif::{ProgressBar, ProgressStyle};
    use strata_verify::accounting::Tracked;
    use strata_verify::checker::{Depth, DEFAULT_BUDGET};
    use strata_verify::report::{Progress, Report};
    use strata_verify::workload::{run, Budget, Config, MAX_ENTRY_WEIGHT};

    /// Stress Strata's cache from several threads and check every key's history for
    /// linearizability violations (eviction and expiry allowed).
    #[derive(Parser, Debug)]
    #[command(name = "strata-stress", version)]
    struct Args {
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Run for this many seconds (default 5 unless --ops is given).
        #[arg(long, conflicts_with = "ops")]
        secs: Option<f64>,
        /// Run about this many operations in total instead.
        #[arg(long)]
        ops: Option<u64>,
        /// Size of the key space (keys 0..K).
        #[arg(long, default_value_t = 16)]
        keys: u64,
        /// The cache's max_capacity [default: keys / 2, or 2 * keys + threads with --no-eviction].
        #[arg(long)]
        capacity: Option<u64>,
        /// Seed of the operation sequences [default: random].
        #[arg(long)]
        seed: Option<u64>,
        /// Default time to live of entries, in milliseconds.
        #[arg(long)]
        ttl_ms: Option<u64>,
        /// Capacity above the key space and no TTL: a miss after a completed insert must be
        /// explained by a remove.
        #[arg(long)]
        no_eviction: bool,
        /// Leave get_or_insert_with out of the mix (its share goes to get).
        #[arg(long)]
        no_loaders: bool,
        /// Keep running after a round that found violations, to count them all.
        #[arg(long)]
        keep_going: bool,
        /// Exact accounting: every value written has an id; a recording eviction listener notes
        /// each report. At every quiet point (after each round's threads stop, and again once
        /// the round's cache is cleared and the epoch collector settled) each value must be in
        /// the cache or reported exactly once (never both, never neither; refused values
        /// neither), and no instance dropped twice or cloned after its drop; once drained, each
        /// value's primary and every clone dropped exactly once. After the last round the cache
        /// is filled and dropped whole, and its values' drops checked too.
        #[arg(long)]
        count_drops: bool,
        /// Values weigh 0 to 9 (by id) under max_weight = capacity x 4 and max_entry_weight 8,
        /// so about one value in ten is refused as too heavy; the count bound holds too.
        #[arg(long)]
        weighted: bool,
        /// Operations per thread per round (one round's histories are checked at a time).
        #[arg(long, default_value_t = 100_000)]
        round_ops: u64,
        /// Check each history with the fast rules only, without the exact linearizability search
        /// (to measure what the search costs).
        #[arg(long)]
        rules_only: bool,
        /// Most steps of the exact search for one history; a history it cannot decide within
        /// them fails the run as `Undecided`.
        #[arg(long, default_value_t = DEFAULT_BUDGET)]
        search_budget: u64,
        /// Write the full history of each failing key to this file.
        #[arg(long)]
        dump: Option<PathBuf>,
    }

    pub fn main() -> Result<ExitCode> {
        let args = Args::parse();
        let seed = args.seed.unwrap_or_else(random_seed);
        let budget = match (args.secs, args.ops) {
            (_, Some(ops)) => Budget::Ops(ops),
            (Some(secs), None) => Budget::Time(
                Duration::try_from_secs_f64(secs).context("--secs must be a finite number >= 0")?,
            ),
            (None, None) => Budget::Time(Duration::from_secs(5)),
        };
        let capacity = args.capacity.unwrap_or(if args.no_eviction {
            2 * args.keys + args.threads as u64
        } else {
            (args.keys / 2).max(1)
        });
        let config = Config {
            threads: args.threads,
            keys: args.keys,
            capacity,
            ttl: args.ttl_ms.map(Duration::from_millis),
            budget,
            seed,
            no_eviction: args.no_eviction,
            round_ops: args.round_ops,
            loaders: !args.no_loaders,
            keep_going: args.keep_going,
            depth: if args.rules_only {
                Depth::Rules
            } else {
                Depth::Exact {
                    budget: args.search_budget,
                }
            },
            weighted: args.weighted,
            sabotage: None,
        };
        if let Err(problem) = config.validate() {
            bail!("{problem}");
        }
        let mut replay = format!(
            "strata-stress --threads {} --keys {} --capacity {capacity} --seed {seed}",
            args.threads, args.keys
        );
        if let Some(ttl) = args.ttl_ms {
            replay += &format!(" --ttl-ms {ttl}");
        }
        for (set, flag) in [
            (args.no_eviction, " --no-eviction"),
            (args.count_drops, " --count-drops"),
            (args.weighted, " --weighted"),
            (args.no_loaders, " --no-loaders"),
            (args.rules_only, " --rules-only"),
        ] {
            if set {
                replay += flag;
            }
        }
        println!(
            "strata-stress: {} threads, {} keys, capacity {}{}, ttl {}, {}, {}, seed {seed}",
            args.threads,
            args.keys,
            capacity,
            if args.weighted {
                format!(
                    ", max_weight {} (max_entry_weight {MAX_ENTRY_WEIGHT})",
                    config.max_weight()
                )
            } else {
                String::new()
            },
            args.ttl_ms.map_or("none".into(), |t| format!("{t} ms")),
            if args.no_eviction {
                "no eviction"
            } else {
                "eviction allowed"
            },
            if args.count_drops {
                "exact accounting"
            } else {
                "no accounting"
            },
        );

        let bar = progress_bar(budget);
        let mut on_round = |p: &Progress| {
            if let Some(bar) = &bar {
                bar.set_position(match budget {
                    Budget::Time(_) => p.elapsed.as_millis() as u64,
                    Budget::Ops(_) => p.ops,
                });
                bar.set_message(format!("{} ops, {} rounds", p.ops, p.rounds));
            }
        };
        let report = if args.count_drops {
            run::<Tracked>(&config, &mut on_round)
        } else {
            run::<u64>(&config, &mut on_round)
        };
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }

        print!("{}", report.summary());
        print_failures(&report, args.dump.as_ref())?;
        println!("seed: {seed}");
        if report.violations == 0 {
            Ok(ExitCode::SUCCESS)
        } else {
            println!("replay the operation sequences with: {replay}");
            Ok(ExitCode::FAILURE)
        }
    }

    fn random_seed() -> u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut g = strata_verify::workload::SplitMix::new(nanos ^ u64::from(std::process::id()));
        g.next_u64() >> 1
    }

    /// A bar for runs longer than a couple of seconds.
    fn progress_bar(budget: Budget) -> Option<ProgressBar> {
        let (len, long) = match budget {
            Budget::Time(d) => (d.as_millis() as u64, d > Duration::from_secs(2)),
            Budget::Ops(n) => (n, n > 5_000_000),
        };
        if !long {
            return None;
        }
        let bar = ProgressBar::new(len);
        let style = ProgressStyle::with_template("[{elapsed_precise}] {wide_bar} {percent}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Some(bar)
    }

    /// Prints each failure (the first few with an excerpt of the key's history) and dumps the
    /// full histories.
    fn print_failures(report: &Report, dump: Option<&PathBuf>) -> Result<()> {
        for (n, failure) in report.failures.iter().enumerate() {
            if n < 4 {
                print!("{}", failure.render(80));
            } else {
                print!("{failure}");
            }
        }
        let full = report.full_histories();
        if let (Some(path), false) = (dump, full.is_empty()) {
            std::fs::write(path, full).with_context(|| format!("writing {}", path.display()))?;
            println!("full histories written to {}", path.display());
        }
        Ok(())
    }
}
