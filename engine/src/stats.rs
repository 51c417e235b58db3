//! Cache statistics: per-thread counters summed when read.
//!
//! Each thread bumps its own cache line with a plain load and store (no read-modify-write), so
//! counting costs about a nanosecond and never contends. Reading [`CacheStats`] sums every
//! thread's counters, so a snapshot taken while other threads run is approximate.
//!
//! These atomics come from `std` even in loom builds: they synchronise nothing.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
    rejections: AtomicU64,
}

/// Which counter an event bumps.
#[derive(Clone, Copy)]
pub(crate) enum Event {
    Hit,
    Miss,
    Insert,
    Eviction,
    Expiration,
    Rejection,
}

impl Counters {
    fn counter(&self, event: Event) -> &AtomicU64 {
        match event {
            Event::Hit => &self.hits,
            Event::Miss => &self.misses,
            Event::Insert => &self.inserts,
            Event::Eviction => &self.evictions,
            Event::Expiration => &self.expirations,
            Event::Rejection => &self.rejections,
        }
    }
}

pub(crate) struct StatsRecorder {
    #[cfg(not(strata_loom))]
    per_thread: thread_local::ThreadLocal<CachePadded<Counters>>,
    // loom runs its model threads on one OS thread, where a thread-local would be shared.
    #[cfg(strata_loom)]
    shared: CachePadded<Counters>,
}

impl StatsRecorder {
    pub(crate) fn new() -> Self {
        StatsRecorder {
            #[cfg(not(strata_loom))]
            per_thread: thread_local::ThreadLocal::new(),
            #[cfg(strata_loom)]
            shared: CachePadded::new(Counters::default()),
        }
    }

    #[inline]
    pub(crate) fn record(&self, event: Event) {
        #[cfg(not(strata_loom))]
        {
            let counter = self.per_thread.get_or_default().counter(event);
            // Only this thread writes this counter, so load + store loses nothing.
            counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        #[cfg(strata_loom)]
        self.shared.counter(event).fetch_add(1, Ordering::Relaxed);
    }

    fn sum(&self, event: Event) -> u64 {
        #[cfg(not(strata_loom))]
        {
            self.per_thread
                .iter()
                .map(|c| c.counter(event).load(Ordering::Relaxed))
                .sum()
        }
        #[cfg(strata_loom)]
        self.shared.counter(event).load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self, entries: u64, weight: u64) -> CacheStats {
        CacheStats {
            hits: self.sum(Event::Hit),
            misses: self.sum(Event::Miss),
            inserts: self.sum(Event::Insert),
            evictions: self.sum(Event::Eviction),
            expirations: self.sum(Event::Expiration),
            rejections: self.sum(Event::Rejection),
            entries,
            weight,
        }
    }
}

/// A snapshot of a cache's counters, from [`Cache::stats`](crate::Cache::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads that found a live entry.
    pub hits: u64,
    /// Reads that found nothing (or only an expired entry).
    pub misses: u64,
    /// Entries written, new or replacing an old value.
    pub inserts: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
    /// Entries removed because their time to live ran out.
    pub expirations: u64,
    /// Entries refused because they weighed more than `max_entry_weight`.
    pub rejections: u64,
    /// Live entries at the time of the snapshot.
    pub entries: u64,
    /// Total weight of the live entries (equal to `entries` without a weigher).
    pub weight: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, or `0.0` before any read.
    pub fn hit_ratio(&self) -> f64 {
        let reads = self.hits + self.misses;
        if reads == 0 {
            0.0
        } else {
            self.hits as f64 / reads as f64
        }
    }
}
