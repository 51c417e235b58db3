//! Keeping live bytes under `max_size`: expired entries go first, then the least recently used,
//! by an approximate LRU.
//!
//! Every entry has a recency tick (its row in the ticks table), taken from a counter that
//! advances on each write; the recency index orders entries by tick, so the oldest tick is the
//! eviction victim. A read hit does not write: it asks the writer (best effort, through a
//! bounded channel) to move the entry to a fresh tick, and only if the entry sits in the older
//! three quarters of the order ([`wants_touch`]). The move rewrites the entry's ticks row and
//! recency index row only, never its record, so a hit on a large value costs two small rows. An
//! entry read now and again stays near the young end, a burst of hits on one entry costs one
//! update, and recency updates are dropped, not waited for, when the writer is behind. The order is exact LRU over writes and recorded hits, and approximate over hits that
//! were skipped or dropped.
//!
//! When a commit would leave live bytes above `max_size`, the same transaction purges every
//! expired entry and then evicts from the old end until live bytes are 1/32 under `max_size`, so
//! the bound holds at every commit and a full tier does not evict on every write.

use redb::{ReadableTable, StorageError};

use crate::purge::purge_expired;
use crate::schema::Meta;
use crate::store::Tables;

/// Whether a hit on an entry with recency `tick` should ask for a recency update: it is not
/// among the youngest quarter of `entries` ticks below `next_tick`.
pub(crate) fn wants_touch(tick: u64, next_tick: u64, entries: u64) -> bool {
    let young = (entries / 4).max(16);
    tick.saturating_add(young) < next_tick
}

/// What enforcing the bound removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Evicted {
    /// Expired entries purged to make room.
    pub expired: u64,
    /// Unexpired entries evicted.
    pub evicted: u64,
}

/// If live bytes exceed `max_size`, removes expired entries, then the least recently used,
/// until live bytes are at most `target`.
pub(crate) fn enforce_bound(
    tables: &mut Tables<'_>,
    meta: &mut Meta,
    now: u64,
    max_size: u64,
    target: u64,
) -> Result<Evicted, StorageError> {
    let mut done = Evicted::default();
    if meta.live_bytes <= max_size {
        return Ok(done);
    }
    done.expired = purge_expired(tables, meta, now, usize::MAX)?.removed;
    while meta.live_bytes > target {
        let oldest = tables.access.pop_first()?.map(|(index_key, _)| {
            let (tick, key) = index_key.value();
            (tick, key.to_owned())
        });
        match oldest {
            Some((tick, key)) => {
                done.evicted += u64::from(tables.remove_if_tick(meta, &key, tick, now)?);
            }
            None => {
                // The recency index ran out while the counters still say the tier is over its
                // bound: entries whose headers were unreadable left no index entry. Evict in key
                // order so that the bound holds anyway.
                let first = tables
                    .values
                    .first()?
                    .map(|(key, _)| key.value().to_owned());
                let Some(key) = first else {
                    // Nothing left at all: the counters were wrong; the table is the truth.
                    meta.live_bytes = 0;
                    meta.entries = 0;
                    break;
                };
                tables.remove(meta, &key, now)?;
                done.evicted += 1;
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_older_entries_ask_for_recency_updates() {
        // 1000 entries: the youngest 250 ticks are left alone.
        assert!(!wants_touch(9_800, 10_000, 1000));
        assert!(wants_touch(9_700, 10_000, 1000));
        // Small tiers still spare the last 16 ticks.
        assert!(!wants_touch(90, 100, 4));
        assert!(wants_touch(80, 100, 4));
    }
}
