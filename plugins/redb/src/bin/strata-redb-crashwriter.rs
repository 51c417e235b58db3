//! Test helper for `tests/crash.rs`, not a tool: writes to a redb tier until it is killed, and
//! prints every write once it is acknowledged as durable.
//!
//! Usage: `strata-redb-crashwriter PATH SEED ROUND MODE`
//!
//! Eight tasks each own 64 keys (`r{ROUND}:t{TASK}:k{N}`) and loop: set a key to its next
//! version, delete a key, or flush. Standard output gets `READY` once the tier is open, then one
//! line per durable acknowledgement:
//!
//! * `P KEY VERSION`: the set of that version is durable (its durable ack returned, or a `flush`
//!   that began after the set returned has returned);
//! * `d KEY VERSION`: a delete of the key starts (it may have committed even if the process is
//!   killed before its `D` line);
//! * `D KEY VERSION`: the delete is durable; VERSION is the last version set before it.
//!
//! MODE picks the configuration: 0 = `Committed` acks, commits durable every 50 ms, durability
//! by `flush`; 1 = `Durable` acks, every commit durable; 2 = `Enqueued` acks, durable every
//! 20 ms, durability by `flush`; 3 = mode 2 with a 1 MiB `max_size`, so eviction runs too.
//!
//! Values are `KEY|VERSION|` followed by filler whose length and bytes follow from key and
//! version (`crash_value` in `tests/common/seeded.rs`, which the test shares), so the checker
//! can tell a right value from a wrong one of the right length.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use strata_redb::{Durability, RedbTier, WriteAck};
use strata_tier::{Bytes, Tier, WriteIntent};

const TASKS: u64 = 8;
const KEYS_PER_TASK: u64 = 64;

#[path = "../../tests/common/seeded.rs"]
mod seeded;

use seeded::{crash_value, Rng};

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe means the parent is gone; nothing left to report to.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn task(tier: Arc<RedbTier>, round: u64, id: u64, seed: u64, flushes: bool) {
    let mut rng = Rng::new(seed ^ (id + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let mut versions = vec![0u64; KEYS_PER_TASK as usize];
    // Sets that returned but are not known durable yet: (key index, version).
    let mut undurable: Vec<(usize, u64)> = Vec::new();
    loop {
        let k = rng.below(KEYS_PER_TASK) as usize;
        let key = format!("r{round}:t{id}:k{k}");
        match rng.below(20) {
            0..=13 => {
                versions[k] += 1;
                let value = Bytes::from(crash_value(&key, versions[k]));
                if tier
                    .set(&key, value, None, WriteIntent::Update)
                    .await
                    .is_err()
                {
                    return;
                }
                if flushes {
                    undurable.push((k, versions[k]));
                } else {
                    emit(&format!("P {key} {}", versions[k]));
                }
            }
            14..=15 => {
                // Announced first: a delete the kill interrupts may still have committed.
                emit(&format!("d {key} {}", versions[k]));
                if tier.delete(&key).await.is_err() {
                    return;
                }
                undurable.retain(|&(i, _)| i != k);
                emit(&format!("D {key} {}", versions[k]));
            }
            _ => {
                if !flushes {
                    continue;
                }
                let done = std::mem::take(&mut undurable);
                if tier.flush().await.is_err() {
                    return;
                }
                for (i, version) in done {
                    emit(&format!("P r{round}:t{id}:k{i} {version}"));
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let parsed = (|| -> Option<(String, u64, u64, u64)> {
        Some((
            args.get(1)?.clone(),
            args.get(2)?.parse().ok()?,
            args.get(3)?.parse().ok()?,
            args.get(4)?.parse().ok()?,
        ))
    })();
    let Some((path, seed, round, mode)) = parsed else {
        eprintln!("usage: strata-redb-crashwriter PATH SEED ROUND MODE");
        return ExitCode::from(2);
    };
    let (ack, durability, flushes, max_size) = match mode {
        0 => (
            WriteAck::Committed,
            Durability::Periodic(Duration::from_millis(50)),
            true,
            1 << 30,
        ),
        1 => (WriteAck::Durable, Durability::EveryCommit, false, 1 << 30),
        2 => (
            WriteAck::Enqueued,
            Durability::Periodic(Duration::from_millis(20)),
            true,
            1 << 30,
        ),
        _ => (
            WriteAck::Enqueued,
            Durability::Periodic(Duration::from_millis(20)),
            true,
            1 << 20,
        ),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("crashwriter: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let tier = match RedbTier::builder(&path)
            .max_size(max_size)
            .ack(ack)
            .durability(durability)
            .purge_interval(Duration::from_millis(50))
            .open_async()
            .await
        {
            Ok(tier) => Arc::new(tier),
            Err(error) => {
                eprintln!("crashwriter: open failed: {error}");
                return ExitCode::FAILURE;
            }
        };
        emit("READY");
        let tasks: Vec<_> = (0..TASKS)
            .map(|id| tokio::spawn(task(Arc::clone(&tier), round, id, seed, flushes)))
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        ExitCode::SUCCESS
    })
}
