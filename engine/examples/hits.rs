//! Single-thread hits on a cache holding 1M keys, skewed toward small keys: a harness for
//! profiling the read path (`perf record ./target/release/examples/hits`).
//!
//! `cargo run --release -p strata-engine --example hits [KEYS]` (default 1,000,000 keys; a small
//! count such as 10,000 keeps everything in the CPU caches and shows the fixed cost of a hit).

use strata_engine::Cache;

fn main() {
    let keys: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |arg| arg.parse().expect("KEYS must be a number"));
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
