//! Verification of Strata's engine beyond its unit tests.
//!
//! * `tests/loom_*.rs`: loom models of the real engine code, built with
//!   `RUSTFLAGS="--cfg strata_loom --cfg crossbeam_loom"`; each names the interleaving it guards.
//! * The stress run (`strata-stress`): many threads of random operations on a small key space,
//!   every operation's invocation and response recorded, each key's history checked; with
//!   [`accounting`], every value written accounted for by id at each quiet point.
//! * [`model`]: a single-threaded reference model driven by random operation sequences, by the
//!   proptest in `tests/model.rs` and by the cargo-fuzz target in `fuzz/` alike.
//! * [`reference`]: an independent single-shard S3-FIFO, written from the paper, whose eviction
//!   victims the engine must match one by one (`tests/oracle.rs`).
//! * [`stack`]: the whole tiered stack (`strata::TieredCache`, faulty lower tiers) under
//!   concurrent calls, each key's history checked for stale reads (`strata-stack-check`).
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(strata_loom))]
pub mod accounting;
#[cfg(not(strata_loom))]
pub mod checker;
#[cfg(not(strata_loom))]
pub mod history;
#[cfg(not(strata_loom))]
pub mod model;
#[cfg(not(strata_loom))]
pub mod reference;
#[cfg(not(strata_loom))]
pub mod report;
#[cfg(not(strata_loom))]
pub mod slot_hasher;
#[cfg(not(strata_loom))]
pub mod stack;
#[cfg(not(strata_loom))]
pub mod workload;
