//! Guards single-flight loading across the whole stack: concurrent misses of one key that each
//! run the loader (a thundering herd on the source), and waiters stranded by a failing,
//! panicking or cancelled loader.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use strata::{CacheError, Postcard, TieredCache};

use strata_testing::{FaultyTier, MemoryTier};

type Numbers = TieredCache<u64, Postcard<u64>>;

fn cache_over(tier: Arc<dyn strata::Tier>) -> Numbers {
    Numbers::builder().tier(tier).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_misses_run_the_loader_once() {
    let l2 = Arc::new(FaultyTier::new(Arc::new(MemoryTier::new("l2"))));
    let cache = cache_over(l2.clone());
    let runs = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (cache, runs, start) = (cache.clone(), runs.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                cache
                    .get_or_load("hot", || async {
                        runs.fetch_add(1, SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, std::io::Error>(42)
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 42);
    }
    assert_eq!(runs.load(SeqCst), 1);
    // One lookup in L2 (the leader's) and one write of the loaded value.
    assert_eq!(l2.operations(), 2);
    assert_eq!(cache.stats().loads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_one_lower_tier_read() {
    let l2 = Arc::new(FaultyTier::new(Arc::new(MemoryTier::new("l2"))));
    let writer = cache_over(l2.clone());
    let _ = writer.set("k", 7).await.unwrap();
    let reader = cache_over(l2.clone());
    let before = l2.operations();
    l2.inject(
        strata_testing::Fault::Delay(Duration::from_millis(50)),
        strata_testing::Schedule::Always,
    );
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let reader = reader.clone();
            tokio::spawn(async move {
                reader
                    .get_or_load("k", || async { Err::<u64, _>("loader must not run") })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 7);
    }
    assert_eq!(l2.operations() - before, 1);
}

/// Issue 12, sequence 5 ("failures are not shared"): every caller of a failed flight gets its
/// error; before, waiters re-ran the loader one after another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_loader_shares_its_error_with_every_waiter() {
    let cache = cache_over(Arc::new(MemoryTier::new("l2")));
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load("flaky", || async move {
                        runs.fetch_add(1, SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Err::<u64, _>("source down")
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        match task.await.unwrap() {
            Err(CacheError::Loader(error)) => assert_eq!(error.to_string(), "source down"),
            other => panic!("expected the shared loader error, got {other:?}"),
        }
    }
    assert_eq!(runs.load(SeqCst), 1, "the loader ran once for the flight");
    assert_eq!(cache.get("flaky").await, None, "nothing was cached");
    // The next call loads afresh.
    let value = cache
        .get_or_load("flaky", || async { Ok::<_, std::io::Error>(5) })
        .await
        .unwrap();
    assert_eq!(value, 5);
    assert_eq!(cache.get("flaky").await, Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_loader_hands_over_to_a_waiter() {
    let cache = cache_over(Arc::new(MemoryTier::new("l2")));
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load("slow", || async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok::<_, std::io::Error>(1)
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let follower = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load("slow", || async { Ok::<_, std::io::Error>(2) })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    leader.abort();
    let value = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("the waiter was released")
        .unwrap()
        .unwrap();
    assert_eq!(value, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_loader_releases_its_waiters() {
    let cache = cache_over(Arc::new(MemoryTier::new("l2")));
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load("boom", || async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    panic!("loader panicked");
                    #[allow(unreachable_code)]
                    Ok::<u64, std::io::Error>(0)
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let follower = cache.get_or_load("boom", || async { Ok::<_, std::io::Error>(3) });
    let value = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("the waiter was released")
        .unwrap();
    assert_eq!(value, 3);
    assert!(leader.await.unwrap_err().is_panic());
}
