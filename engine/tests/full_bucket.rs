//! A count-bounded cache keeps its entries in cache-line buckets of at most 27 entries: with a
//! hasher that sends every key to one bucket, the keys past that are evicted as they arrive
//! (reported to the listener as evicted), while the ones in the bucket stay readable and
//! replaceable, and removing one makes room again.

use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use strata_engine::{Cache, EvictionCause};

/// Every key hashes to 0.
#[derive(Clone, Default)]
struct Constant;

struct ConstantHasher;

impl Hasher for ConstantHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, _: &[u8]) {}
}

impl BuildHasher for Constant {
    type Hasher = ConstantHasher;
    fn build_hasher(&self) -> ConstantHasher {
        ConstantHasher
    }
}

/// The most entries a bucket holds (6 home slots and three overflow lines of 7).
const BUCKET: u64 = 27;

#[test]
fn a_full_bucket_evicts_new_keys_at_once_and_keeps_its_own() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let log = reports.clone();
    let cache: Cache<u64, u64, Constant> = Cache::builder()
        .max_capacity(1_000)
        .hasher(Constant)
        .eviction_listener(move |k: &u64, v: &u64, cause| log.lock().unwrap().push((*k, *v, cause)))
        .build();
    for k in 0..BUCKET + 5 {
        cache.insert(k, k);
    }
    assert_eq!(cache.len() as u64, BUCKET);
    for k in 0..BUCKET {
        assert_eq!(cache.get(&k), Some(k), "key {k} is in the bucket");
    }
    for k in BUCKET..BUCKET + 5 {
        assert_eq!(cache.get(&k), None, "key {k} found the bucket full");
    }
    let turned_away: Vec<_> = (BUCKET..BUCKET + 5)
        .map(|k| (k, k, EvictionCause::Evicted))
        .collect();
    assert_eq!(*reports.lock().unwrap(), turned_away);
    assert_eq!(cache.stats().evictions, 5);
    assert_eq!(cache.stats().inserts, BUCKET + 5);

    // A key already in a full bucket is still replaced in place.
    cache.insert(3, 300);
    assert_eq!(cache.get(&3), Some(300));
    assert_eq!(cache.len() as u64, BUCKET);

    // A removal makes room for one more.
    assert_eq!(cache.remove(&4), Some(4));
    cache.insert(100, 100);
    assert_eq!(cache.get(&100), Some(100));
    assert_eq!(cache.len() as u64, BUCKET);
    assert_eq!(cache.iter().count() as u64, BUCKET);
}
