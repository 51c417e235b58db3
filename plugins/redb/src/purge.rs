//! Removing expired entries by a range scan of the expiry index, from its start (the oldest
//! expiry) up to now, in bounded batches: a purge never scans unexpired entries.
//!
//! The writer runs a purge every `purge_interval` inside its next transaction; when a purge stops
//! at its batch limit with expired entries left, the next transaction continues at once. Reads do
//! not wait for purges: they check each record's expiry themselves.

use redb::{ReadableTable, StorageError};

use crate::schema::Meta;
use crate::store::Tables;

/// Index rows read per round of a purge.
const CHUNK: usize = 256;

/// What one purge did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Purged {
    /// Entries removed.
    pub removed: u64,
    /// The limit stopped the purge with expired index rows left.
    pub more: bool,
}

/// Removes entries whose expiry is at or before `now`, visiting at most `limit` index rows.
pub(crate) fn purge_expired(
    tables: &mut Tables<'_>,
    meta: &mut Meta,
    now: u64,
    limit: usize,
) -> Result<Purged, StorageError> {
    let mut purged = Purged::default();
    let mut visited = 0;
    // (now + 1, "") is the smallest index key with a later expiry.
    let end = now.saturating_add(1);
    while visited < limit {
        let mut chunk = Vec::with_capacity(CHUNK);
        for row in tables
            .expiry
            .range::<(u64, &str)>(..(end, ""))?
            .take(CHUNK.min(limit - visited))
        {
            let (index_key, _) = row?;
            let (expiry_ms, key) = index_key.value();
            chunk.push((expiry_ms, key.to_owned()));
        }
        if chunk.is_empty() {
            return Ok(purged);
        }
        visited += chunk.len();
        for (expiry_ms, key) in &chunk {
            tables.expiry.remove((*expiry_ms, key.as_str()))?;
            purged.removed += u64::from(tables.remove_if_expired(meta, key, now)?);
        }
    }
    purged.more = tables
        .expiry
        .range::<(u64, &str)>(..(end, ""))?
        .next()
        .is_some();
    Ok(purged)
}
