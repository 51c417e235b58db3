//! A design probe for the engine speed issue (18), not a cache: how fast could a hit be if the engine's
//! split-ordered list (a 16-byte bucket sentinel, then a walk through 48-byte nodes) gave way to
//! cache-line buckets of node pointers, in the manner of CLHT (David, Guerraoui and Trigonakis, "Asynchronized
//! Concurrency: The Secret to Scaling Concurrent Search Data Structures", ASPLOS 2015)?
//!
//! The probe's table: 64-byte buckets, each one tag word (a tag byte per slot, 0 for empty, and an overflow
//! byte) and 7 node pointers; a key's bucket by multiply-shift, linear probing to the next bucket while the
//! overflow byte is set. A node is what a count-bounded cache without a weigher needs: the metadata word
//! (expiry, frequency, flags), the key and the value, 24 bytes for `u64 -> u64` (allocated in jemalloc's
//! 32-byte class). A hit does what the engine's does: hash with ahash, pin a crossbeam epoch, load the tag
//! word, load the pointer of each matching tag, compare the key, raise the CLOCK frequency if below its
//! maximum, copy the value. So a hit touches two cache lines (the bucket, the node) where the engine touches
//! the sentinel, one line or two of its node (half of 48-byte nodes straddle a line), and one more node half
//! the time (the run of a bucket at one entry per bucket).
//!
//! Nothing here inserts concurrently, evicts or reclaims: the table is filled by one thread before the timed
//! runs, which only read. It measures the read path of the proposed layout against the engine, quick_cache
//! and a hashbrown map, on the throughput suite's read-only workload: Zipf 0.99 over 1M keys, every key
//! resident (the caches sized for 1.25x the keys, the probe's table for the keys at 85% of its slots), the same precomputed key streams for every contender, 5 runs of 1 s each in rotated order,
//! medians reported.
//!
//! `cargo run --release -p strata-benches --example table_probe [KEYS] [RUNS]`

use std::hint::black_box;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

// The suite's own adapters, runner, statistics and key streams, so that every contender here is called
// as `strata-bench throughput` calls it.
#[allow(dead_code)]
#[path = "../src/contenders.rs"]
mod contenders;
#[allow(dead_code)]
#[path = "../src/report.rs"]
mod report;
#[path = "../src/timed.rs"]
mod timed;
#[allow(dead_code)]
#[path = "../src/zipf.rs"]
mod zipf;

use contenders::{Contender, Hashbrown, Lookup, QuickCache, Strata};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const WAYS: usize = 7;
/// The tag word's top byte: set once a bucket filled and an insert went on to the next bucket.
const OVERFLOW: u64 = 0xFF << 56;
/// Slots filled per slot available when the table is sized (the rest is the probe's slack).
const LOAD: f64 = 0.85;
/// The CLOCK frequency's bits in the metadata word, as in the engine's node.
const FREQ_ONE: u64 = 1 << 40;
const FREQ_MASK: u64 = 0b11 << 40;

struct Node {
    meta: AtomicU64,
    key: u64,
    value: u64,
}

#[repr(C, align(64))]
struct Bucket {
    tags: AtomicU64,
    slots: [AtomicPtr<Node>; WAYS],
}

struct ProbeTable {
    buckets: Box<[Bucket]>,
    hasher: ahash::RandomState,
    nodes: usize,
}

/// A slot's tag: the hash's low byte, which the bucket index (from the high bits, by multiply-shift)
/// does not use, made odd so that no tag is 0 (empty).
fn tag_of(hash: u64) -> u64 {
    (hash & 0xFF) | 1
}

/// Bytes of `word`'s 7 low bytes that equal `tag` have their high bit set in the result (and possibly a
/// byte above a match, which the key comparison rules out).
fn matches(word: u64, tag: u64) -> u64 {
    const LOW: u64 = 0x0001_0101_0101_0101;
    const HIGH: u64 = 0x0080_8080_8080_8080;
    let x = word ^ (tag * LOW);
    x.wrapping_sub(LOW) & !x & HIGH
}

impl ProbeTable {
    fn new(entries: usize) -> Self {
        let count = ((entries as f64 / (WAYS as f64 * LOAD)).ceil() as usize).max(1);
        let buckets = (0..count)
            .map(|_| Bucket {
                tags: AtomicU64::new(0),
                slots: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            })
            .collect();
        ProbeTable {
            buckets,
            hasher: ahash::RandomState::new(),
            nodes: 0,
        }
    }

    fn bucket_of(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.buckets.len() as u128) >> 64) as usize
    }

    /// One thread only, before any reader (the probe measures the read path).
    fn insert(&mut self, key: u64, value: u64) {
        let hash = self.hasher.hash_one(key);
        let tag = tag_of(hash);
        let mut index = self.bucket_of(hash);
        let node = Box::into_raw(Box::new(Node {
            meta: AtomicU64::new(0),
            key,
            value,
        }));
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[index];
            let tags = bucket.tags.load(Ordering::Relaxed);
            if let Some(slot) = (0..WAYS).find(|&i| (tags >> (8 * i)) & 0xFF == 0) {
                bucket.slots[slot].store(node, Ordering::Release);
                bucket
                    .tags
                    .store(tags | (tag << (8 * slot)), Ordering::Release);
                self.nodes += 1;
                return;
            }
            bucket.tags.store(tags | OVERFLOW, Ordering::Release);
            index = (index + 1) % self.buckets.len();
        }
        panic!("the probe table is full");
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        let hash = self.hasher.hash_one(key);
        let tag = tag_of(hash);
        let _guard = crossbeam_epoch::pin();
        let mut index = self.bucket_of(hash);
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[index];
            let tags = bucket.tags.load(Ordering::Acquire);
            let mut found = matches(tags, tag);
            while found != 0 {
                let slot = (found.trailing_zeros() / 8) as usize;
                found &= found - 1;
                let node = bucket.slots[slot].load(Ordering::Acquire);
                // SAFETY: a non-null slot holds a node leaked by `insert` and freed only by `Drop`, which
                // needs `&mut self`; the pointer was published with release and loaded with acquire.
                let node = unsafe { node.as_ref() };
                if let Some(node) = node.filter(|node| node.key == key) {
                    let meta = node.meta.load(Ordering::Relaxed);
                    if meta & FREQ_MASK != FREQ_MASK {
                        let _ = node.meta.compare_exchange_weak(
                            meta,
                            meta + FREQ_ONE,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                    return Some(node.value);
                }
            }
            if tags & OVERFLOW == 0 {
                return None;
            }
            index = (index + 1) % self.buckets.len();
        }
        None
    }

    fn bytes_per_entry(&self) -> f64 {
        let node = 32.0; // jemalloc's size class for a 24-byte node
        (self.buckets.len() * std::mem::size_of::<Bucket>()) as f64 / self.nodes as f64 + node
    }
}

impl Drop for ProbeTable {
    fn drop(&mut self) {
        for bucket in self.buckets.iter_mut() {
            for slot in &mut bucket.slots {
                let node = *slot.get_mut();
                if !node.is_null() {
                    // SAFETY: each node was leaked once by `insert` and is in one slot; `&mut self`.
                    drop(unsafe { Box::from_raw(node) });
                }
            }
        }
    }
}

impl Lookup for ProbeTable {
    const NAME: &'static str = "probe";

    #[inline]
    fn get(&self, key: u64) -> Option<u64> {
        ProbeTable::get(self, key)
    }
}

/// Ops/s of one 1-second run of the read-only workload on `cache`, one thread per stream.
fn rate<C: Lookup>(cache: &C, streams: &[Vec<u64>]) -> f64 {
    let rate = timed::timed(cache, streams, 1.0, |c, k| black_box(c.get(k)).is_some());
    assert!(rate.hit_ratio > 0.999, "{} missed resident keys", C::NAME);
    rate.ops_per_sec
}

struct Contenders {
    probe: ProbeTable,
    strata: Strata,
    quick_cache: QuickCache,
    hashbrown: Hashbrown,
}

const NAMES: [&str; 4] = [
    <ProbeTable as Lookup>::NAME,
    Strata::NAME,
    QuickCache::NAME,
    Hashbrown::NAME,
];

impl Contenders {
    fn run(&self, which: usize, streams: &[Vec<u64>]) -> f64 {
        match which {
            0 => rate(&self.probe, streams),
            1 => rate(&self.strata, streams),
            2 => rate(&self.quick_cache, streams),
            _ => rate(&self.hashbrown, streams),
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let keys: usize = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("KEYS must be a number"));
    let runs: usize = args
        .next()
        .map_or(5, |a| a.parse().expect("RUNS must be a number"));
    let zipf = zipf::Zipf::new(keys, 0.99);
    let streams: Vec<Vec<u64>> = (0..2)
        .map(|t| zipf::zipf_stream(&zipf, 1 << 21, 0x2545_F491 + t))
        .collect();
    let mut probe = ProbeTable::new(keys);
    // Room for a quarter more than the keys, as in the throughput suite's read-only workload (a sharded
    // cache bounds each shard, so one sized exactly would evict a few keys).
    let capacity = keys + keys / 4;
    let strata = Strata::with_capacity(capacity);
    let quick_cache = QuickCache::with_capacity(capacity);
    let hashbrown = Hashbrown::filled(keys, (0..keys as u64).map(zipf::key_of));
    for key in (0..keys as u64).map(zipf::key_of) {
        probe.insert(key, key);
        strata.insert(key, key);
        quick_cache.insert(key, key);
    }
    let contenders = Contenders {
        probe,
        strata,
        quick_cache,
        hashbrown,
    };
    println!(
        "probe layout: {:.1} bytes per entry (buckets + 32-byte nodes), {} keys",
        contenders.probe.bytes_per_entry(),
        keys
    );
    for threads in [1, 2] {
        let mut samples = vec![Vec::new(); NAMES.len()];
        for run in 0..runs {
            for offset in 0..NAMES.len() {
                let which = (run + offset) % NAMES.len();
                samples[which].push(contenders.run(which, &streams[..threads]));
            }
        }
        let medians: Vec<f64> = samples.into_iter().map(report::median).collect();
        println!("\n{threads} thread(s), Zipf 0.99 read-only, medians of {runs} runs:");
        println!("| contender | Mops/s | ns per get per thread | / quick_cache |");
        println!("| --- | ---: | ---: | ---: |");
        for (name, ops) in NAMES.iter().zip(&medians) {
            println!(
                "| {name} | {:.2} | {:.1} | {:.2}x |",
                ops / 1e6,
                1e9 * threads as f64 / ops,
                ops / medians[2]
            );
        }
    }
}
