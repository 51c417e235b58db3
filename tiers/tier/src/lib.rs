//! The [`Tier`] trait: what a lower cache tier (Redis, an embedded redb file, your own store)
//! implements so that Strata's `TieredCache` can read through it, promote from it, write to it
//! and invalidate it.
//!
//! This crate is deliberately small and depends only on `async-trait`, `bytes` and `thiserror`:
//! a team writing its own tier depends on `strata-tier` alone, and the `strata` crate can
//! re-export tier plugins behind features without a dependency cycle.
//!
//! # Writing a tier
//!
//! A tier stores opaque bytes under string keys. The orchestrator above it frames every value
//! (format version, flags, absolute expiry, checksum, payload), so a tier never interprets what
//! it stores; it only has to keep the `ttl` it is given. The contract, method by method, is on
//! [`Tier`]. The two rules that matter most:
//!
//! - **Reads never fail the request.** A tier that cannot answer a read (connection refused,
//!   timeout, corrupt page) answers [`Lookup::Degraded`], a miss that carries the reason, and the
//!   cache falls through to the next tier or the loader.
//! - **Writes and invalidations report failure.** `set`, `delete`, `delete_matching` and `clear`
//!   return a [`TierError`]; an invalidation that silently failed would leave a stale entry.
//! - **A fill never replaces a newer value where the tier can help it.** The cache writes what
//!   it read elsewhere (a promotion, a loader's result) as a [`WriteIntent::Fill`]; a tier that
//!   can insert-if-absent says so in [`Capabilities`], and the cache undoes any fill that raced
//!   with a write either way.
//!
//! Beyond the required methods: batches with per-item results (`get_many`, `set_many`,
//! `delete_many`), `close` (flush what was acknowledged), and `subscribe` (invalidations made
//! by other processes sharing the tier). A plugin also implements [`TierFactory`] so that a
//! registry can open it from its own URL scheme.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use std::time::Duration;
//! use strata_tier::{
//!     async_trait, Bytes, Health, KeyPattern, Lookup, Stored, Tier, TierError, WriteIntent,
//! };
//!
//! /// A toy tier for illustration: it ignores `ttl`, which a real tier must not do (it may
//! /// forget an entry early, never return one late).
//! #[derive(Default)]
//! struct MapTier(Mutex<HashMap<String, Bytes>>);
//!
//! #[async_trait]
//! impl Tier for MapTier {
//!     fn name(&self) -> &str { "map" }
//!     async fn get(&self, key: &str) -> Lookup {
//!         self.0.lock().unwrap().get(key).cloned().into()
//!     }
//!     async fn set(
//!         &self, key: &str, value: Bytes, _ttl: Option<Duration>, _intent: WriteIntent,
//!     ) -> Result<Stored, TierError> {
//!         // No insert-if-absent claimed (see `capabilities`), so a fill is stored like an update.
//!         self.0.lock().unwrap().insert(key.to_owned(), value);
//!         Ok(Stored::Written)
//!     }
//!     async fn delete(&self, key: &str) -> Result<bool, TierError> {
//!         Ok(self.0.lock().unwrap().remove(key).is_some())
//!     }
//!     async fn delete_matching(&self, pattern: &KeyPattern) -> Result<u64, TierError> {
//!         let mut map = self.0.lock().unwrap();
//!         let before = map.len();
//!         map.retain(|key, _| !pattern.matches(key));
//!         Ok((before - map.len()) as u64)
//!     }
//!     async fn clear(&self) -> Result<(), TierError> {
//!         self.0.lock().unwrap().clear();
//!         Ok(())
//!     }
//!     async fn health(&self) -> Health { Health::Healthy }
//! }
//! # let tier = MapTier::default();
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! tier.set("user:1", Bytes::from_static(b"Ada"), None, WriteIntent::Update).await.unwrap();
//! assert_eq!(tier.get("user:1").await.into_hit(), Some(Bytes::from_static(b"Ada")));
//! # });
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod factory;
mod health;
mod invalidation;
mod lookup;
mod pattern;
mod tier;
mod write;

pub use async_trait::async_trait;
pub use bytes::Bytes;

pub use error::TierError;
pub use factory::{OpenError, OpenFuture, TierFactory};
pub use health::Health;
pub use invalidation::{Invalidation, InvalidationSink, SharedSink, Subscription};
pub use lookup::Lookup;
pub use pattern::{KeyPattern, PatternError};
pub use tier::Tier;
pub use write::{Capabilities, Stored, TierWrite, WriteIntent};
