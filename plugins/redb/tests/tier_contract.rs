//! The reusable `Tier` contract suite (`strata_testing::contract`) against a redb tier, with a
//! reopen of the same file after `close`; and a clean shutdown: everything acknowledged with
//! the fastest ack is in the file after `close`, and the next open needs no repair.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TempTier;
use strata_redb::RedbTier;
use strata_testing::contract;
use strata_tier::{Bytes, Tier, WriteIntent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_tier_keeps_the_tier_contract() {
    let file = TempTier::new();
    let tier = file.open();
    let max_value = usize::try_from(tier.max_entry_size()).unwrap();
    let path = file.path.clone();
    let reopen: contract::Reopen = Box::new(move || {
        let path = path.clone();
        Box::pin(async move {
            let tier = RedbTier::builder(path)
                .max_size(64 << 20)
                .open_async()
                .await
                .expect("reopen the tier file");
            Arc::new(tier) as Arc<dyn Tier>
        })
    });
    let options = contract::Options::default()
        .max_value_size(max_value)
        .reopen(reopen);
    let report = contract::check(Arc::new(tier), options)
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(report.checked.contains(&"fill_intent"), "{report}");
    assert!(report.checked.contains(&"too_large_is_refused"), "{report}");
    assert!(
        report.checked.contains(&"close_keeps_acknowledged_writes"),
        "{report}"
    );
    // Only the invalidation feed (another process's events) is not offered.
    assert_eq!(report.skipped.len(), 1, "{report}");
    assert_eq!(report.skipped[0].0, "invalidation_events_reach_peers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_every_acknowledged_write_and_needs_no_repair() {
    const N: usize = 1000;
    let file = TempTier::new();
    // The defaults: `WriteAck::Enqueued`, durable once a second.
    let tier = RedbTier::builder(&file.path).open_async().await.unwrap();
    assert!(!tier.stats().repaired, "a new file needs no repair");
    for i in 0..N {
        let key = format!("shutdown:{i}");
        tier.set(
            &key,
            Bytes::from(key.clone().into_bytes()),
            None,
            WriteIntent::Update,
        )
        .await
        .unwrap();
    }
    tier.close().await.unwrap();
    tier.close().await.expect("a second close is a no-op");
    let again = RedbTier::builder(&file.path).open_async().await.unwrap();
    let stats = again.stats();
    assert!(
        !stats.repaired,
        "close left a file that needed repair: {stats:?}"
    );
    assert_eq!(stats.entries, N as u64, "{stats:?}");
    let keys: Vec<String> = (0..N).map(|i| format!("shutdown:{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    for (key, answer) in refs.iter().zip(again.get_many(&refs).await) {
        assert_eq!(answer.into_hit().as_deref(), Some(key.as_bytes()), "{key}");
    }
    assert!(again.verify().await.unwrap().is_clean());
    again.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_tier_also_shuts_down_cleanly() {
    let file = TempTier::new();
    {
        let tier = file.open();
        tier.set(
            "k",
            Bytes::from_static(b"v"),
            Some(Duration::from_secs(60)),
            WriteIntent::Update,
        )
        .await
        .unwrap();
    }
    // The writer finishes shortly after the drop; the file is free once it has.
    let mut reopened = None;
    for _ in 0..200 {
        match file.builder().open() {
            Ok(tier) => {
                reopened = Some(tier);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let tier = reopened.expect("the file is released after a drop");
    assert!(!tier.stats().repaired);
    assert!(tier.get("k").await.is_hit());
    tier.close().await.unwrap();
}
