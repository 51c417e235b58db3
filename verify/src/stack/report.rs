//! What a stack run reports: calls by kind, reads checked, violations (the first ones with
//! their histories), what the tiers held, and evidence that the chaos bit (faults injected,
//! timeouts, breakers seen open, fenced fills).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use strata::TieredStats;

use super::checker::{Checker, Violation};
use super::history::{Kind, Op};

/// A run's outcome so far.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Recorded operations by kind (a `get_many` counts once per key; probes included).
    pub ops: BTreeMap<&'static str, u64>,
    /// Calls made by the workers (loader runs and probes excluded; a `get_many` is one).
    pub calls: u64,
    /// Reads checked.
    pub reads_checked: u64,
    /// Reads that returned a value.
    pub reads_with_value: u64,
    /// Violations found.
    pub violation_count: u64,
    /// The first violations in full.
    pub violations: Vec<Violation>,
    /// Raw entries seen in L2 and L3 at quiescent points.
    pub tier_entries: [u64; 2],
    /// Of those, entries older than a completed update (allowed: reads must skip them).
    pub tier_older: [u64; 2],
    /// Faults injected into L2 and L3.
    pub injected: Vec<u64>,
    /// Samples (every ~5 ms) with a breaker of L2 / L3 not closed.
    pub breaker_opened: Vec<u64>,
    /// Failed calls (loader failures, invalidation errors).
    pub failed: u64,
    /// The stack's own counters.
    pub stats: Option<TieredStats>,
    /// Wall time so far.
    pub elapsed: Duration,
}

impl Report {
    /// Counts a round's operations.
    pub fn count(&mut self, ops: &[Op]) {
        let mut many = 0;
        for op in ops {
            *self.ops.entry(op.kind.label()).or_default() += 1;
            let probe = matches!(op.kind, Kind::ProbeL1 | Kind::ProbeGet | Kind::ProbeTier);
            if !probe && op.kind != Kind::Loader {
                if op.kind == Kind::GetMany {
                    many += 1;
                } else {
                    self.calls += 1;
                }
                self.failed += u64::from(!op.ok);
            }
            if op.kind.is_read() && op.value.is_some() {
                self.reads_with_value += 1;
            }
        }
        // Every get_many call records its two keys in the same round.
        self.calls += many / 2;
    }

    /// Takes the checker's and the stack's counters.
    pub fn update(&mut self, checker: &Checker, stats: &TieredStats, elapsed: Duration) {
        self.reads_checked = checker.reads_checked;
        self.violation_count = checker.violation_count;
        self.tier_entries = [checker.tier_entries[2], checker.tier_entries[3]];
        self.tier_older = [checker.tier_older[2], checker.tier_older[3]];
        self.stats = Some(stats.clone());
        self.elapsed = elapsed;
    }

    /// Worker calls per second.
    pub fn calls_per_sec(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One progress line.
    pub fn progress_line(&self) -> String {
        format!(
            "{:>6.1} s: {} calls ({:.0}/s), {} reads checked, {} violations",
            self.elapsed.as_secs_f64(),
            self.calls,
            self.calls_per_sec(),
            self.reads_checked,
            self.violation_count
        )
    }

    /// The full report, with the first `histories` violations' histories.
    pub fn render(&self, histories: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "elapsed {:.1} s", self.elapsed.as_secs_f64());
        let _ = writeln!(
            out,
            "calls {} ({:.0}/s), failed {}",
            self.calls,
            self.calls_per_sec(),
            self.failed
        );
        let kinds: Vec<String> = self.ops.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "ops by kind: {}", kinds.join(", "));
        let _ = writeln!(
            out,
            "reads checked {} ({} returned a value)",
            self.reads_checked, self.reads_with_value
        );
        let _ = writeln!(
            out,
            "tier entries at quiescent points: l2 {} ({} older than a completed update), l3 {} ({} older)",
            self.tier_entries[0], self.tier_older[0], self.tier_entries[1], self.tier_older[1]
        );
        let _ = writeln!(
            out,
            "faults injected: {:?}; breaker seen not closed (samples): {:?}",
            self.injected, self.breaker_opened
        );
        if let Some(stats) = &self.stats {
            let _ = writeln!(
                out,
                "stack: lower hits {}, misses {}, loads {}, fills fenced {}",
                stats.lower_hits, stats.misses, stats.loads, stats.fills_fenced
            );
            for tier in &stats.tiers {
                let _ = writeln!(
                    out,
                    "  {}: hits {}, misses {}, errors {}, timeouts {}, skipped {}, writes {}, write failures {}, promotions {}",
                    tier.name, tier.hits, tier.misses, tier.errors, tier.timeouts, tier.skipped,
                    tier.writes, tier.write_failures, tier.promotions
                );
            }
        }
        let _ = writeln!(out, "violations {}", self.violation_count);
        for violation in self.violations.iter().take(histories) {
            let _ = write!(out, "{violation}");
        }
        out
    }
}
