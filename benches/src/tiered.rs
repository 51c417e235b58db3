//! `strata-bench tiered`: what the `strata` crate adds on top of the engine.
//!
//! - the cost of an L1 hit through `TieredCache::get` next to a bare engine `get` on the same keys
//!   (target: at most 100 ns more);
//! - LZ4 on and off for 1 KiB, 64 KiB and 1 MiB JSON-like values: stored size, frame encode and decode time;
//! - the serde format for typed values: encoded size and round-trip time of postcard, bincode, MessagePack
//!   and JSON on one record type.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use strata::frame::{self, FrameOptions};
use strata::{Postcard, TieredCache};
use strata_testing::MemoryTier;

use crate::report::{Section, Table};

#[derive(clap::Args, Debug, Clone)]
pub struct TieredArgs {
    /// Timed repetitions of each measurement; the median is reported.
    #[arg(long, default_value_t = 7)]
    pub tiered_runs: usize,
    /// Distinct keys in the L1 hit measurement (all resident).
    #[arg(long, default_value_t = 10_000)]
    pub tiered_keys: usize,
}

pub fn run(args: &TieredArgs) -> anyhow::Result<Vec<Section>> {
    Ok(vec![l1_hit(args)?, compression(args), codecs(args)])
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn l1_hit(args: &TieredArgs) -> anyhow::Result<Section> {
    let keys: Vec<String> = (0..args.tiered_keys)
        .map(|i| format!("user:{i}:profile"))
        .collect();
    // A Zipf-free uniform sweep, repeated; every key is resident in both caches.
    let order: Vec<usize> = {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        (0..1 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % keys.len() as u64) as usize
            })
            .collect()
    };
    let capacity = keys.len() as u64 * 2;
    let bare: strata::Cache<String, u64> = strata::Cache::new(capacity);
    let tiered: TieredCache<u64, Postcard<u64>> = TieredCache::builder()
        .memory_max_entries(capacity)
        .tier(Arc::new(MemoryTier::new("l2")))
        .build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for (i, key) in keys.iter().enumerate() {
        bare.insert(key.clone(), i as u64);
        let _ = runtime.block_on(tiered.set(key, i as u64))?;
    }
    let (mut bare_ns, mut tiered_ns) = (Vec::new(), Vec::new());
    for _ in 0..args.tiered_runs {
        let started = Instant::now();
        let mut hits = 0u64;
        for &i in &order {
            hits += u64::from(black_box(bare.get(keys[i].as_str())).is_some());
        }
        bare_ns.push(started.elapsed().as_nanos() as f64 / order.len() as f64);
        anyhow::ensure!(hits == order.len() as u64, "bare engine missed");

        let started = Instant::now();
        let hits = runtime.block_on(async {
            let mut hits = 0u64;
            for &i in &order {
                hits += u64::from(black_box(tiered.get(keys[i].as_str()).await).is_some());
            }
            hits
        });
        tiered_ns.push(started.elapsed().as_nanos() as f64 / order.len() as f64);
        anyhow::ensure!(hits == order.len() as u64, "tiered cache missed L1");
    }
    anyhow::ensure!(
        tiered.stats().lower_hits == 0,
        "reads reached the lower tier"
    );
    let (bare, tiered) = (median(bare_ns), median(tiered_ns));
    let mut section = Section::new("L1 hit: TieredCache::get vs the bare engine get");
    section.text(format!(
        "{} resident `String` keys, {} random hits per run, median of {} runs, one thread; the \
         TieredCache has an in-memory L2 that the hits never reach. Target: at most 100 ns more.",
        keys.len(),
        order.len(),
        args.tiered_runs
    ));
    let mut table = Table::new(["path", "ns per hit", "difference"]);
    table.row([
        "engine `Cache::get`".to_owned(),
        format!("{bare:.1}"),
        String::new(),
    ]);
    table.row([
        "`TieredCache::get().await`".to_owned(),
        format!("{tiered:.1}"),
        format!("{:+.1} ns", tiered - bare),
    ]);
    section.table(table);
    Ok(section)
}

/// JSON-like text of `len` bytes: repetitive field names, varying values, as API responses are.
fn json_like(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 128);
    out.push(b'[');
    let mut i = 0u64;
    while out.len() < len {
        let line = format!(
            "{{\"id\":{i},\"name\":\"user-{}\",\"email\":\"user{}@example.com\",\"active\":{},\"score\":{}.{}}},",
            i * 7919 % 100_003,
            i * 104_729 % 1_000_003,
            i % 3 == 0,
            i * 31 % 1000,
            i % 97
        );
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

/// Median time of `f` in microseconds, repeating it enough to run for about 20 ms per sample.
fn time_micros(runs: usize, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    f();
    let once = started.elapsed().max(Duration::from_nanos(100));
    let reps = (Duration::from_millis(20).as_nanos() / once.as_nanos()).clamp(1, 100_000) as u32;
    let samples = (0..runs)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..reps {
                f();
            }
            started.elapsed().as_secs_f64() * 1e6 / f64::from(reps)
        })
        .collect();
    median(samples)
}

fn compression(args: &TieredArgs) -> Section {
    let mut section = Section::new("LZ4 on/off: framed size and time");
    section.text(
        "JSON-like values (repeated field names, varying numbers). `encode` frames the payload \
         (header, CRC-32, LZ4 when on and smaller); `decode` checks and decompresses. Median of runs.",
    );
    let mut table = Table::new([
        "value",
        "LZ4",
        "stored bytes",
        "ratio",
        "encode µs",
        "decode µs",
        "encode MB/s",
    ]);
    for len in [1024usize, 64 << 10, 1 << 20] {
        let payload = json_like(len);
        for lz4 in [false, true] {
            let options = FrameOptions {
                compression_threshold: if lz4 { 1024 } else { usize::MAX },
                max_payload: 16 << 20,
            };
            let stored = frame::encode(&payload, None, std::time::SystemTime::now(), &options);
            let encode = time_micros(args.tiered_runs, || {
                black_box(frame::encode(
                    black_box(&payload),
                    None,
                    std::time::SystemTime::now(),
                    &options,
                ));
            });
            let decode = time_micros(args.tiered_runs, || {
                black_box(frame::decode(black_box(&stored), &options).expect("decodes"));
            });
            table.row([
                format!("{} KiB", len / 1024),
                if lz4 { "on" } else { "off" }.to_owned(),
                stored.len().to_string(),
                format!("{:.2}", stored.len() as f64 / len as f64),
                format!("{encode:.2}"),
                format!("{decode:.2}"),
                format!("{:.0}", len as f64 / encode),
            ]);
        }
    }
    section.table(table);
    section
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Record {
    id: u64,
    name: String,
    email: String,
    roles: Vec<String>,
    score: f64,
    active: bool,
    created_at: u64,
    counters: Vec<u32>,
}

fn record() -> Record {
    Record {
        id: 1_234_567,
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        roles: vec!["admin".into(), "editor".into()],
        score: 97.25,
        active: true,
        created_at: 1_764_000_000,
        counters: vec![3, 141, 5926, 53, 58979],
    }
}

fn codecs(args: &TieredArgs) -> Section {
    let value = record();
    type Encode = fn(&Record) -> Vec<u8>;
    type Decode = fn(&[u8]) -> Record;
    let formats: [(&str, Encode, Decode); 4] = [
        (
            "postcard (chosen)",
            |r| postcard::to_stdvec(r).expect("encodes"),
            |b| postcard::from_bytes(b).expect("decodes"),
        ),
        (
            "bincode 2 (serde)",
            |r| bincode::serde::encode_to_vec(r, bincode::config::standard()).expect("encodes"),
            |b| {
                bincode::serde::decode_from_slice(b, bincode::config::standard())
                    .expect("decodes")
                    .0
            },
        ),
        (
            "MessagePack (rmp-serde)",
            |r| rmp_serde::to_vec(r).expect("encodes"),
            |b| rmp_serde::from_slice(b).expect("decodes"),
        ),
        (
            "JSON (serde_json)",
            |r| serde_json::to_vec(r).expect("encodes"),
            |b| serde_json::from_slice(b).expect("decodes"),
        ),
    ];
    let mut section = Section::new("Serde format for typed values");
    section.text("One record (u64s, strings, a list of strings, a float, a bool, a list of u32). Median of runs.");
    let mut table = Table::new(["format", "bytes", "encode ns", "decode ns"]);
    for (name, encode, decode) in formats {
        let bytes = encode(&value);
        assert_eq!(decode(&bytes), value, "{name} round trip");
        let enc = time_micros(args.tiered_runs, || {
            black_box(encode(black_box(&value)));
        });
        let dec = time_micros(args.tiered_runs, || {
            black_box(decode(black_box(&bytes)));
        });
        table.row([
            name.to_owned(),
            bytes.len().to_string(),
            format!("{:.0}", enc * 1000.0),
            format!("{:.0}", dec * 1000.0),
        ]);
    }
    section.table(table);
    section
}
