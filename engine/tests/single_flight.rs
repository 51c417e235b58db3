//! Single-flight loading: many threads missing one key run the loader once and all get its
//! value; a loader that panics or fails releases its waiters, one of which loads instead; the
//! async form behaves the same on any executor (a tiny hand-rolled one here).

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use strata_engine::Cache;

const CALLERS: usize = 16;

#[test]
fn concurrent_misses_run_the_loader_once() {
    for key in 0..20u64 {
        let cache = Cache::<u64, u64>::new(100);
        let runs = AtomicUsize::new(0);
        let barrier = Barrier::new(CALLERS);
        std::thread::scope(|s| {
            for _ in 0..CALLERS {
                s.spawn(|| {
                    barrier.wait();
                    let v = cache.get_or_insert_with(key, || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        key * 10
                    });
                    assert_eq!(v, key * 10);
                });
            }
        });
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "key {key}: loader ran more than once"
        );
        assert_eq!(cache.get(&key), Some(key * 10));
    }
}

#[test]
fn a_panicking_loader_releases_its_waiters() {
    let cache = Cache::<u64, u64>::new(100);
    let runs = AtomicUsize::new(0);
    let barrier = Barrier::new(CALLERS);
    let panicked = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..CALLERS {
            s.spawn(|| {
                barrier.wait();
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    cache.get_or_insert_with(7, || {
                        let run = runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        if run == 0 {
                            panic!("first loader fails");
                        }
                        70
                    })
                }));
                match result {
                    Ok(v) => assert_eq!(v, 70),
                    Err(_) => {
                        panicked.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert_eq!(
        panicked.load(Ordering::SeqCst),
        1,
        "only the leader sees its panic"
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "one retry loads for everyone else"
    );
    assert_eq!(cache.get(&7), Some(70));
}

/// Issue 12, sequence 5: every caller waiting on a failed load gets its error; before, the
/// waiters re-ran the loader one after another (N callers, N failures against a dead backend).
#[test]
fn a_failing_loader_shares_its_error_with_every_waiter() {
    let cache = Cache::<u64, u64>::new(100);
    let runs = AtomicUsize::new(0);
    let barrier = Barrier::new(4);
    let failures = AtomicUsize::new(0);
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                barrier.wait();
                let r = cache.try_get_or_insert_with(1, || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(200));
                    Err::<u64, _>("backend down")
                });
                if let Err(error) = r {
                    assert_eq!(*error, "backend down");
                    failures.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(failures.load(Ordering::SeqCst), 4);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the waiters re-ran the loader"
    );
    assert!(started.elapsed() < Duration::from_millis(400));
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.try_get_or_insert_with(1, || Ok::<_, &str>(5)), Ok(5));
}

/// A waiter whose error type differs from the loader's runs its own load.
#[test]
fn a_waiter_with_another_error_type_loads_for_itself() {
    let cache = Cache::<u64, u64>::new(100);
    std::thread::scope(|s| {
        let leader = s.spawn(|| {
            cache.try_get_or_insert_with(1, || {
                std::thread::sleep(Duration::from_millis(100));
                Err::<u64, _>("down")
            })
        });
        std::thread::sleep(Duration::from_millis(30));
        let other = cache.try_get_or_insert_with(1, || Ok::<u64, std::io::Error>(7));
        assert_eq!(other.unwrap(), 7);
        assert!(leader.join().unwrap().is_err());
    });
}

/// Issue 12, sequence 2 (engine part): a removal made during a load wins over the load's
/// insert; the loading caller still gets its value.
#[test]
fn a_load_does_not_undo_a_removal_made_during_it() {
    let cache = Cache::<u64, u64>::new(100);
    std::thread::scope(|s| {
        let loading = s.spawn(|| {
            cache.get_or_insert_with(1, || {
                std::thread::sleep(Duration::from_millis(100));
                10
            })
        });
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(cache.remove(&1), None);
        assert_eq!(loading.join().unwrap(), 10);
    });
    assert_eq!(
        cache.get(&1),
        None,
        "the load put back a value removed during it"
    );
    // `clear` and `retain` cancel loads the same way.
    for clear in [true, false] {
        std::thread::scope(|s| {
            let loading = s.spawn(|| {
                cache.get_or_insert_with(2, || {
                    std::thread::sleep(Duration::from_millis(100));
                    20
                })
            });
            std::thread::sleep(Duration::from_millis(30));
            if clear {
                cache.clear();
            } else {
                cache.retain(|_, _| true);
            }
            assert_eq!(loading.join().unwrap(), 20);
        });
        assert_eq!(cache.get(&2), None, "clear = {clear}");
    }
}

/// Issue 12, sequence 2 (engine part): an insert made during a load is not overwritten by it.
#[test]
fn a_load_does_not_overwrite_an_insert_made_during_it() {
    let cache = Cache::<u64, u64>::new(100);
    std::thread::scope(|s| {
        let loading = s.spawn(|| {
            cache.get_or_insert_with(1, || {
                std::thread::sleep(Duration::from_millis(100));
                10
            })
        });
        let waiting = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(20));
            cache.get_or_insert_with(1, || unreachable!("joins the flight"))
        });
        std::thread::sleep(Duration::from_millis(50));
        cache.insert(1, 11);
        assert_eq!(loading.join().unwrap(), 10);
        assert_eq!(
            waiting.join().unwrap(),
            11,
            "a waiter returns the newer value"
        );
    });
    assert_eq!(
        cache.get(&1),
        Some(11),
        "the load overwrote an insert made during it"
    );
}

/// A caller arriving after a removal cancelled a load starts a new one instead of waiting for
/// a value read before the removal.
#[test]
fn a_removal_detaches_the_flight() {
    let cache = Cache::<u64, u64>::new(100);
    let runs = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let first = s.spawn(|| {
            cache.get_or_insert_with(1, || {
                runs.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(150));
                10
            })
        });
        std::thread::sleep(Duration::from_millis(30));
        cache.remove(&1);
        let second = cache.get_or_insert_with(1, || {
            runs.fetch_add(1, Ordering::SeqCst);
            20
        });
        assert_eq!(second, 20);
        assert_eq!(first.join().unwrap(), 10);
    });
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(cache.get(&1), Some(20));
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on the current thread, parking between polls.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

/// A future that is pending until a deadline, re-waking itself (a stand-in for slow I/O).
struct Sleep(std::time::Instant);

impl Future for Sleep {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::time::Instant::now() >= self.0 {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn sleep(d: Duration) -> Sleep {
    Sleep(std::time::Instant::now() + d)
}

#[test]
fn async_loader_runs_once_across_tasks() {
    let cache = Cache::<u64, u64>::new(100);
    let runs = AtomicUsize::new(0);
    let barrier = Barrier::new(8);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                barrier.wait();
                let v = block_on(cache.get_or_insert_with_async(3, async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_millis(30)).await;
                    33
                }));
                assert_eq!(v, 33);
            });
        }
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn a_cancelled_async_loader_hands_over_to_a_waiter() {
    let cache = Cache::<u64, u64>::new(100);
    // Poll the leader once, so it holds the flight, then drop it mid-load.
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    {
        let mut leader = Box::pin(cache.get_or_insert_with_async(9, async {
            sleep(Duration::from_secs(3600)).await;
            1
        }));
        assert!(leader.as_mut().poll(&mut cx).is_pending());
        let follower_cache = cache.clone();
        let follower = std::thread::spawn(move || {
            block_on(follower_cache.get_or_insert_with_async(9, async { 99 }))
        });
        std::thread::sleep(Duration::from_millis(50));
        drop(leader);
        assert_eq!(follower.join().unwrap(), 99);
    }
    assert_eq!(cache.get(&9), Some(99));
}

#[test]
fn async_fallible_loader_reports_its_error() {
    let cache = Cache::<u64, u64>::new(100);
    let r = block_on(cache.try_get_or_insert_with_async(1, async { Err::<u64, &str>("nope") }));
    assert_eq!(r, Err(Arc::new("nope")));
    let r = block_on(cache.try_get_or_insert_with_async(1, async { Ok::<u64, &str>(2) }));
    assert_eq!(r, Ok(2));
}

/// Found in review: a load kept an entry inserted during it even when that entry had expired
/// by the time the load ended, so the loaded value was dropped for nothing.
#[test]
fn a_load_replaces_an_entry_that_expired_during_it() {
    let cache = Cache::<u64, u64>::new(100);
    std::thread::scope(|s| {
        let loading = s.spawn(|| {
            cache.get_or_insert_with(1, || {
                std::thread::sleep(Duration::from_millis(150));
                10
            })
        });
        std::thread::sleep(Duration::from_millis(30));
        cache.insert_with_ttl(1, 11, Duration::from_millis(20));
        assert_eq!(loading.join().unwrap(), 10);
    });
    assert_eq!(
        cache.get(&1),
        Some(10),
        "the expired entry kept the load out"
    );
}
