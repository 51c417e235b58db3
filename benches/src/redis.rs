//! `strata-bench redis`: the Redis tier (`strata-redis`) through a `TieredCache`, side by side
//! with `redis-benchmark` against the same server in the same run.
//!
//! - **L2 hit latency**: one caller doing `TieredCache::get` of random resident keys, with L1
//!   sized 0 so that every read goes to Redis (the L1 hit count is reported to show it), on a
//!   current-thread tokio runtime, against `redis-benchmark -c 1 -P 1 -t get` over the same
//!   number of keys (`-r`) and value size (`-d`). Mean latency is 1 / ops per second for both.
//! - **Batch throughput**: `TieredCache::get_many` of 16 random keys (one `MGET`) by C
//!   concurrent callers, against `redis-benchmark -c C -P 16 -t get` (16 pipelined GETs per
//!   client); keys per second.
//! - **Invalidation lag**: two instances on the server, 1,000 updates, the time from the start
//!   of a `set` on one to the key leaving the other's L1 (no peer offers this).
//!
//! The server is started on a free loopback port (or given with `--redis-url`). Runs alternate
//! which side goes first; medians of `--redis-runs` runs are reported, with each run's ratio.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use strata::{BytesCache, TierOptions};
use strata_redis::RedisTier;
use strata_testing::redis_server::RedisServer;
use strata_tier::{Bytes, Tier};

use crate::report::{median, thousands, Section, Table};
use crate::zipf::SplitMix64;

#[derive(clap::Args, Debug, Clone)]
pub struct RedisArgs {
    /// A running server (`redis://127.0.0.1:6379`); default: start `redis-server` on a free
    /// loopback port.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Repetitions of each comparison; medians are reported.
    #[arg(long, default_value_t = 5)]
    pub redis_runs: usize,
    /// Requests per side and run in the latency comparison.
    #[arg(long, default_value_t = 50_000)]
    pub redis_requests: u64,
    /// Distinct keys (redis-benchmark's `-r`).
    #[arg(long, default_value_t = 10_000)]
    pub redis_keys: u64,
    /// Value size in bytes (redis-benchmark's `-d`; Strata stores it framed, 18 bytes more).
    #[arg(long, default_value_t = 64)]
    pub redis_value_size: usize,
    /// Concurrent callers in the batch comparison, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,50")]
    pub redis_batch_clients: Vec<usize>,
    /// Updates in the invalidation-lag measurement.
    #[arg(long, default_value_t = 1_000)]
    pub redis_lag_updates: usize,
}

const NAMESPACE: &str = "bench";
const BATCH: usize = 16;

pub fn run(args: &RedisArgs) -> anyhow::Result<Vec<Section>> {
    anyhow::ensure!(args.redis_runs > 0, "--redis-runs must be at least 1");
    let _server;
    let (url, port) = match &args.redis_url {
        Some(url) => (url.clone(), port_of(url)?),
        None => {
            let Some(server) = RedisServer::start().context("starting redis-server")? else {
                bail!(
                    "redis-server is not installed (apt-get install -y redis-server redis-tools)"
                );
            };
            let url = server.url();
            let port = server.port();
            _server = server;
            (url, port)
        }
    };
    which("redis-benchmark")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let value = vec![b'x'; args.redis_value_size];
    runtime.block_on(populate(&url, args.redis_keys, &value))?;
    let keys: Vec<String> = (0..args.redis_keys).map(key_name).collect();

    Ok(vec![
        latency(args, &runtime, &url, port, &keys)?,
        batches(args, &url, port, &keys)?,
        runtime.block_on(lag(&url, args.redis_lag_updates))?,
    ])
}

/// redis-benchmark's key for `__rand_int__` = `i`.
fn key_name(i: u64) -> String {
    format!("key:{i:012}")
}

fn port_of(url: &str) -> anyhow::Result<u16> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = host.split(['/', '?']).next().unwrap_or(host);
    match host.rsplit_once(':') {
        Some((_, port)) => port.parse().context("the port of --redis-url"),
        None => Ok(6379),
    }
}

fn which(program: &str) -> anyhow::Result<()> {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|_| ())
        .with_context(|| format!("{program} is not installed (apt-get install -y redis-tools)"))
}

async fn open_cache(url: &str, l1: u64) -> anyhow::Result<(BytesCache, Arc<RedisTier>)> {
    let tier = Arc::new(
        RedisTier::standalone(url)
            .namespace(NAMESPACE)
            .pool_size(64)
            .open()
            .await?,
    );
    let cache = BytesCache::builder()
        .memory_max_entries(l1)
        .no_compression()
        .tier_with(
            tier.clone(),
            TierOptions::default().timeout(Duration::from_secs(1)),
        )
        .build();
    Ok((cache, tier))
}

/// The same keys and value for both sides: raw `key:…` for redis-benchmark, through the cache
/// (namespaced and framed) for Strata.
async fn populate(url: &str, keys: u64, value: &[u8]) -> anyhow::Result<()> {
    let (cache, _) = open_cache(url, 0).await?;
    let value_text = String::from_utf8_lossy(value).into_owned();
    let value = Bytes::copy_from_slice(value);
    for chunk in (0..keys).collect::<Vec<_>>().chunks(1000) {
        let writes: Vec<(String, Bytes)> = chunk
            .iter()
            .map(|&i| (key_name(i), value.clone()))
            .collect();
        let reports = cache.set_many(writes).await?;
        anyhow::ensure!(
            reports.iter().all(|r| r.is_complete()),
            "populating Strata's keys failed: {reports:?}"
        );
    }
    // redis-benchmark's keys, written with redis-cli's pipe mode (RESP on stdin).
    let port = port_of(url)?;
    let mut child = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("running redis-cli --pipe (apt-get install -y redis-tools)")?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut buffer = String::new();
    for i in 0..keys {
        let key = key_name(i);
        buffer.push_str(&format!(
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value_text}\r\n",
            key.len(),
            value_text.len()
        ));
    }
    stdin.write_all(buffer.as_bytes())?;
    drop(stdin);
    anyhow::ensure!(child.wait()?.success(), "redis-cli --pipe failed");
    Ok(())
}

/// `redis-benchmark … --csv`: requests per second of the one test run.
fn redis_benchmark(port: u16, args: &[String]) -> anyhow::Result<f64> {
    let output = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--csv",
            "-t",
            "get",
        ])
        .args(args)
        .output()
        .context("running redis-benchmark")?;
    anyhow::ensure!(
        output.status.success(),
        "redis-benchmark failed: {output:?}"
    );
    let text = String::from_utf8_lossy(&output.stdout);
    // "test","rps","avg_latency_ms",... then "GET","12345.67",...
    let line = text
        .lines()
        .find(|l| l.starts_with("\"GET\""))
        .with_context(|| format!("no GET line in redis-benchmark's output: {text}"))?;
    let rps = line.split(',').nth(1).unwrap_or_default().trim_matches('"');
    rps.parse()
        .with_context(|| format!("redis-benchmark's rps {rps:?}"))
}

/// A uniform index below `n` (the tiny modulo bias does not matter for picking keys).
fn pick(rng: &mut SplitMix64, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// Who answers reads in a comparison.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    /// `redis-benchmark`, the C client shipped with Redis.
    RedisBenchmark,
    /// The redis crate alone: a multiplexed connection, GET (or MGET).
    RedisCrate,
    /// `RedisTier` through the `Tier` trait.
    Tier,
    /// `TieredCache` over the `RedisTier`, L1 sized 0.
    Cache,
}

const SIDES: [Side; 4] = [
    Side::RedisBenchmark,
    Side::RedisCrate,
    Side::Tier,
    Side::Cache,
];

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::RedisBenchmark => "redis-benchmark",
            Side::RedisCrate => "redis crate (multiplexed)",
            Side::Tier => "RedisTier",
            Side::Cache => "TieredCache",
        }
    }
}

/// What every side reads from.
struct Readers {
    cache: BytesCache,
    tier: Arc<RedisTier>,
    raw: redis::aio::MultiplexedConnection,
    /// The Strata keys as the tier stores them (namespaced), for the raw client.
    keys: Vec<String>,
}

async fn readers(url: &str, keys: &[String]) -> anyhow::Result<Readers> {
    let (cache, tier) = open_cache(url, 0).await?;
    let client = redis::Client::open(url)?;
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let raw = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    Ok(Readers {
        cache,
        tier,
        raw,
        keys: keys.to_vec(),
    })
}

/// Each run visits the sides in a rotated order; the per-side medians and each run's ratio
/// of a side to redis-benchmark.
fn table_of(
    title_unit: &str,
    samples: &[Vec<f64>; 4],
    target: &str,
    format: impl Fn(f64) -> String,
) -> Table {
    let mut table = Table::new([
        "side".to_string(),
        format!("{title_unit} (median)"),
        "runs".to_string(),
        "vs redis-benchmark (median of per-run ratios)".to_string(),
    ]);
    for (i, side) in SIDES.iter().enumerate() {
        let ratios: Vec<f64> = samples[i]
            .iter()
            .zip(&samples[0])
            .map(|(s, r)| s / r)
            .collect();
        let ratio = median(ratios);
        table.row([
            side.label().to_string(),
            format(median(samples[i].iter().copied())),
            samples[i]
                .iter()
                .map(|&v| format(v))
                .collect::<Vec<_>>()
                .join(", "),
            if i == 0 {
                "1".to_string()
            } else if *side == Side::Cache {
                format!("{ratio:.3}{target}")
            } else {
                format!("{ratio:.3}")
            },
        ]);
    }
    table
}

fn latency(
    args: &RedisArgs,
    runtime: &tokio::runtime::Runtime,
    url: &str,
    port: u16,
    keys: &[String],
) -> anyhow::Result<Section> {
    let mut readers = runtime.block_on(readers(url, keys))?;
    let bench_args: Vec<String> = [
        "-c",
        "1",
        "-P",
        "1",
        "-n",
        &args.redis_requests.to_string(),
        "-r",
        &args.redis_keys.to_string(),
        "-d",
        &args.redis_value_size.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let raw_keys: Vec<String> = keys.iter().map(|k| format!("{NAMESPACE}:{k}")).collect();
    let mut samples: [Vec<f64>; 4] = Default::default();
    let l1_hits_before = readers.cache.stats().l1.hits;
    let n = args.redis_requests;
    for run in 0..args.redis_runs {
        for step in 0..SIDES.len() {
            let side_index = (run + step) % SIDES.len();
            let side = SIDES[side_index];
            let micros = if side == Side::RedisBenchmark {
                1e6 / redis_benchmark(port, &bench_args)?
            } else {
                runtime.block_on(async {
                    let mut picker = SplitMix64::new(0x9E37_79B9_7F4A_7C15 ^ run as u64);
                    let mut start = Instant::now();
                    for i in 0..n + 1000 {
                        if i == 1000 {
                            start = Instant::now(); // after a warm-up of 1,000
                        }
                        let k = pick(&mut picker, keys.len());
                        let found = match side {
                            Side::RedisCrate => redis::cmd("GET")
                                .arg(&raw_keys[k])
                                .query_async::<Option<Vec<u8>>>(&mut readers.raw)
                                .await?
                                .is_some(),
                            Side::Tier => readers
                                .tier
                                .get(&raw_keys[k][NAMESPACE.len() + 1..])
                                .await
                                .is_hit(),
                            _ => readers.cache.get(&readers.keys[k]).await.is_some(),
                        };
                        anyhow::ensure!(found, "a resident key missed ({side:?})");
                    }
                    Ok(start.elapsed().as_nanos() as f64 / n as f64 / 1000.0)
                })?
            };
            samples[side_index].push(micros);
        }
    }
    let l1_hits = readers.cache.stats().l1.hits - l1_hits_before;
    let mut section = Section::new("Redis tier: L2 hit latency, one caller");
    section.text(format!(
        "Mean µs per GET of a random resident key, one request at a time: `redis-benchmark -c 1 -P 1 -t get \
         -r {} -d {} -n {n}`; the redis crate alone (a multiplexed connection, current-thread runtime); \
         `RedisTier::get`; `TieredCache::get` (BytesCache, L1 sized 0: {l1_hits} L1 hits in all runs, so \
         every read is an L2 hit, framed and checked). Same server, same key count and value size; {} runs, \
         each visiting the four in a rotated order.",
        args.redis_keys, args.redis_value_size, args.redis_runs
    ));
    section.table(table_of(
        "µs per get",
        &samples,
        " (target ≤ 1.15)",
        |v| format!("{v:.1}"),
    ));
    Ok(section)
}

fn batches(args: &RedisArgs, url: &str, port: u16, keys: &[String]) -> anyhow::Result<Section> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let readers = Arc::new(runtime.block_on(readers(url, keys))?);
    let mut section = Section::new("Redis tier: batch reads of 16 keys");
    section.text(format!(
        "Keys per second: `redis-benchmark -c C -P {BATCH} -t get -r {} -d {}` (16 pipelined GETs per \
         client); the redis crate alone (MGET of 16 on one shared multiplexed connection); \
         `RedisTier::get_many`; `TieredCache::get_many` (L1 sized 0); each by C concurrent callers on a \
         2-worker runtime. {} runs, each visiting the four in a rotated order.",
        args.redis_keys, args.redis_value_size, args.redis_runs
    ));
    for &clients in &args.redis_batch_clients {
        let requests = (args.redis_requests * 4).max(clients as u64 * BATCH as u64 * 10);
        let bench_args: Vec<String> = [
            "-c".to_string(),
            clients.to_string(),
            "-P".into(),
            BATCH.to_string(),
            "-n".into(),
            requests.to_string(),
            "-r".into(),
            args.redis_keys.to_string(),
            "-d".into(),
            args.redis_value_size.to_string(),
        ]
        .to_vec();
        let mut samples: [Vec<f64>; 4] = Default::default();
        for run in 0..args.redis_runs {
            for step in 0..SIDES.len() {
                let side_index = (run + step) % SIDES.len();
                let side = SIDES[side_index];
                let rate = if side == Side::RedisBenchmark {
                    redis_benchmark(port, &bench_args)?
                } else {
                    let batches_each = (requests / BATCH as u64 / clients as u64).max(1);
                    runtime.block_on(async {
                        let start = Instant::now();
                        let tasks: Vec<_> = (0..clients)
                            .map(|c| {
                                let readers = Arc::clone(&readers);
                                tokio::spawn(async move {
                                    let mut raw = readers.raw.clone();
                                    let mut picker = SplitMix64::new(
                                        0xA076_1D64_78BD_642F ^ ((run * 1000 + c) as u64),
                                    );
                                    for _ in 0..batches_each {
                                        let batch: Vec<&str> = (0..BATCH)
                                            .map(|_| {
                                                readers.keys[pick(&mut picker, readers.keys.len())]
                                                    .as_str()
                                            })
                                            .collect();
                                        let all = match side {
                                            Side::RedisCrate => {
                                                let full: Vec<String> = batch
                                                    .iter()
                                                    .map(|k| format!("{NAMESPACE}:{k}"))
                                                    .collect();
                                                redis::cmd("MGET")
                                                    .arg(&full)
                                                    .query_async::<Vec<Option<Vec<u8>>>>(&mut raw)
                                                    .await?
                                                    .iter()
                                                    .all(Option::is_some)
                                            }
                                            Side::Tier => readers
                                                .tier
                                                .get_many(&batch)
                                                .await
                                                .iter()
                                                .all(|l| l.is_hit()),
                                            _ => readers
                                                .cache
                                                .get_many(&batch)
                                                .await
                                                .iter()
                                                .all(Option::is_some),
                                        };
                                        anyhow::ensure!(
                                            all,
                                            "a resident key missed in a batch ({side:?})"
                                        );
                                    }
                                    Ok(())
                                })
                            })
                            .collect();
                        for task in tasks {
                            task.await??;
                        }
                        let keys_read = batches_each * clients as u64 * BATCH as u64;
                        Ok::<f64, anyhow::Error>(keys_read as f64 / start.elapsed().as_secs_f64())
                    })?
                };
                samples[side_index].push(rate);
            }
        }
        section.text(format!("**{clients} concurrent caller(s)**"));
        section.table(table_of("keys/s", &samples, " (target ≥ 0.8)", |v| {
            thousands(v as u64)
        }));
    }
    Ok(section)
}

async fn lag(url: &str, updates: usize) -> anyhow::Result<Section> {
    let (a, _) = open_cache(url, 1000).await?;
    let (b, b_tier) = open_cache(url, 1000).await?;
    let start = Instant::now();
    while !b_tier.stats().bus.subscribed || b.stats().remote_invalidations == 0 {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(10),
            "the bus never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let key = "lag:item";
    let mut samples = Vec::with_capacity(updates);
    for i in 0..updates {
        let value = Bytes::from(format!("v{i}"));
        let _ = a.set(key, value.clone()).await?;
        anyhow::ensure!(b.get(key).await == Some(value), "B read a stale value");
        anyhow::ensure!(b.l1().contains_key(key), "B's read did not fill its L1");
        let begun = Instant::now();
        let _ = a.set(key, Bytes::from(format!("w{i}"))).await?;
        while b.l1().contains_key(key) {
            anyhow::ensure!(
                begun.elapsed() < Duration::from_secs(2),
                "update {i} never arrived"
            );
            tokio::task::yield_now().await;
        }
        samples.push(begun.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let mut section = Section::new("Redis tier: invalidation lag between two instances");
    section.text(format!(
        "Two `TieredCache` instances in one process, each with its own L1 and Redis tier handle on \
         the same server and namespace; {updates} updates: from the start of `set` on A to the key \
         leaving B's L1 (B's subscriber task on the same current-thread runtime)."
    ));
    let mut table = Table::new([
        "updates",
        "p50 µs",
        "p99 µs",
        "max µs",
        "bus lag p50 / p99 µs (publish → apply)",
    ]);
    let bus = b_tier.stats().bus;
    table.row([
        thousands(updates as u64),
        format!("{:.0}", at(0.5).as_secs_f64() * 1e6),
        format!("{:.0}", at(0.99).as_secs_f64() * 1e6),
        format!("{:.0}", at(1.0).as_secs_f64() * 1e6),
        format!(
            "{} / {}",
            bus.lag_p50
                .map_or("-".into(), |d| d.as_micros().to_string()),
            bus.lag_p99
                .map_or("-".into(), |d| d.as_micros().to_string())
        ),
    ]);
    section.table(table);
    Ok(section)
}
