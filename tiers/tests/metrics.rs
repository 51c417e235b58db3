//! Guards the `metrics` export: per-tier counters that never reach the recorder, or that are
//! registered under names or labels dashboards cannot find.
#![cfg(feature = "metrics")]

use std::sync::Arc;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use strata::BytesCache;
use strata_testing::{Fault, FaultyTier, MemoryTier, Schedule};

#[test]
fn tier_outcomes_are_exported_with_tier_and_outcome_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let faulty = Arc::new(FaultyTier::new(Arc::new(MemoryTier::new("l2"))));
            let cache = BytesCache::builder().tier(faulty.clone()).build();
            let _ = cache.set("k", "v".into()).await.unwrap();
            cache.l1().clear();
            assert!(cache.get("k").await.is_some());
            assert!(cache.get("absent").await.is_none());
            faulty.inject(Fault::Fail, Schedule::Next(1));
            assert!(cache.get("k2").await.is_none());
        });
    });
    let mut seen = std::collections::BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        if let DebugValue::Counter(n) = value {
            seen.insert(format!("{}{{{}}}", key.name(), labels.join(",")), n);
        }
    }
    let count = |outcome: &str| {
        seen.get(&format!(
            "strata_tier_operations_total{{tier=l2,outcome={outcome}}}"
        ))
        .copied()
    };
    assert_eq!(count("written"), Some(1), "{seen:?}");
    assert_eq!(count("hit"), Some(1), "{seen:?}");
    assert_eq!(count("miss"), Some(1), "{seen:?}");
    assert_eq!(count("error"), Some(1), "{seen:?}");
}
