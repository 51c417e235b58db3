//! Belady's optimal hit ratio, the limit column and top line of the hit-ratio results.
//!
//! The replay model of the other caches: each request is a hit if the key is resident; on a miss the cache
//! may store the key. An offline optimum that knows every future request stores a missed key only if it is
//! requested again sooner than the resident key requested last (which it then evicts), and evicts that key
//! otherwise never: Belady's MIN, with admission allowed to decline, which no online policy (with or without
//! an admission filter) can beat while it holds at most the same number of entries. A cache that briefly
//! holds more (Strata links a new entry before it evicts; moka applies its bound in deferred maintenance)
//! could in principle pass it by a hair; none has in these benchmarks.

use std::collections::BinaryHeap;

/// Marks a request whose key is never requested again.
const NEVER: usize = usize::MAX;

/// For every position, the position of the next request of the same key, or [`NEVER`].
fn next_uses(keys: &[u64]) -> Vec<usize> {
    let mut next = vec![NEVER; keys.len()];
    let mut seen: hashbrown::HashMap<u64, usize> =
        hashbrown::HashMap::with_capacity(keys.len() / 4);
    for (i, &key) in keys.iter().enumerate().rev() {
        if let Some(later) = seen.insert(key, i) {
            next[i] = later;
        }
    }
    next
}

/// The hit ratio of Belady's MIN (declining allowed) over `keys` with room for `capacity` entries.
pub fn hit_ratio(keys: &[u64], capacity: usize) -> f64 {
    if keys.is_empty() {
        return 0.0;
    }
    let next = next_uses(keys);
    // Resident keys with the position of their next request; the heap holds (next request, key) pairs,
    // some stale (superseded by a later hit), recognised by not matching the map.
    let mut resident: hashbrown::HashMap<u64, usize> = hashbrown::HashMap::with_capacity(capacity);
    let mut farthest: BinaryHeap<(usize, u64)> = BinaryHeap::with_capacity(capacity);
    let mut hits = 0u64;
    for (i, &key) in keys.iter().enumerate() {
        let upcoming = next[i];
        if let Some(slot) = resident.get_mut(&key) {
            hits += 1;
            *slot = upcoming;
            farthest.push((upcoming, key));
            continue;
        }
        if upcoming == NEVER || capacity == 0 {
            continue; // never read again: storing it cannot help
        }
        if resident.len() < capacity {
            resident.insert(key, upcoming);
            farthest.push((upcoming, key));
            continue;
        }
        // The resident key needed last; drop stale heap entries on the way.
        while let Some(&(when, victim)) = farthest.peek() {
            if resident.get(&victim) == Some(&when) {
                break;
            }
            farthest.pop();
        }
        if let Some(&(when, victim)) = farthest.peek() {
            if when > upcoming {
                farthest.pop();
                resident.remove(&victim);
                resident.insert(key, upcoming);
                farthest.push((upcoming, key));
            }
        }
    }
    hits as f64 / keys.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_worked_examples() {
        // Capacity 1: a b a b a: MIN keeps `a` (needed sooner than `b`'s next each time) and hits a twice.
        assert_eq!(hit_ratio(&[1, 2, 1, 2, 1], 1), 2.0 / 5.0);
        // Capacity 2 holds both keys: every repeat hits.
        assert_eq!(hit_ratio(&[1, 2, 1, 2, 1], 2), 3.0 / 5.0);
        // A loop of 3 keys in a cache of 2: MIN hits one key per pass after the first (the classic example
        // where LRU gets nothing).
        let looped: Vec<u64> = [1, 2, 3].repeat(4);
        let ratio = hit_ratio(&looped, 2);
        assert!(ratio >= 5.0 / 12.0, "{ratio}");
        assert_eq!(hit_ratio(&[], 3), 0.0);
        assert_eq!(hit_ratio(&[1, 1, 1], 0), 0.0);
    }

    #[test]
    fn is_never_below_an_lru_of_the_same_size() {
        use crate::zipf::{SplitMix64, Zipf};
        let zipf = Zipf::new(5_000, 0.8);
        let mut rng = SplitMix64::new(9);
        let keys: Vec<u64> = (0..50_000).map(|_| zipf.sample(&mut rng)).collect();
        for capacity in [10, 100, 1000] {
            let mut lru: Vec<u64> = Vec::new();
            let mut hits = 0;
            for &key in &keys {
                if let Some(at) = lru.iter().position(|&k| k == key) {
                    hits += 1;
                    lru.remove(at);
                } else if lru.len() == capacity {
                    lru.remove(0);
                }
                lru.push(key);
            }
            let lru = hits as f64 / keys.len() as f64;
            assert!(hit_ratio(&keys, capacity) >= lru, "capacity {capacity}");
        }
    }
}
