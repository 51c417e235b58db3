//! The `Tier` contract on real redb files: a tier that returns an expired entry, a deleted one,
//! a key its pattern did not match survives `delete_matching` (or one it did match is left),
//! `clear` leaves something behind, a `get` right after `set` misses the write still queued for
//! the writer thread, a batch call answers out of order, or a damaged record is returned instead
//! of reported, fails here.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, TempTier};
use strata_redb::{Durability, WriteAck};
use strata_tier::{
    Bytes, Health, KeyPattern, Lookup, Stored, Tier, TierError, TierWrite, WriteIntent,
};

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn value(tier: &dyn Tier, key: &str) -> Option<String> {
    match tier.get(key).await {
        Lookup::Hit(v) => Some(String::from_utf8(v.to_vec()).expect("utf-8 test values")),
        Lookup::Miss => None,
        Lookup::Degraded(error) => panic!("degraded read of {key}: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_get_overwrite_delete() {
    let file = TempTier::new();
    let tier = file.open();
    assert_eq!(value(&tier, "a").await, None);
    tier.set("a", bytes("1"), None, WriteIntent::Update)
        .await
        .unwrap();
    assert_eq!(value(&tier, "a").await.as_deref(), Some("1"));
    tier.set("a", bytes("2"), None, WriteIntent::Update)
        .await
        .unwrap();
    assert_eq!(value(&tier, "a").await.as_deref(), Some("2"));
    tier.flush().await.unwrap();
    assert_eq!(value(&tier, "a").await.as_deref(), Some("2"));
    assert!(tier.delete("a").await.unwrap());
    assert!(!tier.delete("a").await.unwrap());
    assert_eq!(value(&tier, "a").await, None);
    // Empty keys and values are ordinary.
    tier.set("", Bytes::new(), None, WriteIntent::Update)
        .await
        .unwrap();
    assert_eq!(value(&tier, "").await.as_deref(), Some(""));
    tier.flush().await.unwrap();
    let stats = tier.stats();
    assert_eq!(stats.entries, 1, "{stats:?}");
    assert!(stats.commits > 0 && stats.durable_commits > 0, "{stats:?}");
    tier.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_is_never_late_and_purges_the_file() {
    let file = TempTier::new();
    let tier = file.open();
    tier.set(
        "short",
        bytes("v"),
        Some(Duration::from_millis(50)),
        WriteIntent::Update,
    )
    .await
    .unwrap();
    tier.set(
        "long",
        bytes("v"),
        Some(Duration::from_secs(3600)),
        WriteIntent::Update,
    )
    .await
    .unwrap();
    tier.set(
        "zero",
        bytes("v"),
        Some(Duration::ZERO),
        WriteIntent::Update,
    )
    .await
    .unwrap();
    assert_eq!(value(&tier, "short").await.as_deref(), Some("v"));
    assert_eq!(
        value(&tier, "zero").await,
        None,
        "a zero ttl is expired at once"
    );
    // Once committed, expiry is checked on the record read from the file.
    tier.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(value(&tier, "short").await, None, "returned after its ttl");
    assert_eq!(value(&tier, "long").await.as_deref(), Some("v"));
    // The purge (every 20 ms here) removes it from the file.
    assert!(
        eventually(Duration::from_secs(5), || async {
            tier.stats().entries == 1
        })
        .await,
        "expired entry never purged: {:?}",
        tier.stats()
    );
    assert!(tier.stats().purged >= 1);

    // A ttl that runs out while the write is still queued is honoured by the overlay too.
    tier.set(
        "queued",
        bytes("v"),
        Some(Duration::from_millis(50)),
        WriteIntent::Update,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(value(&tier, "queued").await, None);
    tier.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_survives_a_reopen() {
    let file = TempTier::new();
    let tier = file.open();
    tier.set(
        "soon",
        bytes("v"),
        Some(Duration::from_millis(150)),
        WriteIntent::Update,
    )
    .await
    .unwrap();
    tier.set(
        "later",
        bytes("v"),
        Some(Duration::from_secs(3600)),
        WriteIntent::Update,
    )
    .await
    .unwrap();
    tier.close().await.unwrap();
    let tier = file.open();
    assert_eq!(value(&tier, "later").await.as_deref(), Some("v"));
    tokio::time::sleep(Duration::from_millis(160)).await;
    assert_eq!(value(&tier, "soon").await, None);
    tier.close().await.unwrap();
}

const KEYS: &[&str] = &[
    "user:1",
    "user:2",
    "user:10:profile",
    "users:1",
    "user",
    "xuser:1",
    "post:1",
    "post:2",
    "a*b",
    "aXb",
    "h[e]llo",
    "hallo",
    "hello",
    "",
];

async fn fill(tier: &dyn Tier) {
    for key in KEYS {
        tier.set(key, bytes(key), None, WriteIntent::Update)
            .await
            .unwrap();
    }
}

async fn remaining(tier: &dyn Tier) -> Vec<&'static str> {
    let mut left = Vec::new();
    for key in KEYS {
        if value(tier, key).await.is_some() {
            left.push(*key);
        }
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_matching_removes_exactly_the_matching_keys() {
    let file = TempTier::new();
    let tier = file.open();
    let cases: &[&str] = &[
        "user:*", "user*", "*:1", "post:?", "h[ae]llo", "h[^a]llo", "a\\*b", "*", "nothing*", "",
        "user:1",
    ];
    for (round, pattern) in cases.iter().enumerate() {
        let pattern = KeyPattern::new(pattern).unwrap();
        // Odd rounds match against committed entries, even ones against writes still queued.
        tier.clear().await.unwrap();
        fill(&tier).await;
        if round % 2 == 1 {
            tier.flush().await.unwrap();
        }
        let expected_left: Vec<&str> = KEYS
            .iter()
            .copied()
            .filter(|key| !pattern.matches(key))
            .collect();
        let removed = tier.delete_matching(&pattern).await.unwrap();
        assert_eq!(
            removed as usize,
            KEYS.len() - expected_left.len(),
            "count for {pattern}"
        );
        assert_eq!(
            remaining(&tier).await,
            expected_left,
            "keys left by {pattern}"
        );
        let stats = tier.stats();
        assert_eq!(
            stats.entries as usize,
            expected_left.len(),
            "{pattern}: {stats:?}"
        );
    }
    tier.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_removes_everything_written_before_it() {
    let file = TempTier::new();
    let tier = file.open();
    fill(&tier).await;
    tier.flush().await.unwrap();
    tier.set(
        "queued",
        bytes("v"),
        Some(Duration::from_secs(60)),
        WriteIntent::Update,
    )
    .await
    .unwrap();
    tier.clear().await.unwrap();
    assert_eq!(remaining(&tier).await, Vec::<&str>::new());
    assert_eq!(value(&tier, "queued").await, None);
    let stats = tier.stats();
    assert_eq!((stats.entries, stats.live_bytes), (0, 0), "{stats:?}");
    tier.set("after", bytes("v"), None, WriteIntent::Update)
        .await
        .unwrap();
    assert_eq!(value(&tier, "after").await.as_deref(), Some("v"));
    tier.close().await.unwrap();
    // Durable: still empty (but for the later write) after a reopen.
    let tier = file.open();
    assert_eq!(remaining(&tier).await, Vec::<&str>::new());
    assert_eq!(value(&tier, "after").await.as_deref(), Some("v"));
    assert!(tier.verify().await.unwrap().is_clean());
    tier.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_writes_still_queued() {
    let file = TempTier::new();
    // Long durability interval, enqueue acks: every read below races the writer thread.
    let tier = Arc::new(
        file.builder()
            .durability(Durability::Periodic(Duration::from_secs(30)))
            .ack(WriteAck::Enqueued)
            .open()
            .unwrap(),
    );
    let mut tasks = Vec::new();
    for task in 0..4 {
        let tier = Arc::clone(&tier);
        tasks.push(tokio::spawn(async move {
            for i in 0..500u32 {
                let key = format!("t{task}:{}", i % 50);
                let v = format!("{task}-{i}");
                tier.set(&key, bytes(&v), None, WriteIntent::Update)
                    .await
                    .unwrap();
                assert_eq!(
                    value(tier.as_ref(), &key).await,
                    Some(v.clone()),
                    "set then get"
                );
                if i.is_multiple_of(7) {
                    tier.delete(&key).await.unwrap();
                    assert_eq!(value(tier.as_ref(), &key).await, None, "delete then get");
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    tier.flush().await.unwrap();
    assert_eq!(tier.stats().pending_writes, 0);
    let report = tier.verify().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    tier.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ack_mode_reads_its_writes() {
    for ack in [WriteAck::Enqueued, WriteAck::Committed, WriteAck::Durable] {
        for durability in [
            Durability::EveryCommit,
            Durability::Periodic(Duration::from_secs(30)),
        ] {
            let file = TempTier::new();
            let tier = file
                .builder()
                .ack(ack)
                .durability(durability)
                .open()
                .unwrap();
            let before = tier.stats();
            tier.set("k", bytes("v"), None, WriteIntent::Update)
                .await
                .unwrap();
            assert_eq!(value(&tier, "k").await.as_deref(), Some("v"));
            let after = tier.stats();
            if ack != WriteAck::Enqueued {
                assert!(after.commits > before.commits, "{ack:?}: {after:?}");
            }
            let durable_ack = ack == WriteAck::Durable
                || (ack == WriteAck::Committed && durability == Durability::EveryCommit);
            if durable_ack {
                assert!(after.durable_commits > before.durable_commits, "{ack:?}");
            }
            tier.close().await.unwrap();
            let tier = file.open();
            assert_eq!(
                value(&tier, "k").await.as_deref(),
                Some("v"),
                "close is durable"
            );
            tier.close().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_and_set_many_answer_in_order() {
    let file = TempTier::new();
    let tier = file.builder().ack(WriteAck::Committed).open().unwrap();
    let writes: Vec<TierWrite> = (0..100u32)
        .map(|i| {
            let ttl = i.is_multiple_of(10).then_some(Duration::from_secs(3600));
            TierWrite::update(format!("k{i}"), bytes(&format!("v{i}")), ttl)
        })
        .collect();
    let results = tier.set_many(writes).await;
    assert_eq!(results.len(), 100);
    assert!(results.iter().all(|r| matches!(r, Ok(Stored::Written))));
    // A queued write next to committed entries.
    tier.set("pending", bytes("p"), None, WriteIntent::Update)
        .await
        .unwrap();
    let keys: Vec<String> = (0..120).map(|i| format!("k{}", 119 - i)).collect();
    let mut refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    refs.push("pending");
    let answers = tier.get_many(&refs).await;
    assert_eq!(answers.len(), refs.len());
    for (key, answer) in refs.iter().zip(answers) {
        let expected = match key.strip_prefix('k').and_then(|n| n.parse::<u32>().ok()) {
            Some(n) if n < 100 => Some(format!("v{n}")),
            Some(_) => None,
            None => Some("p".to_owned()),
        };
        let got = answer
            .into_hit()
            .map(|v| String::from_utf8(v.to_vec()).unwrap());
        assert_eq!(got, expected, "{key}");
    }
    assert_eq!(tier.get_many(&[]).await.len(), 0);
    assert!(tier.set_many(Vec::new()).await.is_empty());
    tier.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_values_are_refused_not_truncated() {
    let file = TempTier::new();
    let tier = file.builder().max_size(1 << 20).open().unwrap();
    // The default entry limit is max_size / 8 = 128 KiB.
    let big = Bytes::from(vec![7u8; 200 << 10]);
    match tier.set("big", big, None, WriteIntent::Update).await {
        Err(TierError::TooLarge { size, limit }) => {
            assert_eq!(size, 200 << 10);
            assert!(limit < 128 << 10);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(value(&tier, "big").await, None);
    tier.set(
        "fits",
        Bytes::from(vec![1u8; 100 << 10]),
        None,
        WriteIntent::Update,
    )
    .await
    .unwrap();
    assert!(tier.get("fits").await.is_hit());
    tier.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_recently_used_entries_are_evicted_first() {
    let file = TempTier::new();
    // Entries of about 1.1 KiB charged: room for 59.
    let tier = file.builder().max_size(64 << 10).open().unwrap();
    let value_1k = Bytes::from(vec![3u8; 1000]);
    for i in 0..40 {
        tier.set(
            &format!("k{i:03}"),
            value_1k.clone(),
            None,
            WriteIntent::Update,
        )
        .await
        .unwrap();
    }
    tier.flush().await.unwrap();
    // Read the five oldest entries; their recency updates land with the next commit.
    for i in 0..5 {
        assert!(tier.get(&format!("k{i:03}")).await.is_hit());
    }
    tier.flush().await.unwrap();
    // 30 more: about 13 of the oldest must go, and the five read ones are not the oldest.
    for i in 40..70 {
        tier.set(
            &format!("k{i:03}"),
            value_1k.clone(),
            None,
            WriteIntent::Update,
        )
        .await
        .unwrap();
    }
    tier.flush().await.unwrap();
    let stats = tier.stats();
    assert!(stats.evicted > 0, "{stats:?}");
    assert!(stats.live_bytes <= stats.max_size, "{stats:?}");
    assert!(stats.recency_updates >= 5, "{stats:?}");
    for i in 0..5 {
        assert!(
            tier.get(&format!("k{i:03}")).await.is_hit(),
            "read entry k{i:03} evicted"
        );
    }
    for i in 5..15 {
        assert!(
            !tier.get(&format!("k{i:03}")).await.is_hit(),
            "unread k{i:03} kept"
        );
    }
    for i in 30..70 {
        assert!(
            tier.get(&format!("k{i:03}")).await.is_hit(),
            "young k{i:03} evicted"
        );
    }
    assert!(tier.verify().await.unwrap().is_clean());
    tier.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_record_reads_as_degraded_and_is_deleted() {
    let file = TempTier::new();
    let tier = file.open();
    tier.set("good", bytes("fine"), None, WriteIntent::Update)
        .await
        .unwrap();
    tier.set("bad", bytes("will be damaged"), None, WriteIntent::Update)
        .await
        .unwrap();
    tier.close().await.unwrap();
    {
        // Flip one byte of the stored value, behind the tier's back.
        use redb::ReadableTable;
        let db = redb::Database::create(&file.path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, &[u8]> =
                redb::TableDefinition::new("strata_values");
            let mut table = txn.open_table(def).unwrap();
            let mut record = table.get("bad").unwrap().unwrap().value().to_vec();
            let last = record.len() - 1;
            record[last] ^= 0x40;
            table.insert("bad", record.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let tier = file.open();
    let report = tier.verify().await.unwrap();
    assert_eq!(report.corrupt_keys, vec!["bad".to_owned()]);
    match tier.get("bad").await {
        Lookup::Degraded(TierError::Corrupt(reason)) => assert!(reason.contains("checksum")),
        other => panic!("expected a corrupt degraded read, got {other:?}"),
    }
    assert_eq!(tier.stats().corrupt_entries, 1);
    assert!(
        eventually(Duration::from_secs(5), || async {
            matches!(tier.get("bad").await, Lookup::Miss)
        })
        .await,
        "the damaged entry was not deleted"
    );
    assert_eq!(value(&tier, "good").await.as_deref(), Some("fine"));
    tier.flush().await.unwrap();
    assert!(tier.verify().await.unwrap().is_clean());
    tier.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_closing() {
    let file = TempTier::new();
    let tier = file.open();
    assert_eq!(tier.health().await, Health::Healthy);
    assert_eq!(tier.name(), "redb");
    tier.set("k", bytes("v"), None, WriteIntent::Update)
        .await
        .unwrap();
    tier.close().await.unwrap();
    assert!(matches!(tier.health().await, Health::Down(_)));
    assert!(matches!(
        tier.get("k").await,
        Lookup::Degraded(TierError::Closed)
    ));
    assert!(matches!(
        tier.set("k", bytes("v"), None, WriteIntent::Update).await,
        Err(TierError::Closed)
    ));
    assert!(matches!(tier.delete("k").await, Err(TierError::Closed)));
    // Closed means released: the file opens again at once.
    let again = file.open();
    assert_eq!(value(&again, "k").await.as_deref(), Some("v"));
    again.close().await.unwrap();
}

#[test]
fn a_current_thread_runtime_works() {
    let file = TempTier::new();
    let tier = file.open();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tier.set("k", bytes("v"), None, WriteIntent::Update)
            .await
            .unwrap();
        tier.flush().await.unwrap();
        assert!(tier.get("k").await.is_hit());
        tier.close().await.unwrap();
    });
}
