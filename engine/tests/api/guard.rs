//! The placeholder guard: `get_value_or_guard` and its async form.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use strata_engine::{Cache, Clock};

use super::support::{assert_send, block_on, poll_once, wait_until, Until};

#[test]
fn a_hit_returns_the_value_and_a_miss_the_guard() {
    let (clock, mock) = Clock::mock();
    let cache: Cache<String, u64> = Cache::builder().max_capacity(100).clock(clock).build();
    let guard = cache.get_value_or_guard("a").unwrap_err();
    assert_eq!(guard.key(), "a");
    assert!(guard.insert(1), "inserted into an absent key");
    assert_eq!(cache.get_value_or_guard("a").ok(), Some(1));
    assert_eq!(cache.get("a"), Some(1));

    let guard = cache.get_value_or_guard("b").unwrap_err();
    assert!(guard.insert_with_ttl(2, Duration::from_millis(10)));
    assert_eq!(cache.get("b"), Some(2));
    mock.advance(Duration::from_millis(20));
    assert_eq!(cache.get("b"), None, "the guard's TTL applies");

    // A guard dropped unused caches nothing and leaves the key free to lead again.
    drop(cache.get_value_or_guard("c").unwrap_err());
    assert!(!cache.contains_key("c"));
    assert!(cache.get_value_or_guard("c").unwrap_err().insert(3));
    assert_eq!(cache.get("c"), Some(3));
}

/// The rules of a load: a removal made while the guard is held wins, and an insert made while
/// it is held is kept; `insert` reports that its value did not go in.
#[test]
fn a_guard_inserts_only_if_absent_and_not_over_a_removal() {
    let cache = Cache::<u64, u64>::new(100);
    let guard = cache.get_value_or_guard(&1).unwrap_err();
    cache.insert(1, 5);
    assert!(!guard.insert(6));
    assert_eq!(cache.get(&1), Some(5), "the insert made meanwhile stays");

    let guard = cache.get_value_or_guard(&2).unwrap_err();
    assert_eq!(cache.remove(&2), None);
    assert!(!guard.insert(7));
    assert_eq!(cache.get(&2), None, "the removal made meanwhile wins");

    let guard = cache.get_value_or_guard(&3).unwrap_err();
    cache.clear();
    assert!(!guard.insert(8));
    assert_eq!(cache.get(&3), None, "clear cancels a guard's load too");
}

/// Real threads: a loader and another `get_value_or_guard` on the same key wait while the guard
/// is held (neither returns, neither loads) and wake with the guard's value.
#[test]
fn waiters_wake_with_the_guards_value() {
    let cache = Cache::<u64, u64>::new(100);
    let loads = AtomicUsize::new(0);
    let returned = AtomicUsize::new(0);
    let guard = cache.get_value_or_guard(&1).unwrap_err();
    std::thread::scope(|s| {
        let loader = s.spawn(|| {
            let value = cache.get_or_insert_with(1, || {
                loads.fetch_add(1, Ordering::SeqCst);
                99
            });
            returned.fetch_add(1, Ordering::SeqCst);
            value
        });
        let guarded = s.spawn(|| {
            let value = cache.get_value_or_guard(&1).ok();
            returned.fetch_add(1, Ordering::SeqCst);
            value
        });
        // The guard's own miss, then one for each waiter.
        wait_until("both waiters missed", || cache.stats().misses >= 3);
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(
            returned.load(Ordering::SeqCst),
            0,
            "returned under a held guard"
        );
        assert!(guard.insert(10));
        assert_eq!(loader.join().unwrap(), 10);
        assert_eq!(guarded.join().unwrap(), Some(10));
    });
    assert_eq!(loads.load(Ordering::SeqCst), 0, "a waiter ran its loader");
}

/// Real threads: a guard dropped without a value releases its waiter, which then leads: a loader
/// runs its own `init`, another `get_value_or_guard` gets the guard.
#[test]
fn a_dropped_guard_lets_a_waiter_lead() {
    // A loader waiting.
    let cache = Cache::<u64, u64>::new(100);
    let loads = AtomicUsize::new(0);
    let returned = AtomicBool::new(false);
    let guard = cache.get_value_or_guard(&1).unwrap_err();
    std::thread::scope(|s| {
        let loader = s.spawn(|| {
            let value = cache.get_or_insert_with(1, || {
                loads.fetch_add(1, Ordering::SeqCst);
                20
            });
            returned.store(true, Ordering::SeqCst);
            value
        });
        wait_until("the loader missed", || cache.stats().misses >= 2);
        std::thread::sleep(Duration::from_millis(10));
        assert!(
            !returned.load(Ordering::SeqCst),
            "returned under a held guard"
        );
        drop(guard);
        assert_eq!(loader.join().unwrap(), 20);
    });
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get(&1), Some(20));

    // Another guard caller waiting.
    let cache = Cache::<u64, u64>::new(100);
    let guard = cache.get_value_or_guard(&1).unwrap_err();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| match cache.get_value_or_guard(&1) {
            Ok(value) => panic!("got {value} from a dropped guard"),
            Err(guard) => guard.insert(30),
        });
        wait_until("the waiter missed", || cache.stats().misses >= 2);
        drop(guard);
        assert!(waiter.join().unwrap(), "the next guard's insert went in");
    });
    assert_eq!(cache.get(&1), Some(30));
}

/// Polled by hand on one thread, so that each waiter has certainly joined the guard's flight:
/// an async loader waiting on a guard takes its value; on a dropped guard it loads.
#[test]
fn async_waiters_join_the_guards_flight() {
    let cache = Cache::<u64, u64>::new(100);
    let guard = cache.get_value_or_guard(&1).unwrap_err();
    let mut waiter =
        pin!(cache.get_or_insert_with_async(1, async { unreachable!("waits for the guard") }));
    assert!(poll_once(waiter.as_mut()).is_pending());
    assert!(guard.insert(10));
    assert_eq!(poll_once(waiter.as_mut()), Poll::Ready(10));

    let guard = cache.get_value_or_guard(&2).unwrap_err();
    let mut waiter = pin!(cache.get_or_insert_with_async(2, async { 20 }));
    assert!(poll_once(waiter.as_mut()).is_pending());
    drop(guard);
    assert_eq!(
        poll_once(waiter.as_mut()),
        Poll::Ready(20),
        "leads after the drop"
    );
    assert_eq!(cache.get(&2), Some(20));
}

/// `get_value_or_guard_async` waits for a load in flight without blocking its thread; after a
/// failed load (whose error it cannot take) it retries and gets the guard.
#[test]
fn the_async_guard_waits_for_a_load_and_leads_after_a_failure() {
    let cache = Cache::<u64, u64>::new(100);
    let open = AtomicBool::new(false);
    let mut failing = pin!(cache.try_get_or_insert_with_async(1, async {
        Until(&open).await;
        Err::<u64, _>("down")
    }));
    assert!(poll_once(failing.as_mut()).is_pending());
    let mut waiter = pin!(assert_send(cache.get_value_or_guard_async(&1)));
    assert!(
        poll_once(waiter.as_mut()).is_pending(),
        "waits for the load"
    );
    open.store(true, Ordering::SeqCst);
    assert!(matches!(poll_once(failing.as_mut()), Poll::Ready(Err(_))));
    match poll_once(waiter.as_mut()) {
        Poll::Ready(Err(guard)) => assert!(guard.insert(5)),
        other => panic!("expected the guard, got {:?}", other.map(|r| r.ok())),
    }
    assert_eq!(cache.get(&1), Some(5));

    // With real threads: an async guard holder, a blocking waiter woken with its value.
    let guard = block_on(cache.get_value_or_guard_async(&2)).unwrap_err();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| cache.get_or_insert_with(2, || unreachable!("waits")));
        // Misses so far: two callers of key 1, the waiter's retry, the guard of key 2.
        wait_until("the waiter missed", || cache.stats().misses >= 5);
        assert!(guard.insert(6));
        assert_eq!(waiter.join().unwrap(), 6);
    });
}
