//! Time for TTLs: millisecond ticks since the cache was built, read from a fast TSC-backed
//! clock (quanta) that tests can replace with a mock. The mock's atomics are `std`'s even under
//! loom: time is not part of any model.
//!
//! Ticks start at 1 so that a deadline of `0` can mean "never expires". Deadlines round down to
//! the millisecond: an entry may expire up to 1 ms early, never late.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::node::EXPIRE_MASK;

/// The clock a cache reads. [`Clock::default`] is the real one; [`Clock::mock`] gives one that
/// only moves when told, for tests of TTL behaviour.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    /// The TSC through quanta: a few nanoseconds a read.
    #[cfg(not(strata_loom))]
    Real(quanta::Clock),
    /// quanta does not build under loom; loom builds read `std::time::Instant`.
    #[cfg(strata_loom)]
    Real,
    /// Nanoseconds set by a [`MockClock`].
    Mock(Arc<AtomicU64>),
}

impl Default for Source {
    fn default() -> Self {
        #[cfg(not(strata_loom))]
        return Source::Real(quanta::Clock::new());
        #[cfg(strata_loom)]
        return Source::Real;
    }
}

/// The handle that moves a mocked [`Clock`].
#[derive(Clone, Debug)]
pub struct MockClock {
    nanos: Arc<AtomicU64>,
}

impl Clock {
    /// A clock that stands still until the returned [`MockClock`] advances it.
    pub fn mock() -> (Clock, MockClock) {
        let nanos = Arc::new(AtomicU64::new(0));
        let clock = Clock {
            source: Source::Mock(Arc::clone(&nanos)),
        };
        (clock, MockClock { nanos })
    }
}

impl MockClock {
    /// Moves the mocked clock forward.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(by, Ordering::Relaxed);
    }
}

/// A [`Clock`] anchored at the moment a cache was built.
pub(crate) enum Ticks {
    #[cfg(not(strata_loom))]
    Real(quanta::Clock, quanta::Instant),
    #[cfg(strata_loom)]
    Real(std::time::Instant),
    Mock(Arc<AtomicU64>, u64),
}

const NANOS_PER_TICK: u128 = 1_000_000;

impl Ticks {
    pub(crate) fn new(clock: Clock) -> Self {
        match clock.source {
            #[cfg(not(strata_loom))]
            Source::Real(clock) => {
                let start = clock.now();
                Ticks::Real(clock, start)
            }
            #[cfg(strata_loom)]
            Source::Real => Ticks::Real(std::time::Instant::now()),
            Source::Mock(nanos) => {
                let start = nanos.load(Ordering::Relaxed);
                Ticks::Mock(nanos, start)
            }
        }
    }

    fn elapsed_nanos(&self) -> u128 {
        match self {
            #[cfg(not(strata_loom))]
            Ticks::Real(clock, start) => clock.now().saturating_duration_since(*start).as_nanos(),
            #[cfg(strata_loom)]
            Ticks::Real(start) => start.elapsed().as_nanos(),
            Ticks::Mock(nanos, start) => u128::from(nanos.load(Ordering::Relaxed) - start),
        }
    }

    /// The current tick (always `>= 1`).
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        to_tick(self.elapsed_nanos() / NANOS_PER_TICK + 1)
    }

    /// The deadline tick of an entry inserted now with time to live `ttl`.
    pub(crate) fn deadline(&self, ttl: Duration) -> u64 {
        to_tick((self.elapsed_nanos() + ttl.as_nanos()) / NANOS_PER_TICK + 1)
    }

    /// The time left before `deadline` (zero when passed).
    pub(crate) fn remaining(&self, deadline: u64) -> Duration {
        let now = self.elapsed_nanos();
        let end = u128::from(deadline - 1) * NANOS_PER_TICK;
        Duration::from_nanos(end.saturating_sub(now).min(u64::MAX as u128) as u64)
    }
}

/// Clamps a tick into the 40 bits a node stores (about 34 years of milliseconds).
fn to_tick(tick: u128) -> u64 {
    tick.min(EXPIRE_MASK as u128) as u64
}

/// Milliseconds per unit of the time to idle: a node keeps the unit of its last read in 32 bits,
/// which wrap after about 198 days.
const MILLIS_PER_IDLE_UNIT: u64 = 4;

/// Longest time to idle, in units: half the wrap, so that a unit difference is unambiguous.
const MAX_IDLE_UNITS: u32 = u32::MAX / 2;

/// The idle unit of tick `now` (wrapping).
#[inline]
pub(crate) fn idle_unit(now: u64) -> u32 {
    (now / MILLIS_PER_IDLE_UNIT) as u32
}

/// A time to idle in idle units, rounded down (an entry idles out up to two units, 8 ms, early,
/// never late), at least one and at most [`MAX_IDLE_UNITS`] (about 99 days).
pub(crate) fn idle_units(tti: Duration) -> u32 {
    let units = tti.as_millis() / u128::from(MILLIS_PER_IDLE_UNIT);
    units.clamp(1, u128::from(MAX_IDLE_UNITS)) as u32
}

/// The length of `units` idle units.
pub(crate) fn idle_duration(units: u32) -> Duration {
    Duration::from_millis(u64::from(units) * MILLIS_PER_IDLE_UNIT)
}

/// Whether an entry with metadata deadline `deadline` is expired at tick `now`.
#[inline]
pub(crate) fn is_expired(deadline: u64, now: u64) -> bool {
    deadline != 0 && now >= deadline
}

#[cfg(all(test, not(strata_loom)))]
mod tests {
    use super::*;

    #[test]
    fn deadlines_never_late_at_most_one_tick_early() {
        let (clock, mock) = Clock::mock();
        let ticks = Ticks::new(clock);
        mock.advance(Duration::from_micros(900));
        let deadline = ticks.deadline(Duration::from_millis(1));
        assert!(!is_expired(deadline, ticks.now()));
        mock.advance(Duration::from_micros(1000));
        assert!(
            is_expired(deadline, ticks.now()),
            "must be expired once the TTL has passed"
        );
        assert_eq!(ticks.remaining(deadline), Duration::ZERO);
        assert!(!is_expired(0, u64::MAX >> 30), "0 means never");
    }
}
