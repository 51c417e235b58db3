//! `strata-bench report`: runs the suites and writes `BENCHMARKS.md` with its SVG charts.
//!
//! The page names the machine, the commit and the date, the command that regenerates it and how long that
//! took; each chart carries the same provenance in its footer. The tables under the charts are the same
//! sections the individual subcommands print.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use crate::allocators::{self, AllocatorArgs, ALLOCATORS, WORKLOADS};
use crate::charts::{self, Axes, Bar, Line, Provenance};
use crate::latency::{self, LatencyArgs};
use crate::memory::{self, MemoryArgs};
use crate::report::{machine_description, Section};
use crate::throughput::{self, ThroughputArgs, Workload};
use crate::traces::{self, TracesArgs, CACHES, OPT};
use crate::{redb, redis, tiered};

/// Options of the `report` subcommand: where to write, and every option of the suites it runs.
#[derive(clap::Args, Clone, Debug)]
pub struct PageArgs {
    /// The page to write.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// The folder the charts go into (created if missing).
    #[arg(long, default_value = "benches/charts")]
    pub charts: PathBuf,
    /// Leave out the tier suites (TieredCache, redb, Redis, HTTP).
    #[arg(long)]
    pub no_tiers: bool,
    /// Leave out the HTTP load test (`benches/http_load.sh`, which needs wrk).
    #[arg(long)]
    pub no_http: bool,
    #[command(flatten)]
    pub throughput: ThroughputArgs,
    #[command(flatten)]
    pub traces: TracesArgs,
    #[command(flatten)]
    pub memory: MemoryArgs,
    #[command(flatten)]
    pub latency: LatencyArgs,
    #[command(flatten)]
    pub allocators: AllocatorArgs,
    #[command(flatten)]
    pub tiered: tiered::TieredArgs,
    #[command(flatten)]
    pub redb: redb::RedbArgs,
    #[command(flatten)]
    pub redis: redis::RedisArgs,
}

/// The short commit hash of the working tree, marked when it has uncommitted changes.
fn commit() -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) => match run(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(changes) if !changes.is_empty() => format!("{hash} (with uncommitted changes)"),
            _ => hash,
        },
        None => "unknown commit".to_owned(),
    }
}

/// Today's UTC date as YYYY-MM-DD (civil-from-days, Howard Hinnant's algorithm).
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The path to use in the page's links for a chart file.
fn link(page: &Path, chart: &Path) -> String {
    let base = page.parent().filter(|p| !p.as_os_str().is_empty());
    let relative = match base {
        Some(base) => chart.strip_prefix(base).unwrap_or(chart),
        None => chart,
    };
    relative.display().to_string()
}

/// Runs everything and writes the page.
pub fn run(args: &PageArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.charts)
        .with_context(|| format!("creating {}", args.charts.display()))?;
    let machine = machine_description();
    let commit = commit();
    let date = today();
    let provenance = Provenance {
        footer: format!("{machine} · commit {commit} · {date}"),
    };
    let mut figures: Vec<(String, PathBuf)> = Vec::new();
    let mut sections: Vec<Section> = Vec::new();
    let chart_path = |name: &str| args.charts.join(format!("{name}.svg"));

    // Memory first, while the heap is small and unfragmented.
    let footprints = memory::measure(&args.memory)?;
    let path = chart_path("memory");
    let bars: Vec<Bar> = footprints
        .iter()
        .map(|f| Bar {
            label: f
                .label
                .replace(" (ahash, with_capacity)", "")
                .replace("(ttl 1h)", "+TTL"),
            value: f.bytes as f64 / args.memory.entries as f64,
        })
        .collect();
    let title = format!(
        "Heap bytes per entry, {} u64 entries",
        charts::human(args.memory.entries as f64)
    );
    charts::bar_chart(&path, &title, "bytes per entry", &bars, &provenance)?;
    let memory_section = memory::section(&args.memory, &footprints);

    let (threads, series) = throughput::measure(&args.throughput)?;
    for workload in Workload::ALL {
        let path = chart_path(&format!("throughput-{}", workload.name()));
        let mut lines: Vec<Line> = Vec::new();
        for s in series.iter().filter(|s| s.workload == workload) {
            match lines.iter_mut().find(|l| l.name == s.cache) {
                Some(line) => line.points.push((s.threads as f64, s.median_ops())),
                None => lines.push(Line {
                    name: s.cache.to_owned(),
                    points: vec![(s.threads as f64, s.median_ops())],
                    dashed: s.cache == "hashbrown",
                }),
            }
        }
        for line in &mut lines {
            line.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let axes = Axes {
            title: format!(
                "Throughput, {}, Zipf 0.99 over {} keys",
                workload.name(),
                args.throughput.keys
            ),
            x_label: "threads".to_owned(),
            y_label: "operations per second (median)".to_owned(),
            y_log: true,
            x_format: Some(|v| {
                if (v - v.round()).abs() < 0.01 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            }),
            y_range: None,
        };
        charts::line_chart(&path, &axes, &lines, &provenance)?;
        figures.push((format!("Throughput: {}", workload.name()), path));
    }
    let throughput_sections = throughput::sections(&args.throughput, &threads, &series);
    let mut summary = Vec::new();
    let ops = |workload: Workload, t: usize, cache: &str| {
        series
            .iter()
            .find(|s| s.workload == workload && s.threads == t && s.cache == cache)
            .map(throughput::Series::median_ops)
    };
    for workload in [Workload::ReadOnly, Workload::ReadThrough] {
        for &t in &threads {
            let Some(strata) = ops(workload, t, "strata") else {
                continue;
            };
            let ratios: Vec<String> = ["quick_cache", "moka", "TinyUFO"]
                .iter()
                .filter_map(|&peer| {
                    ops(workload, t, peer).map(|p| format!("{:.2}x {peer}", strata / p))
                })
                .collect();
            summary.push(format!(
                "Throughput, {}, {t} thread{}: Strata {:.1} M ops/s = {}.",
                workload.name(),
                if t == 1 { "" } else { "s" },
                strata / 1e6,
                ratios.join(", ")
            ));
        }
    }
    let per_entry = |label: &str| {
        footprints
            .iter()
            .find(|f| f.label == label)
            .map(|f| f.bytes as f64 / args.memory.entries as f64)
    };
    if let (Some(strata), Some(ttl)) = (per_entry("strata"), per_entry("strata (ttl 1h)")) {
        let peers: Vec<String> = ["quick_cache", "moka", "TinyUFO"]
            .iter()
            .filter_map(|&peer| per_entry(peer).map(|b| format!("{peer} {b:.1}")))
            .collect();
        summary.push(format!(
            "Heap bytes per entry: Strata {strata:.1} ({ttl:.1} with a TTL); {}.",
            peers.join(", ")
        ));
    }

    let (ratios, sources) = traces::measure(&args.traces)?;
    let mut hit_figures = Vec::new();
    for workload in &ratios {
        let path = chart_path(&format!("hit-ratio-{}", workload.name));
        let mut lines: Vec<Line> = CACHES
            .iter()
            .chain([&OPT])
            .map(|&cache| Line {
                name: cache.to_owned(),
                points: workload
                    .points
                    .iter()
                    .map(|p| (100.0 * p.fraction, p.of(cache)))
                    .collect(),
                dashed: cache == OPT,
            })
            .collect();
        lines.rotate_right(1); // OPT first in the legend: the top line
        let axes = Axes {
            title: format!(
                "Hit ratio, {} {} ({} requests)",
                workload.kind, workload.name, workload.requests
            ),
            x_label: "cache size, % of unique keys".to_owned(),
            y_label: "hit ratio".to_owned(),
            y_log: false,
            x_format: None,
            y_range: None,
        };
        charts::line_chart(&path, &axes, &lines, &provenance)?;
        hit_figures.push((format!("Hit ratio: {}", workload.name), path));
    }
    let traces_section = traces::section(&ratios, &sources, args.traces.limit);
    // (points ahead of the best peer, workload, fraction) for every cell.
    let cells: Vec<(f64, &str, f64)> = ratios
        .iter()
        .flat_map(|w| {
            w.points
                .iter()
                .map(|p| (p.strata_lead(), w.name.as_str(), p.fraction))
        })
        .collect();
    let within = cells.iter().filter(|c| c.0 >= -0.5).count();
    let worst = cells.iter().min_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(&(points, name, fraction)) = worst {
        summary.push(format!(
            "Hit ratio: Strata within 0.5 points of the best of moka, quick_cache and TinyUFO (or ahead) in {within} of \
             {} workload x size cells; furthest behind: {points:+.2} points on {name} at {:.0}%.",
            cells.len(),
            100.0 * fraction
        ));
    }

    let latencies = latency::measure(&args.latency)?;
    let mut latency_figures = Vec::new();
    for (scenario, dists) in &latencies {
        let path = chart_path(&scenario.slug());
        let lines: Vec<Line> = dists
            .iter()
            .map(|d| Line {
                name: d.cache.to_owned(),
                points: NINES
                    .iter()
                    .map(|&n| {
                        (
                            n,
                            d.merged.value_at_quantile(1.0 - 10f64.powf(-n)).max(1) as f64,
                        )
                    })
                    .chain([(4.5, d.merged.max().max(1) as f64)])
                    .collect(),
                dashed: d.cache == latency::TIMER,
            })
            .collect();
        let axes = Axes {
            title: format!("Latency percentiles, {}", scenario.title()),
            x_label: "percentile (max at the right end)".to_owned(),
            y_label: "nanoseconds (log scale)".to_owned(),
            y_log: true,
            x_format: Some(nines_label),
            y_range: None,
        };
        charts::line_chart(&path, &axes, &lines, &provenance)?;
        latency_figures.push((format!("Latency: {}", scenario.title()), path));
    }
    let latency_section = latency::section(&args.latency, &latencies);
    for (scenario, dists) in &latencies {
        let figures: Vec<String> = dists
            .iter()
            .filter(|d| d.cache != latency::TIMER)
            .map(|d| format!("{} {:.0}", d.cache, d.figure(2)))
            .collect();
        summary.push(format!(
            "p99.9 of {} (ns, timer included): {}.",
            scenario.title(),
            figures.join(", ")
        ));
    }

    let reports = allocators::measure(&args.allocators)?;
    let path = chart_path("allocators");
    let mut bars = Vec::new();
    for workload in WORKLOADS {
        for allocator in ALLOCATORS {
            let short = match workload {
                "fill-u64" => "fill",
                "churn-bytes" => "churn",
                _ => "churn (moka)",
            };
            bars.push(Bar {
                label: format!("{allocator}, {short}"),
                value: allocators::median_of(&reports, workload, allocator, |r| {
                    r.rss_bytes as f64 - r.start_rss_bytes as f64
                }) / (1024.0 * 1024.0),
            });
        }
    }
    charts::bar_chart(
        &path,
        "Resident memory each workload added, by allocator",
        "RSS at end minus at start, MiB (median)",
        &bars,
        &provenance,
    )?;
    let allocator_section = allocators::section(&reports, args.allocators.alloc_runs);
    let savings: Vec<String> = WORKLOADS
        .iter()
        .map(|&w| {
            let rss = |a| {
                allocators::median_of(&reports, w, a, |r| {
                    r.rss_bytes as f64 - r.start_rss_bytes as f64
                })
            };
            format!(
                "{w} {:+.1}%",
                100.0 * (1.0 - rss("jemalloc") / rss("system"))
            )
        })
        .collect();
    summary.push(format!(
        "jemalloc against glibc malloc, resident memory saved (the seeds claim 35%): {}.",
        savings.join(", ")
    ));

    let mut tier_sections = Vec::new();
    if !args.no_tiers {
        tier_sections.extend(tiered::run(&args.tiered)?);
        tier_sections.extend(redb::run(&args.redb)?);
        match redis::run(&args.redis) {
            Ok(found) => tier_sections.extend(found),
            Err(e) => {
                let mut skipped = Section::new("The Redis tier");
                skipped.text(format!("Not measured in this run: {e:#}."));
                tier_sections.push(skipped);
            }
        }
        if !args.no_http {
            tier_sections.push(http_load(args.throughput.runs));
        }
    }

    figures.push(("Memory per entry".to_owned(), chart_path("memory")));
    figures.extend(latency_figures);
    figures.push((
        "Resident memory by allocator".to_owned(),
        chart_path("allocators"),
    ));
    figures.extend(hit_figures);
    sections.push(memory_section);
    sections.extend(throughput_sections);
    sections.push(traces_section);
    sections.push(latency_section);
    sections.push(allocator_section);
    sections.extend(tier_sections);

    let took = started.elapsed();
    let text = page_text(
        args,
        &machine,
        &commit,
        &date,
        took.as_secs_f64(),
        &summary,
        &figures,
        &sections,
    );
    std::fs::write(&args.out, text).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{} and {} charts in {} written in {:.1} min",
        args.out.display(),
        figures.len(),
        args.charts.display(),
        took.as_secs_f64() / 60.0
    );
    Ok(())
}

/// Runs `benches/http_load.sh` (wrk against the HTTP layer and strata-proxy) and keeps its summary.
fn http_load(runs: usize) -> Section {
    let mut section = Section::new("HTTP response caching under wrk");
    eprintln!("http: benches/http_load.sh with RUNS={runs} ...");
    let output = Command::new("bash")
        .arg("benches/http_load.sh")
        .env("RUNS", runs.to_string())
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            // The script prints what each URL answers, then the table and the ratios.
            let summary = text
                .find("\n| scenario")
                .map_or(&text[..], |at| &text[at + 1..]);
            section.text(format!(
                "`bash benches/http_load.sh` (RUNS={runs}; SECS, CONNS and THREADS from the environment, by \
                 default 5, 32 and 1): wrk on loopback against \
                 `strata-bench http-server` (the same bytes uncached and behind the cache layer, 1 ms handlers \
                 with and without it) and against `strata-proxy` in front of that server. Medians of {runs} \
                 runs, scenario order rotated. Server, proxy and wrk share the machine's cores."
            ));
            section.text(summary.trim().to_owned());
        }
        Ok(out) => section.text(format!(
            "Not measured in this run: the script failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("(no output)")
        )),
        Err(e) => section.text(format!("Not measured in this run: {e}.")),
    }
    section
}

/// The x positions of the latency charts: 0 = p0 (min), 1 = p90, 2 = p99, 3 = p99.9, 4 = p99.99.
const NINES: [f64; 9] = [0.0, 0.3, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0];

fn nines_label(v: f64) -> String {
    match (v * 2.0).round() as i64 {
        0 => "p0".to_owned(),
        2 => "p90".to_owned(),
        4 => "p99".to_owned(),
        6 => "p99.9".to_owned(),
        8 => "p99.99".to_owned(),
        9 => "max".to_owned(),
        _ => String::new(),
    }
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename the arguments
fn page_text(
    args: &PageArgs,
    machine: &str,
    commit: &str,
    date: &str,
    secs: f64,
    summary: &[String],
    figures: &[(String, PathBuf)],
    sections: &[Section],
) -> String {
    let mut out = String::new();
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# Strata benchmarks\n");
    let _ = writeln!(
        out,
        "Strata's L1 engine side by side with [quick_cache](https://crates.io/crates/quick_cache), \
         [moka](https://crates.io/crates/moka) and [TinyUFO](https://crates.io/crates/TinyUFO), with a plain \
         `hashbrown` map and Belady's optimum (OPT) as the limits, all in one process and one run; then the tiers. \
         Every cache is called through the same trait with the same keys, in an order rotated from run to run; \
         figures are medians of {runs} runs unless a table says otherwise.\n",
        runs = args.throughput.runs,
    );
    let _ = writeln!(out, "- **Machine**: {machine}");
    let _ = writeln!(out, "- **Commit**: {commit}, **date**: {date}");
    let _ = writeln!(
        out,
        "- **Regenerate** (writes this page and `{}`): `cargo run -p strata-benches --release -- report` \
         (this run: `strata-bench {command}`, {:.0} minutes on this machine). Every option of the suites \
         applies; `--help` lists them. Close other heavy processes first: the 2-thread runs use both cores.",
        args.charts.display(),
        secs / 60.0,
    );
    let _ = writeln!(
        out,
        "- Charts are SVG drawn with `plotters` (SVG backend, no font library), each footed with the machine, \
         commit and date. More context, earlier runs and what each figure means: `benches/README.md`.\n"
    );
    let _ = writeln!(out, "## Summary\n");
    for line in summary {
        let _ = writeln!(out, "- {line}");
    }
    let _ = writeln!(out, "\n## Charts\n");
    for (title, path) in figures {
        let _ = writeln!(
            out,
            "### {title}\n\n![{title}]({})\n",
            link(&args.out, path)
        );
    }
    let _ = writeln!(out, "# Tables\n");
    for section in sections {
        let _ = write!(out, "{section}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_links() {
        let date = today();
        assert_eq!(date.len(), 10);
        assert!(date.starts_with("20"), "{date}");
        assert_eq!(
            link(
                Path::new("BENCHMARKS.md"),
                Path::new("benches/charts/a.svg")
            ),
            "benches/charts/a.svg"
        );
        assert_eq!(
            link(Path::new("out/B.md"), Path::new("out/charts/a.svg")),
            "charts/a.svg"
        );
        assert_eq!(nines_label(3.0), "p99.9");
        assert_eq!(nines_label(1.5), "");
    }
}
