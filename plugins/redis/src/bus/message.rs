//! The invalidation message: what one write tells the other instances on the namespace channel.
//!
//! Binary and length-prefixed, so keys may hold any bytes:
//!
//! ```text
//! "SI1" origin:u64 generation:u64 sent_at_micros:u64 count:u32 { kind:u8 len:u32 bytes }*
//! ```
//!
//! all integers big-endian; `kind` is `K` (a key), `P` (a pattern) or `C` (clear, no bytes
//! follow its zero length). A batch write sends one message for all its keys.

use strata_tier::{Invalidation, KeyPattern};

const MAGIC: &[u8; 3] = b"SI1";
const HEADER: usize = 3 + 8 + 8 + 8 + 4;

/// One message on the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// The tier handle that wrote (its own messages are skipped).
    pub(crate) origin: u64,
    /// The origin's write counter, increasing by one per message.
    pub(crate) generation: u64,
    /// When it was sent, in microseconds since the Unix epoch (for the lag statistic).
    pub(crate) sent_at_micros: u64,
    /// What was invalidated.
    pub(crate) events: Vec<Invalidation>,
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("not a Strata invalidation message")]
    Magic,
    #[error("truncated invalidation message")]
    Truncated,
    #[error("invalidation message holds an unknown kind {0:#04x}")]
    Kind(u8),
    #[error("invalidation message holds a key that is not UTF-8")]
    Utf8,
    #[error("invalidation message holds a bad pattern: {0}")]
    Pattern(String),
}

impl Message {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let body: usize = self.events.iter().map(|e| 5 + payload(e).len()).sum();
        let mut out = Vec::with_capacity(HEADER + body);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.origin.to_be_bytes());
        out.extend_from_slice(&self.generation.to_be_bytes());
        out.extend_from_slice(&self.sent_at_micros.to_be_bytes());
        out.extend_from_slice(&(self.events.len() as u32).to_be_bytes());
        for event in &self.events {
            let (kind, bytes) = match event {
                Invalidation::Key(key) => (b'K', key.as_bytes()),
                Invalidation::Pattern(pattern) => (b'P', pattern.as_str().as_bytes()),
                _ => (b'C', &[][..]),
            };
            out.push(kind);
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.get(..3) != Some(&MAGIC[..]) {
            return Err(DecodeError::Magic);
        }
        let mut reader = Reader(&bytes[3..]);
        let origin = reader.u64()?;
        let generation = reader.u64()?;
        let sent_at_micros = reader.u64()?;
        let count = reader.u32()? as usize;
        // Each event takes at least five bytes: a count beyond that is a lie, not an allocation.
        if count > reader.0.len() / 5 {
            return Err(DecodeError::Truncated);
        }
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            let kind = reader.take(1)?[0];
            let len = reader.u32()? as usize;
            let text = std::str::from_utf8(reader.take(len)?).map_err(|_| DecodeError::Utf8)?;
            events.push(match kind {
                b'K' => Invalidation::Key(text.to_owned()),
                b'P' => Invalidation::Pattern(
                    KeyPattern::new(text).map_err(|e| DecodeError::Pattern(e.to_string()))?,
                ),
                b'C' => Invalidation::Clear,
                other => return Err(DecodeError::Kind(other)),
            });
        }
        if !reader.0.is_empty() {
            return Err(DecodeError::Truncated);
        }
        Ok(Message {
            origin,
            generation,
            sent_at_micros,
            events,
        })
    }
}

fn payload(event: &Invalidation) -> &[u8] {
    match event {
        Invalidation::Key(key) => key.as_bytes(),
        Invalidation::Pattern(pattern) => pattern.as_str().as_bytes(),
        _ => &[],
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        Message {
            origin: 0xDEAD_BEEF,
            generation: 7,
            sent_at_micros: 1_700_000_000_000_000,
            events: vec![
                Invalidation::Key("user:1|\n\0é".into()),
                Invalidation::Pattern(KeyPattern::new("user:*").unwrap()),
                Invalidation::Clear,
            ],
        }
    }

    #[test]
    fn messages_round_trip() {
        let message = sample();
        assert_eq!(Message::decode(&message.encode()), Ok(message));
    }

    #[test]
    fn damaged_messages_are_errors_not_panics() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(Message::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_kind = bytes.clone();
        bad_kind[HEADER] = b'Z';
        assert_eq!(Message::decode(&bad_kind), Err(DecodeError::Kind(b'Z')));
        let mut huge_count = bytes.clone();
        huge_count[HEADER - 4..HEADER].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(Message::decode(&huge_count), Err(DecodeError::Truncated));
        assert_eq!(Message::decode(b"hello"), Err(DecodeError::Magic));
        let mut trailing = bytes;
        trailing.push(0);
        assert_eq!(Message::decode(&trailing), Err(DecodeError::Truncated));
    }
}
