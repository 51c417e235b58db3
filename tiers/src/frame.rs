//! The framed entry every lower tier stores: a small header (format version, flags, absolute
//! expiry, when it was stored, checksum) ahead of the payload, which is LZ4-compressed when
//! that pays.
//!
//! ```text
//! offset  size  field
//! 0       1     format version (2)
//! 1       1     flags: bit 0 = payload is LZ4 (lz4_flex block, uncompressed size prepended)
//! 2       8     expiry, milliseconds since the Unix epoch, little endian; 0 = none
//! 10      8     stored at, milliseconds since the Unix epoch, little endian
//! 18      4     CRC-32 of bytes 0..18 and the payload as stored, little endian
//! 22      ..    payload
//! ```
//!
//! Version 1 frames (no stored-at field: the CRC at offset 10, the payload at 14) are still
//! read. The expiry is absolute wall-clock time because lower tiers are shared between
//! processes and outlive them; a reader computes the entry's *remaining* lifetime from it when
//! promoting, and its age (an HTTP `Age`) from the stored-at time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

/// The frame format this build writes (it also reads version 1).
pub const FORMAT_VERSION: u8 = 2;
/// Bytes ahead of the payload.
pub const HEADER_LEN: usize = 22;
/// Bytes ahead of the payload in a version 1 frame.
const HEADER_LEN_V1: usize = 14;
const FLAG_LZ4: u8 = 0b0000_0001;
const KNOWN_FLAGS: u8 = FLAG_LZ4;

/// Why stored bytes could not be decoded. Every variant is treated as a miss by the cache.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than a header.
    #[error("entry of {0} bytes is shorter than the {HEADER_LEN}-byte frame header")]
    Truncated(usize),
    /// Written by another format version.
    #[error("entry has frame format version {0}, this build reads version {FORMAT_VERSION}")]
    UnknownVersion(u8),
    /// Flag bits this build does not know.
    #[error("entry has unknown flag bits {0:#04x}")]
    UnknownFlags(u8),
    /// The payload does not match its checksum.
    #[error("entry payload fails its checksum")]
    Checksum,
    /// The compressed payload is damaged or would decompress beyond the size limit.
    #[error("entry's compressed payload is invalid: {0}")]
    Decompress(String),
}

/// How to build frames: when to compress.
#[derive(Debug, Clone, Copy)]
pub struct FrameOptions {
    /// Payloads at least this long are LZ4-compressed, and kept compressed only if smaller.
    /// `usize::MAX` turns compression off.
    pub compression_threshold: usize,
    /// The largest uncompressed payload a reader accepts (guards decompression).
    pub max_payload: usize,
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The uncompressed payload.
    pub payload: Bytes,
    /// When the entry expires, if it does.
    pub expires_at: Option<SystemTime>,
    /// When the entry was written (by `set` or a loader), if the frame records it (version 2).
    /// Promotions copy the frame, so this stays the original write's time.
    pub stored_at: Option<SystemTime>,
}

impl Frame {
    /// The entry's remaining lifetime at `now`: `Some(None)` if it never expires, `None` if it
    /// has already expired.
    pub fn remaining(&self, now: SystemTime) -> Option<Option<Duration>> {
        match self.expires_at {
            None => Some(None),
            Some(at) => match at.duration_since(now) {
                Ok(left) if !left.is_zero() => Some(Some(left)),
                _ => None,
            },
        }
    }
}

/// Frames `payload` with its expiry and the time it is stored, compressing it if that pays
/// under `options`.
pub fn encode(
    payload: &[u8],
    expires_at: Option<SystemTime>,
    stored_at: SystemTime,
    options: &FrameOptions,
) -> Bytes {
    let compressed = (payload.len() >= options.compression_threshold)
        .then(|| lz4_flex::block::compress_prepend_size(payload))
        .filter(|packed| packed.len() < payload.len());
    let (flags, body): (u8, &[u8]) = match &compressed {
        Some(packed) => (FLAG_LZ4, packed),
        None => (0, payload),
    };
    let mut out = BytesMut::with_capacity(HEADER_LEN + body.len());
    out.put_u8(FORMAT_VERSION);
    out.put_u8(flags);
    out.put_u64_le(expires_at.map_or(0, unix_millis));
    out.put_u64_le(
        stored_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    );
    out.put_u32_le(checksum(&out[..18], body));
    out.put_slice(body);
    out.freeze()
}

/// Checks and decodes a frame read from a tier.
pub fn decode(stored: &Bytes, options: &FrameOptions) -> Result<Frame, FrameError> {
    let Some(&version) = stored.first() else {
        return Err(FrameError::Truncated(0));
    };
    let header = match version {
        FORMAT_VERSION => HEADER_LEN,
        1 => HEADER_LEN_V1,
        other => return Err(FrameError::UnknownVersion(other)),
    };
    if stored.len() < header {
        return Err(FrameError::Truncated(stored.len()));
    }
    let flags = stored[1];
    if flags & !KNOWN_FLAGS != 0 {
        return Err(FrameError::UnknownFlags(flags));
    }
    let expiry = u64::from_le_bytes(stored[2..10].try_into().expect("8 header bytes"));
    let stored_at = (header == HEADER_LEN)
        .then(|| u64::from_le_bytes(stored[10..18].try_into().expect("8 header bytes")));
    let checksum = u32::from_le_bytes(
        stored[header - 4..header]
            .try_into()
            .expect("4 header bytes"),
    );
    let body = stored.slice(header..);
    if self::checksum(&stored[..header - 4], &body) != checksum {
        return Err(FrameError::Checksum);
    }
    let payload = if flags & FLAG_LZ4 != 0 {
        if body.len() < 4 {
            return Err(FrameError::Decompress("missing size prefix".into()));
        }
        let claimed = u32::from_le_bytes(body[..4].try_into().expect("4 bytes")) as usize;
        if claimed > options.max_payload {
            return Err(FrameError::Decompress(format!(
                "claims {claimed} bytes, above the {} byte limit",
                options.max_payload
            )));
        }
        let plain = lz4_flex::block::decompress_size_prepended(&body)
            .map_err(|e| FrameError::Decompress(e.to_string()))?;
        Bytes::from(plain)
    } else {
        body
    };
    let expires_at = (expiry != 0).then(|| UNIX_EPOCH + Duration::from_millis(expiry));
    let stored_at = stored_at.map(|millis| UNIX_EPOCH + Duration::from_millis(millis));
    Ok(Frame {
        payload,
        expires_at,
        stored_at,
    })
}

/// The frame's checksum covers the header fields as well as the payload, so a damaged expiry
/// or flag byte is caught like a damaged payload.
fn checksum(header: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(body);
    hasher.finalize()
}

fn unix_millis(at: SystemTime) -> u64 {
    // Round up so an entry never outlives its deadline by the truncation, and stay above 0,
    // which means "no expiry".
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let millis = since.as_millis() + u128::from(!since.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(millis).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: FrameOptions = FrameOptions {
        compression_threshold: 1024,
        max_payload: 1 << 20,
    };

    fn json_like(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut i = 0u64;
        while out.len() < len {
            out.extend_from_slice(
                format!("{{\"id\":{i},\"name\":\"user {i}\",\"active\":true}},").as_bytes(),
            );
            i += 1;
        }
        out.truncate(len);
        out
    }

    #[test]
    fn small_payloads_round_trip_uncompressed() {
        let expires = SystemTime::now() + Duration::from_secs(60);
        let now = SystemTime::now();
        let frame = encode(b"hello", Some(expires), now, &OPTIONS);
        assert_eq!(frame.len(), HEADER_LEN + 5);
        assert_eq!(frame[1], 0);
        let decoded = decode(&frame, &OPTIONS).unwrap();
        assert_eq!(&decoded.payload[..], b"hello");
        let at = decoded.expires_at.unwrap();
        assert!(at >= expires && at < expires + Duration::from_millis(2));
        let stored = decoded.stored_at.unwrap();
        assert!(stored <= now && now - Duration::from_millis(1) <= stored);
    }

    #[test]
    fn large_compressible_payloads_are_compressed() {
        let payload = json_like(64 * 1024);
        let frame = encode(&payload, None, SystemTime::now(), &OPTIONS);
        assert_eq!(frame[1], FLAG_LZ4);
        assert!(frame.len() < payload.len() / 2, "{} bytes", frame.len());
        let decoded = decode(&frame, &OPTIONS).unwrap();
        assert_eq!(decoded.payload, payload);
        assert_eq!(decoded.expires_at, None);
    }

    #[test]
    fn incompressible_payloads_stay_raw() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let frame = encode(&noise, None, SystemTime::now(), &OPTIONS);
        assert_eq!(frame[1], 0);
        assert_eq!(decode(&frame, &OPTIONS).unwrap().payload, noise);
    }

    #[test]
    fn damage_is_detected_never_a_panic() {
        let frame = encode(&json_like(8 * 1024), None, SystemTime::now(), &OPTIONS);
        assert_eq!(
            decode(&frame.slice(..5), &OPTIONS),
            Err(FrameError::Truncated(5))
        );
        let mut other_version = frame.to_vec();
        other_version[0] = 9;
        assert_eq!(
            decode(&Bytes::from(other_version), &OPTIONS),
            Err(FrameError::UnknownVersion(9))
        );
        let mut flags = frame.to_vec();
        flags[1] = 0x80;
        assert!(matches!(
            decode(&Bytes::from(flags), &OPTIONS),
            Err(FrameError::UnknownFlags(_))
        ));
        // Flip every byte after the version in turn: each flip must be reported, not panic.
        for at in 2..frame.len() {
            let mut damaged = frame.to_vec();
            damaged[at] ^= 0x5A;
            assert_eq!(
                decode(&Bytes::from(damaged), &OPTIONS),
                Err(FrameError::Checksum)
            );
        }
        // A checksum-valid frame whose compressed body lies about its size.
        let mut body = (u32::MAX).to_le_bytes().to_vec();
        body.extend_from_slice(&[0x10, b'a']);
        let mut forged = vec![FORMAT_VERSION, FLAG_LZ4];
        forged.extend_from_slice(&0u64.to_le_bytes());
        forged.extend_from_slice(&0u64.to_le_bytes());
        let sum = checksum(&forged, &body);
        forged.extend_from_slice(&sum.to_le_bytes());
        forged.extend_from_slice(&body);
        assert!(matches!(
            decode(&Bytes::from(forged), &OPTIONS),
            Err(FrameError::Decompress(_))
        ));
    }

    #[test]
    fn version_1_frames_are_still_read() {
        let body = b"old";
        let mut v1 = vec![1u8, 0];
        v1.extend_from_slice(&0u64.to_le_bytes());
        let sum = checksum(&v1, body);
        v1.extend_from_slice(&sum.to_le_bytes());
        v1.extend_from_slice(body);
        let decoded = decode(&Bytes::from(v1), &OPTIONS).unwrap();
        assert_eq!(&decoded.payload[..], b"old");
        assert_eq!(decoded.stored_at, None);
        assert_eq!(
            decode(&Bytes::new(), &OPTIONS),
            Err(FrameError::Truncated(0))
        );
    }

    #[test]
    fn remaining_lifetime() {
        let now = SystemTime::now();
        let frame = |expires_at| Frame {
            payload: Bytes::new(),
            expires_at,
            stored_at: None,
        };
        assert_eq!(frame(None).remaining(now), Some(None));
        assert_eq!(
            frame(Some(now - Duration::from_secs(1))).remaining(now),
            None
        );
        assert_eq!(frame(Some(now)).remaining(now), None);
        assert_eq!(
            frame(Some(now + Duration::from_secs(5))).remaining(now),
            Some(Some(Duration::from_secs(5)))
        );
    }
}
