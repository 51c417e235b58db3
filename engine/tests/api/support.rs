//! Helpers for the API tests: a counting allocator, a key whose clones are counted, polling a
//! future by hand, running one to completion, and a bounded wait.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// The system allocator, counting each thread's allocations in that thread.
pub struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static CLONES: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to `System` unchanged; the count is a const-initialised
// thread-local `Cell` without a destructor, which neither allocates nor can re-enter.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made by this thread so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// A key whose clones (and so `to_owned` calls) are counted per thread.
#[derive(Debug, PartialEq, Eq)]
pub struct CountedKey(pub u64);

impl Hash for CountedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Clone for CountedKey {
    fn clone(&self) -> Self {
        CLONES.with(|n| n.set(n.get() + 1));
        CountedKey(self.0)
    }
}

/// [`CountedKey`] clones made by this thread so far.
pub fn clones() -> u64 {
    CLONES.with(Cell::get)
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` once, with a waker that unparks this thread.
pub fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    future.poll(&mut Context::from_waker(&waker))
}

/// Runs `future` to completion on this thread, parking between polls (for up to 10 s in all).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Poll::Ready(output) = poll_once(future.as_mut()) {
            return output;
        }
        assert!(Instant::now() < deadline, "future still pending after 10 s");
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

/// A future that is pending until `open` is set (a stand-in for slow I/O that the test ends).
pub struct Until<'a>(pub &'a AtomicBool);

impl Future for Until<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Waits until `done` holds, for up to 10 s; panics if it never does.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Fails to compile unless `value` is `Send` (for the async API's futures).
pub fn assert_send<T: Send>(value: T) -> T {
    value
}
