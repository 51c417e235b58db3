//! Entry operations inside one write transaction: the values table, its two indexes and the
//! ticks table kept in step, and the counters updated with them.
//!
//! An entry's expiry index row is found by its record's header, its recency index row by its
//! `strata_ticks` row. A record whose header cannot be read (corrupt) leaves its expiry row
//! behind; purge and eviction drop such dangling rows when they reach them (an index row is only
//! acted on if the entry under its key carries the same expiry or tick).

use redb::{ReadableTable, StorageError, Table, WriteTransaction};
use strata_tier::KeyPattern;

use crate::expiry;
use crate::queue::Touch;
use crate::record::{self, Header};
use crate::schema::{self, Meta, ACCESS, EXPIRY, META, TICKS, VALUES};

/// The five tables, open in one write transaction.
pub(crate) struct Tables<'txn> {
    pub values: Table<'txn, &'static str, &'static [u8]>,
    pub expiry: Table<'txn, (u64, &'static str), ()>,
    pub access: Table<'txn, (u64, &'static str), ()>,
    pub ticks: Table<'txn, &'static str, u64>,
    pub meta: Table<'txn, &'static str, u64>,
}

impl<'txn> Tables<'txn> {
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, redb::TableError> {
        Ok(Tables {
            values: txn.open_table(VALUES)?,
            expiry: txn.open_table(EXPIRY)?,
            access: txn.open_table(ACCESS)?,
            ticks: txn.open_table(TICKS)?,
            meta: txn.open_table(META)?,
        })
    }

    /// Stores `value` under `key`, replacing any entry; an already expired write just removes
    /// the key.
    pub(crate) fn put(
        &mut self,
        meta: &mut Meta,
        key: &str,
        value: &[u8],
        expiry_ms: u64,
        now: u64,
    ) -> Result<(), StorageError> {
        if expiry::is_expired(expiry_ms, now) {
            self.remove(meta, key, now)?;
            return Ok(());
        }
        let header = Header {
            expiry_ms,
            tick: meta.tick(),
        };
        let record = record::encode(key, value, header);
        let old = self
            .values
            .insert(key, record.as_slice())?
            .map(|old| (old.value().len(), record::header_unchecked(old.value())));
        let old_tick = self.ticks.insert(key, header.tick)?.map(|t| t.value());
        if let Some((old_len, old_header)) = old {
            meta.remove(schema::entry_bytes(key, old_len));
            self.unindex(key, old_header, old_tick)?;
        }
        meta.add(schema::entry_bytes(key, record.len()));
        if expiry_ms != 0 {
            self.expiry.insert((expiry_ms, key), ())?;
        }
        self.access.insert((header.tick, key), ())?;
        Ok(())
    }

    /// Removes `key`. Returns whether an unexpired entry was there.
    pub(crate) fn remove(
        &mut self,
        meta: &mut Meta,
        key: &str,
        now: u64,
    ) -> Result<bool, StorageError> {
        let old = self
            .values
            .remove(key)?
            .map(|old| (old.value().len(), record::header_unchecked(old.value())));
        let old_tick = self.ticks.remove(key)?.map(|t| t.value());
        let Some((old_len, old_header)) = old else {
            return Ok(false);
        };
        meta.remove(schema::entry_bytes(key, old_len));
        self.unindex(key, old_header, old_tick)?;
        Ok(old_header.is_none_or(|header| !expiry::is_expired(header.expiry_ms, now)))
    }

    /// Removes `key` if its record says it expired at or before `now`. Returns whether it did.
    pub(crate) fn remove_if_expired(
        &mut self,
        meta: &mut Meta,
        key: &str,
        now: u64,
    ) -> Result<bool, StorageError> {
        let header = self
            .values
            .get(key)?
            .and_then(|record| record::header_unchecked(record.value()));
        match header {
            Some(header) if expiry::is_expired(header.expiry_ms, now) => {
                self.remove(meta, key, now)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Removes `key` if it is at recency `tick` (or has no tick row). Returns whether it did;
    /// `false` means the index entry was stale.
    pub(crate) fn remove_if_tick(
        &mut self,
        meta: &mut Meta,
        key: &str,
        tick: u64,
        now: u64,
    ) -> Result<bool, StorageError> {
        if self.values.get(key)?.is_none() {
            return Ok(false);
        }
        let current = self.ticks.get(key)?.map(|t| t.value());
        if current.is_some_and(|current| current != tick) {
            return Ok(false);
        }
        self.remove(meta, key, now)?;
        Ok(true)
    }

    /// Removes every key `pattern` matches, scanning only the range of its literal prefix.
    /// Returns how many unexpired entries were removed.
    pub(crate) fn remove_matching(
        &mut self,
        meta: &mut Meta,
        pattern: &KeyPattern,
        now: u64,
    ) -> Result<u64, StorageError> {
        let prefix = pattern.literal_prefix();
        let mut matched = Vec::new();
        for row in self.values.range::<&str>(prefix..)? {
            let (key, _) = row?;
            let key = key.value();
            if !key.starts_with(prefix) {
                break;
            }
            if pattern.matches(key) {
                matched.push(key.to_owned());
            }
        }
        let mut removed = 0;
        for key in &matched {
            removed += u64::from(self.remove(meta, key, now)?);
        }
        Ok(removed)
    }

    /// Whether `key` holds an intact, unexpired entry at `now` (what a fill must not replace).
    pub(crate) fn is_live(&self, key: &str, now: u64) -> Result<bool, StorageError> {
        Ok(self.values.get(key)?.is_some_and(|record| {
            record::decode(key, record.value())
                .is_ok_and(|decoded| !expiry::is_expired(decoded.header.expiry_ms, now))
        }))
    }

    /// Moves `touch.key` to the young end of the recency order, if it is still at the tick the
    /// reader saw and unexpired. Rewrites only its ticks row and its recency index row, never
    /// its record. Returns whether it did.
    pub(crate) fn touch(
        &mut self,
        meta: &mut Meta,
        touch: &Touch,
        now: u64,
    ) -> Result<bool, StorageError> {
        let key = touch.key.as_str();
        if self.ticks.get(key)?.map(|t| t.value()) != Some(touch.tick) {
            return Ok(false);
        }
        let live = self
            .values
            .get(key)?
            .and_then(|record| record::header_unchecked(record.value()))
            .is_some_and(|header| !expiry::is_expired(header.expiry_ms, now));
        if !live {
            return Ok(false);
        }
        let tick = meta.tick();
        self.ticks.insert(key, tick)?;
        self.access.remove((touch.tick, key))?;
        self.access.insert((tick, key), ())?;
        Ok(true)
    }

    /// Deletes `key` if its record fails its checks (a reader reported it). Returns whether it
    /// did.
    pub(crate) fn remove_if_corrupt(
        &mut self,
        meta: &mut Meta,
        key: &str,
        now: u64,
    ) -> Result<bool, StorageError> {
        let corrupt = match self.values.get(key)? {
            None => false,
            Some(record) => record::decode(key, record.value()).is_err(),
        };
        if corrupt {
            self.remove(meta, key, now)?;
        }
        Ok(corrupt)
    }

    /// Writes the counters.
    pub(crate) fn store_meta(&mut self, meta: &Meta) -> Result<(), StorageError> {
        schema::store(&mut self.meta, meta)
    }

    /// Removes the index rows of an entry that had `header` and recency `tick` (from its ticks
    /// row; the header's tick for an entry without one).
    fn unindex(
        &mut self,
        key: &str,
        header: Option<Header>,
        tick: Option<u64>,
    ) -> Result<(), StorageError> {
        if let Some(header) = header {
            if header.expiry_ms != 0 {
                self.expiry.remove((header.expiry_ms, key))?;
            }
        }
        if let Some(tick) = tick.or(header.map(|h| h.tick)) {
            self.access.remove((tick, key))?;
        }
        Ok(())
    }
}
