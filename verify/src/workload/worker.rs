//! One worker thread of a round: seeded random calls on the shared cache, each recorded as an
//! [`Op`], and (with accounting) each write's fate noted in the round's [`Ledger`].

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use strata_engine::Cache;

use super::{SplitMix, StressValue};
use crate::accounting::Ledger;
use crate::history::{value_id, Kind, Op, Ticker};

/// One worker thread's view of a round.
pub(super) struct Worker<'a, V: StressValue> {
    pub(super) cache: &'a Cache<u64, V>,
    pub(super) ticker: &'a Ticker,
    /// The round's ledger, with accounting.
    pub(super) ledger: Option<&'a Arc<Ledger>>,
    /// With [`Sabotage::LeakClone`](crate::accounting::Sabotage::LeakClone): set once a worker
    /// has leaked a read's value.
    pub(super) leak_clone: Option<&'a AtomicBool>,
    pub(super) thread: u32,
    pub(super) keys: u64,
    pub(super) loaders: bool,
}

impl<V: StressValue> Worker<'_, V> {
    /// Runs `count` random operations; values written get ids `first_seq..`.
    pub(super) fn run(&self, seed: u64, count: u64, first_seq: u64) -> Vec<Op> {
        let mut rng = SplitMix::new(seed);
        let mut out = Vec::with_capacity(count as usize);
        for i in 0..count {
            // Half the calls hit the two hottest keys, for more contention per key.
            let key = if rng.below(2) == 0 {
                rng.below(self.keys.min(2))
            } else {
                rng.below(self.keys)
            };
            let id = value_id(self.thread, first_seq + i);
            let dice = rng.below(100);
            let spin = if rng.below(8) == 0 {
                rng.below(2_000)
            } else {
                0
            };
            out.push(self.ticker.walled(|| match dice {
                0..45 => self.get(key),
                45..70 => self.insert(key, id),
                70..80 => self.remove(key),
                _ if !self.loaders => self.get(key),
                _ => self.get_or_insert(key, id, spin),
            }));
        }
        out
    }

    fn op(&self, kind: Kind, key: u64, invoke: u64, respond: u64) -> Op {
        Op {
            thread: self.thread,
            kind,
            key,
            written: None,
            returned: None,
            invoke,
            respond,
            wall: None,
        }
    }

    fn get(&self, key: u64) -> Op {
        let invoke = self.ticker.tick();
        let got = self.cache.get(&key);
        let respond = self.ticker.tick();
        let returned = got.as_ref().map(V::id);
        if let (Some(value), Some(fired)) = (got, self.leak_clone) {
            if !fired.swap(true, Ordering::Relaxed) {
                std::mem::forget(value);
            }
        }
        Op {
            returned,
            ..self.op(Kind::Get, key, invoke, respond)
        }
    }

    /// An insert; one the cache refuses (too heavy) is recorded as writing nothing.
    fn insert(&self, key: u64, id: u64) -> Op {
        let value = V::make(id, self.ledger);
        let invoke = self.ticker.tick();
        let stored = self.cache.try_insert(key, value).is_ok();
        let respond = self.ticker.tick();
        if let Some(ledger) = self.ledger {
            ledger.settle_fate(id, key, stored);
        }
        Op {
            written: stored.then_some(id),
            ..self.op(Kind::Insert, key, invoke, respond)
        }
    }

    fn remove(&self, key: u64) -> Op {
        let invoke = self.ticker.tick();
        let got = self.cache.remove(&key);
        let respond = self.ticker.tick();
        Op {
            returned: got.as_ref().map(V::id),
            ..self.op(Kind::Remove, key, invoke, respond)
        }
    }

    /// `spin`: busy iterations inside the loader, so that other threads pile up behind it.
    /// With accounting, the load goes through `entry(key).or_insert_with` (the same
    /// single-flight core as `get_or_insert_with`), whose `is_fresh` tells whether the loaded
    /// value became the key's entry.
    fn get_or_insert(&self, key: u64, id: u64, spin: u64) -> Op {
        let loaded = Cell::new(false);
        let load = || {
            loaded.set(true);
            for _ in 0..spin {
                std::hint::spin_loop();
            }
            V::make(id, self.ledger)
        };
        let invoke = self.ticker.tick();
        let (got, fresh) = match self.ledger {
            Some(_) => {
                let entry = self.cache.entry(key).or_insert_with(load);
                let fresh = entry.is_fresh();
                (entry.into_value(), fresh)
            }
            None => (self.cache.get_or_insert_with(key, load), false),
        };
        let respond = self.ticker.tick();
        if let (Some(ledger), true) = (self.ledger, loaded.get()) {
            ledger.settle_fate(id, key, fresh);
        }
        Op {
            written: loaded.get().then_some(id),
            returned: Some(got.id()),
            ..self.op(Kind::GetOrInsert, key, invoke, respond)
        }
    }
}
