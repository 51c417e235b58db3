//! One lower tier in a `TieredCache`'s stack, wrapped in what keeps a failing tier from
//! failing requests: a per-operation timeout, circuit breakers (one for reads, one for writes,
//! counting only faults of the tier), stale marks for keys whose write failed, counters and
//! logs.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_tier::{
    Health, InvalidationSink, KeyPattern, Lookup, Stored, Subscription, Tier, TierError, TierWrite,
    WriteIntent,
};

use crate::breaker::{Admission, Breaker, BreakerConfig, BreakerState, Transition};
use crate::stale::StaleMarks;
use crate::tier_stats::{Outcome, TierCounters, TierStats};

/// The longest `close` may take per tier (a flush of acknowledged writes).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(60);

/// How one tier sits in the stack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerOptions {
    /// The longest this tier keeps an entry.
    pub(crate) ttl: Option<Duration>,
    /// Deadline for each operation.
    pub(crate) timeout: Duration,
    pub(crate) breaker: BreakerConfig,
}

pub(crate) struct Layer {
    tier: Arc<dyn Tier>,
    /// Unique within the stack (`redb`, `redb-2`).
    name: String,
    options: LayerOptions,
    reads: Breaker,
    writes: Breaker,
    stale: StaleMarks,
    counters: TierCounters,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics_export::LayerMetrics,
}

/// Which breaker judges an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

impl Layer {
    pub(crate) fn new(tier: Arc<dyn Tier>, name: String, options: LayerOptions) -> Self {
        Layer {
            #[cfg(feature = "metrics")]
            metrics: crate::metrics_export::LayerMetrics::new(&name),
            tier,
            name,
            reads: Breaker::new(options.breaker),
            writes: Breaker::new(options.breaker),
            stale: StaleMarks::new(options.ttl),
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
        self.counters
            .snapshot(&self.name, self.reads.state(), self.writes.state())
    }

    pub(crate) fn record_promotion(&self) {
        self.counters.record_promotion();
    }

    pub(crate) fn record_corrupt(&self) {
        self.counters.record_corrupt();
        #[cfg(feature = "metrics")]
        self.metrics.corrupt();
    }

    /// Whether this tier may hold a stale value of `key` (a write of it failed here).
    pub(crate) fn is_stale(&self, key: &str) -> bool {
        self.stale.is_stale(key)
    }

    /// The tier may hold an old value of `key` (a write or fill of it may still land): reads
    /// skip it there until a later update or delete of it succeeds.
    pub(crate) fn mark_stale(&self, key: &str) {
        self.stale.mark_key(key);
    }

    /// The tier may hold old values of keys `pattern` covers (`None`: every key).
    pub(crate) fn mark_stale_matching(&self, pattern: Option<&KeyPattern>) {
        match pattern {
            Some(pattern) => self.stale.mark_pattern(pattern),
            None => self.stale.mark_all(),
        }
    }

    /// The longest one operation on this tier may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.options.timeout
    }

    /// A fill of a stale-marked key landed and its fence held: the tier holds a current value.
    pub(crate) fn refreshed(&self, key: &str) {
        self.stale.clear_key(key);
    }

    /// A read. Never an error: a failing, slow or skipped tier answers a degraded miss, and so
    /// does a key this tier may hold a stale value of.
    pub(crate) async fn get(&self, key: &str) -> Lookup {
        if self.stale.is_stale(key) {
            self.counters.record(Outcome::Skipped, false, None);
            return Lookup::Degraded(stale_entry());
        }
        if !self.admit(Kind::Read) {
            return Lookup::Degraded(open_circuit());
        }
        let started = Instant::now();
        let answer = match tokio::time::timeout(self.options.timeout, self.tier.get(key)).await {
            Ok(answer) => answer,
            Err(_) => Lookup::Degraded(TierError::Timeout(self.options.timeout)),
        };
        let (outcome, fault) = read_outcome(&answer);
        self.settle(Kind::Read, outcome, fault, started.elapsed());
        if let Lookup::Degraded(error) = &answer {
            tracing::debug!(tier = %self.name, %key, %error, "tier read degraded");
        }
        answer
    }

    /// Reads many keys in one batch; stale-marked keys answer degraded without being asked.
    pub(crate) async fn get_many(&self, keys: &[&str]) -> Vec<Lookup> {
        let mut answers: Vec<Option<Lookup>> = keys
            .iter()
            .map(|key| {
                self.stale.is_stale(key).then(|| {
                    self.counters.record(Outcome::Skipped, false, None);
                    Lookup::Degraded(stale_entry())
                })
            })
            .collect();
        let asked: Vec<&str> = keys
            .iter()
            .zip(&answers)
            .filter(|(_, answer)| answer.is_none())
            .map(|(key, _)| *key)
            .collect();
        if !asked.is_empty() {
            let got = if !self.admit(Kind::Read) {
                asked
                    .iter()
                    .map(|_| Lookup::Degraded(open_circuit()))
                    .collect()
            } else {
                let started = Instant::now();
                let got =
                    match tokio::time::timeout(self.options.timeout, self.tier.get_many(&asked))
                        .await
                    {
                        Ok(got) if got.len() == asked.len() => got,
                        Ok(got) => {
                            let error =
                                format!("get_many answered {} of {}", got.len(), asked.len());
                            asked
                                .iter()
                                .map(|_| Lookup::Degraded(TierError::Unavailable(error.clone())))
                                .collect()
                        }
                        Err(_) => asked
                            .iter()
                            .map(|_| Lookup::Degraded(TierError::Timeout(self.options.timeout)))
                            .collect(),
                    };
                // One breaker verdict for the batch; the counters count each answer.
                let mut fault = false;
                for answer in &got {
                    let (each, faulty) = read_outcome(answer);
                    fault |= faulty;
                    self.counters.record(each, false, None);
                }
                self.settle_breaker(Kind::Read, fault);
                self.counters.record_latency(started.elapsed());
                got
            };
            let mut got = got.into_iter();
            for slot in answers.iter_mut().filter(|a| a.is_none()) {
                *slot = got.next();
            }
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or(Lookup::Miss))
            .collect()
    }

    /// An update: replaces the value. A failure marks the key stale here; a success clears
    /// the mark.
    pub(crate) async fn set(
        &self,
        key: &str,
        frame: Bytes,
        ttl: Option<Duration>,
    ) -> Result<Stored, TierError> {
        let result = self
            .guarded("set", self.tier.set(key, frame, ttl, WriteIntent::Update))
            .await;
        self.track(key, result.is_ok());
        result
    }

    /// A fill: a copy of a value read elsewhere. Insert-if-absent where the tier can, except
    /// for a stale-marked key, whose old value must be replaced.
    pub(crate) async fn fill(
        &self,
        key: &str,
        frame: Bytes,
        ttl: Option<Duration>,
    ) -> Result<Stored, TierError> {
        let intent = if self.stale.is_stale(key) {
            WriteIntent::Update
        } else {
            WriteIntent::Fill
        };
        self.guarded("fill", self.tier.set(key, frame, ttl, intent))
            .await
    }

    /// Updates many keys in one batch, with per-item results and stale marks.
    pub(crate) async fn set_many(&self, writes: Vec<TierWrite>) -> Vec<Result<Stored, TierError>> {
        let keys: Vec<String> = writes.iter().map(|w| w.key.clone()).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.write_batch("set_many", &keys, self.tier.set_many(writes))
            .await
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<bool, TierError> {
        let result = self.guarded("delete", self.tier.delete(key)).await;
        self.track(key, result.is_ok());
        result
    }

    /// Deletes many keys in one batch, with per-item results and stale marks.
    pub(crate) async fn delete_many(&self, keys: &[&str]) -> Vec<Result<bool, TierError>> {
        self.write_batch("delete_many", keys, self.tier.delete_many(keys))
            .await
    }

    /// A batch of writes or deletes of `keys` under the write breaker and the timeout: each
    /// item is counted and marks or clears its key's stale mark; the breaker gets one verdict.
    async fn write_batch<T>(
        &self,
        operation: &'static str,
        keys: &[&str],
        work: impl Future<Output = Vec<Result<T, TierError>>>,
    ) -> Vec<Result<T, TierError>> {
        let count = keys.len();
        let results = if !self.admit(Kind::Write) {
            (0..count).map(|_| Err(open_circuit())).collect()
        } else {
            let started = Instant::now();
            let results = match tokio::time::timeout(self.options.timeout, work).await {
                Ok(results) if results.len() == count => results,
                Ok(results) => {
                    let error = format!("{operation} answered {} of {count}", results.len());
                    (0..count)
                        .map(|_| Err(TierError::Unavailable(error.clone())))
                        .collect()
                }
                Err(_) => (0..count)
                    .map(|_| Err(TierError::Timeout(self.options.timeout)))
                    .collect(),
            };
            let mut fault = false;
            for result in &results {
                let (each, faulty) = write_outcome(result);
                fault |= faulty;
                self.counters.record(each, true, None);
            }
            self.counters.record_latency(started.elapsed());
            self.settle_breaker(Kind::Write, fault);
            if let Some(Err(error)) = results.iter().find(|r| r.is_err()) {
                tracing::warn!(tier = %self.name, operation, %error, "tier batch item failed");
            }
            results
        };
        for (key, result) in keys.iter().zip(&results) {
            self.track(key, result.is_ok());
        }
        results
    }

    /// After an update or delete of `key` here: a success means the tier holds nothing old;
    /// a failure means it may.
    fn track(&self, key: &str, succeeded: bool) {
        if succeeded {
            self.stale.clear_key(key);
        } else {
            self.stale.mark_key(key);
        }
    }

    /// Undoes a fill that raced with a write. A failure marks the key stale here.
    pub(crate) async fn undo_fill(&self, key: &str) {
        if let Err(error) = self.delete(key).await {
            tracing::warn!(tier = %self.name, %key, %error, "could not undo a fill that raced with a write; the key is skipped here until rewritten");
        }
    }

    pub(crate) async fn delete_matching(&self, pattern: &KeyPattern) -> Result<u64, TierError> {
        let result = self
            .guarded("delete_matching", self.tier.delete_matching(pattern))
            .await;
        match &result {
            Ok(_) => self.stale.clear_pattern(pattern),
            Err(_) => self.stale.mark_pattern(pattern),
        }
        result
    }

    pub(crate) async fn clear(&self) -> Result<(), TierError> {
        let result = self.guarded("clear", self.tier.clear()).await;
        match &result {
            Ok(()) => self.stale.clear_all(),
            Err(_) => self.stale.mark_all(),
        }
        result
    }

    /// Flushes and closes the tier (not under the breaker; under a long deadline).
    pub(crate) async fn close(&self) -> Result<(), TierError> {
        match tokio::time::timeout(CLOSE_TIMEOUT, self.tier.close()).await {
            Ok(result) => result,
            Err(_) => Err(TierError::Timeout(CLOSE_TIMEOUT)),
        }
    }

    pub(crate) fn subscribe(&self, sink: Arc<dyn InvalidationSink>) -> Option<Subscription> {
        self.tier.subscribe(sink)
    }

    /// The tier's own health, with the breakers' view and stale marks folded in.
    pub(crate) async fn health(&self) -> Health {
        let reported = match tokio::time::timeout(self.options.timeout, self.tier.health()).await {
            Ok(health) => health,
            Err(_) => Health::Down(format!(
                "health check timed out after {:?}",
                self.options.timeout
            )),
        };
        let mut notes = Vec::new();
        for (what, state) in [("read", self.reads.state()), ("write", self.writes.state())] {
            if state != BreakerState::Closed {
                notes.push(format!("{what} circuit breaker {}", state.label()));
            }
        }
        if self.stale.any() {
            notes.push("some keys are skipped after failed writes".to_owned());
        }
        match reported {
            Health::Down(reason) => Health::Down(reason),
            Health::Healthy if notes.is_empty() => Health::Healthy,
            Health::Healthy => Health::Degraded(notes.join("; ")),
            Health::Degraded(reason) => {
                notes.insert(0, reason);
                Health::Degraded(notes.join("; "))
            }
        }
    }

    /// A write or invalidation under the timeout and the write breaker.
    async fn guarded<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T, TierError>>,
    ) -> Result<T, TierError> {
        if !self.admit(Kind::Write) {
            return Err(open_circuit());
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(self.options.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(TierError::Timeout(self.options.timeout)),
        };
        let (outcome, fault) = write_outcome(&result);
        self.settle(Kind::Write, outcome, fault, started.elapsed());
        if let Err(error) = &result {
            tracing::warn!(tier = %self.name, operation, %error, "tier operation failed");
        }
        result
    }

    fn breaker(&self, kind: Kind) -> &Breaker {
        match kind {
            Kind::Read => &self.reads,
            Kind::Write => &self.writes,
        }
    }

    /// Asks the breaker whether to send a request (a half-open circuit lets one probe through).
    fn admit(&self, kind: Kind) -> bool {
        let (admission, transition) = self.breaker(kind).admit(Instant::now());
        self.log(kind, transition);
        match admission {
            Admission::Allowed | Admission::Probe => true,
            Admission::Rejected => {
                self.counters
                    .record(Outcome::Skipped, kind == Kind::Write, None);
                #[cfg(feature = "metrics")]
                self.metrics.outcome(Outcome::Skipped, None);
                false
            }
        }
    }

    fn settle(&self, kind: Kind, outcome: Outcome, fault: bool, elapsed: Duration) {
        self.counters
            .record(outcome, kind == Kind::Write, Some(elapsed));
        #[cfg(feature = "metrics")]
        self.metrics.outcome(outcome, Some(elapsed));
        self.settle_breaker(kind, fault);
    }

    /// Only faults of the tier count against its breaker; a request error (a value too large,
    /// a corrupt entry) is a success as far as the tier's health goes.
    fn settle_breaker(&self, kind: Kind, fault: bool) {
        let breaker = self.breaker(kind);
        let transition = if fault {
            breaker.on_failure(Instant::now())
        } else {
            breaker.on_success()
        };
        self.log(kind, transition);
    }

    fn log(&self, kind: Kind, transition: Option<Transition>) {
        if let Some(Transition { from, to }) = transition {
            let side = match kind {
                Kind::Read => "read",
                Kind::Write => "write",
            };
            #[cfg(feature = "metrics")]
            self.metrics.breaker(to);
            match to {
                BreakerState::Open => tracing::warn!(
                    tier = %self.name, side, from = from.label(), to = to.label(),
                    "circuit breaker opened: skipping the tier"
                ),
                _ => tracing::info!(
                    tier = %self.name, side, from = from.label(), to = to.label(),
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

/// How a read's answer counts, and whether it was a fault of the tier.
fn read_outcome(answer: &Lookup) -> (Outcome, bool) {
    match answer {
        Lookup::Hit(_) => (Outcome::Hit, false),
        Lookup::Miss => (Outcome::Miss, false),
        Lookup::Degraded(error @ TierError::Timeout(_)) => (Outcome::Timeout, error.is_fault()),
        Lookup::Degraded(error) => (Outcome::Error, error.is_fault()),
    }
}

/// How a write's result counts, and whether it was a fault of the tier.
fn write_outcome<T>(result: &Result<T, TierError>) -> (Outcome, bool) {
    match result {
        Ok(_) => (Outcome::Written, false),
        Err(error @ TierError::Timeout(_)) => (Outcome::Timeout, error.is_fault()),
        Err(error) => (Outcome::Error, error.is_fault()),
    }
}

fn open_circuit() -> TierError {
    TierError::Unavailable("circuit breaker open".into())
}

fn stale_entry() -> TierError {
    TierError::Unavailable("skipped: the tier may hold a stale value after a failed write".into())
}
