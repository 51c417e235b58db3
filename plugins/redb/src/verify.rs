//! A full check of the file: every record's checksum, both indexes against the records, and the
//! stored counters against a recount. For tests, tools and operators; the tier does not need it.

use std::collections::HashSet;

use redb::{Database, ReadableDatabase, ReadableTable};

use crate::record;
use crate::schema::{self, ACCESS, EXPIRY, META, TICKS, VALUES};

/// What [`RedbTier::verify`](crate::RedbTier::verify) found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntegrityReport {
    /// Records in the values table.
    pub entries: u64,
    /// Keys whose records fail their checksum or format check.
    pub corrupt_keys: Vec<String>,
    /// Intact records missing their recency index entry, ticks row or expiry index entry.
    pub unindexed: u64,
    /// Index entries (and ticks rows) that point to no record with that tick or expiry
    /// (harmless: purge and eviction drop them when they reach them).
    pub dangling_index_entries: u64,
    /// The live bytes recounted from the records.
    pub live_bytes: u64,
    /// Whether the stored entry and byte counters equal the recount.
    pub counters_match: bool,
}

impl IntegrityReport {
    /// No corrupt record, no record missing from an index, counters exact.
    pub fn is_clean(&self) -> bool {
        self.corrupt_keys.is_empty() && self.unindexed == 0 && self.counters_match
    }
}

pub(crate) fn verify(db: &Database) -> Result<IntegrityReport, redb::Error> {
    let txn = db.begin_read()?;
    let values = txn.open_table(VALUES)?;
    let expiry = txn.open_table(EXPIRY)?;
    let access = txn.open_table(ACCESS)?;
    let tick_rows = txn.open_table(TICKS)?;
    let meta = txn.open_table(META)?;
    let mut report = IntegrityReport::default();
    let mut indexed = HashSet::new();
    for row in values.iter()? {
        let (key, value) = row?;
        let (key, value) = (key.value(), value.value());
        report.entries += 1;
        report.live_bytes += schema::entry_bytes(key, value.len());
        match record::decode(key, value) {
            Err(_) => report.corrupt_keys.push(key.to_owned()),
            Ok(decoded) => {
                let header = decoded.header;
                let tick = tick_rows.get(key)?.map(|t| t.value());
                let in_access = match tick {
                    Some(tick) => access.get((tick, key))?.is_some(),
                    None => false,
                };
                let in_expiry =
                    header.expiry_ms == 0 || expiry.get((header.expiry_ms, key))?.is_some();
                if !(in_access && in_expiry) {
                    report.unindexed += 1;
                }
                indexed.insert((
                    tick.unwrap_or(header.tick),
                    header.expiry_ms,
                    key.to_owned(),
                ));
            }
        }
    }
    let mut ticks = HashSet::new();
    let mut expiries = HashSet::new();
    for (tick, expiry_ms, key) in &indexed {
        ticks.insert((*tick, key.as_str()));
        if *expiry_ms != 0 {
            expiries.insert((*expiry_ms, key.as_str()));
        }
    }
    for row in access.iter()? {
        let (index_key, _) = row?;
        if !ticks.contains(&index_key.value()) {
            report.dangling_index_entries += 1;
        }
    }
    for row in tick_rows.iter()? {
        let (key, _) = row?;
        if values.get(key.value())?.is_none() {
            report.dangling_index_entries += 1;
        }
    }
    for row in expiry.iter()? {
        let (index_key, _) = row?;
        if !expiries.contains(&index_key.value()) {
            report.dangling_index_entries += 1;
        }
    }
    let stored =
        |name: &str| -> Result<u64, redb::Error> { Ok(meta.get(name)?.map_or(0, |v| v.value())) };
    report.counters_match = stored(schema::KEY_ENTRIES)? == report.entries
        && stored(schema::KEY_LIVE_BYTES)? == report.live_bytes;
    Ok(report)
}
