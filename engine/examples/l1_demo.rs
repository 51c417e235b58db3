//! The engine on a read-through workload: two threads read Zipf-distributed keys through
//! `get_or_insert_with` (a stand-in for a slow backend) against a cache holding a tenth of them,
//! then print what the cache saw.
//!
//! `cargo run --release -p strata-engine --example l1_demo`

use std::time::{Duration, Instant};

use strata_engine::Cache;

const KEYS: u64 = 100_000;
const OPS_PER_THREAD: u64 = 2_000_000;

/// A xorshift stream mapped to ranks with a ~1/rank (Zipf s=1) law.
fn zipf_keys(seed: u64) -> impl Iterator<Item = u64> {
    let mut state = seed | 1;
    std::iter::repeat_with(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let u = (state >> 11) as f64 / (1u64 << 53) as f64;
        (KEYS as f64).powf(u) as u64
    })
}

fn main() {
    let cache: Cache<u64, String> = Cache::builder()
        .max_capacity(KEYS / 10)
        .time_to_live(Duration::from_secs(60))
        .build();
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let cache = &cache;
            s.spawn(move || {
                for key in zipf_keys(0x9E37_79B9 + t).take(OPS_PER_THREAD as usize) {
                    let value = cache.get_or_insert_with(key, || format!("row {key}"));
                    debug_assert_eq!(value, format!("row {key}"));
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let stats = cache.stats();
    println!(
        "strata-engine demo: 2 threads, {KEYS} keys, capacity {}",
        KEYS / 10
    );
    println!(
        "  {} reads in {:.2?} ({:.1} M reads/s)",
        2 * OPS_PER_THREAD,
        elapsed,
        (2 * OPS_PER_THREAD) as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "  hits {}  misses {}  hit ratio {:.3}",
        stats.hits,
        stats.misses,
        stats.hit_ratio()
    );
    println!(
        "  inserts {}  evictions {}  entries {}",
        stats.inserts, stats.evictions, stats.entries
    );
}
