//! A fault-injecting wrapper around any tier, for testing how a stack behaves when a tier fails,
//! stalls or returns damaged bytes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use strata_tier::{Health, KeyPattern, Lookup, Tier, TierError};

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
}

#[derive(Debug)]
struct Plan {
    fault: Fault,
    schedule: Schedule,
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

    /// Injects `fault` on `schedule` from now on.
    pub fn inject(&self, fault: Fault, schedule: Schedule) {
        *self.lock() = Some(Plan { fault, schedule });
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
    fn draw(&self) -> Option<Fault> {
        let nth = self.operations.fetch_add(1, Relaxed) + 1;
        let mut plan = self.lock();
        let fault = match plan.as_mut()? {
            Plan {
                fault,
                schedule: Schedule::Always,
            } => Some(*fault),
            Plan {
                fault,
                schedule: Schedule::Next(left),
            } => {
                let fault = *fault;
                *left -= 1;
                if *left == 0 {
                    *plan = None;
                }
                Some(fault)
            }
            Plan {
                fault,
                schedule: Schedule::EveryNth(n),
            } => nth.is_multiple_of((*n).max(1)).then_some(*fault),
        };
        if fault.is_some() {
            self.injected.fetch_add(1, Relaxed);
        }
        fault
    }

    /// Applies a fault to a write-like operation: `Err` to fail it, `Ok` to run it.
    async fn before_write(&self) -> Result<(), TierError> {
        match self.draw() {
            Some(Fault::Fail) => Err(TierError::Unavailable("injected fault".into())),
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

    async fn get(&self, key: &str) -> Lookup {
        match self.draw() {
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
            None => self.inner.get(key).await,
        }
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<(), TierError> {
        self.before_write().await?;
        self.inner.set(key, value, ttl).await
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
            })
        );
        if down {
            Health::Down("injected fault".into())
        } else {
            self.inner.health().await
        }
    }
}
