//! A global allocator that forwards to jemalloc (or, when the process starts with
//! `STRATA_BENCH_ALLOCATOR=system`, to the system allocator) and keeps a count of the bytes currently
//! allocated.
//!
//! The choice is made once, at the first allocation, from the environment as the process started, and never
//! changes: every block is freed by the allocator that made it. The `allocators` subcommand runs its
//! workloads in child processes started with each setting.
//!
//! The count is the sum of the *requested* `Layout` sizes of live allocations, not what jemalloc rounds them
//! up to, so it measures what a data structure asks for (size-class rounding is not included). It is one
//! relaxed `AtomicIsize` add per allocation and per free, cheap enough to stay on during throughput runs.

use std::alloc::System;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, AtomicU8, Ordering};

use tikv_jemallocator::Jemalloc;

/// The environment variable that picks the allocator: `system`, or anything else (or unset) for jemalloc.
/// A C string, because the allocator reads it with libc's `getenv`.
pub const ALLOCATOR_VAR: &std::ffi::CStr = c"STRATA_BENCH_ALLOCATOR";

const UNDECIDED: u8 = 0;
const JEMALLOC: u8 = 1;
const SYSTEM: u8 = 2;

/// Jemalloc or the system allocator, with a running total of live requested bytes.
pub struct CountingAlloc {
    live: AtomicIsize,
    backend: AtomicU8,
}

impl CountingAlloc {
    /// A counter starting at zero.
    pub const fn new() -> Self {
        Self {
            live: AtomicIsize::new(0),
            backend: AtomicU8::new(UNDECIDED),
        }
    }

    /// The allocator in use: "jemalloc" or "system".
    pub fn backend_name(&self) -> &'static str {
        if self.system() {
            "system"
        } else {
            "jemalloc"
        }
    }

    /// True when the system allocator serves this process. Decided at the first call.
    #[inline]
    fn system(&self) -> bool {
        match self.backend.load(Ordering::Relaxed) {
            JEMALLOC => false,
            SYSTEM => true,
            _ => self.decide(),
        }
    }

    #[cold]
    fn decide(&self) -> bool {
        // `std::env::var` allocates, which an allocator cannot do; libc's getenv does not.
        // SAFETY: the name is a NUL-terminated C string; getenv returns null or a pointer to a
        // NUL-terminated string in the environment, read here before any thread of this program could
        // change the environment (the benches never call setenv).
        let system = unsafe {
            let value = libc::getenv(ALLOCATOR_VAR.as_ptr());
            !value.is_null() && std::ffi::CStr::from_ptr(value).to_bytes() == b"system"
        };
        let choice = if system { SYSTEM } else { JEMALLOC };
        // Two threads deciding at once read the same environment and store the same choice; the first
        // allocation happens before `main`, on one thread, anyway.
        self.backend.store(choice, Ordering::Relaxed);
        system
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

// SAFETY: every method forwards to `Jemalloc` or `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is theirs; which one never changes after the first call, so a block is always freed
// or resized by the allocator that made it. The counter is only bookkeeping beside it.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is passed on unchanged.
        let ptr = unsafe {
            if self.system() {
                System.alloc(layout)
            } else {
                Jemalloc.alloc(layout)
            }
        };
        if !ptr.is_null() {
            self.add(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe {
            if self.system() {
                System.alloc_zeroed(layout)
            } else {
                Jemalloc.alloc_zeroed(layout)
            }
        };
        if !ptr.is_null() {
            self.add(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` came from this allocator with `layout`, hence from the
        // backend chosen at the first call, which is the one used here.
        unsafe {
            if self.system() {
                System.dealloc(ptr, layout);
            } else {
                Jemalloc.dealloc(ptr, layout);
            }
        }
        self.sub(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `ptr`/`layout` describe a live block from this allocator and that
        // `new_size` is valid for `layout.align()`.
        let new_ptr = unsafe {
            if self.system() {
                System.realloc(ptr, layout, new_size)
            } else {
                Jemalloc.realloc(ptr, layout, new_size)
            }
        };
        if !new_ptr.is_null() {
            // On failure the old block stays allocated and the count is unchanged.
            self.add(new_size);
            self.sub(layout.size());
        }
        new_ptr
    }
}
