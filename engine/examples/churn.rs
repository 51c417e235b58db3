//! Single-thread insert churn into a full cache: every insert evicts. A small, allocation-light
//! harness for profiling the write path (`perf record ./target/release/examples/churn`).
//!
//! `cargo run --release -p strata-engine --example churn`

use strata_engine::Cache;

fn main() {
    let cache = Cache::<u64, u64>::new(100_000);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..20_000_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        cache.insert(x, x);
    }
    println!("entries after 20M inserts: {}", cache.len());
}
