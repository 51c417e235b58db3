//! The read path: one read transaction for one key or many, each record checked.
//!
//! These functions block (redb reads the file, or its page cache); `tier.rs` runs them on
//! tokio's blocking pool, never on a runtime worker thread.

use bytes::Bytes;
use redb::{Database, ReadableDatabase};

use crate::expiry;
use crate::record;
use crate::schema::{TICKS, VALUES};

/// What the file holds for one key.
#[derive(Debug)]
pub(crate) enum Found {
    /// An intact, unexpired record: its value and current recency tick.
    Hit { value: Bytes, tick: u64 },
    /// No entry, or an expired one.
    Miss,
    /// The record failed its checks; the reason.
    Corrupt(String),
}

/// Reads `keys` in one read transaction.
pub(crate) fn read(db: &Database, keys: &[String], now: u64) -> Result<Vec<Found>, redb::Error> {
    let txn = db.begin_read()?;
    let table = txn.open_table(VALUES)?;
    let ticks = txn.open_table(TICKS)?;
    let mut found = Vec::with_capacity(keys.len());
    for key in keys {
        let answer = match table.get(key.as_str())? {
            None => Found::Miss,
            Some(record) => match record::decode(key, record.value()) {
                Ok(decoded) if expiry::is_expired(decoded.header.expiry_ms, now) => Found::Miss,
                Ok(decoded) => Found::Hit {
                    value: Bytes::copy_from_slice(decoded.value),
                    tick: ticks
                        .get(key.as_str())?
                        .map_or(decoded.header.tick, |t| t.value()),
                },
                Err(error) => Found::Corrupt(error.to_string()),
            },
        };
        found.push(answer);
    }
    Ok(found)
}
