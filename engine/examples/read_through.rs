//! Single-thread read-through: a `get`, and an `insert` on a miss, over 1M keys drawn with
//! probability about proportional to 1 / (key + 1) (Zipf 1), into a cache of 100,000 entries. A harness for profiling the mix of hits and
//! misses that `strata-bench throughput`'s read-through workload measures
//! (`perf record ./target/release/examples/read_through`).
//!
//! `cargo run --release -p strata-engine --example read_through`

use strata_engine::Cache;

fn main() {
    const KEYS: u64 = 1_000_000;
    let cache = Cache::<u64, u64>::new(KEYS / 10);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut misses = 0u64;
    let ops = 50_000_000u64;
    for _ in 0..ops {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // `KEYS^v - 1` for a uniform `v` in [0, 1): P(key < k) = ln(k + 1) / ln(KEYS).
        let v = (x >> 11) as f64 / (1u64 << 53) as f64;
        let key = ((KEYS as f64).powf(v) as u64 - 1).min(KEYS - 1);
        if cache.get(&key).is_none() {
            misses += 1;
            cache.insert(key, key);
        }
    }
    println!("miss ratio {:.3}", misses as f64 / ops as f64);
}
