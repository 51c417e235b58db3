//! A global allocator that forwards to jemalloc and keeps a count of the bytes currently allocated.
//!
//! The count is the sum of the *requested* `Layout` sizes of live allocations, not what jemalloc rounds them
//! up to, so it measures what a data structure asks for (size-class rounding is not included). It is one
//! relaxed `AtomicIsize` add per allocation and per free, cheap enough to stay on during throughput runs.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering};

use tikv_jemallocator::Jemalloc;

/// Jemalloc with a running total of live requested bytes.
pub struct CountingAlloc {
    live: AtomicIsize,
}

impl CountingAlloc {
    /// A counter starting at zero.
    pub const fn new() -> Self {
        Self {
            live: AtomicIsize::new(0),
        }
    }

    /// Bytes currently allocated through this allocator (requested sizes). Other threads' concurrent
    /// allocations may or may not be included.
    pub fn live_bytes(&self) -> isize {
        self.live.load(Ordering::Relaxed)
    }

    fn add(&self, bytes: usize) {
        self.live.fetch_add(bytes as isize, Ordering::Relaxed);
    }

    fn sub(&self, bytes: usize) {
        self.live.fetch_sub(bytes as isize, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `Jemalloc` with the caller's arguments unchanged, so the `GlobalAlloc`
// contract is Jemalloc's; the counter is only bookkeeping beside it.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is passed on unchanged.
        let ptr = unsafe { Jemalloc.alloc(layout) };
        if !ptr.is_null() {
            self.add(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { Jemalloc.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.add(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` came from this allocator (hence from Jemalloc) with `layout`.
        unsafe { Jemalloc.dealloc(ptr, layout) };
        self.sub(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `ptr`/`layout` describe a live block from this allocator and that
        // `new_size` is valid for `layout.align()`.
        let new_ptr = unsafe { Jemalloc.realloc(ptr, layout, new_size) };
        if !new_ptr.is_null() {
            // On failure the old block stays allocated and the count is unchanged.
            self.add(new_size);
            self.sub(layout.size());
        }
        new_ptr
    }
}
