//! The bucket sentinels of the split-ordered table (see [`crate::split_list`]): a segmented array
//! of [`Link`]s, one per bucket, that doubles without moving a sentinel, and the states a
//! sentinel of a grown segment goes through before searches may start from it.

use crate::node::Link;
use crate::sync::epoch::{Atomic, Shared};
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, CachePadded, Ordering};

/// Most segments: the first plus doublings, enough for any table that fits in memory.
const SEGMENTS: usize = 40;

/// A sentinel's state, in the low two bits of its order word (an entry's are `0b11`).
pub(crate) const READY: u64 = 0b00;
pub(crate) const PENDING: u64 = 0b10;
pub(crate) const UNCLAIMED: u64 = 0b01;
pub(crate) const STATE: u64 = 0b11;
/// Order words are compared with the "pending" bit cleared: a sentinel sorts the same in every
/// state, and every entry has it set.
pub(crate) const SORT_MASK: u64 = !PENDING;

/// Largest table allocated up front; more buckets come by growing.
const MAX_INITIAL_BUCKETS: usize = 1 << 20;

/// The sentinels, one per bucket.
pub(crate) struct Sentinels {
    /// The first segment's sentinels, all ready from the start. Invariant: its length is a power
    /// of two, at least 2.
    first: Box<[Link]>,
    /// Segment `k >= 1` (index `k - 1` here) holds the sentinels of buckets `first.len() << (k -
    /// 1)` up to twice that. Null until published; the pointer is the first link of a leaked
    /// boxed slice of that length.
    more: Box<[AtomicPtr<Link>]>,
    /// Buckets in use, a power of two. Invariant: every segment it covers is published before it
    /// is raised (release store, acquire loads).
    size: CachePadded<AtomicUsize>,
}

/// The split-order key of bucket `b`'s sentinel (ready).
pub(crate) fn order_of(bucket: usize) -> u64 {
    (bucket as u64).reverse_bits()
}

/// The bucket a sentinel's order word stands for.
pub(crate) fn bucket_of(order: u64) -> usize {
    (order & !STATE).reverse_bits() as usize
}

/// The bucket whose sentinel precedes `bucket`'s run: `bucket` with its top bit cleared.
pub(crate) fn parent(bucket: usize) -> usize {
    debug_assert!(bucket > 0);
    bucket & !(1 << (usize::BITS - 1 - bucket.leading_zeros()))
}

impl Sentinels {
    /// Sentinels for a table of about `buckets` buckets (a power of two), all of them linked.
    pub(crate) fn new(buckets: usize) -> Self {
        let size = buckets.clamp(2, MAX_INITIAL_BUCKETS).next_power_of_two();
        let first: Box<[Link]> = (0..size)
            .map(|bucket| Link {
                next: Atomic::null(),
                order: AtomicU64::new(order_of(bucket)),
            })
            .collect();
        // Link every sentinel of the first segment, in split order: the i-th is the bucket whose
        // index is i with its `log2(size)` bits reversed.
        let bits = size.trailing_zeros();
        let nth = |i: usize| ((i as u64).reverse_bits() >> (64 - bits)) as usize;
        for i in 0..size - 1 {
            let next: *const Link = &first[nth(i + 1)];
            first[nth(i)]
                .next
                .store(Shared::from(next), Ordering::Relaxed);
        }
        Sentinels {
            first,
            more: (1..SEGMENTS)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            size: CachePadded::new(AtomicUsize::new(size)),
        }
    }

    /// Number of buckets now.
    pub(crate) fn len(&self) -> usize {
        self.size.load(Ordering::Acquire)
    }

    /// The segment `k` holding bucket `bucket` (0 for the first; segment `k >= 1` covers
    /// `[base << (k - 1), base << k)`).
    #[inline]
    fn segment_of(&self, bucket: usize) -> usize {
        (usize::BITS - (bucket / self.first.len()).leading_zeros()) as usize
    }

    /// Bucket `bucket`'s sentinel. `bucket` must be below a size this thread loaded with acquire,
    /// or be the bucket of a sentinel it reached through the list.
    #[inline]
    pub(crate) fn get(&self, bucket: usize) -> &Link {
        let base = self.first.len();
        if bucket < base {
            return &self.first[bucket];
        }
        let k = self.segment_of(bucket);
        let start = base << (k - 1);
        let segment = self.more[k - 1].load(Ordering::Acquire);
        assert!(
            !segment.is_null(),
            "bucket {bucket} of an unpublished segment"
        );
        // SAFETY: the segment is published (non-null, loaded with acquire after the caller saw a
        // size covering it or a sentinel in it, both of which come after its publication), it is
        // a live allocation of `start` links never freed before the table drops, and
        // `bucket - start < start`.
        unsafe { &*segment.add(bucket - start) }
    }

    /// Whether `bucket`'s sentinel is in the first segment (linked and ready from the start).
    #[inline]
    pub(crate) fn is_first_segment(&self, bucket: usize) -> bool {
        bucket < self.first.len()
    }

    /// Doubles the table if it still has `seen` buckets (publishing the new segment, whose
    /// sentinels writers link on demand); does nothing if another thread grew it first or it
    /// cannot grow.
    pub(crate) fn grow(&self, seen: usize) {
        let base = self.first.len();
        let k = self.segment_of(seen);
        if k == 0 || seen != base << (k - 1) || k >= SEGMENTS || seen.checked_mul(2).is_none() {
            return;
        }
        let link = &self.more[k - 1];
        if link.load(Ordering::Acquire).is_null() {
            let fresh: Box<[Link]> = (seen..2 * seen)
                .map(|bucket| Link {
                    next: Atomic::null(),
                    order: AtomicU64::new(order_of(bucket) | UNCLAIMED),
                })
                .collect();
            let fresh = Box::into_raw(fresh).cast::<Link>();
            if link
                .compare_exchange(
                    std::ptr::null_mut(),
                    fresh,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
            {
                // SAFETY: our allocation of `seen` links was never published.
                drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(fresh, seen)) });
            }
        }
        let _ = self
            .size
            .compare_exchange(seen, seen * 2, Ordering::AcqRel, Ordering::Relaxed);
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        let base = self.first.len();
        for (i, link) in self.more.iter().enumerate() {
            let segment = link.load(Ordering::Relaxed);
            if !segment.is_null() {
                // SAFETY: published by `grow` as a leaked boxed slice of `base << i` links (the
                // segment k = i + 1), freed only here, once.
                drop(unsafe {
                    Box::from_raw(std::ptr::slice_from_raw_parts_mut(segment, base << i))
                });
            }
        }
    }
}
