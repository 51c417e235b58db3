//! How a `TieredCache`'s values become the bytes that lower tiers store, and back.

use std::error::Error;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The error a codec reports; the cache wraps it in its own error type.
pub type CodecError = Box<dyn Error + Send + Sync + 'static>;

/// Turns values of type `V` into bytes and back. Implementations must be deterministic enough
/// that `decode(encode(v)) == v`, and must return an error (never panic) for bytes they cannot
/// decode: those bytes come from a shared tier that another version of the program may have
/// written.
pub trait Codec<V>: Send + Sync + 'static {
    /// Serialises `value`.
    fn encode(&self, value: &V) -> Result<Bytes, CodecError>;
    /// Deserialises bytes written by [`encode`](Codec::encode).
    fn decode(&self, bytes: Bytes) -> Result<V, CodecError>;
}

/// Any serde type, in [postcard](https://docs.rs/postcard): a compact, non-self-describing
/// binary format with varint integers. Chosen over bincode 2, MessagePack and JSON by
/// measurement (`strata-bench tiered`, results in `benches/README.md`): the smallest encoding
/// of the four on the benchmark's record (70 bytes; bincode 72, MessagePack 75, JSON 174) and
/// the fastest to decode, which is what a cache does most; bincode encodes about 25% faster.
///
/// Being non-self-describing, postcard cannot skip unknown fields: change a cached type in an
/// incompatible way and old entries fail to decode, which the cache counts, deletes and treats
/// as misses. Use a key prefix per schema version to avoid the churn.
pub struct Postcard<V>(PhantomData<fn() -> V>);

impl<V> Default for Postcard<V> {
    fn default() -> Self {
        Postcard(PhantomData)
    }
}

impl<V> Codec<V> for Postcard<V>
where
    V: Serialize + DeserializeOwned + 'static,
{
    fn encode(&self, value: &V) -> Result<Bytes, CodecError> {
        Ok(Bytes::from(postcard::to_stdvec(value)?))
    }

    fn decode(&self, bytes: Bytes) -> Result<V, CodecError> {
        Ok(postcard::from_bytes(&bytes)?)
    }
}

/// Bytes stored as they are: the codec of the bytes-level cache, [`BytesCache`](crate::BytesCache).
#[derive(Debug, Default, Clone, Copy)]
pub struct RawBytes;

impl Codec<Bytes> for RawBytes {
    fn encode(&self, value: &Bytes) -> Result<Bytes, CodecError> {
        Ok(value.clone())
    }

    fn decode(&self, bytes: Bytes) -> Result<Bytes, CodecError> {
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct User {
        id: u64,
        name: String,
        tags: Vec<String>,
    }

    #[test]
    fn postcard_round_trips_and_rejects_garbage() {
        let codec = Postcard::<User>::default();
        let user = User {
            id: 7,
            name: "Ada".into(),
            tags: vec!["admin".into()],
        };
        let bytes = codec.encode(&user).unwrap();
        assert!(bytes.len() < 20, "{} bytes", bytes.len());
        assert_eq!(codec.decode(bytes.clone()).unwrap(), user);
        assert!(codec.decode(bytes.slice(..3)).is_err());
        assert!(codec.decode(Bytes::from_static(&[0xFF; 4])).is_err());
    }
}
