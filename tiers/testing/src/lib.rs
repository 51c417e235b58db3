//! Test tiers for Strata and the [`Tier`](strata_tier::Tier) contract suite.
//!
//! - [`MemoryTier`]: a `HashMap` tier that honours TTLs, does insert-if-absent fills, and
//!   delivers invalidations between handles that share its storage ([`MemoryTier::peer`]), as
//!   a Redis tier does between processes.
//! - [`FaultyTier`]: wraps any tier and injects failures, delays, hangs, damaged bytes and
//!   request errors on a schedule, for reads, writes or both.
//! - [`contract::check`]: every documented promise of the `Tier` trait, checked against a tier
//!   you give it. A plugin author's whole conformance test is one call:
//!
//! ```
//! use std::sync::Arc;
//! use strata_testing::{contract, MemoryTier};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let report = contract::check(Arc::new(MemoryTier::new("mem")), contract::Options::default())
//!     .await
//!     .expect("the memory tier keeps the Tier contract");
//! assert!(report.checked.len() > 10);
//! # });
//! ```
//!
//! - [`redis_server`]: real `redis-server` processes (standalone, or a 3 + 3 cluster) on free
//!   loopback ports, for tests of tiers that talk to Redis.
//!
//! These are for tests and examples; the `strata` crate users add does not depend on them.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod contract;
mod fault;
mod memory;
pub mod redis_server;

pub use fault::{Fault, FaultyTier, Ops, Schedule};
pub use memory::{MemoryFactory, MemoryTier};
