//! Guards the stack's coherence under concurrent writes: each test replays one of the sequences
//! that left a stale value behind before the per-key fences (issue 12, "Why", items 1 to 7),
//! with a slow lower tier to open the race window deterministically.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::frame::{self, FrameOptions};
use strata::{
    BreakerConfig, BreakerState, Bytes, Postcard, Tier, TierOptions, TieredCache, WriteIntent,
};
use strata_testing::{Fault, FaultyTier, MemoryTier, Ops, Schedule};

type Strings = TieredCache<String, Postcard<String>>;

const FRAME: FrameOptions = FrameOptions {
    compression_threshold: 1024,
    max_payload: 1 << 20,
};

/// The frame a cache of strings stores for `value`, with no expiry.
fn framed(value: &str) -> Bytes {
    let payload = postcard::to_allocvec(&value.to_owned()).unwrap();
    frame::encode(&payload, None, std::time::SystemTime::now(), &FRAME)
}

/// The string a tier holds under `key`, if any.
fn held(tier: &MemoryTier, key: &str) -> Option<String> {
    let raw = tier.raw(key)?;
    let frame = frame::decode(&raw, &FRAME).unwrap();
    Some(postcard::from_bytes(&frame.payload).unwrap())
}

/// L1 over L2 (memory) over L3 (memory behind a fault injector).
struct Stack {
    cache: Strings,
    l2: Arc<MemoryTier>,
    l3: Arc<MemoryTier>,
    l3_faults: Arc<FaultyTier>,
}

fn stack() -> Stack {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let l3 = Arc::new(MemoryTier::new("l3"));
    let l3_faults = Arc::new(FaultyTier::new(l3.clone()));
    let cache = Strings::builder()
        .tier_with(
            l2.clone(),
            TierOptions::default().timeout(Duration::from_secs(5)),
        )
        .tier_with(
            l3_faults.clone(),
            TierOptions::default().timeout(Duration::from_secs(5)),
        )
        .build();
    Stack {
        cache,
        l2,
        l3,
        l3_faults,
    }
}

/// Sequence 1: `get` reads v1 from L3, `delete` runs and returns, then the read promotes v1
/// into L2, where later reads found it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_does_not_resurrect_a_deleted_value() {
    let s = stack();
    s.l3.put_raw("k", framed("v1"));
    s.l3_faults.inject_on(
        Ops::Reads,
        Fault::Delay(Duration::from_millis(200)),
        Schedule::Next(1),
    );
    let reader = {
        let cache = s.cache.clone();
        tokio::spawn(async move { cache.get("k").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(s.cache.delete("k").await.unwrap());
    // The read began before the delete returned: either answer is allowed for it.
    let _ = reader.await.unwrap();
    assert_eq!(
        held(&s.l2, "k"),
        None,
        "the read promoted v1 into L2 after the delete"
    );
    assert!(!s.cache.l1().contains_key("k"));
    assert_eq!(
        s.cache.get("k").await,
        None,
        "a read after the delete found v1"
    );
}

/// Sequence 1, with a racing `set`: L2 ended up holding v1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_does_not_overwrite_a_racing_set() {
    let s = stack();
    s.l3.put_raw("k", framed("v1"));
    s.l3_faults.inject_on(
        Ops::Reads,
        Fault::Delay(Duration::from_millis(200)),
        Schedule::Next(1),
    );
    let reader = {
        let cache = s.cache.clone();
        tokio::spawn(async move { cache.get("k").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = s.cache.set("k", "v2".into()).await.unwrap();
    let _ = reader.await.unwrap();
    assert_eq!(held(&s.l2, "k").as_deref(), Some("v2"));
    s.cache.l1().clear();
    assert_eq!(s.cache.get("k").await.as_deref(), Some("v2"));
}

/// Sequence 2: the loader reads v1 from the source, the application deletes the key, then the
/// loader returns and v1 was written to every lower tier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loader_write_back_does_not_resurrect_a_deleted_value() {
    let s = stack();
    let loading = {
        let cache = s.cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load("k", || async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<_, std::io::Error>("v1".to_owned())
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.cache.delete("k").await.unwrap();
    // The flight's callers still get what was loaded.
    assert_eq!(loading.await.unwrap().unwrap(), "v1");
    assert_eq!(
        held(&s.l2, "k"),
        None,
        "loader wrote v1 back to L2 after the delete"
    );
    assert_eq!(
        held(&s.l3, "k"),
        None,
        "loader wrote v1 back to L3 after the delete"
    );
    assert_eq!(s.cache.get("k").await, None);
    // A caller arriving after the delete loads afresh instead of joining the old flight.
    let fresh = s
        .cache
        .get_or_load("k", || async { Ok::<_, std::io::Error>("v2".to_owned()) })
        .await
        .unwrap();
    assert_eq!(fresh, "v2");
}

/// Sequence 2, with a racing `set`: the write wins in every tier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loader_write_back_does_not_overwrite_a_racing_set() {
    let s = stack();
    let loading = {
        let cache = s.cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load("k", || async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<_, std::io::Error>("loaded".to_owned())
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = s.cache.set("k", "written".into()).await.unwrap();
    let _ = loading.await.unwrap();
    assert_eq!(held(&s.l2, "k").as_deref(), Some("written"));
    assert_eq!(held(&s.l3, "k").as_deref(), Some("written"));
    assert_eq!(s.cache.get("k").await.as_deref(), Some("written"));
}

/// Sequence 3: `set(k, v2)` fails in a tier; once L1's entry ends, reads fall through and
/// bring v1 back from that tier.
#[tokio::test]
async fn a_failed_tier_write_does_not_flip_reads_back() {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let faults = Arc::new(FaultyTier::new(l2.clone()));
    let cache = Strings::builder()
        .memory_ttl(Duration::from_millis(50))
        .tier(faults.clone())
        .build();
    let _ = cache.set("k", "v1".into()).await.unwrap();
    faults.inject_on(Ops::Writes, Fault::Fail, Schedule::Always);
    let report = cache.set("k", "v2".into()).await.unwrap();
    assert!(!report.is_complete());
    assert_eq!(cache.get("k").await.as_deref(), Some("v2"));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(
        held(&l2, "k").as_deref(),
        Some("v1"),
        "the tier still holds v1"
    );
    assert_ne!(
        cache.get("k").await.as_deref(),
        Some("v1"),
        "a read went back to the tier that missed the write"
    );
    // Once a write of the key succeeds there, the tier serves it again.
    faults.heal();
    let _ = cache.set("k", "v3".into()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(cache.get("k").await.as_deref(), Some("v3"));
    assert_eq!(cache.stats().tiers[0].hits, 1, "v3 came from the tier");
}

/// Sequence 3 for a delete that fails in a tier: the call is an error, and the tier is not
/// read for the key until a later write succeeds.
#[tokio::test]
async fn a_failed_tier_delete_is_an_error_and_the_old_value_is_not_served() {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let faults = Arc::new(FaultyTier::new(l2.clone()));
    let cache = Strings::builder().tier(faults.clone()).build();
    let _ = cache.set("k", "v1".into()).await.unwrap();
    faults.inject_on(Ops::Writes, Fault::Fail, Schedule::Always);
    assert!(cache.delete("k").await.is_err());
    assert_eq!(held(&l2, "k").as_deref(), Some("v1"));
    assert_eq!(cache.get("k").await, None);
    assert!(!cache.health_check().await.is_healthy());
}

/// Sequence 3 for a write skipped by an open circuit breaker.
#[tokio::test]
async fn a_write_skipped_by_an_open_breaker_does_not_flip_reads_back() {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let faults = Arc::new(FaultyTier::new(l2.clone()));
    let cache = Strings::builder()
        .memory_ttl(Duration::from_millis(50))
        .tier_with(
            faults.clone(),
            TierOptions::default().breaker(BreakerConfig {
                failure_threshold: 1,
                open_for: Duration::from_secs(60),
                max_open_for: Duration::from_secs(60),
            }),
        )
        .build();
    let _ = cache.set("k", "v1".into()).await.unwrap();
    faults.inject_on(Ops::Writes, Fault::Fail, Schedule::Next(1));
    let _ = cache.set("other", "x".into()).await.unwrap();
    assert_eq!(cache.stats().tiers[0].write_breaker, BreakerState::Open);
    let report = cache.set("k", "v2".into()).await.unwrap();
    assert!(!report.is_complete(), "skipped by the open breaker");
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(held(&l2, "k").as_deref(), Some("v1"));
    assert_ne!(cache.get("k").await.as_deref(), Some("v1"));
}

/// Sequence 4: fills lost under write load. Keys that miss L1 and hit a 1 ms lower tier are
/// read while unrelated keys are written and an unrelated pattern is invalidated over 1,000
/// times a second: at least 99% of the reads leave their key in L1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_survive_unrelated_writes_and_patterns() {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let slow = Arc::new(FaultyTier::new(l2.clone()));
    slow.inject_on(
        Ops::Reads,
        Fault::Delay(Duration::from_millis(1)),
        Schedule::Always,
    );
    // A pattern sweep of L1 walks its whole table (about 75 us at this capacity, 750 us at
    // 100,000), so the L1 is sized to let one task invalidate well over 1,000 times a second.
    let cache = Strings::builder()
        .memory_max_entries(10_000)
        .tier(slow.clone())
        .build();
    const KEYS: usize = 400;
    for i in 0..KEYS {
        l2.put_raw(&format!("read:{i}"), framed("v"));
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let patterns = Arc::new(AtomicUsize::new(0));
    let writes = Arc::new(AtomicUsize::new(0));
    let invalidator = {
        let (cache, stop, patterns) = (cache.clone(), stop.clone(), patterns.clone());
        tokio::spawn(async move {
            while !stop.load(SeqCst) {
                cache.invalidate_pattern("other:*").await.unwrap();
                if patterns.fetch_add(1, SeqCst) % 32 == 31 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let writer = {
        let (cache, stop, writes) = (cache.clone(), stop.clone(), writes.clone());
        tokio::spawn(async move {
            while !stop.load(SeqCst) {
                let i = writes.fetch_add(1, SeqCst);
                let _ = cache
                    .set(&format!("write:{}", i % 64), "w".into())
                    .await
                    .unwrap();
                if i % 32 == 31 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    let patterns_before = patterns.load(SeqCst);
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let mut kept = 0;
                for i in (r..KEYS).step_by(4) {
                    let key = format!("read:{i}");
                    assert_eq!(cache.get(&key).await.as_deref(), Some("v"));
                    kept += usize::from(cache.l1().contains_key(key.as_str()));
                }
                kept
            })
        })
        .collect();
    let mut kept = 0;
    for reader in readers {
        kept += reader.await.unwrap();
    }
    let elapsed = started.elapsed();
    let rate = (patterns.load(SeqCst) - patterns_before) as f64 / elapsed.as_secs_f64();
    stop.store(true, SeqCst);
    invalidator.await.unwrap();
    writer.await.unwrap();
    eprintln!(
        "fills under load: {kept} of {KEYS} reads left their key in L1, {rate:.0} unrelated \
         patterns/s, {} unrelated writes",
        writes.load(SeqCst)
    );
    assert!(
        rate >= 1000.0,
        "the load was too light to test anything: {rate:.0} patterns/s"
    );
    assert!(
        kept * 100 >= KEYS * 99,
        "{kept} of {KEYS} reads left their key in L1 ({rate:.0} patterns/s, {} writes)",
        writes.load(SeqCst)
    );
    assert_eq!(
        cache.stats().fills_fenced,
        0,
        "an unrelated write cancelled a fill"
    );
}

/// Sequence 4, second half: 1,000 concurrent `get_or_load` of one key under the same load run
/// the loader once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_loads_of_one_key_under_write_load_run_the_loader_once() {
    let l2 = Arc::new(FaultyTier::new(Arc::new(MemoryTier::new("l2"))));
    l2.inject_on(
        Ops::Reads,
        Fault::Delay(Duration::from_millis(1)),
        Schedule::Always,
    );
    let cache = Strings::builder().tier(l2).build();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (cache, stop) = (cache.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(SeqCst) {
                i += 1;
                cache.invalidate_pattern("other:*").await.unwrap();
                let _ = cache
                    .set(&format!("write:{}", i % 64), "w".into())
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(tokio::sync::Barrier::new(1000));
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let (cache, runs, start) = (cache.clone(), runs.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                cache
                    .get_or_load("hot", || async {
                        runs.fetch_add(1, SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, std::io::Error>("loaded".to_owned())
                    })
                    .await
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), "loaded");
    }
    stop.store(true, SeqCst);
    load.await.unwrap();
    assert_eq!(runs.load(SeqCst), 1);
}

/// Sequence 5 (dead backend): 100 concurrent `get_or_load` whose loader fails after 100 ms
/// all finish within twice that, because they share the one failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_backend_costs_one_timeout_not_a_hundred() {
    let cache = Strings::builder()
        .tier(Arc::new(MemoryTier::new("l2")))
        .build();
    let runs = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(tokio::sync::Barrier::new(100));
    let started = Instant::now();
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let (cache, runs, start) = (cache.clone(), runs.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let result = cache
                    .get_or_load("dead", || async {
                        runs.fetch_add(1, SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Err::<String, _>(std::io::Error::other("connection refused"))
                    })
                    .await;
                (result, Instant::now())
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for caller in callers {
        let (result, done) = caller.await.unwrap();
        assert!(matches!(result, Err(strata::CacheError::Loader(_))));
        let took = done - started;
        slowest = slowest.max(took);
        assert!(took < Duration::from_millis(200), "a caller took {took:?}");
    }
    assert_eq!(runs.load(SeqCst), 1);
    eprintln!("dead backend: 100 callers, 1 loader run, slowest caller {slowest:?}");
}

/// Sequence 7: request errors (a value too large for a tier) do not open its breaker, so
/// reads and deletes keep reaching it.
#[tokio::test]
async fn request_errors_do_not_open_the_breaker() {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let faults = Arc::new(FaultyTier::new(l2.clone()));
    let cache = Strings::builder()
        .tier_with(
            faults.clone(),
            TierOptions::default().breaker(BreakerConfig {
                failure_threshold: 5,
                open_for: Duration::from_secs(60),
                max_open_for: Duration::from_secs(60),
            }),
        )
        .build();
    l2.put_raw("present", framed("here"));
    faults.inject_on(Ops::Writes, Fault::TooLarge, Schedule::Next(10));
    for i in 0..10 {
        let report = cache.set(&format!("big:{i}"), "x".into()).await.unwrap();
        assert!(!report.is_complete());
    }
    let stats = &cache.stats().tiers[0];
    assert_eq!(stats.breaker, BreakerState::Closed);
    assert_eq!(stats.write_breaker, BreakerState::Closed);
    assert_eq!(cache.get("present").await.as_deref(), Some("here"));
    assert!(cache.delete("present").await.unwrap());
}

/// Sequence 7: one breaker covered reads and writes, so a failing writer took healthy reads
/// out of service.
#[tokio::test]
async fn failing_writes_do_not_stop_healthy_reads() {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let faults = Arc::new(FaultyTier::new(l2.clone()));
    let cache = Strings::builder()
        .tier_with(
            faults.clone(),
            TierOptions::default().breaker(BreakerConfig {
                failure_threshold: 2,
                open_for: Duration::from_secs(60),
                max_open_for: Duration::from_secs(60),
            }),
        )
        .build();
    l2.put_raw("present", framed("here"));
    faults.inject_on(Ops::Writes, Fault::Fail, Schedule::Always);
    for i in 0..3 {
        let _ = cache.set(&format!("w:{i}"), "x".into()).await.unwrap();
    }
    let stats = &cache.stats().tiers[0];
    assert_eq!(stats.write_breaker, BreakerState::Open);
    assert_eq!(stats.breaker, BreakerState::Closed);
    assert_eq!(cache.get("present").await.as_deref(), Some("here"));
}

/// Sequence 7: the loader path wrote its value to the tier whose read had just failed,
/// paying a second timeout.
#[tokio::test(start_paused = true)]
async fn the_loader_does_not_write_to_a_tier_whose_read_failed() {
    let timeout = Duration::from_millis(100);
    let faults = Arc::new(FaultyTier::new(Arc::new(MemoryTier::new("l2"))));
    let cache = Strings::builder()
        .tier_with(faults.clone(), TierOptions::default().timeout(timeout))
        .build();
    faults.inject(Fault::Hang, Schedule::Always);
    let started = tokio::time::Instant::now();
    let value = cache
        .get_or_load("k", || async { Ok::<_, std::io::Error>("v".to_owned()) })
        .await
        .unwrap();
    assert_eq!(value, "v");
    let took = started.elapsed();
    assert!(took >= timeout && took < timeout * 2, "{took:?}");
    assert_eq!(faults.operations(), 1, "only the read reached the tier");
}

/// L1 never holds an entry past its frame's expiry: the L1 deadline comes from the frame's.
#[tokio::test]
async fn l1_never_outlives_the_frame() {
    let cache = Strings::builder()
        .memory_ttl(Duration::from_secs(3600))
        .tier(Arc::new(MemoryTier::new("l2")))
        .build();
    let _ = cache
        .set_with_ttl("k", "v".into(), Duration::from_millis(60))
        .await
        .unwrap();
    let entry = cache.get_entry("k").await.unwrap();
    let l1_left = cache.l1().time_to_live_of("k").unwrap().unwrap();
    assert!(l1_left <= Duration::from_millis(60), "{l1_left:?}");
    assert!(entry.expires_at.is_some());
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(cache.get("k").await, None);
}

/// A TTL too long to represent saturates to "no expiry" instead of panicking.
#[tokio::test]
async fn set_with_an_unrepresentable_ttl_does_not_panic() {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let cache = Strings::builder().tier(l2.clone()).build();
    let _ = cache
        .set_with_ttl("forever", "v".into(), Duration::MAX)
        .await
        .unwrap();
    assert_eq!(cache.get("forever").await.as_deref(), Some("v"));
    assert_eq!(l2.ttl_of("forever"), Some(None));
    let entry = {
        cache.l1().clear();
        cache.get_entry("forever").await.unwrap()
    };
    assert_eq!(entry.expires_at, None);
    assert!(
        entry.stored_at.is_some(),
        "the frame records when it was stored"
    );
}

/// Two tiers reporting the same name get distinct names in stats and health.
#[tokio::test]
async fn tiers_with_the_same_name_are_told_apart() {
    let cache = Strings::builder()
        .tier(Arc::new(MemoryTier::new("redb")))
        .tier(Arc::new(MemoryTier::new("redb")))
        .tier(Arc::new(MemoryTier::new("memory")))
        .build();
    assert_eq!(cache.tier_names(), ["redb", "redb-2", "memory-2"]);
    let health = cache.health_check().await;
    assert_eq!(health.tiers.len(), 4, "{health:?}");
}

/// Another process's write reaches this L1 through the tier's invalidation events, and a read
/// in flight here does not fill L1 with what it read before the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_from_another_process_reach_this_l1() {
    let shared = MemoryTier::new("l2");
    let here = Strings::builder().tier(Arc::new(shared.peer())).build();
    let there = Strings::builder().tier(Arc::new(shared.peer())).build();
    let _ = there.set("k", "v1".into()).await.unwrap();
    assert_eq!(here.get("k").await.as_deref(), Some("v1"));
    assert!(here.l1().contains_key("k"));
    let _ = there.set("k", "v2".into()).await.unwrap();
    assert!(
        !here.l1().contains_key("k"),
        "the remote write did not reach this L1"
    );
    assert_eq!(here.get("k").await.as_deref(), Some("v2"));
    let _ = there.set("user:1", "a".into()).await.unwrap();
    assert_eq!(here.get("user:1").await.as_deref(), Some("a"));
    there.invalidate_pattern("user:*").await.unwrap();
    assert!(!here.l1().contains_key("user:1"));
    assert_eq!(here.stats().remote_invalidations, 4);
    // Applied by hand, too.
    here.apply_invalidation(&strata::Invalidation::Clear);
    assert_eq!(here.l1().len(), 0);
    assert_eq!(here.stats().remote_invalidations, 5);
    // After close, events stop.
    here.close().await.unwrap();
    let _ = there.set("k", "v3".into()).await.unwrap();
    assert_eq!(here.stats().remote_invalidations, 5);
}

/// `get_many` and `set_many` go through each tier in one batch.
#[tokio::test]
async fn batches_reach_each_tier_once() {
    let l2 = Arc::new(FaultyTier::new(Arc::new(MemoryTier::new("l2"))));
    let cache = Strings::builder().tier(l2.clone()).build();
    let before = l2.operations();
    let reports = cache
        .set_many(vec![
            ("a".into(), "A".into()),
            ("b".into(), "B".into()),
            ("a".into(), "A2".into()),
        ])
        .await
        .unwrap();
    assert_eq!(reports.len(), 3);
    assert!(reports.iter().all(|r| r.is_complete()));
    cache.l1().clear();
    let got = cache.get_many(&["a", "b", "c"]).await;
    assert_eq!(got, [Some("A2".to_owned()), Some("B".into()), None]);
    assert!(cache.l1().contains_key("a") && cache.l1().contains_key("b"));
    assert_eq!(cache.delete_many(&["a", "c"]).await.unwrap(), 1);
    assert_eq!(cache.get("a").await, None);
    // The FaultyTier counts each item of a batch it forwards; the tier below saw batches.
    assert!(l2.operations() > before);
}

/// A direct tier write of a fill never replaces a newer value in a tier that can
/// insert-if-absent.
#[tokio::test]
async fn fills_are_inserts_if_absent() {
    let tier = MemoryTier::new("l2");
    tier.set("k", framed("new"), None, WriteIntent::Update)
        .await
        .unwrap();
    let stored = tier
        .set("k", framed("old"), None, WriteIntent::Fill)
        .await
        .unwrap();
    assert_eq!(stored, strata::Stored::Kept);
    assert_eq!(held(&tier, "k").as_deref(), Some("new"));
}

/// Found by `strata-stack-check`: a loader's write-back lands in a tier after a racing delete
/// cleaned it, and is being undone; a read that starts while the undo is in flight found the
/// value in the tier and copied it into L1, where it outlived the delete. The writer now stays
/// registered until racing fills have settled, so that read does not fill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_during_a_fills_undo_does_not_copy_it_into_l1() {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let faults = Arc::new(FaultyTier::new(l2.clone()));
    let cache = Strings::builder()
        .tier_with(
            faults.clone(),
            TierOptions::default().timeout(Duration::from_secs(5)),
        )
        .build();
    // The write-back of the loaded value takes 300 ms to land.
    faults.inject_on(
        Ops::Writes,
        Fault::Delay(Duration::from_millis(300)),
        Schedule::Next(1),
    );
    let loading = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load("k", || async {
                    Ok::<_, std::io::Error>("loaded".to_owned())
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let deleting = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.delete("k").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The next write, the undo of the write-back, takes 300 ms too.
    faults.inject_on(
        Ops::Writes,
        Fault::Delay(Duration::from_millis(300)),
        Schedule::Next(1),
    );
    // The write-back has landed (t = 300 ms); its undo has not (t = 600 ms).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(held(&l2, "k").as_deref(), Some("loaded"));
    let during = cache.get("k").await;
    assert!(!deleting.is_finished(), "the delete waits for the undo");
    deleting.await.unwrap().unwrap();
    let _ = loading.await.unwrap();
    let _ = during;
    assert!(
        !cache.l1().contains_key("k"),
        "the read copied the undone value into L1"
    );
    assert_eq!(
        cache.get("k").await,
        None,
        "a read after the delete found its old value"
    );
}

/// Found in review: `delete_many` did not detach flights when it ended, so a `get_or_load` that
/// began during it (and read the old value from a slow tier) could be joined after it returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flight_begun_during_delete_many_is_not_joined_after_it() {
    let l2 = Arc::new(FaultyTier::new(Arc::new(MemoryTier::new("l2"))));
    let cache = Strings::builder()
        .tier_with(
            l2.clone(),
            TierOptions::default().timeout(Duration::from_secs(5)),
        )
        .build();
    let _ = cache.set("k", "old".into()).await.unwrap();
    cache.l1().clear();
    // The delete's L2 batch waits 100 ms; the next L2 read answers 100 ms late.
    l2.inject_on(
        Ops::All,
        Fault::Delay(Duration::from_millis(100)),
        Schedule::Next(2),
    );
    let deleting = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.delete_many(&["k", "other"]).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load("k", || async {
                    Ok::<_, std::io::Error>("loaded".to_owned())
                })
                .await
        })
    };
    assert_eq!(deleting.await.unwrap().unwrap(), 1);
    let after = cache
        .get_or_load("k", || async {
            Ok::<_, std::io::Error>("fresh".to_owned())
        })
        .await
        .unwrap();
    let _ = leader.await.unwrap();
    assert_ne!(
        after, "old",
        "a get_or_load after delete_many returned got the deleted value"
    );
}

/// Found in review: a fill that fails or times out may still land in its tier later; the key is
/// now skipped there until a write of it succeeds there (a tier keeps each key's operations in
/// order, so that write lands after the late fill).
#[tokio::test]
async fn a_failed_fill_marks_its_key_stale_in_that_tier() {
    let l2 = Arc::new(MemoryTier::new("l2"));
    let l2_faults = Arc::new(FaultyTier::new(l2.clone()));
    let l3 = Arc::new(MemoryTier::new("l3"));
    let cache = Strings::builder()
        .tier(l2_faults.clone())
        .tier(l3.clone())
        .build();
    l3.put_raw("k", framed("v1"));
    l2_faults.inject_on(Ops::Writes, Fault::Fail, Schedule::Next(1));
    // Reads v1 from L3; the promotion into L2 fails.
    assert_eq!(cache.get("k").await.as_deref(), Some("v1"));
    // Something lands in L2 after all: it is not served until a write of the key succeeds.
    l2.put_raw("k", framed("landed late"));
    cache.l1().clear();
    assert_eq!(
        cache.get("k").await.as_deref(),
        Some("v1"),
        "L2 was not skipped"
    );
    let _ = cache.set("k", "v2".into()).await.unwrap();
    cache.l1().clear();
    assert_eq!(cache.get("k").await.as_deref(), Some("v2"));
    assert_eq!(cache.stats().tiers[0].hits, 1, "v2 came from L2 again");
}
