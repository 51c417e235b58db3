//! Heap bytes per entry of each cache holding `u64 -> u64` entries.
//!
//! For each cache: read the counting allocator's live bytes, build the cache with capacity == `entries`,
//! insert `entries` distinct keys, let it settle (moka: `run_pending_tasks`), and read live bytes again. The
//! difference is divided both by the entries inserted and by the entries actually resident (`len()`), since a
//! cache may evict or decline some even below its capacity. Bytes are the sizes requested from the allocator,
//! without jemalloc's size-class rounding. Caches that free through crossbeam-epoch may still hold retired
//! garbage at the second reading; it is counted, as it is memory the process holds. The last column shows
//! what was still allocated after the cache was dropped.
//!
//! Each cache type is built and dropped once at a small size first, so that one-off global set-up (epoch
//! collectors, clocks, thread-locals) is not charged to the measured cache.

use std::time::Duration;

use anyhow::ensure;

use crate::contenders::{Contender, Hashbrown, Lookup, Moka, QuickCache, Strata, TinyUfo};
use crate::report::{thousands, Section, Table};
use crate::zipf::key_of;
use crate::ALLOCATOR;

/// Options of the `memory` subcommand.
#[derive(clap::Args, Clone, Debug)]
pub struct MemoryArgs {
    /// Entries inserted into each cache (its capacity too).
    #[arg(long, default_value_t = 1_000_000)]
    pub entries: usize,
}

/// The time-to-live given to every entry in the "with TTL" rows.
const TTL: Duration = Duration::from_secs(3600);

/// Entries in the warm-up build that absorbs one-off global allocations.
const WARMUP_ENTRIES: usize = 1000;

/// One cache's footprint.
pub struct Footprint {
    /// Cache name, with "(ttl 1h)" for the TTL rows.
    pub label: String,
    /// Entries resident after the inserts.
    pub resident: usize,
    /// Live heap bytes the cache added.
    pub bytes: isize,
    /// Bytes still allocated after the cache was dropped.
    pub left_after_drop: isize,
}

/// Builds a cache with `build`, fills it with `entries` keys and measures it.
fn footprint<C: Contender>(label: &str, entries: usize, build: impl Fn(usize) -> C) -> Footprint {
    let fill = |cache: &C, entries: usize| {
        for index in 0..entries as u64 {
            cache.insert(key_of(index), index);
        }
        cache.resident()
    };
    let warmup = build(WARMUP_ENTRIES);
    fill(&warmup, WARMUP_ENTRIES);
    drop(warmup);

    let before = ALLOCATOR.live_bytes();
    let cache = build(entries);
    let resident = fill(&cache, entries);
    let after = ALLOCATOR.live_bytes();
    drop(cache);
    Footprint {
        label: label.to_owned(),
        resident,
        bytes: after - before,
        left_after_drop: ALLOCATOR.live_bytes() - before,
    }
}

/// The hashbrown baseline: a map presized to `entries` and filled with them.
fn hashbrown_footprint(entries: usize) -> Footprint {
    let before = ALLOCATOR.live_bytes();
    let map = Hashbrown::filled(entries, (0..entries as u64).map(key_of));
    let resident = map.0.len();
    let after = ALLOCATOR.live_bytes();
    drop(map);
    Footprint {
        label: format!("{} (ahash, with_capacity)", Hashbrown::NAME),
        resident,
        bytes: after - before,
        left_after_drop: ALLOCATOR.live_bytes() - before,
    }
}

/// Measures every cache.
pub fn measure(args: &MemoryArgs) -> anyhow::Result<Vec<Footprint>> {
    ensure!(args.entries >= 1, "--entries must be at least 1");
    let entries = args.entries;
    eprintln!("measuring memory at {entries} entries ...");
    Ok(vec![
        footprint(Strata::NAME, entries, Strata::with_capacity),
        footprint(&format!("{} (ttl 1h)", Strata::NAME), entries, |n| {
            Strata::with_ttl(n, TTL)
        }),
        footprint(QuickCache::NAME, entries, QuickCache::with_capacity),
        footprint(Moka::NAME, entries, Moka::with_capacity),
        footprint(&format!("{} (ttl 1h)", Moka::NAME), entries, |n| {
            Moka::with_ttl(n, TTL)
        }),
        footprint(TinyUfo::NAME, entries, TinyUfo::with_capacity),
        hashbrown_footprint(entries),
    ])
}

/// Measures every cache and returns the report section.
pub fn run(args: &MemoryArgs) -> anyhow::Result<Vec<Section>> {
    Ok(vec![section(args, &measure(args)?)])
}

/// The report section for measured footprints.
pub fn section(args: &MemoryArgs, footprints: &[Footprint]) -> Section {
    let entries = args.entries;

    let mut table = Table::new([
        "cache",
        "inserted",
        "resident",
        "bytes",
        "bytes / inserted",
        "bytes / resident",
        "left after drop",
    ]);
    for f in footprints {
        table.row([
            f.label.clone(),
            thousands(entries as u64),
            thousands(f.resident as u64),
            thousands(f.bytes.max(0) as u64),
            format!("{:.1}", f.bytes as f64 / entries as f64),
            format!("{:.1}", f.bytes as f64 / f.resident.max(1) as f64),
            f.left_after_drop.to_string(),
        ]);
    }
    let mut section = Section::new("Memory");
    section.text(format!(
        "Live heap bytes (sizes requested from the allocator, before jemalloc's rounding) added by building a \
         cache of capacity {cap} and inserting {cap} distinct `u64 -> u64` entries, single-threaded; moka \
         settled with `run_pending_tasks` before reading. Caches that reclaim through crossbeam-epoch may still \
         hold retired garbage at the reading; it is counted. TTL rows set a {ttl} s time-to-live on the builder. TinyUFO's entry count is its `put`s minus the evictions they report.",
        cap = thousands(entries as u64),
        ttl = TTL.as_secs(),
    ));
    section.table(table);
    section
}
