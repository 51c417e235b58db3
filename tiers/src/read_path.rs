//! The read path below L1: reading the tiers top to bottom, decoding, and the fills (into L1 and
//! into the tiers above the one that answered) that a read makes, each through its fence.

use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::future::join_all;
use strata_tier::{Lookup, Stored};

use crate::cache::{remaining, TieredCache};
use crate::codec::Codec;
use crate::fence::ReadTicket;
use crate::frame;
use crate::layer::Layer;

/// Marks a fill's key stale in its tier if the fill's future is dropped before it finished.
struct Unfinished<'a> {
    layer: &'a Layer,
    key: &'a str,
    armed: bool,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.layer.mark_stale(self.key);
        }
    }
}

/// A value found in a lower tier.
pub(crate) struct Found<V> {
    pub(crate) value: V,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) stored_at: Option<SystemTime>,
    /// The index of the tier that answered.
    pub(crate) depth: usize,
}

/// What a read of the lower tiers found, and which tiers answered it (a tier that failed,
/// timed out or was skipped is not written to by this read's fills).
pub(crate) struct LowerRead<V> {
    pub(crate) found: Option<Found<V>>,
    pub(crate) answered: Vec<bool>,
}

/// A tier's answer, decoded.
pub(crate) enum Decoded<V> {
    Hit(Found<V>, Bytes),
    /// Expired in the frame though the tier still had it (clock skew, a tier that rounds TTLs
    /// up): a miss.
    Expired,
    Corrupt(String),
}

impl<V, C> TieredCache<V, C>
where
    V: Clone + Send + Sync + 'static,
    C: Codec<V>,
{
    /// Decodes what a tier returned.
    pub(crate) fn decode(&self, stored: Bytes, depth: usize) -> Decoded<V> {
        let shared = &*self.shared;
        let frame = match frame::decode(&stored, &shared.frame) {
            Ok(frame) => frame,
            Err(error) => return Decoded::Corrupt(error.to_string()),
        };
        if remaining(frame.expires_at, SystemTime::now()).is_err() {
            return Decoded::Expired;
        }
        match shared.codec.decode(frame.payload) {
            Ok(value) => Decoded::Hit(
                Found {
                    value,
                    expires_at: frame.expires_at,
                    stored_at: frame.stored_at,
                    depth,
                },
                stored,
            ),
            Err(error) => Decoded::Corrupt(error.to_string()),
        }
    }

    /// A tier returned bytes that do not decode: count, log and delete them.
    pub(crate) async fn drop_corrupt(&self, layer: &Layer, key: &str, reason: &str) {
        layer.record_corrupt();
        tracing::warn!(tier = layer.name(), %key, %reason, "undecodable entry: deleting it");
        let _ = layer.delete(key).await;
    }

    /// Reads the lower tiers top to bottom (from `start`, or the top). On a hit, promotes the
    /// entry into every tier above that answered this read, as fills through `ticket`, and
    /// returns it.
    pub(crate) async fn read_lower(
        &self,
        key: &str,
        ticket: &ReadTicket<'_>,
        start: Option<usize>,
    ) -> LowerRead<V> {
        let shared = &*self.shared;
        let mut answered = vec![false; shared.layers.len()];
        for (depth, layer) in shared.layers.iter().enumerate().skip(start.unwrap_or(0)) {
            let stored = match layer.get(key).await {
                Lookup::Hit(stored) => stored,
                Lookup::Miss => {
                    answered[depth] = true;
                    continue;
                }
                Lookup::Degraded(_) => continue,
            };
            answered[depth] = true;
            match self.decode(stored, depth) {
                Decoded::Hit(found, stored) => {
                    shared.lower_hits.fetch_add(1, Relaxed);
                    let above = shared.layers[..depth]
                        .iter()
                        .zip(&answered)
                        .filter_map(|(layer, answered)| answered.then_some(layer));
                    self.fill_tiers(ticket, key, &stored, found.expires_at, above)
                        .await;
                    return LowerRead {
                        found: Some(found),
                        answered,
                    };
                }
                Decoded::Expired => continue,
                Decoded::Corrupt(reason) => self.drop_corrupt(layer, key, &reason).await,
            }
        }
        LowerRead {
            found: None,
            answered,
        }
    }

    /// Fills L1 with a value a read found, unless a write of the key started since the read
    /// began.
    pub(crate) fn fill_l1(
        &self,
        ticket: &ReadTicket<'_>,
        key: &str,
        value: &V,
        expires_at: Option<SystemTime>,
    ) {
        if self.shared.l1_disabled {
            return;
        }
        let filled = ticket.fill_l1(|| {
            let _ = self.insert_l1(key.to_owned(), value.clone(), expires_at);
        });
        if !filled {
            self.shared.fills_fenced.fetch_add(1, Relaxed);
        }
    }

    /// Fills `targets` with a frame a read found (a promotion, a loader's result), each as a
    /// fill through `ticket`: skipped if a write of the key started since the read began, and
    /// undone with a delete if one started while the fill was being written.
    pub(crate) async fn fill_tiers<'a>(
        &self,
        ticket: &ReadTicket<'_>,
        key: &str,
        stored: &Bytes,
        expires_at: Option<SystemTime>,
        targets: impl Iterator<Item = &'a Layer>,
    ) {
        let Ok(left) = remaining(expires_at, SystemTime::now()) else {
            return;
        };
        let shared = &*self.shared;
        join_all(targets.map(|layer| async move {
            let Some(fill) = ticket.begin_tier_fill() else {
                shared.fills_fenced.fetch_add(1, Relaxed);
                return;
            };
            // If this future is dropped mid-write (a cancelled `get`), the write may still land
            // after a later write of the key: the key is then skipped in this tier.
            let mut unfinished = Unfinished {
                layer,
                key,
                armed: true,
            };
            let was_stale = layer.is_stale(key);
            let result = layer.fill(key, stored.clone(), layer.ttl_for(left)).await;
            let written = matches!(result, Ok(Stored::Written));
            let holds = fill.holds_then(|| {
                if written && was_stale {
                    layer.refreshed(key);
                }
            });
            if holds {
                if written {
                    layer.record_promotion();
                }
                if result.is_err() {
                    // Timed out or failed: it may still land, after a later write.
                    layer.mark_stale(key);
                }
            } else {
                shared.fills_fenced.fetch_add(1, Relaxed);
                // A write started while this fill was in flight: the fill may have landed
                // after the write's own, so take it out. (A fill the tier kept out needs no
                // undo.)
                if !matches!(result, Ok(Stored::Kept)) {
                    layer.undo_fill(key).await;
                }
            }
            unfinished.armed = false;
            drop(fill);
        }))
        .await;
    }
}
