//! Tests that need the tier's insides: injected commit failures, a slow writer, the overlay and
//! the tables.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::ReadableDatabase;
use strata_tier::{Bytes, Health, Lookup, Stored, Tier, TierWrite, WriteIntent};

use crate::overlay::Pending;
use crate::schema::{TICKS, VALUES};
use crate::{Durability, RedbTier, WriteAck};

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn update(tier: &RedbTier, key: &str, value: &str) {
    let stored = tier
        .set(key, bytes(value), None, WriteIntent::Update)
        .await
        .unwrap();
    assert_eq!(stored, Stored::Written);
}

async fn fill(tier: &RedbTier, key: &str, value: &str, ttl: Option<Duration>) -> Stored {
    tier.set(key, bytes(value), ttl, WriteIntent::Fill)
        .await
        .unwrap()
}

async fn hit(tier: &RedbTier, key: &str) -> Option<Bytes> {
    match tier.get(key).await {
        Lookup::Hit(value) => Some(value),
        Lookup::Miss => None,
        Lookup::Degraded(error) => panic!("degraded read of {key}: {error}"),
    }
}

async fn wait_for(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_are_insert_if_absent_in_the_file_and_the_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let tier = RedbTier::builder(dir.path().join("t.redb"))
        .durability(Durability::Periodic(Duration::from_secs(30)))
        .open()
        .unwrap();
    assert!(tier.capabilities().fill_if_absent);
    // Absent: written.
    assert_eq!(fill(&tier, "a", "filled", None).await, Stored::Written);
    assert_eq!(hit(&tier, "a").await, Some(bytes("filled")));
    // Present in the file: kept.
    update(&tier, "b", "newer").await;
    tier.flush().await.unwrap();
    assert_eq!(fill(&tier, "b", "older", None).await, Stored::Kept);
    assert_eq!(hit(&tier, "b").await, Some(bytes("newer")));
    // An update still queued (the overlay holds it): kept.
    update(&tier, "c", "queued").await;
    assert_eq!(fill(&tier, "c", "older", None).await, Stored::Kept);
    assert_eq!(hit(&tier, "c").await, Some(bytes("queued")));
    // Expired in the file: written.
    tier.set(
        "d",
        bytes("old"),
        Some(Duration::from_millis(20)),
        WriteIntent::Update,
    )
    .await
    .unwrap();
    tier.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(fill(&tier, "d", "fresh", None).await, Stored::Written);
    assert_eq!(hit(&tier, "d").await, Some(bytes("fresh")));
    // Deleted: written.
    assert!(tier.delete("b").await.unwrap());
    assert_eq!(fill(&tier, "b", "again", None).await, Stored::Written);
    // In a batch, each item is decided on its own.
    let results = tier
        .set_many(vec![
            TierWrite::fill("a", bytes("x"), None),
            TierWrite::fill("e", bytes("e"), None),
            TierWrite::update("a", bytes("updated"), None),
        ])
        .await;
    let results: Vec<Stored> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(results, [Stored::Kept, Stored::Written, Stored::Written]);
    assert_eq!(hit(&tier, "a").await, Some(bytes("updated")));
    tier.flush().await.unwrap();
    assert!(tier.verify().await.unwrap().is_clean());
    tier.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_is_retried_and_the_tier_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    let tier = Arc::new(
        RedbTier::builder(dir.path().join("t.redb"))
            .durability(Durability::EveryCommit)
            .ack(WriteAck::Committed)
            .open()
            .unwrap(),
    );
    update(&tier, "before", "1").await;
    // Six failed attempts: about 0 + 10 + 20 + 40 + 80 + 160 ms of backoff.
    tier.shared.faults.fail_commits.store(6, Relaxed);
    let during = {
        let tier = Arc::clone(&tier);
        tokio::spawn(async move {
            tier.set("during", bytes("2"), None, WriteIntent::Update)
                .await
        })
    };
    assert!(
        wait_for(Duration::from_secs(5), async || !tier
            .health()
            .await
            .is_serving())
        .await,
        "a failing commit did not show in health"
    );
    assert!(tier
        .set("refused", bytes("x"), None, WriteIntent::Update)
        .await
        .is_err());
    // The caller of the failing batch waits through the retries, and its write lands.
    assert_eq!(during.await.unwrap().unwrap(), Stored::Written);
    assert_eq!(tier.health().await, Health::Healthy);
    assert_eq!(hit(&tier, "before").await, Some(bytes("1")));
    assert_eq!(hit(&tier, "during").await, Some(bytes("2")));
    update(&tier, "after", "3").await;
    let stats = tier.stats();
    assert_eq!(stats.commit_failures, 6, "{stats:?}");
    assert!(tier.verify().await.unwrap().is_clean());
    tier.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopen_that_may_lose_commits_serves_no_older_value() {
    let dir = tempfile::tempdir().unwrap();
    let tier = RedbTier::builder(dir.path().join("t.redb"))
        .durability(Durability::Periodic(Duration::from_secs(30)))
        .ack(WriteAck::Committed)
        .open()
        .unwrap();
    update(&tier, "k", "old").await;
    tier.flush().await.unwrap();
    // Committed, not durable: a reopen after an I/O error could go back to "old".
    update(&tier, "k", "new").await;
    tier.shared.faults.fail_commits.store(1, Relaxed);
    update(&tier, "other", "x").await;
    assert_ne!(hit(&tier, "k").await, Some(bytes("old")));
    assert_eq!(hit(&tier, "other").await, Some(bytes("x")));
    assert_eq!(tier.health().await, Health::Healthy);
    tier.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_do_not_wait_for_the_write_budget() {
    let dir = tempfile::tempdir().unwrap();
    let tier = Arc::new(
        RedbTier::builder(dir.path().join("t.redb"))
            .queue_bytes(64 << 10)
            .open()
            .unwrap(),
    );
    update(&tier, "doomed", "v").await;
    tier.flush().await.unwrap();
    // A slow disk: each commit takes 300 ms.
    tier.shared.faults.commit_delay_ms.store(300, Relaxed);
    // Sets of 40 KiB against a 64 KiB budget: the second waits for the first's commit.
    let big = Bytes::from(vec![1u8; 40 << 10]);
    let mut sets = Vec::new();
    for i in 0..4 {
        let tier = Arc::clone(&tier);
        let big = big.clone();
        sets.push(tokio::spawn(async move {
            tier.set(&format!("big:{i}"), big, None, WriteIntent::Update)
                .await
        }));
    }
    assert!(
        wait_for(Duration::from_secs(2), async || tier
            .shared
            .queue
            .backlog_fraction()
            > 0.5)
        .await
    );
    let started = Instant::now();
    let delete = {
        let tier = Arc::clone(&tier);
        tokio::spawn(async move { tier.delete("doomed").await })
    };
    let queued = wait_for(Duration::from_secs(2), async || {
        matches!(tier.shared.overlay.get("doomed"), Some(Pending::Delete))
    })
    .await;
    let took = started.elapsed();
    assert!(queued, "the delete was never queued");
    assert!(
        took < Duration::from_millis(150),
        "the delete waited {took:?} to be queued"
    );
    assert!(
        sets.iter().any(|set| !set.is_finished()),
        "the budget was not full while the delete was queued"
    );
    assert_eq!(hit(&tier, "doomed").await, None);
    assert!(delete.await.unwrap().unwrap());
    for set in sets {
        set.await.unwrap().unwrap();
    }
    tier.shared.faults.commit_delay_ms.store(0, Relaxed);
    tier.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recency_bump_rewrites_the_tick_not_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let tier = RedbTier::builder(dir.path().join("t.redb")).open().unwrap();
    update(&tier, "old", "a value that is not rewritten").await;
    for i in 0..40 {
        update(&tier, &format!("young:{i}"), "v").await;
    }
    tier.flush().await.unwrap();
    let read = |tier: &RedbTier| {
        let guard = tier.shared.db();
        let txn = guard.as_ref().unwrap().begin_read().unwrap();
        let record = txn
            .open_table(VALUES)
            .unwrap()
            .get("old")
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        let tick = txn
            .open_table(TICKS)
            .unwrap()
            .get("old")
            .unwrap()
            .unwrap()
            .value();
        (record, tick)
    };
    let (record_before, tick_before) = read(&tier);
    let commits_before = tier.stats().recency_updates;
    assert!(tier.get("old").await.is_hit());
    tier.flush().await.unwrap();
    assert_eq!(tier.stats().recency_updates, commits_before + 1);
    let (record_after, tick_after) = read(&tier);
    assert!(tick_after > tick_before, "{tick_before} -> {tick_after}");
    assert_eq!(record_before, record_after, "the record was rewritten");
    assert!(tier.verify().await.unwrap().is_clean());
    tier.close().await.unwrap();
}
