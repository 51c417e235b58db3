//! One lower tier in a `TieredCache`'s stack, wrapped in what keeps a failing tier from
//! failing requests: a per-operation timeout, a circuit breaker, counters and logs.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_tier::{Health, KeyPattern, Lookup, Tier, TierError};

use crate::breaker::{Admission, Breaker, BreakerConfig, BreakerState, Transition};
use crate::tier_stats::{Outcome, TierCounters, TierStats};

/// How one tier sits in the stack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerOptions {
    /// The longest this tier keeps an entry (the seed's `redis_ttl`, `disk_ttl`).
    pub(crate) ttl: Option<Duration>,
    /// Deadline for each operation.
    pub(crate) timeout: Duration,
    pub(crate) breaker: BreakerConfig,
}

pub(crate) struct Layer {
    tier: Arc<dyn Tier>,
    name: String,
    options: LayerOptions,
    breaker: Breaker,
    counters: TierCounters,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics_export::LayerMetrics,
}

impl Layer {
    pub(crate) fn new(tier: Arc<dyn Tier>, options: LayerOptions) -> Self {
        let name = tier.name().to_owned();
        Layer {
            #[cfg(feature = "metrics")]
            metrics: crate::metrics_export::LayerMetrics::new(&name),
            tier,
            name,
            breaker: Breaker::new(options.breaker),
            options,
            counters: TierCounters::new(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The TTL to store an entry with here: its remaining lifetime, capped by the tier's own.
    pub(crate) fn ttl_for(&self, remaining: Option<Duration>) -> Option<Duration> {
        capped(remaining, self.options.ttl)
    }

    pub(crate) fn stats(&self) -> TierStats {
        self.counters.snapshot(&self.name, self.breaker.state())
    }

    pub(crate) fn record_promotion(&self) {
        self.counters.record_promotion();
    }

    pub(crate) fn record_corrupt(&self) {
        self.counters.record_corrupt();
        #[cfg(feature = "metrics")]
        self.metrics.corrupt();
    }

    /// A read. Never an error: a failing, slow or skipped tier answers a degraded miss.
    pub(crate) async fn get(&self, key: &str) -> Lookup {
        if !self.admit() {
            return Lookup::Degraded(open_circuit());
        }
        let started = Instant::now();
        let answer = match tokio::time::timeout(self.options.timeout, self.tier.get(key)).await {
            Ok(answer) => answer,
            Err(_) => Lookup::Degraded(TierError::Timeout(self.options.timeout)),
        };
        let outcome = match &answer {
            Lookup::Hit(_) => Outcome::Hit,
            Lookup::Miss => Outcome::Miss,
            Lookup::Degraded(TierError::Timeout(_)) => Outcome::Timeout,
            Lookup::Degraded(_) => Outcome::Error,
        };
        self.settle(outcome, false, started.elapsed());
        if let Lookup::Degraded(error) = &answer {
            tracing::debug!(tier = %self.name, %key, %error, "tier read degraded");
        }
        answer
    }

    pub(crate) async fn set(
        &self,
        key: &str,
        frame: Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), TierError> {
        self.guarded("set", self.tier.set(key, frame, ttl)).await
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<bool, TierError> {
        self.guarded("delete", self.tier.delete(key)).await
    }

    pub(crate) async fn delete_matching(&self, pattern: &KeyPattern) -> Result<u64, TierError> {
        self.guarded("delete_matching", self.tier.delete_matching(pattern))
            .await
    }

    pub(crate) async fn clear(&self) -> Result<(), TierError> {
        self.guarded("clear", self.tier.clear()).await
    }

    /// The tier's own health, with the breaker's view folded in.
    pub(crate) async fn health(&self) -> Health {
        let reported = match tokio::time::timeout(self.options.timeout, self.tier.health()).await {
            Ok(health) => health,
            Err(_) => Health::Down(format!(
                "health check timed out after {:?}",
                self.options.timeout
            )),
        };
        match (self.breaker.state(), reported) {
            (_, Health::Down(reason)) => Health::Down(reason),
            (BreakerState::Closed, health) => health,
            (state, Health::Healthy) => {
                Health::Degraded(format!("circuit breaker {}", state.label()))
            }
            (state, Health::Degraded(reason)) => {
                Health::Degraded(format!("{reason}; circuit breaker {}", state.label()))
            }
        }
    }

    /// A write or invalidation under the timeout and the breaker.
    async fn guarded<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T, TierError>>,
    ) -> Result<T, TierError> {
        if !self.admit() {
            return Err(open_circuit());
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(self.options.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(TierError::Timeout(self.options.timeout)),
        };
        let outcome = match &result {
            Ok(_) => Outcome::Written,
            Err(TierError::Timeout(_)) => Outcome::Timeout,
            Err(_) => Outcome::Error,
        };
        self.settle(outcome, true, started.elapsed());
        if let Err(error) = &result {
            tracing::warn!(tier = %self.name, operation, %error, "tier operation failed");
        }
        result
    }

    /// Asks the breaker whether to send a request (a half-open circuit lets one probe through).
    fn admit(&self) -> bool {
        let (admission, transition) = self.breaker.admit(Instant::now());
        self.log(transition);
        match admission {
            Admission::Allowed | Admission::Probe => true,
            Admission::Rejected => {
                self.counters.record(Outcome::Skipped, false, None);
                #[cfg(feature = "metrics")]
                self.metrics.outcome(Outcome::Skipped, None);
                false
            }
        }
    }

    fn settle(&self, outcome: Outcome, is_write: bool, elapsed: Duration) {
        self.counters.record(outcome, is_write, Some(elapsed));
        #[cfg(feature = "metrics")]
        self.metrics.outcome(outcome, Some(elapsed));
        let transition = match outcome {
            Outcome::Error | Outcome::Timeout => self.breaker.on_failure(Instant::now()),
            _ => self.breaker.on_success(),
        };
        self.log(transition);
    }

    fn log(&self, transition: Option<Transition>) {
        if let Some(Transition { from, to }) = transition {
            #[cfg(feature = "metrics")]
            self.metrics.breaker(to);
            match to {
                BreakerState::Open => tracing::warn!(
                    tier = %self.name, from = from.label(), to = to.label(),
                    "circuit breaker opened: skipping the tier"
                ),
                _ => tracing::info!(
                    tier = %self.name, from = from.label(), to = to.label(),
                    "circuit breaker changed state"
                ),
            }
        }
    }
}

/// An entry's remaining lifetime capped by a level's own TTL (`None`: no limit).
pub(crate) fn capped(remaining: Option<Duration>, cap: Option<Duration>) -> Option<Duration> {
    match (remaining, cap) {
        (Some(left), Some(cap)) => Some(left.min(cap)),
        (left, cap) => left.or(cap),
    }
}

fn open_circuit() -> TierError {
    TierError::Unavailable("circuit breaker open".into())
}
