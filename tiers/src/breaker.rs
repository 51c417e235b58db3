//! A circuit breaker per tier: after enough consecutive failures the tier is skipped for a
//! back-off period, then one probe request is let through; its outcome closes the circuit or
//! opens it again for twice as long (up to a ceiling).
//!
//! The breaker only guards lower tiers, whose operations cost micro- to milliseconds, so a
//! mutex around its small state is cheap next to them; the L1 path never touches it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BreakerConfig {
    /// Consecutive failures (errors, timeouts, degraded reads) that open the circuit.
    pub failure_threshold: u32,
    /// How long the circuit stays open the first time before a probe.
    #[serde(with = "humantime_serde")]
    pub open_for: Duration,
    /// The ceiling for the doubling back-off while probes keep failing.
    #[serde(with = "humantime_serde")]
    pub max_open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_for: Duration::from_secs(1),
            max_open_for: Duration::from_secs(30),
        }
    }
}

/// The state a breaker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests are skipped until the back-off ends.
    Open,
    /// One probe is in flight; other requests are skipped until it settles.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half-open`.
    pub fn label(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

/// Whether a request may go to the tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Go ahead.
    Allowed,
    /// Go ahead: this request is the half-open probe.
    Probe,
    /// Skip the tier.
    Rejected,
}

/// A state change, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) from: BreakerState,
    pub(crate) to: BreakerState,
}

#[derive(Debug)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
        backoff: Duration,
    },
    /// A probe went out at `since`. If it never reports back (its caller was cancelled),
    /// another probe is let through once `backoff` has passed again.
    HalfOpen {
        backoff: Duration,
        since: Instant,
    },
}

#[derive(Debug)]
pub(crate) struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

impl Breaker {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        Breaker {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to send a request at `now`. An open circuit whose back-off has ended lets exactly
    /// one probe through.
    pub(crate) fn admit(&self, now: Instant) -> (Admission, Option<Transition>) {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => (Admission::Allowed, None),
            State::HalfOpen { backoff, since } => {
                if now < since + backoff {
                    (Admission::Rejected, None)
                } else {
                    *state = State::HalfOpen {
                        backoff,
                        since: now,
                    };
                    (Admission::Probe, None)
                }
            }
            State::Open { until, backoff } => {
                if now < until {
                    (Admission::Rejected, None)
                } else {
                    *state = State::HalfOpen {
                        backoff,
                        since: now,
                    };
                    (
                        Admission::Probe,
                        Some(Transition {
                            from: BreakerState::Open,
                            to: BreakerState::HalfOpen,
                        }),
                    )
                }
            }
        }
    }

    /// Records a request that succeeded.
    pub(crate) fn on_success(&self) -> Option<Transition> {
        let mut state = self.lock();
        let from = match *state {
            State::Closed { .. } => None,
            State::HalfOpen { .. } => Some(BreakerState::HalfOpen),
            // A request admitted before the circuit opened: it proves the tier answers, but
            // the probe decides; leave the back-off alone.
            State::Open { .. } => return None,
        };
        *state = State::Closed { failures: 0 };
        from.map(|from| Transition {
            from,
            to: BreakerState::Closed,
        })
    }

    /// Records a request that failed at `now`.
    pub(crate) fn on_failure(&self, now: Instant) -> Option<Transition> {
        let mut state = self.lock();
        match *state {
            State::Closed { failures } => {
                let failures = failures + 1;
                if failures >= self.config.failure_threshold.max(1) {
                    *state = State::Open {
                        until: now + self.config.open_for,
                        backoff: self.config.open_for,
                    };
                    Some(Transition {
                        from: BreakerState::Closed,
                        to: BreakerState::Open,
                    })
                } else {
                    *state = State::Closed { failures };
                    None
                }
            }
            State::HalfOpen { backoff, .. } => {
                let backoff = (backoff * 2).min(self.config.max_open_for.max(self.config.open_for));
                *state = State::Open {
                    until: now + backoff,
                    backoff,
                };
                Some(Transition {
                    from: BreakerState::HalfOpen,
                    to: BreakerState::Open,
                })
            }
            State::Open { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_secs(1),
            max_open_for: Duration::from_secs(3),
        })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker();
        let t = Instant::now();
        assert_eq!(b.on_failure(t), None);
        assert_eq!(b.on_failure(t), None);
        assert_eq!(b.on_success(), None);
        assert_eq!(b.on_failure(t), None);
        assert_eq!(b.on_failure(t), None);
        assert_eq!(b.state(), BreakerState::Closed);
        let opened = b.on_failure(t).unwrap();
        assert_eq!(
            (opened.from, opened.to),
            (BreakerState::Closed, BreakerState::Open)
        );
        assert_eq!(b.admit(t).0, Admission::Rejected);
        assert_eq!(
            b.admit(t + Duration::from_millis(999)).0,
            Admission::Rejected
        );
    }

    #[test]
    fn one_probe_after_backoff_then_closes_on_success() {
        let b = breaker();
        let t = Instant::now();
        (0..3).for_each(|_| {
            b.on_failure(t);
        });
        let later = t + Duration::from_secs(1);
        assert_eq!(b.admit(later).0, Admission::Probe);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.admit(later).0, Admission::Rejected, "one probe at a time");
        let closed = b.on_success().unwrap();
        assert_eq!(closed.to, BreakerState::Closed);
        assert_eq!(b.admit(later).0, Admission::Allowed);
    }

    #[test]
    fn a_lost_probe_is_replaced_after_the_backoff() {
        let b = breaker();
        let t = Instant::now();
        (0..3).for_each(|_| {
            b.on_failure(t);
        });
        let probe_at = t + Duration::from_secs(1);
        assert_eq!(b.admit(probe_at).0, Admission::Probe);
        // The probe's caller was cancelled and never reports.
        assert_eq!(
            b.admit(probe_at + Duration::from_millis(500)).0,
            Admission::Rejected
        );
        assert_eq!(
            b.admit(probe_at + Duration::from_secs(1)).0,
            Admission::Probe
        );
    }

    #[test]
    fn failed_probes_double_the_backoff_up_to_the_ceiling() {
        let b = breaker();
        let mut t = Instant::now();
        (0..3).for_each(|_| {
            b.on_failure(t);
        });
        for expected in [2, 3, 3] {
            t += Duration::from_secs(10);
            assert_eq!(b.admit(t).0, Admission::Probe);
            assert_eq!(b.on_failure(t).unwrap().to, BreakerState::Open);
            let just_before = t + Duration::from_secs(expected) - Duration::from_millis(1);
            assert_eq!(b.admit(just_before).0, Admission::Rejected);
        }
    }
}
