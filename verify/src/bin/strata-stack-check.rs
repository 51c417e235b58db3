//! `strata-stack-check`: worker tasks run a seeded mix of calls on a few keys of a small tiered
//! stack (L1 of 4 entries over two faulty memory tiers whose faults change every 100 to 300 ms),
//! every call is recorded, and each key's history is checked for reads that return a value
//! older than an update that returned before they started (`strata_verify::stack`).
//!
//! ```text
//! cargo run --release -p strata-verify --bin strata-stack-check -- --secs 60 --seed 1
//! ```
//!
//! Exits with status 1 on any violation, after printing the first histories and the seed.
//! The seed replays each task's calls and the fault plans; the interleaving is the scheduler's.

// Loom builds compile every binary of the package along with its tests; this one needs crates
// that loom builds leave out.
#[cfg(strata_loom)]
fn main() {}

#[cfg(not(strata_loom))]
fn main() -> anyhow::Result<std::process::ExitCode> {
    stack_check::main()
}

#[cfg(not(strata_loom))]
mod stack_check {
    use std::process::ExitCode;
    use std::time::Duration;

    use anyhow::{bail, Context, Result};
    use clap::Parser;
    use strata_verify::stack::workload::{run, Config};

    /// Run the tiered stack under concurrent calls and injected faults, and check every key's
    /// history for stale reads.
    #[derive(Parser, Debug)]
    #[command(name = "strata-stack-check", version)]
    struct Args {
        /// Run for this many seconds.
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
        /// Seed of the call mixes and fault plans [default: random].
        #[arg(long)]
        seed: Option<u64>,
        /// Worker tasks.
        #[arg(long, default_value_t = 8)]
        tasks: u32,
        /// Keys (user:0, item:0, user:1, ...); L1 holds 4.
        #[arg(long, default_value_t = 8)]
        keys: u32,
        /// Print a progress line every this many seconds (0: never).
        #[arg(long, default_value_t = 5.0)]
        report_every: f64,
        /// Histories of violations to print.
        #[arg(long, default_value_t = 3)]
        histories: usize,
        /// Check the checker: plant old values in L1 behind the cache's back (must fail).
        #[arg(long)]
        sabotage: bool,
    }

    pub fn main() -> Result<ExitCode> {
        let args = Args::parse();
        if args.tasks == 0 || args.keys == 0 {
            bail!("--tasks and --keys must be at least 1");
        }
        let seed = args.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        let config = Config {
            duration: Duration::try_from_secs_f64(args.secs)
                .context("--secs must be a finite number >= 0")?,
            seed,
            tasks: args.tasks,
            keys: args.keys,
            keep: args.histories.max(1),
            sabotage: args.sabotage,
            ..Config::default()
        };
        let every = Duration::try_from_secs_f64(args.report_every)
            .context("--report-every must be a finite number >= 0")?;
        println!(
            "strata-stack-check --secs {} --seed {seed} --tasks {} --keys {}",
            args.secs, args.tasks, args.keys
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the runtime")?;
        let mut next = every;
        let report = runtime.block_on(run(&config, &mut |report| {
            if !every.is_zero() && report.elapsed >= next {
                println!("{}", report.progress_line());
                next += every;
            }
        }));
        print!("{}", report.render(args.histories));
        if report.violation_count > 0 {
            println!(
                "FAILED: {} violations (seed {seed})",
                report.violation_count
            );
            return Ok(ExitCode::from(1));
        }
        println!("ok: 0 violations (seed {seed})");
        Ok(ExitCode::SUCCESS)
    }
}
