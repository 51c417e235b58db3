//! The contract suite against the tiers of this crate, and proof that it fails a tier that
//! breaks a promise.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use strata_testing::{contract, FaultyTier, MemoryTier};
use strata_tier::{Health, KeyPattern, Lookup, Stored, Tier, TierError, WriteIntent};

#[tokio::test]
async fn memory_tier_keeps_the_contract() {
    let tier = Arc::new(MemoryTier::new("mem"));
    let peer: Arc<dyn Tier> = Arc::new(tier.peer());
    let report = contract::check(tier, contract::Options::default().peer(peer))
        .await
        .unwrap();
    // The memory tier has no size limit, so only the oversize case is skipped.
    assert_eq!(report.skipped.len(), 1, "{report}");
    assert_eq!(report.skipped[0].0, "too_large_is_refused");
    assert_eq!(report.checked.len(), 16, "{report}");
}

#[tokio::test]
async fn a_healthy_faulty_wrapper_keeps_the_contract() {
    let inner: Arc<dyn Tier> = Arc::new(MemoryTier::new("mem"));
    let report = contract::check(
        Arc::new(FaultyTier::new(inner)),
        contract::Options::default(),
    )
    .await
    .unwrap();
    assert!(report.checked.contains(&"fill_intent"));
}

/// Wraps a memory tier and breaks one promise at a time.
struct Broken {
    inner: MemoryTier,
    flaw: Flaw,
}

#[derive(Clone, Copy, PartialEq)]
enum Flaw {
    IgnoresTtl,
    ClaimsFillButOverwrites,
    DeleteLeavesValue,
    PatternTooWide,
}

#[async_trait]
impl Tier for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn capabilities(&self) -> strata_tier::Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str) -> Lookup {
        self.inner.get(key).await
    }
    async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        intent: WriteIntent,
    ) -> Result<Stored, TierError> {
        let ttl = if self.flaw == Flaw::IgnoresTtl {
            None
        } else {
            ttl
        };
        let intent = if self.flaw == Flaw::ClaimsFillButOverwrites {
            WriteIntent::Update
        } else {
            intent
        };
        self.inner.set(key, value, ttl, intent).await
    }
    async fn delete(&self, key: &str) -> Result<bool, TierError> {
        if self.flaw == Flaw::DeleteLeavesValue {
            return Ok(true);
        }
        self.inner.delete(key).await
    }
    async fn delete_matching(&self, pattern: &KeyPattern) -> Result<u64, TierError> {
        if self.flaw == Flaw::PatternTooWide {
            let wider =
                KeyPattern::prefix(&pattern.literal_prefix()[..pattern.literal_prefix().len() - 1]);
            return self.inner.delete_matching(&wider).await;
        }
        self.inner.delete_matching(pattern).await
    }
    async fn clear(&self) -> Result<(), TierError> {
        self.inner.clear().await
    }
    async fn health(&self) -> Health {
        Health::Healthy
    }
}

#[tokio::test]
async fn the_suite_catches_broken_promises() {
    for (flaw, case) in [
        (Flaw::IgnoresTtl, "ttl_is_never_exceeded"),
        (Flaw::ClaimsFillButOverwrites, "fill_intent"),
        (Flaw::DeleteLeavesValue, "delete_removes"),
        (Flaw::PatternTooWide, "delete_matching_removes_only_matches"),
    ] {
        let tier = Arc::new(Broken {
            inner: MemoryTier::new("broken"),
            flaw,
        });
        let failure = contract::check(tier, contract::Options::default())
            .await
            .expect_err("a broken tier must fail the suite");
        assert_eq!(failure.case, case, "{failure}");
    }
}
