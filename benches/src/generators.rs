//! Synthetic request streams for the hit-ratio replays, each built to exercise one thing a policy can get
//! right or wrong. Every stream is fixed by its seed, so two runs (and the libCacheSim cross-check) replay
//! the same requests.
//!
//! Keys are small integers (item numbers), disjoint between the parts of one stream; the caches hash them.
//!
//! | name | what it is | what it tests |
//! | --- | --- | --- |
//! | `zipf-0.6`, `zipf-0.9`, `zipf-1.2` | Zipf over 100,000 items at three skews | plain popularity, flat to steep |
//! | `scan-hot` | half the requests from a hot set (Zipf 0.8 over 10,000 items), half a loop over 100,000 others | scan resistance: the loop never fits |
//! | `shift` | Zipf 0.9 over 100,000 items; halfway, a disjoint set of 100,000 takes over | adapting to a popularity change |
//! | `one-hit-flood` | 40% Zipf 0.9 over 50,000 items, 60% keys never seen again | keeping one-hit wonders out |
//! | `warm-recurring` | rounds in which a warm set of 20,000 items is each read once, mixed with a hot set and one-hit keys | frequency: the warm set recurs after far longer than a small FIFO holds a key |

use crate::zipf::{SplitMix64, Zipf};

/// Requests in each generated stream (the `warm-recurring` one is a whole number of rounds near it).
pub const REQUESTS: usize = 2_000_000;

/// One generated stream.
pub struct Generated {
    /// Name used in tables, charts and exported file names.
    pub name: &'static str,
    /// The requests, in order.
    pub keys: Vec<u64>,
}

/// The generators' names, in the order the report shows them.
pub const NAMES: [&str; 7] = [
    "zipf-0.6",
    "zipf-0.9",
    "zipf-1.2",
    "scan-hot",
    "shift",
    "one-hit-flood",
    "warm-recurring",
];

/// Every generator, in the order the report shows them.
pub fn all() -> Vec<Generated> {
    NAMES.iter().filter_map(|name| by_name(name)).collect()
}

/// The generator named `name`, built alone.
pub fn by_name(name: &str) -> Option<Generated> {
    let built = match name {
        "zipf-0.6" => zipf("zipf-0.6", 0.6, 0x61),
        "zipf-0.9" => zipf("zipf-0.9", 0.9, 0x62),
        "zipf-1.2" => zipf("zipf-1.2", 1.2, 0x63),
        "scan-hot" => scan_hot(),
        "shift" => shift(),
        "one-hit-flood" => one_hit_flood(),
        "warm-recurring" => warm_recurring(),
        _ => return None,
    };
    Some(built)
}

/// Items of the Zipf streams (and of each half of `shift`).
const ZIPF_ITEMS: usize = 100_000;

fn zipf(name: &'static str, exponent: f64, seed: u64) -> Generated {
    let dist = Zipf::new(ZIPF_ITEMS, exponent);
    let mut rng = SplitMix64::new(seed);
    let keys = (0..REQUESTS).map(|_| dist.sample(&mut rng)).collect();
    Generated { name, keys }
}

fn scan_hot() -> Generated {
    const HOT: usize = 10_000;
    const LOOP: u64 = 100_000;
    let hot = Zipf::new(HOT, 0.8);
    let mut rng = SplitMix64::new(0x64);
    let mut position = 0u64;
    let keys = (0..REQUESTS)
        .map(|_| {
            if rng.next_u64() & 1 == 0 {
                hot.sample(&mut rng)
            } else {
                position = (position + 1) % LOOP;
                HOT as u64 + position
            }
        })
        .collect();
    Generated {
        name: "scan-hot",
        keys,
    }
}

fn shift() -> Generated {
    let dist = Zipf::new(ZIPF_ITEMS, 0.9);
    let mut rng = SplitMix64::new(0x65);
    let keys = (0..REQUESTS)
        .map(|i| {
            let base = if i < REQUESTS / 2 {
                0
            } else {
                ZIPF_ITEMS as u64
            };
            base + dist.sample(&mut rng)
        })
        .collect();
    Generated {
        name: "shift",
        keys,
    }
}

fn one_hit_flood() -> Generated {
    const ITEMS: usize = 50_000;
    let dist = Zipf::new(ITEMS, 0.9);
    let mut rng = SplitMix64::new(0x66);
    let mut next_new = ITEMS as u64;
    let keys = (0..REQUESTS)
        .map(|_| {
            if rng.next_f64() < 0.4 {
                dist.sample(&mut rng)
            } else {
                next_new += 1;
                next_new
            }
        })
        .collect();
    Generated {
        name: "one-hit-flood",
        keys,
    }
}

fn warm_recurring() -> Generated {
    const HOT: usize = 2_000;
    const WARM: usize = 20_000;
    // Per round: every warm item once, as many one-hit keys, and half as many hot-set requests.
    const ROUND: usize = WARM * 5 / 2;
    let hot = Zipf::new(HOT, 1.0);
    let mut rng = SplitMix64::new(0x67);
    let mut warm: Vec<u64> = (HOT as u64..(HOT + WARM) as u64).collect();
    let mut next_new = (HOT + WARM) as u64;
    let mut keys = Vec::with_capacity(REQUESTS + ROUND);
    while keys.len() < REQUESTS {
        shuffle(&mut warm, &mut rng);
        let mut warm_left = warm.iter();
        let mut round = 0;
        while round < ROUND {
            let pick = rng.next_f64();
            let key = if pick < 0.4 {
                match warm_left.next() {
                    Some(&key) => key,
                    None => continue,
                }
            } else if pick < 0.8 {
                next_new += 1;
                next_new
            } else {
                hot.sample(&mut rng)
            };
            keys.push(key);
            round += 1;
        }
        // Warm items the round's draws did not reach are read at its end, so every warm item is
        // read once per round (the next round reshuffles them all).
        keys.extend(warm_left.copied());
    }
    Generated {
        name: "warm-recurring",
        keys,
    }
}

/// Fisher-Yates.
fn shuffle(items: &mut [u64], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_shaped_as_described() {
        let first = all();
        assert_eq!(first.len(), NAMES.len());
        for generated in &first {
            assert!(generated.keys.len() >= REQUESTS, "{}", generated.name);
        }
        for name in ["scan-hot", "warm-recurring"] {
            let again = by_name(name).expect("a generator");
            let before = first.iter().find(|g| g.name == name).expect("built");
            assert_eq!(before.keys, again.keys, "{name} differs between two builds");
        }
        assert!(by_name("nope").is_none());
        let unique = |g: &Generated| g.keys.iter().collect::<hashbrown::HashSet<_>>().len();
        let by_name = |name: &str| first.iter().find(|g| g.name == name).expect("generator");
        // The flood: about 60% of the requests are keys never seen again.
        let flood = unique(by_name("one-hit-flood")) as f64 / REQUESTS as f64;
        assert!((0.58..0.66).contains(&flood), "{flood}");
        // The shift: the two halves share no key.
        let shift = by_name("shift");
        let (early, late) = shift.keys.split_at(REQUESTS / 2);
        let early: hashbrown::HashSet<_> = early.iter().collect();
        assert!(late.iter().all(|k| !early.contains(k)));
        // Warm-recurring: each warm item is read about once per round (40 rounds of 50,000).
        let warm = by_name("warm-recurring");
        let reads_of_first_warm = warm.keys.iter().filter(|&&k| k == 2_000).count();
        assert!(
            (35..=45).contains(&reads_of_first_warm),
            "{reads_of_first_warm}"
        );
    }
}
