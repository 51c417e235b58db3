//! Single-thread hits on a cache holding 1M keys, skewed toward small keys: a harness for
//! profiling the read path (`perf record ./target/release/examples/hits`).
//!
//! `cargo run --release -p strata-engine --example hits`

use strata_engine::Cache;

fn main() {
    let keys = 1_000_000u64;
    let cache = Cache::<u64, u64>::new(keys + keys / 4);
    for k in 0..keys {
        cache.insert(k, k);
    }
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut sum = 0u64;
    for _ in 0..100_000_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Squaring a uniform 24-bit draw favours small keys.
        let u = x >> 40;
        if let Some(v) = cache.get(&(((u * u) >> 28) % keys)) {
            sum = sum.wrapping_add(v);
        }
    }
    println!("checksum {sum}, hit ratio {:.3}", cache.stats().hit_ratio());
}
