//! Export through the `metrics` facade (feature `metrics`): per-tier operation counters by
//! outcome, an operation-latency histogram in seconds, and the breaker's state as a gauge
//! (0 closed, 1 half-open, 2 open). Handles are registered when the cache is built, so install
//! the recorder first.

use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

use crate::breaker::BreakerState;
use crate::tier_stats::Outcome;

pub(crate) struct LayerMetrics {
    outcomes: [Counter; 6],
    corrupt: Counter,
    latency: Histogram,
    breaker: Gauge,
}

const OUTCOMES: [(Outcome, &str); 6] = [
    (Outcome::Hit, "hit"),
    (Outcome::Miss, "miss"),
    (Outcome::Error, "error"),
    (Outcome::Timeout, "timeout"),
    (Outcome::Skipped, "skipped"),
    (Outcome::Written, "written"),
];

impl LayerMetrics {
    pub(crate) fn new(tier: &str) -> Self {
        LayerMetrics {
            outcomes: OUTCOMES.map(|(_, label)| {
                counter!("strata_tier_operations_total", "tier" => tier.to_owned(), "outcome" => label)
            }),
            corrupt: counter!("strata_tier_corrupt_total", "tier" => tier.to_owned()),
            latency: histogram!("strata_tier_operation_seconds", "tier" => tier.to_owned()),
            breaker: gauge!("strata_tier_breaker_state", "tier" => tier.to_owned()),
        }
    }

    pub(crate) fn outcome(&self, outcome: Outcome, elapsed: Option<Duration>) {
        if let Some(index) = OUTCOMES.iter().position(|(o, _)| *o == outcome) {
            self.outcomes[index].increment(1);
        }
        if let Some(elapsed) = elapsed {
            self.latency.record(elapsed.as_secs_f64());
        }
    }

    pub(crate) fn corrupt(&self) {
        self.corrupt.increment(1);
    }

    pub(crate) fn breaker(&self, state: BreakerState) {
        self.breaker.set(match state {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        });
    }
}
