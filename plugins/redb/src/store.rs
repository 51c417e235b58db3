//! Entry operations inside one write transaction: the values table and its two indexes kept in
//! step, and the counters updated with them.
//!
//! Index entries are removed by the header of the record they point to. A record whose header
//! cannot be read (corrupt) leaves its index entries behind; purge and eviction drop such
//! dangling entries when they reach them (an index entry is only acted on if the record under its
//! key carries the same expiry or tick).

use redb::{ReadableTable, StorageError, Table, WriteTransaction};
use strata_tier::KeyPattern;

use crate::expiry;
use crate::queue::Touch;
use crate::record::{self, Header};
use crate::schema::{self, Meta, ACCESS, EXPIRY, META, VALUES};

/// The four tables, open in one write transaction.
pub(crate) struct Tables<'txn> {
    pub values: Table<'txn, &'static str, &'static [u8]>,
    pub expiry: Table<'txn, (u64, &'static str), ()>,
    pub access: Table<'txn, (u64, &'static str), ()>,
    pub meta: Table<'txn, &'static str, u64>,
}

impl<'txn> Tables<'txn> {
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, redb::TableError> {
        Ok(Tables {
            values: txn.open_table(VALUES)?,
            expiry: txn.open_table(EXPIRY)?,
            access: txn.open_table(ACCESS)?,
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
        if let Some((old_len, old_header)) = old {
            meta.remove(schema::entry_bytes(key, old_len));
            self.unindex(key, old_header)?;
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
        let Some((old_len, old_header)) = old else {
            return Ok(false);
        };
        meta.remove(schema::entry_bytes(key, old_len));
        self.unindex(key, old_header)?;
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

    /// Removes `key` if its record carries recency `tick` (or has no readable header). Returns
    /// whether it did; `false` means the index entry was stale.
    pub(crate) fn remove_if_tick(
        &mut self,
        meta: &mut Meta,
        key: &str,
        tick: u64,
        now: u64,
    ) -> Result<bool, StorageError> {
        let current = match self.values.get(key)? {
            None => return Ok(false),
            Some(record) => record::header_unchecked(record.value()),
        };
        if current.is_some_and(|header| header.tick != tick) {
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

    /// Moves `touch.key` to the young end of the recency order, if its record still carries the
    /// tick the reader saw and is intact and unexpired. Returns whether it did.
    pub(crate) fn touch(
        &mut self,
        meta: &mut Meta,
        touch: &Touch,
        now: u64,
    ) -> Result<bool, StorageError> {
        let key = touch.key.as_str();
        let moved = {
            let Some(record) = self.values.get(key)? else {
                return Ok(false);
            };
            let record = record.value();
            match record::decode(key, record) {
                Ok(decoded)
                    if decoded.header.tick == touch.tick
                        && !expiry::is_expired(decoded.header.expiry_ms, now) =>
                {
                    let tick = meta.tick();
                    (tick, record::with_tick(key, record, tick))
                }
                _ => return Ok(false),
            }
        };
        let (tick, record) = moved;
        self.values.insert(key, record.as_slice())?;
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

    fn unindex(&mut self, key: &str, header: Option<Header>) -> Result<(), StorageError> {
        if let Some(header) = header {
            if header.expiry_ms != 0 {
                self.expiry.remove((header.expiry_ms, key))?;
            }
            self.access.remove((header.tick, key))?;
        }
        Ok(())
    }
}
