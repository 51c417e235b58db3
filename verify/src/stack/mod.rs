//! A checked concurrent run of the whole tiered stack (`strata::TieredCache` over two faulty
//! memory tiers): worker tasks call `get`, `get_many`, `get_or_load`, `set`, `delete`,
//! `invalidate_pattern`, `clear` and poke L1 directly while a chaos task keeps changing the
//! tiers' faults; every call is recorded ([`history`]) and checked against the stack's
//! consistency contract, the staleness rule of issue 12 ([`checker`]). Driven by
//! [`workload::run`], from the `strata-stack-check` binary and `tests/stack_history.rs`.

pub mod checker;
pub mod history;
pub mod report;
pub mod workload;
