//! The loaders added for issue 13: by reference, optionally, and the entry API.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use strata_engine::Cache;

use super::support::{
    allocations, assert_send, block_on, clones, poll_once, wait_until, CountedKey, Until,
};

/// A hit through any by-reference load clones the key zero times; a miss makes it once (plus
/// what the flight bookkeeping needs), and is counted as one miss, not two.
#[test]
fn by_ref_loads_do_not_clone_the_key_on_a_hit() {
    let cache = Cache::<CountedKey, u64>::new(100);
    let key = CountedKey(1);
    let before = clones();
    assert_eq!(cache.get_or_insert_with_by_ref(&key, || 10), 10);
    assert!(clones() > before, "a miss makes an owned key");
    assert_eq!(cache.stats().misses, 1, "a by-ref miss counts once");

    let before = clones();
    assert_eq!(
        cache.get_or_insert_with_by_ref(&key, || unreachable!("a hit")),
        10
    );
    assert_eq!(
        cache.try_get_or_insert_with_by_ref(&key, || Err::<u64, ()>(())),
        Ok(10)
    );
    let future = cache.try_get_or_insert_with_by_ref_async(&key, async { Err::<u64, ()>(()) });
    assert_eq!(block_on(assert_send(future)), Ok(10));
    assert_eq!(cache.get_value_or_guard(&key).ok(), Some(10));
    assert_eq!(
        block_on(cache.get_value_or_guard_async(&key)).ok(),
        Some(10)
    );
    assert_eq!(clones(), before, "a by-ref hit cloned the key");
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (5, 1));

    // The contrast: a by-value load needs an owned key even to hit.
    assert_eq!(cache.get_or_insert_with(key.clone(), || 0), 10);
    assert_eq!(clones(), before + 1);
    // A by-ref miss of the async form loads, as the sync one does.
    let r = block_on(
        cache.try_get_or_insert_with_by_ref_async(&CountedKey(2), async { Ok::<u64, ()>(20) }),
    );
    assert_eq!(r, Ok(20));
    assert_eq!(cache.get(&CountedKey(2)), Some(20));
}

/// The same with `String` keys looked up by `&str`, counting every allocation on this thread:
/// a hit allocates nothing at all.
#[test]
fn by_ref_loads_do_not_allocate_on_a_hit() {
    let cache = Cache::<String, u64>::new(100);
    // Misses (allocating the key) and first hits (this thread's epoch and statistics slots).
    assert_eq!(cache.get_or_insert_with_by_ref("alpha", || 1), 1);
    assert_eq!(
        cache.try_get_or_insert_with_by_ref("beta", || Ok::<_, ()>(2)),
        Ok(2)
    );
    for _ in 0..2 {
        cache.get_or_insert_with_by_ref("alpha", || 0);
        let _ = cache.try_get_or_insert_with_by_ref("beta", || Ok::<_, ()>(0));
        let _ = cache.get_value_or_guard("alpha");
    }

    let before = allocations();
    for _ in 0..1000 {
        assert_eq!(cache.get_or_insert_with_by_ref("alpha", || 0), 1);
        assert_eq!(
            cache.try_get_or_insert_with_by_ref("beta", || Ok::<_, ()>(0)),
            Ok(2)
        );
        assert_eq!(cache.get_value_or_guard("alpha").ok(), Some(1));
    }
    assert_eq!(allocations() - before, 0, "by-ref hits allocated");

    let before = allocations();
    assert_eq!(cache.get_or_insert_with_by_ref("gamma", || 3), 3);
    assert!(
        allocations() > before,
        "a miss allocates its key (the count works)"
    );
}

#[test]
fn optionally_caches_nothing_for_none_and_the_next_call_loads() {
    let cache = Cache::<u64, u64>::new(100);
    let runs = AtomicUsize::new(0);
    let load = |value: Option<u64>| {
        runs.fetch_add(1, Ordering::SeqCst);
        value
    };
    assert_eq!(cache.optionally_get_or_insert_with(1, || load(None)), None);
    assert!(!cache.contains_key(&1), "None was cached");
    assert_eq!(
        cache.optionally_get_or_insert_with(1, || load(Some(10))),
        Some(10)
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the call after a None loads again"
    );
    assert_eq!(cache.get(&1), Some(10));
    assert_eq!(
        cache.optionally_get_or_insert_with(1, || unreachable!("a hit")),
        Some(10)
    );

    let future = cache.optionally_get_or_insert_with_async(2, async { None });
    assert_eq!(block_on(assert_send(future)), None);
    assert!(!cache.contains_key(&2));
    let r = block_on(cache.optionally_get_or_insert_with_async(2, async { Some(20) }));
    assert_eq!(r, Some(20));
    assert_eq!(cache.get(&2), Some(20));
}

/// A declined load's `None` reaches the `optionally_` callers waiting on it; a plain loader
/// waiting on it cannot answer `None`, so it retries and loads. Polled by hand on one thread,
/// so that every waiter has certainly joined the flight before the leader settles.
#[test]
fn optionally_waiters_share_none_and_plain_waiters_load() {
    let cache = Cache::<u64, u64>::new(100);
    let open = AtomicBool::new(false);
    let runs = AtomicUsize::new(0);
    let mut leader = pin!(cache.optionally_get_or_insert_with_async(1, async {
        runs.fetch_add(1, Ordering::SeqCst);
        Until(&open).await;
        None
    }));
    assert!(poll_once(leader.as_mut()).is_pending(), "the leader loads");
    let mut sharer = pin!(cache.optionally_get_or_insert_with_async(1, async {
        unreachable!("a waiter on a live flight does not load")
    }));
    assert!(poll_once(sharer.as_mut()).is_pending(), "joined the flight");
    let mut plain = pin!(cache.get_or_insert_with_async(1, async { 7 }));
    assert!(poll_once(plain.as_mut()).is_pending(), "joined the flight");

    open.store(true, Ordering::SeqCst);
    assert_eq!(poll_once(leader.as_mut()), Poll::Ready(None));
    assert_eq!(
        poll_once(sharer.as_mut()),
        Poll::Ready(None),
        "shares the None"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        poll_once(plain.as_mut()),
        Poll::Ready(7),
        "retries and loads"
    );
    assert_eq!(cache.get(&1), Some(7));
}

/// The blocking form with real threads: callers waiting on a declined load return `None`, and
/// nothing is cached. (Which of them joined the flight in time is up to the scheduler, so every
/// caller's own loader declines too; the hand-polled test above shows the sharing itself.)
#[test]
fn optionally_blocking_waiters_get_none() {
    const WAITERS: u64 = 4;
    let cache = Cache::<u64, u64>::new(100);
    let open = AtomicBool::new(false);
    let returned = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let leader = s.spawn(|| {
            cache.optionally_get_or_insert_with(1, || {
                wait_until("the test opens the load", || open.load(Ordering::SeqCst));
                None
            })
        });
        wait_until("the leader missed", || cache.stats().misses >= 1);
        let waiters: Vec<_> = (0..WAITERS)
            .map(|_| {
                s.spawn(|| {
                    let r = cache.optionally_get_or_insert_with(1, || None);
                    returned.fetch_add(1, Ordering::SeqCst);
                    r
                })
            })
            .collect();
        wait_until("every waiter missed", || cache.stats().misses > WAITERS);
        assert_eq!(
            returned.load(Ordering::SeqCst),
            0,
            "returned during the load"
        );
        open.store(true, Ordering::SeqCst);
        assert_eq!(leader.join().unwrap(), None);
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), None);
        }
    });
    assert!(cache.is_empty(), "a None was cached");
    assert_eq!(cache.optionally_get_or_insert_with(1, || Some(5)), Some(5));
}

#[test]
fn entry_returns_the_value_and_whether_this_call_inserted_it() {
    let cache = Cache::<u64, u64>::new(100);
    let entry = cache.entry(1).or_insert(10);
    assert!(entry.is_fresh());
    assert_eq!((*entry.key(), *entry.value()), (1, 10));
    let entry = cache.entry(1).or_insert(11);
    assert!(!entry.is_fresh(), "an existing entry is not fresh");
    assert_eq!(entry.into_value(), 10, "or_insert keeps the existing value");

    let entry = cache.entry(2).or_insert_with(|| 20);
    assert!(entry.is_fresh());
    assert_eq!(
        cache
            .entry(2)
            .or_insert_with(|| unreachable!("a hit"))
            .into_value(),
        20
    );
    let entry = cache.entry(3).or_default();
    assert!(entry.is_fresh());
    assert_eq!(cache.get(&3), Some(0));

    let error = cache.entry(4).or_try_insert_with(|| Err::<u64, _>("down"));
    assert_eq!(error.unwrap_err().as_ref(), &"down");
    assert!(!cache.contains_key(&4), "a failed load caches nothing");
    let entry = cache
        .entry(4)
        .or_try_insert_with(|| Ok::<_, &str>(40))
        .unwrap();
    assert!(entry.is_fresh());

    assert_eq!(cache.entry(5).or_optionally_insert_with(|| None), None);
    assert!(!cache.contains_key(&5));
    let entry = cache
        .entry(5)
        .or_optionally_insert_with(|| Some(50))
        .unwrap();
    assert!(entry.is_fresh());
    assert_eq!(cache.get(&5), Some(50));
}

/// `is_fresh` is about this call's value going in, not about it having run a loader: an insert
/// made during the load is kept, and a removal made during it wins; neither is fresh.
#[test]
fn an_entry_loaded_but_not_stored_is_not_fresh() {
    let cache = Cache::<u64, u64>::new(100);
    let entry = cache.entry(1).or_insert_with(|| {
        cache.insert(1, 5);
        6
    });
    assert!(!entry.is_fresh());
    assert_eq!(
        cache.get(&1),
        Some(5),
        "the insert made during the load stays"
    );

    let entry = cache.entry(2).or_insert_with(|| {
        cache.remove(&2);
        7
    });
    assert!(!entry.is_fresh());
    assert_eq!(entry.into_value(), 7, "the caller still gets its value");
    assert_eq!(cache.get(&2), None, "the removal during the load wins");
}

#[test]
fn entry_by_ref_owns_its_key() {
    let cache = Cache::<String, u64>::new(100);
    let entry = cache.entry_by_ref("a").or_insert(1);
    assert_eq!(entry.key(), "a");
    assert!(entry.is_fresh());
    let entry = cache
        .entry_by_ref("a")
        .or_insert_with(|| unreachable!("a hit"));
    assert_eq!((entry.key().as_str(), *entry.value()), ("a", 1));
    assert!(!entry.is_fresh());
    assert!(cache
        .entry_by_ref("b")
        .or_try_insert_with(|| Err::<u64, _>(()))
        .is_err());
    assert_eq!(
        cache.entry_by_ref("b").or_optionally_insert_with(|| None),
        None
    );
    assert!(!cache.contains_key("b"));
    assert!(cache.entry_by_ref("c").or_default().is_fresh());
}

/// The entry API is single-flight: a caller that misses while another loads the key waits for
/// that load, takes its value, and is not fresh; its own `init` never runs.
#[test]
fn entry_or_insert_with_waits_for_a_load_in_flight() {
    let cache = Cache::<u64, u64>::new(100);
    let open = AtomicBool::new(false);
    let second_runs = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        let first = s.spawn(|| {
            cache.entry(1).or_insert_with(|| {
                wait_until("the test opens the load", || open.load(Ordering::SeqCst));
                1
            })
        });
        wait_until("the first caller missed", || cache.stats().misses >= 1);
        let second = s.spawn(|| {
            cache.entry(1).or_insert_with(|| {
                second_runs.fetch_add(1, Ordering::SeqCst);
                2
            })
        });
        wait_until("the second caller missed", || cache.stats().misses >= 2);
        open.store(true, Ordering::SeqCst);
        let first = first.join().unwrap();
        let second = second.join().unwrap();
        assert!(first.is_fresh());
        assert_eq!(second.into_value(), 1, "took the first caller's value");
    });
    assert_eq!(second_runs.load(Ordering::SeqCst), 0);
}
