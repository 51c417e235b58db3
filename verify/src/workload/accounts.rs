//! The cache a run stresses, and the accounting steps of its quiet points (see
//! [`crate::accounting`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use strata_engine::Cache;

use super::{Config, StressValue};
use crate::accounting::{audit, settle, Audit, Ledger, Point, Presence, Sabotage, Span, Tally};
use crate::history::value_id;
use crate::report::{Failure, Findings};

/// With [`Config::weighted`]: most one entry may weigh; values weigh 0 to 9 by id, so about one
/// in ten is too heavy to store.
pub const MAX_ENTRY_WEIGHT: u64 = 8;
/// With [`Config::weighted`]: `max_weight` is the capacity times this (about the mean weight),
/// so that the weight and the count bound both bite.
pub const WEIGHT_PER_ENTRY: u64 = 4;

/// A value's weight in weighted runs: 0 to 9, from its id.
pub fn weight_of(id: u64) -> u32 {
    (super::SplitMix::new(id).next_u64() % 10) as u32
}

/// The cache `config` describes. With accounting (`V::ACCOUNTED`), a listener records every
/// report in the reported value's ledger, broken as [`Config::sabotage`] says.
pub(super) fn build<V: StressValue>(config: &Config) -> Cache<u64, V> {
    let mut builder = Cache::<u64, V>::builder().max_capacity(config.capacity);
    if config.weighted {
        builder = builder
            .weigher(|_, value: &V| weight_of(value.id()))
            .max_weight(config.max_weight())
            .max_entry_weight(MAX_ENTRY_WEIGHT);
    }
    if let Some(ttl) = config.ttl {
        builder = builder.time_to_live(ttl);
    }
    if V::ACCOUNTED {
        let fault = config
            .sabotage
            .filter(|s| matches!(s, Sabotage::DropReport | Sabotage::DoubleReport));
        let fired = AtomicBool::new(false);
        builder = builder.eviction_listener(move |_, value: &V, cause| {
            if fault.is_some() && !fired.swap(true, Ordering::Relaxed) {
                if fault == Some(Sabotage::DropReport) {
                    return;
                }
                value.reported(cause);
            }
            value.reported(cause);
        });
    }
    builder.build()
}

/// Ids of every value in the table, expired entries not yet reclaimed included: `retain`
/// visits them all and keeps them all, touching no frequency counter.
pub(super) fn table_ids<V: StressValue>(cache: &Cache<u64, V>) -> Vec<u64> {
    let mut ids = Vec::new();
    cache.retain(|_, value| {
        ids.push(value.id());
        true
    });
    ids
}

/// Accounting found so far in a run.
#[derive(Default)]
pub(super) struct Accounts {
    pub(super) tally: Tally,
}

impl Accounts {
    /// Records what `audit` found at `point` of `round`.
    pub(super) fn record(&mut self, found: &mut Findings, round: u64, point: Point, audit: Audit) {
        self.tally.add(&audit.tally);
        for discrepancy in audit.discrepancies {
            found.record_quiescent(|| Failure::Accounting {
                round,
                point,
                discrepancy,
            });
        }
    }

    /// The quiet-point audit of `ledger`: the table as the workers left it. Also checks that
    /// `len()` equals the entries in the table (expired ones included, which `len` counts).
    pub(super) fn quiet<V: StressValue>(
        &mut self,
        found: &mut Findings,
        cache: &Cache<u64, V>,
        ledger: &Ledger,
    ) {
        let round = ledger.round();
        let ids = table_ids(cache);
        let len = cache.len();
        if ids.len() != len {
            found.record_quiescent(|| Failure::Count {
                round,
                len,
                live: ids.len(),
                after_clear: false,
            });
        }
        let audit = audit(ledger, Presence::Table(&ids), false);
        self.record(found, round, Point::Quiet, audit);
    }

    /// The audit once the round's cache was cleared: waits for the epoch collector to drop
    /// every instance of the round (the ledger's only remaining handle is then the caller's),
    /// then checks every value was reported exactly once and dropped exactly once.
    pub(super) fn drained<V: StressValue>(
        &mut self,
        found: &mut Findings,
        cache: &Cache<u64, V>,
        ledger: &Arc<Ledger>,
    ) {
        settle(|| Arc::strong_count(ledger) == 1);
        let ids = table_ids(cache);
        let audit = audit(ledger, Presence::Table(&ids), true);
        self.record(found, ledger.round(), Point::Drained, audit);
    }

    /// After the last round: fills the cache once more (one value per key, written by the
    /// main thread as thread `config.threads`), audits it, drops the cache with its entries and
    /// checks each of them was dropped exactly once and never reported.
    pub(super) fn fill_and_drop<V: StressValue>(
        &mut self,
        found: &mut Findings,
        cache: Cache<u64, V>,
        config: &Config,
        round: u64,
    ) {
        let mut spans = vec![
            Span {
                first_seq: 0,
                count: 0,
            };
            config.threads
        ];
        spans.push(Span {
            first_seq: 0,
            count: config.keys,
        });
        let ledger = Arc::new(Ledger::new(round, &spans));
        for key in 0..config.keys {
            let id = value_id(config.threads as u32, key);
            let stored = cache.try_insert(key, V::make(id, Some(&ledger))).is_ok();
            ledger.settle_fate(id, key, stored);
        }
        self.quiet(found, &cache, &ledger);
        drop(cache);
        settle(|| Arc::strong_count(&ledger) == 1);
        let audit = audit(&ledger, Presence::CacheDropped, true);
        self.record(found, round, Point::CacheDropped, audit);
    }
}
