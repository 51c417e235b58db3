//! Churn far past `max_size`: sets of new keys amounting to 40 times the bound. Guards against a
//! file that grows without bound (freed pages never reused, compaction never run), live bytes
//! that overshoot the bound after a commit, and counters or indexes that drift from the records
//! under eviction.

mod common;

use std::time::{Duration, Instant};

use common::{Rng, TempTier};
use strata_redb::{Durability, RedbTier, WriteAck};
use strata_tier::{Bytes, Tier, WriteIntent};

const MAX_SIZE: u64 = 4 << 20;
/// The compaction threshold: `max_size` plus the default compaction slack (`max_size / 2 +
/// 8 MiB`). The file may pass it until the next compaction, and redb grows a file below 4 GiB by
/// doubling it, so the documented bound is twice this (see the crate docs, "File size").
const THRESHOLD: u64 = MAX_SIZE + MAX_SIZE / 2 + (8 << 20);

async fn churn(tier: &RedbTier, rng: &mut Rng, value_len: usize, total_bytes: u64) -> (u64, u64) {
    let mut written = 0u64;
    let mut i = 0u64;
    let mut peak_file = 0u64;
    let mut over_threshold = 0u64;
    let mut samples = 0u64;
    while written < total_bytes {
        let len = value_len / 2 + rng.below(value_len as u64) as usize;
        let key = format!("churn:{i}:{}", rng.next_u64());
        let ttl = i
            .is_multiple_of(3)
            .then_some(Duration::from_millis(1 + rng.below(200)));
        tier.set(
            &key,
            Bytes::from(vec![(i % 251) as u8; len]),
            ttl,
            WriteIntent::Update,
        )
        .await
        .unwrap();
        written += (key.len() + len) as u64;
        i += 1;
        if i.is_multiple_of(64) {
            let stats = tier.stats();
            samples += 1;
            peak_file = peak_file.max(stats.file_bytes);
            if stats.file_bytes > THRESHOLD {
                over_threshold += 1;
            }
            assert!(
                stats.live_bytes <= MAX_SIZE,
                "live bytes over the bound after a commit: {stats:?}"
            );
        }
    }
    (peak_file, over_threshold * 100 / samples.max(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_keeps_the_file_bounded() {
    let seed = common::seed("churn_keeps_the_file_bounded");
    let mut rng = Rng::new(seed);
    // (value size, ack, durability, bytes written as a multiple of max_size)
    for (value_len, ack, durability, factor) in [
        (
            4096,
            WriteAck::Enqueued,
            Durability::Periodic(Duration::from_millis(100)),
            40,
        ),
        // Small values: many entries, their B-tree and index overhead weighs most.
        (
            200,
            WriteAck::Enqueued,
            Durability::Periodic(Duration::from_millis(100)),
            20,
        ),
        // Every commit durable; enqueue acks so that commits group writes and the run does not
        // cost one fsync per set.
        (16 << 10, WriteAck::Enqueued, Durability::EveryCommit, 40),
    ] {
        let file = TempTier::new();
        let tier = file
            .builder()
            .max_size(MAX_SIZE)
            .ack(ack)
            .durability(durability)
            .open()
            .unwrap();
        let started = Instant::now();
        let total = factor * MAX_SIZE;
        let (peak, over_pct) = churn(&tier, &mut rng, value_len, total).await;
        tier.flush().await.unwrap();
        let stats = tier.stats();
        eprintln!(
            "values ~{value_len} B, {ack:?}, {durability:?}: {} MiB written in {:.1?}; peak file {:.1} MiB \
             ({over_pct}% of samples over the {:.1} MiB threshold), final file {:.1} MiB, live {:.2} MiB, \
             {} entries; {} evicted, {} purged, {} compactions, {} commits (p50 {:?}, p99 {:?})",
            total >> 20,
            started.elapsed(),
            peak as f64 / 1048576.0,
            THRESHOLD as f64 / 1048576.0,
            stats.file_bytes as f64 / 1048576.0,
            stats.live_bytes as f64 / 1048576.0,
            stats.entries,
            stats.evicted,
            stats.purged,
            stats.compactions,
            stats.commits,
            stats.commit_p50,
            stats.commit_p99,
        );
        assert!(stats.live_bytes <= MAX_SIZE, "{stats:?}");
        assert!(stats.evicted > 0, "{stats:?}");
        assert!(
            peak <= 2 * THRESHOLD,
            "the file reached {peak} bytes, over the documented bound {}",
            2 * THRESHOLD
        );
        let report = tier.verify().await.unwrap();
        assert!(report.is_clean(), "{report:?}");
        tier.close().await.unwrap();
    }
}
