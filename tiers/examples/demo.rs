//! The README's main command: Strata's embedded default, L1 over a redb file, serving a
//! read-through workload from a slow source, then again after a restart (a new L1 over the same
//! file), with per-tier statistics and health.
//!
//! `cargo run --release -p strata --example demo [-- PATH]` (default path:
//! `$TMPDIR/strata-demo/cache.redb`).
//!
//! With `STRATA_REDIS_URL` set (and the `redis` feature:
//! `STRATA_REDIS_URL=redis://127.0.0.1:6379 cargo run --release -p strata --features redis
//! --example demo`), a Redis tier goes between L1 and the disk: L1, then Redis, then redb.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::{Postcard, RedbTier, TierOptions, TierRegistry, TieredCache};

const KEYS: u64 = 50_000;
const TASKS: u64 = 8;
const REQUESTS_PER_TASK: u64 = 25_000;
const SOURCE_LATENCY: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Profile {
    id: u64,
    name: String,
    roles: Vec<String>,
}

type Profiles = TieredCache<Arc<Profile>, Postcard<Arc<Profile>>>;

/// The "database": every load costs SOURCE_LATENCY.
async fn load_profile(id: u64, loads: &AtomicU64) -> Result<Arc<Profile>, std::io::Error> {
    loads.fetch_add(1, Relaxed);
    tokio::time::sleep(SOURCE_LATENCY).await;
    Ok(Arc::new(Profile {
        id,
        name: format!("user {id}"),
        roles: vec!["reader".into(); (id % 4) as usize],
    }))
}

/// A skewed key: log-uniform over 1..=KEYS, so small ids are hot (close to Zipf with s = 1).
fn skewed_key(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    let u = (*state >> 11) as f64 / (1u64 << 53) as f64;
    (KEYS as f64).powf(u) as u64
}

async fn open(
    path: &std::path::Path,
) -> Result<(Profiles, Arc<RedbTier>), Box<dyn std::error::Error>> {
    let disk = Arc::new(
        RedbTier::builder(path)
            .max_size(256 << 20)
            .recreate_if_corrupt(true)
            .open_async()
            .await?,
    );
    let mut builder = Profiles::builder()
        .memory_max_entries(2_000)
        .memory_ttl(Duration::from_secs(60))
        .default_ttl(Duration::from_secs(3600));
    if let Ok(url) = std::env::var("STRATA_REDIS_URL") {
        // The registry knows `redis://` when the `redis` feature is on, and says which schemes
        // it knows otherwise.
        let redis = TierRegistry::default().open(&url).await.map_err(|error| {
            format!("STRATA_REDIS_URL: {error} (the Redis tier needs `--features redis`)")
        })?;
        builder = builder.tier_with(redis, TierOptions::default().ttl(Duration::from_secs(3600)));
    }
    let cache = builder
        .tier_with(
            disk.clone(),
            TierOptions::default().ttl(Duration::from_secs(24 * 3600)),
        )
        .build();
    Ok((cache, disk))
}

async fn run(label: &str, cache: &Profiles) {
    let loads = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (cache, loads) = (cache.clone(), loads.clone());
            tokio::spawn(async move {
                let mut state =
                    0x9E37_79B9_7F4A_7C15 ^ (task + 1).wrapping_mul(0xA24B_AED4_963E_E407);
                for _ in 0..REQUESTS_PER_TASK {
                    let id = skewed_key(&mut state);
                    let profile = cache
                        .get_or_load(&format!("profile:{id}"), || load_profile(id, &loads))
                        .await
                        .expect("the source never fails here");
                    assert_eq!(profile.id, id);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task panicked");
    }
    let elapsed = started.elapsed();
    let requests = TASKS * REQUESTS_PER_TASK;
    let stats = cache.stats();
    println!("== {label}");
    println!(
        "{requests} requests by {TASKS} tasks over {KEYS} keys in {:.2?} ({:.0} req/s); source loads: {}",
        elapsed,
        requests as f64 / elapsed.as_secs_f64(),
        loads.load(Relaxed)
    );
    println!(
        "L1: {} hits, {} entries | lower-tier hits: {} | misses everywhere: {} | overall hit ratio {:.3}",
        stats.l1.hits,
        cache.l1().len(),
        stats.lower_hits,
        stats.misses,
        stats.hit_ratio()
    );
    for tier in &stats.tiers {
        println!(
            "tier {}: {} hits, {} misses, {} writes, {} errors, {} timeouts, p50 {:?}, p99 {:?}, breaker {}",
            tier.name,
            tier.hits,
            tier.misses,
            tier.writes,
            tier.errors,
            tier.timeouts,
            tier.latency_p50.unwrap_or_default(),
            tier.latency_p99.unwrap_or_default(),
            tier.breaker.label()
        );
    }
    println!("health: {}", cache.health_check().await.to_json());
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("strata-demo").join("cache.redb"));
    match std::env::var("STRATA_REDIS_URL") {
        Ok(url) => println!(
            "L1 (2,000 entries) over Redis at {url} over redb at {}\n",
            path.display()
        ),
        Err(_) => println!("L1 (2,000 entries) over redb at {}\n", path.display()),
    }

    let (cache, disk) = open(&path).await?;
    cache.clear().await?; // start cold, whatever an earlier run left
    run("cold start: L1 and disk empty", &cache).await;
    println!("redb: {:?}\n", disk.stats());
    // Flushes what the disk tier acknowledged and stops its writer.
    cache.close().await?;
    drop(cache);

    let (cache, disk) = open(&path).await?;
    run("restart: a new L1 over the same file", &cache).await;
    println!("redb: {:?}", disk.stats());
    cache.close().await?;
    Ok(())
}
