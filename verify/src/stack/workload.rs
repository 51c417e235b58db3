//! The driver: worker tasks run a seeded mix of calls on a few keys of a small, faulty stack
//! while a chaos task keeps changing each tier's fault plan; every call is recorded, and at
//! quiescent points (about once a second and at the end) the history so far is checked and
//! the stack's contents probed.
//!
//! The stack: `TieredCache<u64, Postcard<u64>>` with an L1 of 4 entries (so 8 keys evict),
//! L2 and L3 each a [`MemoryTier`] behind a [`FaultyTier`], a 15 ms tier timeout and breakers
//! that open after 3 faults for 20 ms (up to 200 ms), so they open and recover during a run.
//!
//! Quiescence: every worker holds a read guard of one `tokio::sync::RwLock` per call; the
//! checker takes the write lock (tokio's lock is fair, so workers queue behind it), and then no
//! call is in flight. Fills and undo-deletes run inside the calls, so nothing of the cache's
//! runs either. At that point, per key: L1's entry (`l1().get`) is checked as a read, each
//! tier's raw entry is decoded and counted if older than a completed update, then L1 is
//! cleared and a real `get` of every key is checked as a read (it must not find an older value
//! in any tier it reads).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::frame::{self, FrameOptions};
use strata::{
    BreakerConfig, BreakerState, Codec, Postcard, TierOptions, TieredCache,
    DEFAULT_COMPRESSION_THRESHOLD, DEFAULT_MAX_VALUE_SIZE,
};
use strata_testing::{Fault, FaultyTier, MemoryTier, Ops, Schedule};
use tokio::sync::RwLock;

use super::checker::Checker;
use super::history::{key_name, Kind, Log, Op, Recorder, GROUPS};
use super::report::Report;
use crate::workload::SplitMix;

/// The cache under test.
pub type Stack = TieredCache<u64, Postcard<u64>>;

const FRAME: FrameOptions = FrameOptions {
    compression_threshold: DEFAULT_COMPRESSION_THRESHOLD,
    max_payload: DEFAULT_MAX_VALUE_SIZE,
};

/// A run's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long the workers run.
    pub duration: Duration,
    /// Seed of the operation mixes and fault plans (the interleaving is the scheduler's).
    pub seed: u64,
    /// Worker tasks.
    pub tasks: u32,
    /// Keys (`user:0, item:0, user:1, ...`).
    pub keys: u32,
    /// How often the history is checked and the stack probed.
    pub check_every: Duration,
    /// Violations kept in full for the report.
    pub keep: usize,
    /// Sabotage, for the checker's own test: now and then a worker puts the first value it
    /// ever set for a key straight into L1 (bypassing the fences), so later reads return a
    /// stale value. Recorded as an `l1.remove`-like non-update; the checker must flag it.
    pub sabotage: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            duration: Duration::from_secs(10),
            seed: 1,
            tasks: 8,
            keys: 8,
            check_every: Duration::from_secs(1),
            keep: 5,
            sabotage: false,
        }
    }
}

/// L1 over two faulty memory tiers.
struct Tiers {
    cache: Stack,
    raw: [Arc<MemoryTier>; 2],
    faults: [Arc<FaultyTier>; 2],
}

fn build() -> Tiers {
    let breaker = BreakerConfig {
        failure_threshold: 3,
        open_for: Duration::from_millis(20),
        max_open_for: Duration::from_millis(200),
    };
    let options = |ms| {
        TierOptions::default()
            .timeout(Duration::from_millis(ms))
            .breaker(breaker)
    };
    let raw = [
        Arc::new(MemoryTier::new("l2")),
        Arc::new(MemoryTier::new("l3")),
    ];
    let faults = raw
        .clone()
        .map(|tier| Arc::new(FaultyTier::new(tier as Arc<dyn strata::Tier>)));
    let cache = Stack::builder()
        .memory_max_entries(4)
        .tier_with(faults[0].clone(), options(12))
        .tier_with(faults[1].clone(), options(18))
        .build();
    Tiers { cache, raw, faults }
}

/// Runs the workload for `config.duration`, checking as it goes; `progress` is called after
/// every check with the report so far.
pub async fn run(config: &Config, progress: &mut dyn FnMut(&Report)) -> Report {
    let tiers = build();
    let recorder = Arc::new(Recorder::new());
    let gate = Arc::new(RwLock::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut checker = Checker::new(config.keys, config.keep);
    let mut report = Report::default();
    let started = Instant::now();

    let chaos = tokio::spawn(chaos(
        tiers.faults.clone(),
        tiers.cache.clone(),
        config.seed ^ 0xC4A0_5EED,
        Arc::clone(&stop),
    ));
    let workers: Vec<_> = (0..config.tasks)
        .map(|task| {
            let worker = Worker {
                task,
                keys: config.keys,
                cache: tiers.cache.clone(),
                recorder: Arc::clone(&recorder),
                log: recorder.log(),
                rng: SplitMix::new(config.seed.wrapping_add(u64::from(task) * 0x9E37_79B9)),
                sabotage: config.sabotage.then(|| vec![None; config.keys as usize]),
            };
            tokio::spawn(worker.run(Arc::clone(&gate), Arc::clone(&stop)))
        })
        .collect();

    let probe_log = recorder.log();
    loop {
        let left = config.duration.saturating_sub(started.elapsed());
        tokio::time::sleep(left.min(config.check_every)).await;
        let last = started.elapsed() >= config.duration;
        if last {
            stop.store(true, Relaxed);
        }
        {
            let _quiet = gate.write().await;
            if last {
                // The final probe reads healthy tiers (breakers may still be open for a while).
                for faults in &tiers.faults {
                    faults.heal();
                }
            }
            probe(&tiers, &recorder, &probe_log, config.keys).await;
            let ops = recorder.drain();
            report.count(&ops);
            checker.check_round(&ops);
        }
        report.update(&checker, &tiers.cache.stats(), started.elapsed());
        progress(&report);
        if last {
            break;
        }
    }
    for worker in workers {
        worker.await.expect("a worker panicked");
    }
    report.breaker_opened = chaos.await.expect("the chaos task panicked");
    report.injected = tiers.faults.iter().map(|f| f.injected()).collect();
    report.violations = checker.violations.clone();
    report.update(&checker, &tiers.cache.stats(), started.elapsed());
    let _ = tiers.cache.close().await;
    report
}

/// Quiescent probes: L1's entries, the tiers' raw entries, then a real read of each key with
/// L1 cleared. See the module docs.
async fn probe(tiers: &Tiers, recorder: &Recorder, log: &Log, keys: u32) {
    let op = |kind, key, tier, start, end, value| Op {
        task: u32::MAX,
        kind,
        key,
        tier,
        start,
        end,
        value,
        ok: true,
    };
    for key in 0..keys {
        let name = key_name(key);
        let at = recorder.stamp();
        let held = tiers.cache.l1().get(&name);
        log.push(op(Kind::ProbeL1, key, 1, at, recorder.stamp(), held));
        for (depth, raw) in tiers.raw.iter().enumerate() {
            let Some(bytes) = raw.raw(&name) else {
                continue;
            };
            let at = recorder.stamp();
            let value = frame::decode(&bytes, &FRAME)
                .ok()
                .and_then(|frame| Postcard::<u64>::default().decode(frame.payload).ok());
            // An undecodable entry would be read as corrupt and deleted, never served.
            if value.is_some() {
                log.push(op(Kind::ProbeTier, key, depth as u8 + 2, at, at, value));
            }
        }
    }
    tiers.cache.l1().clear();
    for key in 0..keys {
        let start = recorder.stamp();
        let got = tiers.cache.get(&key_name(key)).await;
        log.push(op(Kind::ProbeGet, key, 0, start, recorder.stamp(), got));
    }
}

/// Changes each tier's fault plan every 100 to 300 ms until stopped; returns how often a
/// breaker was seen open or half-open (sampled every few milliseconds), per tier.
async fn chaos(
    faults: [Arc<FaultyTier>; 2],
    cache: Stack,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Vec<u64> {
    let mut rng = SplitMix::new(seed);
    let mut opened = vec![0; faults.len()];
    let mut next_change = Instant::now();
    while !stop.load(Relaxed) {
        if Instant::now() >= next_change {
            for tier in &faults {
                plan(tier, &mut rng);
            }
            next_change = Instant::now() + Duration::from_millis(100 + rng.below(201));
        }
        for (count, stats) in opened.iter_mut().zip(cache.stats().tiers) {
            if stats.breaker != BreakerState::Closed || stats.write_breaker != BreakerState::Closed
            {
                *count += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    opened
}

/// A random fault plan: none, a delay, random failures, or random hangs (which time out).
fn plan(tier: &FaultyTier, rng: &mut SplitMix) {
    let ops = [Ops::Reads, Ops::Writes, Ops::All][rng.below(3) as usize];
    let random = Schedule::Random {
        one_in: 3 + rng.below(8),
        seed: rng.next_u64(),
    };
    match rng.below(10) {
        0..=2 => tier.heal(),
        3..=4 => {
            let delay = Duration::from_millis(1 + rng.below(8));
            let ops = [Ops::Reads, Ops::Writes][rng.below(2) as usize];
            tier.inject_on(ops, Fault::Delay(delay), Schedule::Always);
        }
        5..=7 => tier.inject_on(ops, Fault::Fail, random),
        _ => tier.inject_on(ops, Fault::Hang, random),
    }
}

/// One worker task.
struct Worker {
    task: u32,
    keys: u32,
    cache: Stack,
    recorder: Arc<Recorder>,
    log: Log,
    rng: SplitMix,
    /// With [`Config::sabotage`]: the first value this worker set, per key.
    sabotage: Option<Vec<Option<u64>>>,
}

impl Worker {
    async fn run(mut self, gate: Arc<RwLock<()>>, stop: Arc<AtomicBool>) {
        while !stop.load(Relaxed) {
            let _turn = gate.read().await;
            self.step().await;
        }
    }

    fn op(&self, kind: Kind, key: u32, start: u64, value: Option<u64>, ok: bool) -> Op {
        Op {
            task: self.task,
            kind,
            key,
            tier: 0,
            start,
            end: self.recorder.stamp(),
            value,
            ok,
        }
    }

    /// One call, chosen from the mix and recorded.
    async fn step(&mut self) {
        let key = self.rng.below(u64::from(self.keys)) as u32;
        let name = key_name(key);
        let roll = self.rng.below(1000);
        let rec = Arc::clone(&self.recorder);
        let start = rec.stamp();
        let op = match roll {
            0..=279 => {
                let got = self.cache.get(&name).await;
                self.op(Kind::Get, key, start, got, true)
            }
            280..=319 => {
                let other = self.rng.below(u64::from(self.keys)) as u32;
                let names = [name.clone(), key_name(other)];
                let got = self
                    .cache
                    .get_many(&[names[0].as_str(), names[1].as_str()])
                    .await;
                let end = rec.stamp();
                for (k, value) in [key, other].into_iter().zip(got) {
                    let mut op = self.op(Kind::GetMany, k, start, value, true);
                    op.end = end;
                    self.log.push(op);
                }
                return;
            }
            320..=569 => {
                let sleep = Duration::from_micros(self.rng.below(3001));
                let fails = self.rng.below(10) == 0;
                let (log, task) = (self.log.clone(), self.task);
                let loader = move || async move {
                    let begun = rec.stamp();
                    let value = (!fails).then(|| rec.fresh_value());
                    tokio::time::sleep(sleep).await;
                    log.push(Op {
                        task,
                        kind: Kind::Loader,
                        key,
                        tier: 0,
                        start: begun,
                        end: rec.stamp(),
                        value,
                        ok: !fails,
                    });
                    value.ok_or_else(|| std::io::Error::other("loader failed"))
                };
                let got = self.cache.get_or_load(&name, loader).await;
                self.op(
                    Kind::Load,
                    key,
                    start,
                    got.as_ref().ok().copied(),
                    got.is_ok(),
                )
            }
            570..=759 => {
                let value = self.recorder.fresh_value();
                let result = if self.rng.below(4) == 0 {
                    let ttl = Duration::from_millis(20 + self.rng.below(500));
                    self.cache.set_with_ttl(&name, value, ttl).await
                } else {
                    self.cache.set(&name, value).await
                };
                if let Some(first) = &mut self.sabotage {
                    first[key as usize].get_or_insert(value);
                }
                self.op(Kind::Set, key, start, Some(value), result.is_ok())
            }
            760..=839 => {
                let result = self.cache.delete(&name).await;
                self.op(Kind::Delete, key, start, None, result.is_ok())
            }
            840..=879 => {
                let group = self.rng.below(GROUPS.len() as u64) as u32;
                let pattern = format!("{}:*", GROUPS[group as usize]);
                let result = self.cache.invalidate_pattern(&pattern).await;
                self.op(Kind::Pattern, group, start, None, result.is_ok())
            }
            880..=884 => {
                let result = self.cache.clear().await;
                self.op(Kind::Clear, 0, start, None, result.is_ok())
            }
            885..=979 => {
                let planted = self.sabotage.as_ref().and_then(|first| first[key as usize]);
                let planted = match planted {
                    Some(old) if roll.is_multiple_of(2) => {
                        self.cache.l1().insert(name, old);
                        Some(old)
                    }
                    _ => {
                        self.cache.l1().remove(&name);
                        None
                    }
                };
                self.op(Kind::L1Remove, key, start, planted, true)
            }
            _ => {
                self.cache.l1().clear();
                self.op(Kind::L1Clear, 0, start, None, true)
            }
        };
        self.log.push(op);
    }
}
