//! [`Inner`]: what a [`Cache`](crate::Cache) handle points to, and the read and insert paths
//! over the table and the shards' queues.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use crate::clock::{self, Clock, Ticks};
use crate::error::InsertError;
use crate::ghost::Ghost;
use crate::listener::{EvictionCause, Listener};
use crate::loader::{Flights, Gate};
use crate::node::{self, Node, Owner, QueueRef, IN_MAIN};
use crate::policy::{self, Entrance};
use crate::shard::{signed, Shard, Shards};
use crate::stats::{Event, StatsRecorder};
use crate::sync::epoch::{self, Guard, Owned, Shared};
use crate::sync::Ordering;
use crate::table::{Inserted, Table};
use crate::weights::Weights;

/// Pushes a new entry into a full small queue tries this many times (popping in between) before
/// placing the entry straight in main.
const SMALL_PUSH_ATTEMPTS: usize = 4;

pub(crate) type Weigher<K, V> = Box<dyn Fn(&K, &V) -> u32 + Send + Sync>;

/// Everything [`CacheBuilder::build`] decided.
pub(crate) struct Config<K, V, S> {
    pub(crate) expected_entries: usize,
    pub(crate) max_entries: u64,
    pub(crate) max_weight: u64,
    pub(crate) max_entry_weight: u64,
    pub(crate) weigher: Option<Weigher<K, V>>,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) time_to_idle: Option<Duration>,
    pub(crate) listener: Option<Listener<K, V>>,
    pub(crate) clock: Clock,
    pub(crate) hasher: S,
}

pub(crate) struct Inner<K, V, S> {
    pub(crate) table: Table<K, V>,
    /// The eviction queues and counters, split by key hash (see [`crate::shard`]).
    pub(crate) shards: Shards<Node<K, V>>,
    pub(crate) ghost: Ghost,
    pub(crate) hasher: S,
    /// The cache's bounds; each shard enforces its part of them.
    pub(crate) max_entries: u64,
    pub(crate) max_weight: u64,
    pub(crate) max_entry_weight: u64,
    pub(crate) weigher: Option<Weigher<K, V>>,
    /// How the counters move with or without the weigher.
    pub(crate) weights: Weights,
    pub(crate) time_to_live: Option<Duration>,
    /// The time to idle in [`clock::idle_unit`]s (`None`: entries do not idle out).
    pub(crate) idle_units: Option<u32>,
    pub(crate) ticks: Ticks,
    pub(crate) listener: Option<Listener<K, V>>,
    /// Set once the listener has panicked: it is not called again (see [`Inner::notify`]).
    /// `std`'s even under loom: a flag that synchronises nothing.
    pub(crate) listener_disabled: std::sync::atomic::AtomicBool,
    pub(crate) stats: StatsRecorder,
    pub(crate) flights: Flights<K, V>,
}

/// Frees a new node the table did not link: through the epoch if `seen` (it sat in a claimed
/// slot, where other threads may have loaded it, see [`Inserted::Kept`]), at once otherwise.
///
/// # Safety
/// `node` was allocated by the caller, is in no slot or list, and is not used again; `seen` is
/// what the table reported for it.
unsafe fn free_unlinked<K, V>(node: Shared<'_, Node<K, V>>, seen: bool, guard: &Guard) {
    if seen {
        // SAFETY: ours (the caller's obligation); threads that loaded it from the slot it once
        // sat in are pinned, so it is freed after them.
        unsafe { guard.defer_destroy(node) };
    } else {
        // SAFETY: ours, and no other thread has seen it.
        drop(unsafe { node.into_owned() });
    }
}

/// How an insert treats a live entry of its key.
#[derive(Clone, Copy)]
pub(crate) enum Mode<'a> {
    /// Replaces it.
    Upsert,
    /// Keeps it and inserts nothing.
    IfAbsent,
    /// A load's insert: keeps it, and goes through the load's gate (see [`Gate`]).
    Load(&'a dyn Gate),
}

/// What an insert did.
pub(crate) enum Stored {
    /// Linked as the key's entry.
    Linked,
    /// An only-if-absent insert found the key present and left it.
    Kept,
    /// A load's insert found its flight cancelled by a removal, and inserted nothing.
    Cancelled,
}

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// `key`'s hash as the table and the shards use it (folded, see [`node::fold`]).
    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        node::fold(self.hasher.hash_one(key))
    }

    /// Weighs an entry; called once per insert (the node keeps the weight).
    #[inline]
    pub(crate) fn weigh(&self, key: &K, value: &V) -> u64 {
        match &self.weigher {
            None => 1,
            Some(weigher) => u64::from(weigher(key, value)),
        }
    }

    /// Whether `node`'s entry has expired: its time to live ran out, or, with a time to idle,
    /// it was not read for that long.
    #[inline]
    pub(crate) fn is_expired(&self, node: &Node<K, V>) -> bool {
        let deadline = node::expire_tick(node.meta.load(Ordering::Relaxed));
        if deadline == 0 && self.idle_units.is_none() {
            return false;
        }
        // The mutant lets reads see an entry for 5 ms past its deadline.
        #[cfg(strata_mutant = "late_expiry")]
        return self.is_expired_at(node, self.ticks.now().saturating_sub(5));
        #[cfg(not(strata_mutant = "late_expiry"))]
        self.is_expired_at(node, self.ticks.now())
    }

    /// [`Inner::is_expired`] at tick `now`.
    pub(crate) fn is_expired_at(&self, node: &Node<K, V>, now: u64) -> bool {
        let deadline = node::expire_tick(node.meta.load(Ordering::Relaxed));
        clock::is_expired(deadline, now)
            || self.idle_units.is_some_and(|limit| {
                clock::idle_unit(now).wrapping_sub(node.idle.load(Ordering::Relaxed)) >= limit
            })
    }

    /// Records a read of `node` for the time to idle (a store only when its unit changed).
    #[inline]
    fn refresh_idle(&self, node: &Node<K, V>) {
        if self.idle_units.is_some() {
            let unit = clock::idle_unit(self.ticks.now());
            if node.idle.load(Ordering::Relaxed) != unit {
                node.idle.store(unit, Ordering::Relaxed);
            }
        }
    }

    /// A rider's first hit (see [`policy::entrance`]): evidence that main holds entries worth
    /// keeping when they arrive unproven.
    #[cold]
    #[inline(never)]
    fn rider_hit(&self, node: &Node<K, V>) {
        let shard = self.shards.of_meta(node.meta.load(Ordering::Relaxed));
        shard.raise_rider_allowance(u64::from(node.weight) * policy::ALLOWANCE_PER_RIDER_HIT);
    }

    /// Finds `key`'s live node; an expired one is removed on the way and reads as absent.
    #[inline]
    pub(crate) fn read<'g, Q>(
        &self,
        hash: u64,
        key: &Q,
        guard: &'g Guard,
        touch: bool,
    ) -> Option<&'g Node<K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let node = self.table.find(hash, key, guard)?;
        if self.is_expired(node) {
            if node.mark_removed(guard) {
                self.account_removal(node, EvictionCause::Expired);
                self.table.purge_node(hash, node, guard);
            }
            return None;
        }
        if touch {
            if node.touch() {
                self.rider_hit(node);
            }
            self.refresh_idle(node);
        }
        Some(node)
    }

    pub(crate) fn insert(
        &self,
        hash: u64,
        key: K,
        value: V,
        ttl: Option<Duration>,
    ) -> Result<(), InsertError> {
        self.insert_as(hash, key, value, ttl, Mode::Upsert)
            .map(|_| ())
    }

    /// Inserts as `mode` says: [`Mode::Upsert`] replaces a present entry; [`Mode::IfAbsent`]
    /// keeps a live one ([`Stored::Kept`]); [`Mode::Load`] keeps a live one too, and inserts only
    /// if the load's gate lets it through ([`Stored::Cancelled`] otherwise), linking the node
    /// while the gate is held.
    pub(crate) fn insert_as(
        &self,
        hash: u64,
        key: K,
        value: V,
        ttl: Option<Duration>,
        mode: Mode<'_>,
    ) -> Result<Stored, InsertError> {
        let weight = self.weigh(&key, &value);
        if weight > self.max_entry_weight {
            self.stats.record(Event::Rejection);
            return Err(InsertError::TooHeavy {
                weight,
                limit: self.max_entry_weight,
            });
        }
        let deadline = ttl.map_or(0, |ttl| self.ticks.deadline(ttl));
        let shard_index = self.shards.index_of_hash(hash);
        let shard = self.shards.of_hash(hash);
        let guard = epoch::pin();
        // `weight <= max_entry_weight`, which a `u32` weigher's result never exceeds.
        let idle = self
            .idle_units
            .map_or(0, |_| clock::idle_unit(self.ticks.now()));
        let node = Node::new(key, value, hash, deadline, shard_index, weight as u32, idle);
        let new = Owned::new(node).into_shared(&guard);
        let gate = match mode {
            Mode::Load(gate) => Some(gate),
            Mode::Upsert | Mode::IfAbsent => None,
        };
        let keep_live = !matches!(mode, Mode::Upsert);
        let entered = match gate.map(|gate| gate.enter()) {
            Some(None) => {
                // SAFETY: `new` was never handed to the table, so no other thread has seen it
                // and it is still solely ours to free.
                drop(unsafe { new.into_owned() });
                return Ok(Stored::Cancelled);
            }
            Some(Some(entered)) => Some(entered),
            None => None,
        };
        // A load or an insert-if-absent keeps a live entry in place (for a load: an insert made
        // during it), not an expired one.
        let keep = |old: &Node<K, V>| keep_live && !self.is_expired(old);
        // SAFETY: `new` was just allocated under `guard` and nobody else has seen it; its key
        // hashes to `hash`.
        let inserted = unsafe { self.table.insert(hash, new, keep, &guard) };
        drop(entered);
        match inserted {
            Inserted::Full { seen } => {
                // The key's bucket is full (see `crate::buckets`): the entry is evicted at once,
                // as a policy that declined it would: written, then evicted.
                self.stats.record(Event::Insert);
                self.stats.record(Event::Eviction);
                // SAFETY: not linked (`Full`) and in no slot: ours, and valid until freed below.
                self.notify(unsafe { new.deref() }, EvictionCause::Evicted);
                // SAFETY: not linked and in no slot (`Full`), so ours; `seen` from the table.
                unsafe { free_unlinked(new, seen, &guard) };
                return Ok(Stored::Linked);
            }
            Inserted::Kept { seen } => {
                // SAFETY: not linked and in no slot (`Kept`), so ours; `seen` from the table.
                unsafe { free_unlinked(new, seen, &guard) };
                return Ok(Stored::Kept);
            }
            Inserted::New => {
                // A key the ghost remembers was evicted too soon: it skips the small queue.
                // The mutant counts first, with Relaxed: the order a loom model found wrong.
                #[cfg(strata_mutant = "count_first")]
                let before = shard.counters.entries.fetch_add(1, Ordering::Relaxed);
                // SAFETY: just linked, the node has never been queued: its queue reference is
                // ours.
                let token = unsafe { QueueRef::new(new, &guard) };
                // The `ignored_ghost` mutant forgets the ghost: every new key enters the small
                // queue. The cache stays within its bounds and answers correctly; only the
                // victims change, which the oracle in `verify/tests/oracle.rs` must catch (see
                // `scripts/loom.sh --mutants`).
                let remembered = !cfg!(strata_mutant = "ignored_ghost")
                    && self
                        .ghost
                        .contains(hash, shard.counters.ghost_clock.load(Ordering::Relaxed));
                if remembered {
                    shard.lower_rider_allowance(weight * policy::ALLOWANCE_PER_GHOST_HIT);
                }
                // Main's weight as this insert sees it: the shard's, less the small queue's
                // (whose dead entries make main look lighter, by at most a write's worth each).
                let main_weight = self
                    .weights
                    .weight(shard)
                    .saturating_sub(self.weights.small(shard));
                let entrance =
                    policy::entrance(remembered, main_weight, weight, shard.rider_allowance());
                if entrance == Entrance::Rider {
                    // Not yet queued, so no queue step reads the bit before it is set; a reader
                    // may touch the node first (see `policy::entrance` on why that is harmless).
                    token.node().meta.fetch_or(node::RIDER, Ordering::Relaxed);
                }
                self.enqueue(shard, token, weight, entrance, None);
                // Counted only once queued, with AcqRel: of two racing writers, the one that
                // counts last sees the full total and, through the acquire, the other's entry
                // ready in its queue, so it always finds something to evict and the bound holds
                // once writers stop (a loom model found the Relaxed, count-first order losing
                // this). An eviction may now uncount the entry first: the counters are signed.
                #[cfg(not(strata_mutant = "count_first"))]
                let before = shard.counters.entries.fetch_add(1, Ordering::AcqRel);
                self.weights.add(shard, weight);
                // Keys spread evenly over the shards, so this shard's count, times the number
                // of shards, is the table's load as this insert sees it: no other counter read.
                let in_shard = signed(before.wrapping_add(1));
                self.table.grow_if_overloaded(in_shard, self.shards.len());
            }
            Inserted::Replaced(old) => {
                // SAFETY: returned by the table under `guard`.
                let old = unsafe { old.deref() };
                let old_weight = u64::from(old.weight);
                // An overwrite counts as a use: the new node will leave the small queue for main.
                // SAFETY: `new` is linked and still ours to describe; nobody has read its
                // frequency yet that this could confuse.
                let _ = unsafe { new.deref() }.touch();
                self.trim_small(shard, &guard);
                // SAFETY: as for a new entry.
                let token = unsafe { QueueRef::new(new, &guard) };
                self.enqueue(shard, token, weight, Entrance::Small, Some(old_weight));
                self.weights.add(shard, weight);
                self.weights.sub(shard, old_weight);
                self.notify(old, EvictionCause::Replaced);
            }
        }
        self.stats.record(Event::Insert);
        self.evict_while_over(shard, &guard);
        Ok(Stored::Linked)
    }

    /// Walks the whole table, one run (a bucket, or the entries between two sentinels of the
    /// split-ordered list) per guard, and
    /// removes every live entry for which `judge` names a cause; returns how many it removed.
    pub(crate) fn remove_where(
        &self,
        mut judge: impl FnMut(&Node<K, V>, u64) -> Option<EvictionCause>,
    ) -> usize {
        let mut removed = 0;
        let mut run = Some(0);
        while let Some(bucket) = run {
            let guard = epoch::pin();
            let now = self.ticks.now();
            let mut marked = false;
            run = self.table.for_each_live_in_run(bucket, &guard, |node| {
                if let Some(cause) = judge(node, now) {
                    if node.mark_removed(&guard) {
                        self.account_removal(node, cause);
                        removed += 1;
                        marked = true;
                    }
                }
            });
            if marked {
                self.table.purge_run(bucket, &guard);
            }
        }
        removed
    }

    /// Places a node that was just linked in its shard's queues, giving it their reference:
    /// as `entrance` says (see [`policy::entrance`]), or in none at all in an unbounded cache
    /// (which never evicts).
    /// `replaces`: the weight of the entry the node replaces, still counted (`None` for a new
    /// key, which adds an entry to the count).
    pub(crate) fn enqueue(
        &self,
        shard: &Shard<Node<K, V>>,
        token: QueueRef<'_, K, V>,
        weight: u64,
        entrance: Entrance,
        replaces: Option<u64>,
    ) {
        // The entry is counted after this: judge the bounds as they will be then.
        let may_evict = || {
            Weights::count(shard) + u64::from(replaces.is_none()) > shard.max_entries
                || (self.weights.weight(shard) + weight).saturating_sub(replaces.unwrap_or(0))
                    > shard.max_weight
        };
        let Some(queues) = &shard.queues else {
            token.release_with(IN_MAIN);
            return;
        };
        if entrance == Entrance::Small {
            self.weights.add_small(shard, weight);
            for _ in 0..SMALL_PUSH_ATTEMPTS {
                if queues.small.push(token.as_ptr()).is_ok() {
                    token.placed();
                    return;
                }
                // The insert that fills the ring may also be the one that takes the cache over
                // its bound: then the entry popped to make room is judged as an eviction step
                // would judge it, not moved on to main unread.
                self.pop_small(shard, token.guard(), false, may_evict());
            }
            // Other writers keep the ring full: place the entry in main instead.
            self.weights.sub_small(shard, weight);
        }
        // A rider takes room main has: placed as if the cache had room (see `policy::entrance`).
        self.promote(shard, token, may_evict() && entrance != Entrance::Rider);
    }
}

impl<K, V, S> Drop for Inner<K, V, S> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can reach the table or the queues. The table's
        // walk gives up its reference to every linked node, the queues' drain theirs to every
        // queued one; each node is found once through each reference it still has.
        unsafe { self.table.release_linked() };
        for shard in self.shards.iter() {
            let Some(queues) = &shard.queues else {
                continue;
            };
            let small = std::iter::from_fn(|| queues.small.pop());
            for ptr in small.chain(queues.main.drain()) {
                // SAFETY: as above; a queued pointer is a node not yet retired (its queue still
                // held a reference), in one queue slot.
                unsafe { node::release_at_drop(ptr, Owner::Queue) };
            }
        }
    }
}
