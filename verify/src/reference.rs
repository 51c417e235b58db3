//! An independent reference S3-FIFO: one shard, a count bound, single-threaded, plain
//! `VecDeque`/`Vec`/`HashMap` code, reporting each eviction victim in order. The oracle test
//! (`tests/oracle.rs`) drives it and the engine's single-shard mode with the same operations and
//! requires the same victims, write by write.
//!
//! # The paper's algorithm
//!
//! S3-FIFO (Yang et al., SOSP'23, "FIFO queues are all you need for cache eviction") keeps three
//! FIFO queues: a small one **S** (a tenth of the capacity), a main one **M** and a ghost **G**
//! that remembers only keys. Each entry has a 2-bit frequency, raised by one on each hit (capped
//! at 3).
//!
//! * Insert: a key that G remembers goes to the head of M, any other to the head of S.
//! * Evict: from S when S holds at least its share, else from M.
//! * Evict from S: take S's tail; if it was read while in S, move it to M, else evict it and
//!   remember its key in G. Repeat until something is evicted.
//! * Evict from M (FIFO-reinsertion, which is CLOCK): take M's tail; if its frequency is above
//!   zero, lower it by one and reinsert it at the head, else evict it.
//!
//! # The engine's choices, which this reference follows
//!
//! Each is deliberate in the engine (a concurrent design, or a bound on one call's work); the
//! paper's text leaves the first two open.
//!
//! * S's share is `max(capacity / 20, 1)` entries, rounded down (a twentieth, not the paper's
//!   tenth: across the ARC traces and the bench's generators it gains up to 1 point of hit ratio
//!   on frequency-heavy workloads and gives up at most 0.6 on recency-heavy ones); "read while in
//!   S" means a frequency above zero (the paper's text: accessed at least once); entering M resets the
//!   frequency, so an entry must be read again in M to be spared there.
//! * M is a CLOCK over a ring of `capacity` slots, with no bound of its own: an entry moving to
//!   M takes the first free slot the hand reaches or, while the cache is over its bound, the slot
//!   of the first cold entry the hand evicts (cooling warm ones on the way). While the cache is
//!   within its bound, the hand passes live entries without cooling them.
//! * G approximates a FIFO of `W = capacity - S's share` keys (the paper's G holds as many keys
//!   as M) with a table of 4-way buckets, `ceil(W / 4)` of them, and a clock counting the keys
//!   evicted from S. A key evicted from S takes, in its bucket, the slot already holding it, else
//!   the empty or oldest slot (the first of equals), stamped with the clock; G remembers a key
//!   while its stamp is less than `W` evictions old, counted in steps of `2^shift` evictions with
//!   `shift` the least that makes `W >> shift` below 4,096, on a 16-bit stamp whose differences
//!   are read as signed (a negative age counts as 0). A key G
//!   remembers goes to M on its next insert without being forgotten. Which bucket a key takes is
//!   the engine's hash; the oracle's hasher puts key `k` in bucket `k % buckets`, with no false
//!   positives ([`Reference::ghost_buckets`]).
//! * A write links its entry first and evicts afterwards, while the cache is over its bound
//!   (the paper evicts first): a new key counts in S's size when the next victim's queue is
//!   chosen, and may be its own insert's victim.
//! * S is a ring of `max(capacity, 4)` slots. An entry replaced or removed stays in its queue,
//!   dead, until a queue step passes it: dead entries count in S's size, and their M slots are
//!   free to take. A replaced key's new entry joins S with a frequency of one.
//! * While the cache is within its bound, a full S ring (dead entries included) moves its oldest
//!   live entry to M, read or not; a removal or replacement does the same once S holds twice its
//!   share (the cache has been full before): this keeps dead entries from piling up.
//! * A new key G does not remember also goes to M, as a *rider*, when M's size (the live count
//!   less S's length, dead entries included) plus one is within the rider allowance. The
//!   allowance starts at 0 and stays within `[0, capacity - S's share]`; it rises by 1 for each
//!   entry evicted from S (forced or not), by 24 on a rider's first hit, and falls by 40 for each
//!   entry that moves from S to M because it was read there while the cache was over its bound,
//!   and by 8 for each ghost hit (before the rider test). A rider is placed in M as an entry
//!   is while the cache is within its bound (the hand evicts only once its steps run out).
//! * Bounds on one call's work: an insert takes at most 64 eviction steps by the policy, then
//!   evicts whatever the hands meet; one M step passes at most 16 free or dead slots before
//!   turning to S; placing an entry in M passes at most 128 slots before evicting whatever the
//!   hand meets; a full S ring is retried 4 times before the entry goes to M.

use std::collections::{HashMap, VecDeque};

/// Highest frequency (two bits).
pub const FREQ_MAX: u8 = 3;
/// Eviction steps by the policy one write takes before it evicts whatever the hands meet.
const EVICTION_BUDGET: usize = 64;
/// Free or dead M slots one M step passes before it turns to S.
const FREE_SLOTS_PER_STEP: usize = 16;
/// M slots one placement passes; past half of them it evicts whatever it meets.
const PROMOTE_STEPS: usize = 256;
/// Dead S entries one S step releases on its way to a live one.
const DEAD_PER_STEP: usize = 128;
/// Tries to push into a full S ring before the entry goes to M.
const SMALL_PUSH_ATTEMPTS: usize = 4;
/// Slots per G bucket.
const GHOST_WAYS: usize = 4;
/// Stamp steps in a G window stay below this.
const GHOST_STEPS_PER_WINDOW: u64 = 1 << 12;

/// What the reference did so far, to show that a workload reached each rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// New keys that G remembered, sent straight to M.
    pub ghost_hits: u64,
    /// Entries evicted from S (and remembered by G).
    pub small_evictions: u64,
    /// Entries evicted from M.
    pub main_evictions: u64,
    /// Entries moved from S to M.
    pub promotions: u64,
    /// New keys sent to M as riders.
    pub riders: u64,
    /// Riders' first hits.
    pub rider_hits: u64,
    /// Warm M entries spared by the hand (their frequency lowered).
    pub second_chances: u64,
    /// Victims taken regardless of their frequency, a step budget having run out.
    pub forced: u64,
}

/// One entry, live or dead (replaced or removed, still queued).
struct Entry {
    key: u64,
    freq: u8,
    live: bool,
    /// Entered M as a rider and not read since.
    rider: bool,
}

/// The reference cache (see the module docs).
pub struct Reference {
    capacity: usize,
    small_share: usize,
    small_room: usize,
    /// Every entry ever inserted, by id; queues and the table hold ids.
    entries: Vec<Entry>,
    /// Each key's live entry.
    table: HashMap<u64, usize>,
    count: usize,
    small: VecDeque<usize>,
    main: Vec<Option<usize>>,
    /// The CLOCK hand: the next slot is `hand % main.len()`.
    hand: usize,
    /// G's buckets: each slot a key and the stamp it was written with.
    ghost: Vec<[Option<(u64, u32)>; GHOST_WAYS]>,
    /// Keys evicted from S so far: G's clock.
    ghost_clock: u64,
    /// G's window in stamp steps, and a step as a shift.
    ghost_window_steps: u64,
    ghost_shift: u32,
    /// The cache has been over its bound at least once.
    filled: bool,
    /// How large M may be with a rider in it.
    rider_allowance: usize,
    victims: Vec<u64>,
    tally: Tally,
}

impl Reference {
    /// An empty cache of at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let small_share = Self::small_share(capacity);
        let window = Self::ghost_keys(capacity) as u64;
        let mut ghost_shift = 0;
        while (window >> ghost_shift) >= GHOST_STEPS_PER_WINDOW {
            ghost_shift += 1;
        }
        let ghost_window_steps = (window >> ghost_shift).max(1);
        Reference {
            capacity,
            small_share,
            small_room: capacity.max(4),
            entries: Vec::new(),
            table: HashMap::new(),
            count: 0,
            small: VecDeque::new(),
            main: vec![None; capacity],
            hand: 0,
            ghost: vec![[None; GHOST_WAYS]; Self::ghost_buckets(capacity)],
            ghost_clock: 0,
            ghost_window_steps,
            ghost_shift,
            filled: false,
            rider_allowance: 0,
            victims: Vec::new(),
            tally: Tally::default(),
        }
    }

    /// S's share of a cache of `capacity` entries (at least 1): a twentieth, rounded down.
    fn small_share(capacity: usize) -> usize {
        (capacity / 20).max(1)
    }

    /// Keys G remembers for a cache of `capacity` entries: M's share of the capacity.
    pub fn ghost_keys(capacity: usize) -> usize {
        let capacity = capacity.max(1);
        (capacity - Self::small_share(capacity)).max(1)
    }

    /// Buckets of G for a cache of `capacity` entries.
    pub fn ghost_buckets(capacity: usize) -> usize {
        Self::ghost_keys(capacity).div_ceil(GHOST_WAYS)
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no entry is live.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether `key` has a live entry (not a read).
    pub fn contains(&self, key: u64) -> bool {
        self.table.contains_key(&key)
    }

    /// What the reference did so far.
    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// A read: a hit raises the entry's frequency. Returns whether it hit.
    pub fn get(&mut self, key: u64) -> bool {
        let Some(&id) = self.table.get(&key) else {
            return false;
        };
        let entry = &mut self.entries[id];
        entry.freq = (entry.freq + 1).min(FREQ_MAX);
        if std::mem::take(&mut entry.rider) {
            self.tally.rider_hits += 1;
            self.raise_allowance(24);
        }
        true
    }

    /// Inserts or replaces `key`'s entry; returns the keys evicted, in order.
    pub fn insert(&mut self, key: u64) -> Vec<u64> {
        if let Some(old) = self.table.remove(&key) {
            self.entries[old].live = false;
            let id = self.link(key, 1);
            self.trim_small();
            self.enqueue(id, false, false);
        } else {
            let id = self.link(key, 0);
            let remembered = self.ghost_remembers(key);
            self.tally.ghost_hits += u64::from(remembered);
            if remembered {
                self.rider_allowance = self.rider_allowance.saturating_sub(8);
            }
            let main_size = self.count.saturating_sub(self.small.len());
            let rider = !remembered && main_size < self.rider_allowance;
            self.entries[id].rider = rider;
            self.tally.riders += u64::from(rider);
            self.enqueue(id, remembered || rider, true);
            self.count += 1;
        }
        self.evict_while_over();
        std::mem::take(&mut self.victims)
    }

    /// Removes `key`'s entry; returns whether it was live.
    pub fn remove(&mut self, key: u64) -> bool {
        let Some(id) = self.table.remove(&key) else {
            return false;
        };
        self.entries[id].live = false;
        self.count -= 1;
        self.trim_small();
        true
    }

    /// A new live entry for `key` in the table, not yet queued nor counted.
    fn link(&mut self, key: u64, freq: u8) -> usize {
        self.entries.push(Entry {
            key,
            freq,
            live: true,
            rider: false,
        });
        let id = self.entries.len() - 1;
        self.table.insert(key, id);
        id
    }

    fn ghost_bucket(&self, key: u64) -> usize {
        (key % self.ghost.len() as u64) as usize
    }

    fn ghost_stamp(&self) -> u32 {
        ((self.ghost_clock >> self.ghost_shift) & 0xFFFF) as u32
    }

    /// Steps since a slot was stamped `stamp`, as a signed 16-bit difference (0 if below zero).
    fn ghost_age(&self, stamp: u32) -> u32 {
        let steps = self.ghost_stamp().wrapping_sub(stamp) & 0xFFFF;
        if steps >= 0x8000 {
            0
        } else {
            steps
        }
    }

    fn ghost_remembers(&self, key: u64) -> bool {
        self.ghost[self.ghost_bucket(key)].iter().any(|slot| {
            matches!(slot, Some((k, stamp)) if *k == key
                && u64::from(self.ghost_age(*stamp)) < self.ghost_window_steps)
        })
    }

    /// G learns `key`: the clock counts it, and it takes its own slot, else the empty or oldest.
    fn ghost_insert(&mut self, key: u64) {
        self.ghost_clock += 1;
        let bucket = self.ghost_bucket(key);
        let mut chosen = 0;
        let mut oldest = 0;
        for (way, slot) in self.ghost[bucket].iter().enumerate() {
            let age = match slot {
                Some((k, _)) if *k == key => {
                    chosen = way;
                    break;
                }
                Some((_, stamp)) => self.ghost_age(*stamp),
                None => u32::MAX,
            };
            if way == 0 || age > oldest {
                chosen = way;
                oldest = age;
            }
        }
        let stamp = self.ghost_stamp();
        self.ghost[bucket][chosen] = Some((key, stamp));
    }

    fn raise_allowance(&mut self, by: usize) {
        let main_share = self.capacity - self.small_share;
        self.rider_allowance = (self.rider_allowance + by).min(main_share);
    }

    fn over(&self) -> bool {
        self.count > self.capacity
    }

    /// Queues entry `id`: in S unless `to_main`. `new_entry`: it will add to the count.
    fn enqueue(&mut self, id: usize, to_main: bool, new_entry: bool) {
        let will_be_over = |r: &Self| r.count + usize::from(new_entry) > r.capacity;
        if !to_main {
            for _ in 0..SMALL_PUSH_ATTEMPTS {
                if self.small.len() < self.small_room {
                    self.small.push_back(id);
                    return;
                }
                let filling = will_be_over(self);
                self.small_step(false, filling);
            }
        }
        let may_evict = will_be_over(self) && !self.entries[id].rider;
        self.place_in_main(id, may_evict);
    }

    /// Eviction steps while the cache is over its bound: by the policy first, then forced.
    fn evict_while_over(&mut self) {
        if !self.over() {
            return;
        }
        self.filled = true;
        for _ in 0..EVICTION_BUDGET {
            self.eviction_step(false);
            if !self.over() {
                return;
            }
        }
        let mut idle = 0;
        while idle < EVICTION_BUDGET && self.over() {
            if !self.eviction_step(true) {
                idle += 1;
            }
        }
    }

    /// One step from S if it holds its share (dead entries included), else from M; from the
    /// other queue if that one has nothing ready.
    fn eviction_step(&mut self, forced: bool) -> bool {
        if self.small.len() >= self.small_share {
            return self.small_step(forced, false) || self.main_step(forced);
        }
        self.main_step(forced) || self.small_step(forced, false)
    }

    /// After a removal or replacement: once the cache has been full, S is kept under twice its
    /// share by moving its oldest live entry on.
    fn trim_small(&mut self) {
        if self.filled && self.small.len() >= 2 * self.small_share {
            self.small_step(false, false);
        }
    }

    /// S's oldest live entry moves to M (read, or the cache within its bound) or is evicted
    /// and remembered by G. `filling`: judge as if over the bound (the caller's entry will take
    /// the cache over it). Returns whether it met a live entry.
    fn small_step(&mut self, forced: bool, filling: bool) -> bool {
        for _ in 0..DEAD_PER_STEP {
            let Some(id) = self.small.pop_front() else {
                return false;
            };
            if !self.entries[id].live {
                continue;
            }
            let over = filling || self.over();
            if !forced && (self.entries[id].freq > 0 || !over) {
                if over {
                    self.rider_allowance = self.rider_allowance.saturating_sub(40);
                }
                self.entries[id].freq = 0;
                self.tally.promotions += 1;
                self.place_in_main(id, over);
            } else {
                self.tally.forced += u64::from(forced);
                self.tally.small_evictions += 1;
                self.raise_allowance(1);
                let key = self.evict(id);
                self.ghost_insert(key);
            }
            return true;
        }
        false
    }

    /// Advances the hand; returns the slot it passed.
    fn advance(&mut self) -> usize {
        let slot = self.hand % self.main.len();
        self.hand += 1;
        slot
    }

    /// Places entry `id` in M: in the first free slot the hand reaches or, if `may_evict`, the
    /// slot of the first cold entry it evicts.
    fn place_in_main(&mut self, id: usize, may_evict: bool) {
        for step in 0..PROMOTE_STEPS {
            // Under a count bound the ring has a slot for every entry and never grows.
            let forced = step >= PROMOTE_STEPS / 2;
            let slot = self.advance();
            let vacated = match self.main[slot] {
                None => true,
                Some(occupant) => self.visit(occupant, may_evict, forced),
            };
            if vacated {
                self.main[slot] = Some(id);
                return;
            }
        }
        self.evict(id);
    }

    /// One M step: the hand moves to the next live entry and spares or evicts it, releasing
    /// dead ones on the way. Returns whether it met a live entry.
    fn main_step(&mut self, forced: bool) -> bool {
        let limit = if forced {
            self.main.len()
        } else {
            FREE_SLOTS_PER_STEP
        };
        let mut passed = 0;
        loop {
            let slot = self.advance();
            if let Some(occupant) = self.main[slot] {
                let live = self.entries[occupant].live;
                if !self.visit(occupant, true, forced) {
                    return true;
                }
                self.main[slot] = None;
                if live {
                    return true;
                }
            }
            passed += 1;
            if passed >= limit {
                return false;
            }
        }
    }

    /// The hand passes `id`: returns whether its slot may be taken (dead, or evicted now).
    fn visit(&mut self, id: usize, may_evict: bool, forced: bool) -> bool {
        let entry = &mut self.entries[id];
        if !entry.live {
            return true;
        }
        if !forced && !may_evict {
            return false;
        }
        if !forced && entry.freq > 0 {
            entry.freq -= 1;
            self.tally.second_chances += 1;
            return false;
        }
        self.tally.forced += u64::from(forced);
        self.tally.main_evictions += 1;
        self.evict(id);
        true
    }

    /// Evicts live entry `id`; returns its key.
    fn evict(&mut self, id: usize) -> u64 {
        let entry = &mut self.entries[id];
        entry.live = false;
        let key = entry.key;
        self.table.remove(&key);
        self.count -= 1;
        self.victims.push(key);
        key
    }
}
