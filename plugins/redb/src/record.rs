//! The framed record stored under each key in the values table, and its checksum.
//!
//! ```text
//! offset  size  field
//!      0     4  crc32 (IEEE, little-endian) of the key's bytes followed by bytes 4.. of the record
//!      4     1  format version (1)
//!      5     3  reserved, zero
//!      8     8  expiry, unix milliseconds, little-endian; 0 for none
//!     16     8  recency tick at the write (see `eviction.rs`; later bumps go to `strata_ticks`)
//!     24     -  the value's bytes
//! ```
//!
//! The checksum covers the key as well, so a record that ended up under another key fails it.
//! It is this crate's own check, on top of redb's page checksums (which redb verifies only when
//! it repairs a file after a crash): a record that fails it is reported as corrupt and deleted.

use std::fmt;

/// Bytes before the value.
pub(crate) const HEADER_LEN: usize = 24;
/// The record layout this build writes and reads.
pub(crate) const RECORD_VERSION: u8 = 1;

const CRC: std::ops::Range<usize> = 0..4;
const VERSION: usize = 4;
const EXPIRY: std::ops::Range<usize> = 8..16;
const TICK: std::ops::Range<usize> = 16..24;

/// The fields of a record's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Unix milliseconds at which the entry expires; 0 for never.
    pub expiry_ms: u64,
    /// The entry's position in the recency order when it was written (the current one is in
    /// the `strata_ticks` table).
    pub tick: u64,
}

/// A record that passed its checks.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    pub header: Header,
    pub value: &'a [u8],
}

/// Why a stored record cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordError {
    /// Shorter than a header.
    Truncated(usize),
    /// A layout this build does not know.
    Version(u8),
    /// The stored checksum does not match the bytes.
    Checksum { stored: u32, computed: u32 },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Truncated(len) => {
                write!(
                    f,
                    "record of {len} bytes is shorter than its {HEADER_LEN}-byte header"
                )
            }
            RecordError::Version(v) => write!(f, "record format version {v} is unknown"),
            RecordError::Checksum { stored, computed } => write!(
                f,
                "record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
        }
    }
}

/// The record for `value` under `key`.
pub(crate) fn encode(key: &str, value: &[u8], header: Header) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER_LEN + value.len());
    record.extend_from_slice(&[0; 4]);
    record.push(RECORD_VERSION);
    record.extend_from_slice(&[0; 3]);
    record.extend_from_slice(&header.expiry_ms.to_le_bytes());
    record.extend_from_slice(&header.tick.to_le_bytes());
    record.extend_from_slice(value);
    seal(key, &mut record);
    record
}

/// Checks `record` (stored under `key`) and splits it into header and value.
pub(crate) fn decode<'a>(key: &str, record: &'a [u8]) -> Result<Decoded<'a>, RecordError> {
    let header = header_unchecked(record).ok_or(RecordError::Truncated(record.len()))?;
    if record[VERSION] != RECORD_VERSION {
        return Err(RecordError::Version(record[VERSION]));
    }
    let stored = read_u32(&record[CRC]);
    let computed = checksum(key, record);
    if stored != computed {
        return Err(RecordError::Checksum { stored, computed });
    }
    Ok(Decoded {
        header,
        value: &record[HEADER_LEN..],
    })
}

/// The header fields without any check: for index upkeep, where a wrong answer only leaves an
/// index entry that the next scan drops (see `eviction.rs` and `purge.rs`). `None` if the record
/// is shorter than a header.
pub(crate) fn header_unchecked(record: &[u8]) -> Option<Header> {
    if record.len() < HEADER_LEN {
        return None;
    }
    Some(Header {
        expiry_ms: read_u64(&record[EXPIRY]),
        tick: read_u64(&record[TICK]),
    })
}

fn seal(key: &str, record: &mut [u8]) {
    let crc = checksum(key, record);
    record[CRC].copy_from_slice(&crc.to_le_bytes());
}

fn checksum(key: &str, record: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key.as_bytes());
    hasher.update(&record[CRC.end..]);
    hasher.finalize()
}

fn read_u32(bytes: &[u8]) -> u32 {
    let mut buf = [0; 4];
    buf.copy_from_slice(bytes);
    u32::from_le_bytes(buf)
}

fn read_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0; 8];
    buf.copy_from_slice(bytes);
    u64::from_le_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Header = Header {
        expiry_ms: 1_700_000_000_123,
        tick: 42,
    };

    #[test]
    fn round_trips() {
        let record = encode("user:1", b"Ada", HEADER);
        assert_eq!(record.len(), HEADER_LEN + 3);
        let decoded = decode("user:1", &record).unwrap();
        assert_eq!(decoded.header, HEADER);
        assert_eq!(decoded.value, b"Ada");
        let empty = encode(
            "",
            b"",
            Header {
                expiry_ms: 0,
                tick: 0,
            },
        );
        assert_eq!(decode("", &empty).unwrap().value, b"");
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let record = encode("k", b"value bytes", HEADER);
        for byte in 0..record.len() {
            for bit in 0..8 {
                let mut bad = record.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    decode("k", &bad).is_err(),
                    "flip of bit {bit} of byte {byte}"
                );
            }
        }
    }

    #[test]
    fn a_record_under_another_key_fails() {
        let record = encode("a", b"v", HEADER);
        assert!(matches!(
            decode("b", &record),
            Err(RecordError::Checksum { .. })
        ));
    }

    #[test]
    fn short_and_unknown_records_are_errors_not_panics() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                decode("k", &vec![0; len]).unwrap_err(),
                RecordError::Truncated(len)
            );
            assert_eq!(header_unchecked(&vec![0; len]), None);
        }
        let mut record = encode("k", b"v", HEADER);
        record[VERSION] = 9;
        assert_eq!(decode("k", &record).unwrap_err(), RecordError::Version(9));
    }
}
