//! The file's tables and the counters kept beside them.
//!
//! | table | key | value | what it is for |
//! | --- | --- | --- | --- |
//! | `strata_values` | key | framed record (`record.rs`) | the entries |
//! | `strata_expiry` | (expiry ms, key) | () | purge expired entries by a range scan from the start |
//! | `strata_access` | (recency tick, key) | () | evict least recently used first |
//! | `strata_ticks` | key | recency tick | each entry's current place in `strata_access` |
//! | `strata_meta` | name | u64 | format version, live bytes, entry count, next tick |
//!
//! A read hit that bumps an entry's recency rewrites only its `strata_ticks` row and its
//! `strata_access` row, never its record (whose header keeps the tick of its write).
//!
//! The counters in `strata_meta` change in the same transaction as the entries, so they are
//! exact after any crash and need no scan at open.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// key -> framed record.
pub(crate) const VALUES: TableDefinition<&str, &[u8]> = TableDefinition::new("strata_values");
/// (expiry unix ms, key) -> (), only for entries that expire.
pub(crate) const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("strata_expiry");
/// (recency tick, key) -> ().
pub(crate) const ACCESS: TableDefinition<(u64, &str), ()> = TableDefinition::new("strata_access");
/// key -> the entry's current recency tick (its row in [`ACCESS`]).
pub(crate) const TICKS: TableDefinition<&str, u64> = TableDefinition::new("strata_ticks");
/// counter name -> value.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("strata_meta");

/// The layout of the tables above; a file with another value is not read. Version 1 (no
/// `strata_ticks`, the tick only in each record) is upgraded at open.
pub(crate) const SCHEMA_VERSION: u64 = 2;

const KEY_SCHEMA: &str = "schema_version";
pub(crate) const KEY_LIVE_BYTES: &str = "live_bytes";
pub(crate) const KEY_ENTRIES: &str = "entries";
const KEY_NEXT_TICK: &str = "next_tick";

/// Bytes charged per entry for the B-tree slots and the index tuples' fixed parts.
pub(crate) const ENTRY_OVERHEAD: u64 = 64;

/// The bytes an entry counts for against `max_size`: its record, its key once per table it can
/// appear in (values, recency index, ticks, expiry), and [`ENTRY_OVERHEAD`]. Charging the index copies keeps
/// `max_size` meaningful for small values, whose indexes weigh as much as the values.
pub(crate) fn entry_bytes(key: &str, record_len: usize) -> u64 {
    record_len as u64 + 4 * key.len() as u64 + ENTRY_OVERHEAD
}

/// The counters stored in `strata_meta`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Sum of [`entry_bytes`] over the values table.
    pub live_bytes: u64,
    /// Rows in the values table.
    pub entries: u64,
    /// The tick the next write or recency bump takes.
    pub next_tick: u64,
}

impl Meta {
    /// Counts a row added to the values table.
    pub fn add(&mut self, bytes: u64) {
        self.live_bytes += bytes;
        self.entries += 1;
    }

    /// Counts a row removed from the values table.
    pub fn remove(&mut self, bytes: u64) {
        self.live_bytes = self.live_bytes.saturating_sub(bytes);
        self.entries = self.entries.saturating_sub(1);
    }

    /// Takes the next tick.
    pub fn tick(&mut self) -> u64 {
        let tick = self.next_tick;
        self.next_tick += 1;
        tick
    }
}

/// Why the file's tables cannot be used.
pub(crate) enum SchemaError {
    /// A schema version this build does not read.
    Version(u64),
    /// redb failed (including a table of the wrong type: another application's file).
    Redb(redb::Error),
}

impl<E: Into<redb::Error>> From<E> for SchemaError {
    fn from(error: E) -> Self {
        SchemaError::Redb(error.into())
    }
}

/// Creates the tables if the file is new, checks the schema version, and reads the counters.
pub(crate) fn init(txn: &WriteTransaction) -> Result<Meta, SchemaError> {
    txn.open_table(VALUES)?;
    txn.open_table(EXPIRY)?;
    txn.open_table(ACCESS)?;
    txn.open_table(TICKS)?;
    let mut meta = txn.open_table(META)?;
    let version = meta.get(KEY_SCHEMA)?.map(|v| v.value());
    match version {
        Some(SCHEMA_VERSION) => {}
        Some(1) => {
            upgrade_from_v1(txn, &mut meta)?;
            meta.insert(KEY_SCHEMA, SCHEMA_VERSION)?;
        }
        Some(other) => return Err(SchemaError::Version(other)),
        None => {
            meta.insert(KEY_SCHEMA, SCHEMA_VERSION)?;
        }
    }
    let get =
        |name: &str| -> Result<u64, SchemaError> { Ok(meta.get(name)?.map_or(0, |v| v.value())) };
    Ok(Meta {
        live_bytes: get(KEY_LIVE_BYTES)?,
        entries: get(KEY_ENTRIES)?,
        next_tick: get(KEY_NEXT_TICK)?,
    })
}

/// Version 1 kept the tick only in each record: copy it into `strata_ticks`, and recharge live
/// bytes for the key copy that table holds.
fn upgrade_from_v1(
    txn: &WriteTransaction,
    meta: &mut redb::Table<'_, &'static str, u64>,
) -> Result<(), SchemaError> {
    let values = txn.open_table(VALUES)?;
    let mut ticks = txn.open_table(TICKS)?;
    let mut extra = 0u64;
    for row in values.iter()? {
        let (key, record) = row?;
        if let Some(header) = crate::record::header_unchecked(record.value()) {
            ticks.insert(key.value(), header.tick)?;
        }
        extra += key.value().len() as u64;
    }
    let live = meta.get(KEY_LIVE_BYTES)?.map_or(0, |v| v.value());
    meta.insert(KEY_LIVE_BYTES, live + extra)?;
    Ok(())
}

/// Writes the counters.
pub(crate) fn store(
    table: &mut redb::Table<'_, &'static str, u64>,
    meta: &Meta,
) -> Result<(), redb::StorageError> {
    table.insert(KEY_LIVE_BYTES, meta.live_bytes)?;
    table.insert(KEY_ENTRIES, meta.entries)?;
    table.insert(KEY_NEXT_TICK, meta.next_tick)?;
    Ok(())
}

/// Empties the file: deletes the four entry tables and recreates them.
pub(crate) fn delete_entry_tables(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.delete_table(VALUES)?;
    txn.delete_table(EXPIRY)?;
    txn.delete_table(ACCESS)?;
    txn.delete_table(TICKS)?;
    txn.open_table(VALUES)?;
    txn.open_table(EXPIRY)?;
    txn.open_table(ACCESS)?;
    txn.open_table(TICKS)?;
    Ok(())
}
