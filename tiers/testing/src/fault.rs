//! A fault-injecting wrapper around any tier, for testing how a stack behaves when a tier fails,
//! stalls or returns damaged bytes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use strata_tier::{
    Capabilities, Health, InvalidationSink, KeyPattern, Lookup, Stored, Subscription, Tier,
    TierError, WriteIntent,
};

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Reads answer degraded, writes return [`TierError::Unavailable`].
    Fail,
    /// Operations are slow: a read fetches its answer and then delivers it late (as over a
    /// slow network, so the answer may be stale by then); a write waits, then runs.
    Delay(Duration),
    /// Operations never finish (until the caller's timeout drops them).
    Hang,
    /// Reads return the stored bytes with one byte flipped; writes work.
    Corrupt,
    /// Writes are refused as too large ([`TierError::TooLarge`]), a request error that is no
    /// fault of the tier; reads work.
    TooLarge,
}

/// Which operations a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ops {
    /// Reads and writes alike.
    #[default]
    All,
    /// Reads (`get`, `get_many`, `health` is never faulted by this choice).
    Reads,
    /// Writes and invalidations (`set`, `delete`, `delete_matching`, `clear`, batches).
    Writes,
}

/// When the fault applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// To every operation until healed.
    Always,
    /// To the next `n` operations, then healed.
    Next(u64),
    /// To every `n`th operation (the `n`th, `2n`th, …).
    EveryNth(u64),
    /// To each operation with probability `1 / one_in`, drawn from a seeded generator, so a
    /// run can be replayed.
    Random {
        /// The odds: a fault in one operation out of this many, on average.
        one_in: u64,
        /// The generator's seed.
        seed: u64,
    },
}

#[derive(Debug)]
struct Plan {
    fault: Fault,
    schedule: Schedule,
    ops: Ops,
    rng: u64,
}

/// Wraps a tier and injects [`Fault`]s on a [`Schedule`], switchable at runtime. Counts the
/// operations that reached it, faulty or not.
pub struct FaultyTier {
    inner: Arc<dyn Tier>,
    plan: Mutex<Option<Plan>>,
    operations: AtomicU64,
    injected: AtomicU64,
}

impl FaultyTier {
    /// Wraps `inner`, healthy to begin with.
    pub fn new(inner: Arc<dyn Tier>) -> Self {
        FaultyTier {
            inner,
            plan: Mutex::new(None),
            operations: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        }
    }

    /// Injects `fault` on `schedule` into every operation from now on.
    pub fn inject(&self, fault: Fault, schedule: Schedule) {
        self.inject_on(Ops::All, fault, schedule);
    }

    /// Injects `fault` on `schedule` into the operations `ops` names from now on.
    pub fn inject_on(&self, ops: Ops, fault: Fault, schedule: Schedule) {
        let rng = match schedule {
            Schedule::Random { seed, .. } => seed | 1,
            _ => 1,
        };
        *self.lock() = Some(Plan {
            fault,
            schedule,
            ops,
            rng,
        });
    }

    /// Stops injecting faults.
    pub fn heal(&self) {
        *self.lock() = None;
    }

    /// Operations that reached this wrapper.
    pub fn operations(&self) -> u64 {
        self.operations.load(Relaxed)
    }

    /// Operations that got a fault.
    pub fn injected(&self) -> u64 {
        self.injected.load(Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Plan>> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an operation and decides whether it gets a fault.
    fn draw(&self, is_write: bool) -> Option<Fault> {
        let nth = self.operations.fetch_add(1, Relaxed) + 1;
        let mut guard = self.lock();
        let plan = guard.as_mut()?;
        let applies = match plan.ops {
            Ops::All => true,
            Ops::Reads => !is_write,
            Ops::Writes => is_write,
        };
        if !applies {
            return None;
        }
        let fault = plan.fault;
        let fault = match &mut plan.schedule {
            Schedule::Always => Some(fault),
            Schedule::Next(left) => {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    *guard = None;
                }
                Some(fault)
            }
            Schedule::EveryNth(n) => nth.is_multiple_of((*n).max(1)).then_some(fault),
            Schedule::Random { one_in, .. } => {
                plan.rng ^= plan.rng << 13;
                plan.rng ^= plan.rng >> 7;
                plan.rng ^= plan.rng << 17;
                plan.rng.is_multiple_of((*one_in).max(1)).then_some(fault)
            }
        };
        if fault.is_some() {
            self.injected.fetch_add(1, Relaxed);
        }
        fault
    }

    /// Applies a fault to a write-like operation: `Err` to fail it, `Ok` to run it.
    async fn before_write(&self) -> Result<(), TierError> {
        match self.draw(true) {
            Some(Fault::Fail) => Err(TierError::Unavailable("injected fault".into())),
            Some(Fault::TooLarge) => Err(TierError::TooLarge { size: 0, limit: 0 }),
            Some(Fault::Delay(by)) => {
                tokio::time::sleep(by).await;
                Ok(())
            }
            Some(Fault::Hang) => std::future::pending().await,
            Some(Fault::Corrupt) | None => Ok(()),
        }
    }
}

#[async_trait]
impl Tier for FaultyTier {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, key: &str) -> Lookup {
        match self.draw(false) {
            Some(Fault::Fail) => Lookup::Degraded(TierError::Unavailable("injected fault".into())),
            Some(Fault::Delay(by)) => {
                let answer = self.inner.get(key).await;
                tokio::time::sleep(by).await;
                answer
            }
            Some(Fault::Hang) => std::future::pending().await,
            Some(Fault::Corrupt) => match self.inner.get(key).await {
                Lookup::Hit(bytes) if !bytes.is_empty() => {
                    let mut damaged = bytes.to_vec();
                    let at = damaged.len() / 2;
                    damaged[at] ^= 0xA5;
                    Lookup::Hit(Bytes::from(damaged))
                }
                other => other,
            },
            Some(Fault::TooLarge) | None => self.inner.get(key).await,
        }
    }

    async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        intent: WriteIntent,
    ) -> Result<Stored, TierError> {
        self.before_write().await?;
        self.inner.set(key, value, ttl, intent).await
    }

    async fn delete(&self, key: &str) -> Result<bool, TierError> {
        self.before_write().await?;
        self.inner.delete(key).await
    }

    async fn delete_matching(&self, pattern: &KeyPattern) -> Result<u64, TierError> {
        self.before_write().await?;
        self.inner.delete_matching(pattern).await
    }

    async fn clear(&self) -> Result<(), TierError> {
        self.before_write().await?;
        self.inner.clear().await
    }

    async fn health(&self) -> Health {
        let down = matches!(
            *self.lock(),
            Some(Plan {
                fault: Fault::Fail | Fault::Hang,
                schedule: Schedule::Always,
                ops: Ops::All,
                ..
            })
        );
        if down {
            Health::Down("injected fault".into())
        } else {
            self.inner.health().await
        }
    }

    fn subscribe(&self, sink: Arc<dyn InvalidationSink>) -> Option<Subscription> {
        self.inner.subscribe(sink)
    }

    async fn close(&self) -> Result<(), TierError> {
        self.inner.close().await
    }
}
