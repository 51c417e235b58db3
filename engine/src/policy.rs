//! S3-FIFO decisions as pure functions of an entry's metadata, so the policy can be tested on
//! its own; [`crate::cache`] applies them to the concurrent structures.
//!
//! * New keys enter the **small** FIFO (a twentieth of the capacity), unless the ghost filter
//!   remembers them, in which case they go straight to **main**, or unless main is under its
//!   share and the shard's rider allowance lets them *ride* into main unproven (see
//!   [`entrance`]).
//! * When the small FIFO is over its share, its oldest entry leaves it: to main if it was read
//!   while in it (or if the cache is not full yet), otherwise it is evicted and its fingerprint
//!   joins the ghost filter. One-hit wonders and scans therefore reach main only as riders, into
//!   room main has.
//! * Main is a CLOCK over a ring (see [`crate::main_queue`]): an entry whose frequency is above
//!   zero is spared and cooled by one; an entry at zero is evicted. Hits raise the frequency up
//!   to 3; entering main resets it, so an entry must be read again there to be spared.

use crate::node;

/// Share of the capacity given to the small FIFO, in percent.
pub(crate) const SMALL_PERCENT: u64 = 5;

/// Room in the small FIFO's ring, in percent of the entries a shard expects. While the cache
/// fills, S3-FIFO keeps every new entry in the small FIFO (it only evicts from it once the cache
/// is full), so the ring has room for all of them: an entry that overflows a smaller ring would
/// reach main unread, skipping the test the small FIFO is for. On the ARC traces a ring of a fifth
/// of the entries cost up to 0.9 points of hit ratio. The loom models keep the smaller ring, so
/// that the paths taken when it is full stay in reach.
#[cfg(not(strata_loom))]
pub(crate) const SMALL_RING_PERCENT: u64 = 100;
#[cfg(strata_loom)]
pub(crate) const SMALL_RING_PERCENT: u64 = 2 * SMALL_PERCENT;

/// Most eviction steps one insert performs before it gives up and leaves the rest to the next
/// write: bounds the latency of any one call.
#[cfg(not(strata_loom))]
pub(crate) const EVICTION_BUDGET: usize = 64;
#[cfg(strata_loom)]
pub(crate) const EVICTION_BUDGET: usize = 4;

/// How far past its share (as a multiple of it) the small FIFO may grow once its shard has been
/// full, before a write that evicts nothing (a replacement, a removal) takes a step of it: see
/// `Inner::trim_small`.
pub(crate) const SMALL_SLACK: u64 = 2;

/// Dead entries (replaced or removed while queued) one small-queue step releases on its way to a
/// live one: the bound keeps one call from walking a whole ring of them (a shard's worth of
/// entries) after a hot key was overwritten many times. Each write leaves at most one dead entry
/// behind; full-ring pushes, eviction steps and (once the shard has been full) the writes that
/// leave them (`Inner::trim_small`) take the steps that release them.
#[cfg(not(strata_loom))]
pub(crate) const DEAD_PER_STEP: usize = 2 * EVICTION_BUDGET;
#[cfg(strata_loom)]
pub(crate) const DEAD_PER_STEP: usize = 2;

/// Free slots the main hand passes in one step before it reports main as having nothing ready
/// (and the step goes to the small queue). Main keeps about a twentieth of its slots free, so a few
/// suffice; falling back too eagerly would evict new entries before their time.
#[cfg(not(strata_loom))]
pub(crate) const FREE_SLOTS_PER_STEP: usize = 16;
#[cfg(strata_loom)]
pub(crate) const FREE_SLOTS_PER_STEP: usize = 2;

/// Most slots the main hand passes to place one promoted entry; past half of them it evicts
/// whatever it meets, so a main queue full of warm entries cannot stall a write.
#[cfg(not(strata_loom))]
pub(crate) const PROMOTE_STEPS: usize = 256;
#[cfg(strata_loom)]
pub(crate) const PROMOTE_STEPS: usize = 8;

/// Most shards a cache's capacity is split into (see [`crate::shard`]). A fixed number, not one
/// derived from the machine's cores, so that a cache evicts the same way wherever it runs.
#[cfg(not(strata_loom))]
pub(crate) const MAX_SHARDS: usize = 64;
/// The loom models explore one shard: shards share nothing, so one is the whole protocol.
#[cfg(strata_loom)]
pub(crate) const MAX_SHARDS: usize = 1;

/// Fewest entries a shard is given. Each shard runs S3-FIFO on its own part of the capacity, so
/// a shard must be large enough that its part behaves like the whole: small caches keep one
/// shard and evict exactly as an unsharded S3-FIFO would.
pub(crate) const MIN_SHARD_ENTRIES: u64 = 4096;

/// How many shards a cache gets: the largest power of two up to [`MAX_SHARDS`] that leaves each
/// shard [`MIN_SHARD_ENTRIES`] entries. Under a weight bound (with a weigher) it is the weight
/// that is split: each shard keeps at least [`MIN_SHARD_ENTRIES`] units of weight and room for
/// four of the heaviest entries the cache admits (`max_entry_weight`), so any admitted entry fits
/// its shard. An unbounded cache evicts nothing and takes the most shards, for its counters alone.
pub(crate) fn shard_count(
    max_entries: u64,
    max_weight: u64,
    max_entry_weight: u64,
    weighted: bool,
) -> usize {
    let by_weight = match (max_weight, weighted) {
        (u64::MAX, _) => u64::MAX,
        (weight, true) => (weight / 4 / max_entry_weight.max(1))
            .saturating_mul(MIN_SHARD_ENTRIES)
            .min(weight),
        (weight, false) => weight,
    };
    let room = max_entries.min(by_weight);
    let mut count = MAX_SHARDS;
    while count > 1 && room / (count as u64) < MIN_SHARD_ENTRIES {
        count /= 2;
    }
    count
}

/// The small FIFO's target share of a capacity (at least one entry when the capacity allows).
pub(crate) fn small_target(capacity: u64) -> u64 {
    if capacity == 0 {
        0
    } else {
        (u128::from(capacity) * u128::from(SMALL_PERCENT) / 100).max(1) as u64
    }
}

/// The main queue's share of `entries`: what the ghost filter remembers, as in S3-FIFO, where
/// the ghost queue is as long as the main one.
pub(crate) fn main_share(entries: usize) -> usize {
    (entries as u64 - small_target(entries as u64)) as usize
}

/// Where a new key's entry goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entrance {
    /// The small FIFO, to prove itself.
    Small,
    /// Main: the ghost filter remembers the key (it was evicted too soon).
    Main,
    /// Main, unproven, into room main has: a *rider*.
    Rider,
}

/// Where a new key's entry of `weight` goes: to main when the ghost filter remembers the key
/// (`remembered`), else as a rider when main, holding `main_weight`, stays within the shard's
/// rider `allowance` with it, else to the small FIFO.
///
/// Main is below its share whenever fewer entries proved themselves than it could hold, and
/// S3-FIFO then leaves the room to the small FIFO, which grows past its share. That is right when
/// keys come back soon enough for a longer FIFO to catch them; wrong when they come back later
/// (a loop over more keys than the cache, beside a small hot set): the FIFO passes every one of
/// them without a hit, where entries held in main would be hit on the next round (CLOCK-Pro and
/// quick_cache admit new entries as hot while their hot set is under its target). The allowance
/// chooses between the two from what the shard sees, as ARC sizes its lists from ghost hits:
/// it rises with each entry the small FIFO evicts unread ([`ALLOWANCE_PER_SMALL_EVICTION`])
/// and each rider's first hit ([`ALLOWANCE_PER_RIDER_HIT`]), and falls with each entry read
/// in the small FIFO ([`ALLOWANCE_PER_SMALL_HIT`]) and each ghost hit
/// ([`ALLOWANCE_PER_GHOST_HIT`]); it starts at zero and never exceeds main's share. A rider is
/// placed as entries are while the cache has room: the hand takes the first free slot and
/// passes live entries without judging them (`Inner::enqueue`); only if it finds no free slot
/// within its step budget and the ring cannot grow does it evict what it meets, as any
/// placement does. The allowance and the rider bit are hints, moved without synchronisation: a
/// lost update, or a reader's hit that lands before the bit is set, only delays the
/// adaptation.
///
/// Measured on `strata-bench traces` (see `benches/README.md`): the loop-beside-a-hot-set
/// generator (`scan-hot`) at 25% went from 7.45 points behind quick_cache to 1.08, and P3 at 5%
/// from 2.20 behind moka to 0.40; no other cell moved by more than 0.5. The four rates were
/// chosen on those cells from a small grid; the neighbouring rates (rider hit 20-28, small hit
/// 40-48) keep both within 0.6 points of the chosen ones.
pub(crate) fn entrance(
    remembered: bool,
    main_weight: u64,
    weight: u64,
    allowance: u64,
) -> Entrance {
    if remembered {
        Entrance::Main
    } else if main_weight.saturating_add(weight) <= allowance {
        Entrance::Rider
    } else {
        Entrance::Small
    }
}

/// Allowance gained, per unit of weight, for an entry the small FIFO evicts unread.
pub(crate) const ALLOWANCE_PER_SMALL_EVICTION: u64 = 1;
/// Allowance gained, per unit of weight, on a rider's first hit.
pub(crate) const ALLOWANCE_PER_RIDER_HIT: u64 = 24;
/// Allowance lost, per unit of weight, for an entry read while in the small FIFO.
pub(crate) const ALLOWANCE_PER_SMALL_HIT: u64 = 40;
/// Allowance lost, per unit of weight, on a ghost hit.
pub(crate) const ALLOWANCE_PER_GHOST_HIT: u64 = 8;

/// Where an entry popped from the small FIFO goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SmallExit {
    /// Moves to the main CLOCK.
    Promote,
    /// Is evicted, and remembered by the ghost filter.
    Evict,
}

/// `over_capacity` is false when the pop only makes room in a full small queue: then nothing
/// needs evicting and the entry moves on to main whatever its frequency.
pub(crate) fn small_exit(meta: u64, over_capacity: bool) -> SmallExit {
    if !over_capacity || node::freq(meta) > 0 {
        SmallExit::Promote
    } else {
        SmallExit::Evict
    }
}

/// What the main CLOCK hand does with the live, unexpired entry in a slot it passes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MainVisit {
    /// Left as it is: the cache is within its bounds, so nothing needs evicting.
    Leave,
    /// Read since the hand's last pass: spared, its frequency lowered by one.
    Spare,
    /// Evicted; its slot is taken.
    Evict,
}

/// `may_evict`: the cache is (or is about to be) over a bound. `forced`: the step's budget ran
/// out, and the hand evicts whatever it meets.
pub(crate) fn main_visit(meta: u64, may_evict: bool, forced: bool) -> MainVisit {
    if forced {
        MainVisit::Evict
    } else if !may_evict {
        MainVisit::Leave
    } else if node::freq(meta) > 0 {
        MainVisit::Spare
    } else {
        MainVisit::Evict
    }
}

/// Which queue the next eviction step takes from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Victim {
    Small,
    Main,
}

pub(crate) fn next_victim(small_weight: u64, small_target: u64) -> Victim {
    if small_weight >= small_target {
        Victim::Small
    } else {
        Victim::Main
    }
}

#[cfg(all(test, not(strata_loom)))]
mod tests {
    use super::*;
    use crate::node::FREQ_ONE;

    #[test]
    fn main_share_complements_small() {
        assert_eq!(main_share(1000), 950);
        assert_eq!(main_share(5), 4);
    }

    #[test]
    fn small_fifo_promotes_entries_read_while_in_it() {
        assert_eq!(small_exit(0, true), SmallExit::Evict);
        assert_eq!(small_exit(FREQ_ONE, true), SmallExit::Promote);
        assert_eq!(
            small_exit(0, false),
            SmallExit::Promote,
            "no eviction under the bound"
        );
    }

    #[test]
    fn new_keys_ride_into_main_within_the_allowance() {
        assert_eq!(
            entrance(true, 950, 1, 0),
            Entrance::Main,
            "a remembered key"
        );
        assert_eq!(
            entrance(true, 0, 1, 950),
            Entrance::Main,
            "remembered, not a rider"
        );
        assert_eq!(entrance(false, 949, 1, 950), Entrance::Rider);
        let small = |main, weight, allowance| entrance(false, main, weight, allowance);
        assert_eq!(
            small(950, 1, 950),
            Entrance::Small,
            "the allowance is used up"
        );
        assert_eq!(
            small(940, 20, 950),
            Entrance::Small,
            "too heavy for what is left"
        );
        assert_eq!(small(0, 1, 0), Entrance::Small, "no allowance");
        assert_eq!(small(u64::MAX, 1, 950), Entrance::Small);
    }

    #[test]
    fn main_clock_spares_until_frequency_runs_out() {
        assert_eq!(main_visit(0, true, false), MainVisit::Evict);
        assert_eq!(main_visit(3 * FREQ_ONE, true, false), MainVisit::Spare);
        assert_eq!(
            main_visit(0, false, false),
            MainVisit::Leave,
            "within bounds"
        );
        assert_eq!(
            main_visit(3 * FREQ_ONE, true, true),
            MainVisit::Evict,
            "forced"
        );
    }

    #[test]
    fn shards_keep_a_minimum_size() {
        let unweighted = |entries| shard_count(entries, u64::MAX, u64::MAX, false);
        assert_eq!(unweighted(0), 1);
        assert_eq!(unweighted(2 * MIN_SHARD_ENTRIES - 1), 1);
        assert_eq!(unweighted(2 * MIN_SHARD_ENTRIES), 2);
        assert_eq!(unweighted(100_000), 16);
        assert_eq!(unweighted(u64::MAX), MAX_SHARDS);
        // An entry limit of the whole capacity: one shard (each shard holds four such entries).
        assert_eq!(shard_count(u64::MAX, 1 << 30, 1 << 30, true), 1);
        // The default limit, a 64th of the capacity: 16 shards.
        assert_eq!(shard_count(u64::MAX, 1 << 30, 1 << 24, true), 16);
        // Room for a million of the heaviest entries.
        assert_eq!(shard_count(u64::MAX, 1 << 30, 1 << 10, true), MAX_SHARDS);
        // A small weight keeps one shard whatever the entry limit.
        assert_eq!(shard_count(u64::MAX, 4000, 1, true), 1);
        // Without a weigher a weight bound counts entries; the tighter bound decides.
        assert_eq!(shard_count(10_000, 1 << 30, 1 << 30, false), 2);
        assert_eq!(shard_count(1 << 30, 10_000, 10_000, false), 2);
    }

    #[test]
    fn small_share_is_a_twentieth() {
        assert_eq!(small_target(0), 0);
        assert_eq!(small_target(5), 1);
        assert_eq!(small_target(39), 1);
        assert_eq!(small_target(40), 2);
        assert_eq!(small_target(1000), 50);
        assert_eq!(small_target(u64::MAX), u64::MAX / 20);
        assert_eq!(next_victim(50, 50), Victim::Small);
        assert_eq!(next_victim(49, 50), Victim::Main);
    }
}
