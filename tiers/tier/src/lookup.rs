use bytes::Bytes;

use crate::TierError;

/// The answer to a tier read. A read never fails the request: a tier that cannot answer says so
/// with [`Lookup::Degraded`], which the cache treats as a miss and counts.
#[derive(Debug)]
#[must_use]
pub enum Lookup {
    /// The stored bytes, unexpired.
    Hit(Bytes),
    /// The tier answered, and it does not hold the key (or holds it expired).
    Miss,
    /// The tier could not answer; treat as a miss. The error says why.
    Degraded(TierError),
}

impl Lookup {
    /// The bytes, if this is a hit.
    pub fn into_hit(self) -> Option<Bytes> {
        match self {
            Lookup::Hit(bytes) => Some(bytes),
            Lookup::Miss | Lookup::Degraded(_) => None,
        }
    }

    /// Whether this is a hit.
    pub fn is_hit(&self) -> bool {
        matches!(self, Lookup::Hit(_))
    }

    /// Whether the tier could not answer.
    pub fn is_degraded(&self) -> bool {
        matches!(self, Lookup::Degraded(_))
    }

    /// A hit or a real miss from a backend result; errors become degraded misses.
    pub fn from_result(result: Result<Option<Bytes>, TierError>) -> Self {
        match result {
            Ok(found) => found.into(),
            Err(error) => Lookup::Degraded(error),
        }
    }
}

impl From<Option<Bytes>> for Lookup {
    fn from(found: Option<Bytes>) -> Self {
        match found {
            Some(bytes) => Lookup::Hit(bytes),
            None => Lookup::Miss,
        }
    }
}
