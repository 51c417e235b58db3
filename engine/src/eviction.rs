//! The S3-FIFO eviction engine: small-FIFO steps, the main CLOCK hand, promotion and the
//! main ring's growth, and the bookkeeping of every entry that leaves.

use std::hash::{BuildHasher, Hash};

use crate::inner::Inner;
use crate::listener::EvictionCause;
use crate::main_queue::MainQueue;
use crate::node::{self, Node, QueueRef, IN_MAIN};
use crate::policy::{self, MainVisit, SmallExit, Victim};
use crate::shard::Shard;
use crate::stats::Event;
use crate::sync::epoch::{Guard, Shared};
use crate::sync::Ordering;

/// Slots of a freshly grown main ring that the growing writer tries for its own entry (the
/// other writers' hands may be filling them already).
const GROWN_SLOTS_TRIED: usize = 8;

/// What the main hand does at a slot it passes ([`Inner::judge_main`]).
pub(crate) enum Pass {
    /// Leaves the entry in its slot.
    Keep,
    /// Takes the slot; then evicts its entry for the cause given (`None`: the entry was dead).
    Take(Option<EvictionCause>),
}

/// What [`Inner::grow_main`] did.
pub(crate) enum Growth {
    /// The ring grew and the entry took one of the new slots.
    Placed,
    /// The ring grew (this thread or another), but the entry still needs a slot.
    Grown,
    /// The ring cannot grow: it has a slot for every entry the count bound admits.
    Full,
}

impl<K, V, S> Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    /// Called by writes that leave a dead entry behind (a replacement, a removal) and evict
    /// nothing. While a shard fills, its small ring has room for every entry; once the shard has
    /// been full, eviction keeps the small FIFO at about its share, but these writes do not
    /// evict, so their dead entries would pile up in the queues to a ring's worth (the shard's
    /// entries) beyond the bounds. Past twice the share, such a write takes one step of the
    /// small FIFO: it releases the dead entries at the head and moves the first live one on to
    /// main, whose hand takes the first free or dead slot it meets (releasing a dead one). The
    /// cache is within its bounds here, so nothing is evicted for it.
    pub(crate) fn trim_small(&self, shard: &Shard<Node<K, V>>, guard: &Guard) {
        if shard.counters.filled.load(Ordering::Relaxed)
            && self.weights.small(shard) >= policy::SMALL_SLACK.saturating_mul(shard.small_target)
        {
            self.pop_small(shard, guard, false, false);
        }
    }

    /// Runs eviction steps while the cache is over a bound: first up to a budget of steps by the
    /// policy, then forced ones that evict whatever the hands meet, so that every insert leaves
    /// the cache within its bounds. Forced steps go on while they find entries to evict (one heavy
    /// entry may need many light victims; each such step removes one entry, so this ends), and
    /// stop after a budget of steps that find none (entries over the bound that other writers are
    /// still linking: those writers evict for themselves once they count them). A queue with
    /// nothing ready hands the step to the other one.
    pub(crate) fn evict_while_over(&self, shard: &Shard<Node<K, V>>, guard: &Guard) {
        if !self.weights.over_capacity(shard) {
            return;
        }
        if !shard.counters.filled.load(Ordering::Relaxed) {
            shard.counters.filled.store(true, Ordering::Relaxed);
        }
        for _ in 0..policy::EVICTION_BUDGET {
            self.eviction_step(shard, guard, false);
            if !self.weights.over_capacity(shard) {
                return;
            }
        }
        let mut idle = 0;
        while idle < policy::EVICTION_BUDGET && self.weights.over_capacity(shard) {
            if !self.eviction_step(shard, guard, true) {
                idle += 1;
            }
        }
    }

    /// One eviction step from the queue the policy names, or from the other if that one has
    /// nothing ready. Returns whether either met a live entry.
    pub(crate) fn eviction_step(
        &self,
        shard: &Shard<Node<K, V>>,
        guard: &Guard,
        forced: bool,
    ) -> bool {
        match policy::next_victim(self.weights.small(shard), shard.small_target) {
            Victim::Small => {
                self.pop_small(shard, guard, forced, false) || self.main_step(shard, guard, forced)
            }
            Victim::Main => {
                self.main_step(shard, guard, forced) || self.pop_small(shard, guard, forced, false)
            }
        }
    }

    /// Takes the small queue's oldest live entry and promotes or evicts it (`forced`: evicts it
    /// even if it was read). Entries that died while queued (replaced or removed since) free
    /// nothing: they are released on the way without counting as the step, so that a hot key's
    /// overwrites cannot use up an insert's eviction budget. One call pops at most
    /// [`policy::DEAD_PER_STEP`] entries and returns `false` if none of them was live (the caller
    /// then turns to main). `filling`: the caller's own entry, not counted yet, will take the
    /// cache over its bound, so the step judges as if it were over already.
    pub(crate) fn pop_small(
        &self,
        shard: &Shard<Node<K, V>>,
        guard: &Guard,
        forced: bool,
        filling: bool,
    ) -> bool {
        let Some(queues) = &shard.queues else {
            return false;
        };
        for _ in 0..policy::DEAD_PER_STEP {
            let Some(ptr) = queues.small.pop() else {
                return false;
            };
            // SAFETY: a pointer in the queue is one of the node's two references, so the node is
            // alive, and popping made that reference ours; it was pushed under some guard and is
            // retired only after being released, which is after `guard` was pinned.
            let token = unsafe { QueueRef::new(Shared::from(ptr.cast_const()), guard) };
            let node = token.node();
            self.weights.sub_small(shard, u64::from(node.weight));
            if !node.is_live(guard) {
                // Dead while queued: the token's drop gives the reference up.
                continue;
            }
            let meta = node.meta.load(Ordering::Relaxed);
            let over = filling || self.weights.over_capacity(shard);
            if self.is_expired(node) {
                self.retire_taken(token, Some(EvictionCause::Expired));
            } else if !forced && policy::small_exit(meta, over) == SmallExit::Promote {
                if over {
                    // Read while in the small queue: evidence that it needs its room.
                    shard.lower_rider_allowance(
                        u64::from(node.weight) * policy::ALLOWANCE_PER_SMALL_HIT,
                    );
                }
                // Main judges the entry afresh: it must be read again there to be spared.
                while node.cool() > 0 {}
                self.promote(shard, token, over);
                return true;
            } else if let Some(hash) = self.retire_taken(token, Some(EvictionCause::Evicted)) {
                // Evicted unread: the small queue caught nothing with the room it had.
                shard.raise_rider_allowance(
                    u64::from(node.weight) * policy::ALLOWANCE_PER_SMALL_EVICTION,
                );
                let now = shard.counters.ghost_clock.fetch_add(1, Ordering::Relaxed) + 1;
                self.ghost.insert(hash, now);
            }
            return true;
        }
        false
    }

    /// Places the node of `token` in the main CLOCK: in a free slot or, if `may_evict` (the
    /// cache is, or is about to be, over a bound), the slot of a cold victim the hand evicts. If
    /// the ring is full of live entries while the cache has room, the ring grows. Past a bounded
    /// number of steps it evicts whatever it meets.
    pub(crate) fn promote(
        &self,
        shard: &Shard<Node<K, V>>,
        token: QueueRef<'_, K, V>,
        may_evict: bool,
    ) {
        let Some(queues) = &shard.queues else { return };
        let main = &queues.main;
        let guard = token.guard();
        token.node().meta.fetch_or(IN_MAIN, Ordering::Relaxed);
        let mut grown = false;
        for step in 0..policy::PROMOTE_STEPS {
            if step == policy::PROMOTE_STEPS / 2 && !may_evict {
                // Half the steps passed only live entries the cache has room for: the ring is
                // full, so it grows (if its count bound allows), and the hand looks on.
                match Self::grow_main(shard, main, &token) {
                    Growth::Placed => return token.placed(),
                    Growth::Grown => grown = true,
                    Growth::Full => {}
                }
            }
            let forced = step >= policy::PROMOTE_STEPS / 2 && !grown;
            let slot = main.advance();
            let current = slot.load(Ordering::Acquire);
            // SAFETY: a non-null slot holds a queue reference, so the node is alive; if another
            // hand takes it meanwhile, it is retired no earlier than `guard` drops.
            let pass = match unsafe { current.as_ref() } {
                None => Pass::Take(None),
                Some(occupant) => self.judge_main(occupant, may_evict, forced, guard),
            };
            let Pass::Take(evict) = pass else { continue };
            if slot
                .compare_exchange(current, token.as_ptr(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                token.placed();
                if !current.is_null() {
                    // SAFETY: our CAS took the slot's reference to `current` from the queue.
                    let taken = unsafe { QueueRef::new(Shared::from(current.cast_const()), guard) };
                    self.retire_taken(taken, evict);
                }
                return;
            }
        }
        // Other hands kept winning the slots. A cache with room grows its ring once more rather
        // than lose the entry; otherwise the entry cannot be placed, so it is evicted (and the
        // token's drop gives up the reference of a node that never entered main).
        if !may_evict && matches!(Self::grow_main(shard, main, &token), Growth::Placed) {
            return token.placed();
        }
        self.evict(token.node(), EvictionCause::Evicted, guard);
    }

    /// Doubles `shard`'s main ring, unless it already has a slot for every entry the count
    /// bound admits, and places the node of `token` in one of the first new slots that no other
    /// hand has filled yet ([`Growth::Placed`]: the caller then marks the token placed).
    pub(crate) fn grow_main(
        shard: &Shard<Node<K, V>>,
        main: &MainQueue<Node<K, V>>,
        token: &QueueRef<'_, K, V>,
    ) -> Growth {
        let len = main.len();
        if len as u64 >= shard.max_entries {
            return Growth::Full;
        }
        if let Some(slots) = main.grow(len) {
            let placed = slots.iter().take(GROWN_SLOTS_TRIED).any(|slot| {
                slot.compare_exchange(
                    std::ptr::null_mut(),
                    token.as_ptr(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            });
            if placed {
                return Growth::Placed;
            }
        }
        if main.len() > len {
            Growth::Grown
        } else {
            Growth::Full
        }
    }

    /// Moves the main CLOCK hand to the next live entry: an expired or cold one is evicted and its
    /// slot freed; a warm one is spared and cooled (`forced`: evicted all the same). Free slots
    /// and dead entries (whose slots it frees) free no capacity, so passing them does not end
    /// the step; it passes at most a few of them, or when `forced` up to a whole revolution: a
    /// ring sized for more entries than a weight bound admits is mostly free, and a forced step
    /// must still reach an entry. Returns `false` if it met no live entry.
    pub(crate) fn main_step(&self, shard: &Shard<Node<K, V>>, guard: &Guard, forced: bool) -> bool {
        let Some(queues) = &shard.queues else {
            return false;
        };
        let main = &queues.main;
        let limit = if forced {
            main.len()
        } else {
            policy::FREE_SLOTS_PER_STEP
        };
        let mut passed = 0;
        loop {
            let slot = main.advance();
            let current = slot.load(Ordering::Acquire);
            if !current.is_null() {
                // SAFETY: as in `promote`.
                let occupant = unsafe { &*current };
                let live = occupant.is_live(guard);
                let Pass::Take(evict) = self.judge_main(occupant, true, forced, guard) else {
                    return true;
                };
                if slot
                    .compare_exchange(
                        current,
                        std::ptr::null_mut(),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
                {
                    // SAFETY: our CAS took the slot's reference.
                    let taken = unsafe { QueueRef::new(Shared::from(current.cast_const()), guard) };
                    self.retire_taken(taken, evict);
                }
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

    /// The main hand passes `occupant` (see [`policy::main_visit`]): whether its slot is to be
    /// taken (the entry is dead, or expired, or to be evicted) and what then befalls the entry.
    /// A warm entry is cooled here. The entry is evicted only by the hand that takes its slot,
    /// after taking it (see [`Inner::retire_taken`]).
    pub(crate) fn judge_main(
        &self,
        occupant: &Node<K, V>,
        may_evict: bool,
        forced: bool,
        guard: &Guard,
    ) -> Pass {
        if !occupant.is_live(guard) {
            return Pass::Take(None);
        }
        let meta = occupant.meta.load(Ordering::Relaxed);
        if self.is_expired(occupant) {
            return Pass::Take(Some(EvictionCause::Expired));
        }
        match policy::main_visit(meta, may_evict, forced) {
            MainVisit::Leave => Pass::Keep,
            MainVisit::Spare => {
                occupant.cool();
                Pass::Keep
            }
            MainVisit::Evict => Pass::Take(Some(EvictionCause::Evicted)),
        }
    }

    /// Gives up the queue reference `taken` (just popped, or taken from a main slot) and then, if
    /// `evict` names a cause, evicts its entry; returns what [`Inner::evict`] did. In this order the table's release, if the evict unlinks
    /// the node, retires the whole node at once: one deferred destruction, where the other
    /// order defers the contents' drop and then the shell's free. The node stays valid under the
    /// guard either way (the table's reference, then the epoch, keep it), and `evict` reads its
    /// contents only after winning its mark.
    fn retire_taken(&self, taken: QueueRef<'_, K, V>, evict: Option<EvictionCause>) -> Option<u64> {
        let (node, guard) = (taken.node(), taken.guard());
        drop(taken);
        self.evict(node, evict?, guard)
    }

    /// Removes a live node from the table for the policy (eviction or expiry). Returns the key's
    /// hash if this call did it (`None` if someone removed or replaced the node first).
    pub(crate) fn evict(
        &self,
        node: &Node<K, V>,
        cause: EvictionCause,
        guard: &Guard,
    ) -> Option<u64> {
        if !node.mark_removed(guard) {
            return None;
        }
        self.account_removal(node, cause);
        let hash = node::hash_of(node.order());
        self.table.purge_node(hash, node, guard);
        Some(hash)
    }

    /// Bookkeeping for a node this thread just marked removed: counters, statistics, listener.
    pub(crate) fn account_removal(&self, node: &Node<K, V>, cause: EvictionCause) {
        let shard = self.shards.of_meta(node.meta.load(Ordering::Relaxed));
        shard.counters.entries.fetch_sub(1, Ordering::Relaxed);
        self.weights.sub(shard, u64::from(node.weight));
        match cause {
            EvictionCause::Evicted => self.stats.record(Event::Eviction),
            EvictionCause::Expired => self.stats.record(Event::Expiration),
            EvictionCause::Removed | EvictionCause::Replaced => {}
        }
        self.notify(node, cause);
    }

    /// Tells the listener that `node`'s entry left (the caller performed its removal). A
    /// listener that panics is caught, counted ([`CacheStats::listener_panics`]) and never called
    /// again, as moka does: the cache's bookkeeping around the call (queues, counters, the other
    /// entries to evict) goes on as if it had returned.
    ///
    /// [`CacheStats::listener_panics`]: crate::CacheStats::listener_panics
    pub(crate) fn notify(&self, node: &Node<K, V>, cause: EvictionCause) {
        let Some(listener) = &self.listener else {
            return;
        };
        if self
            .listener_disabled
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let call = || listener(node.key(), node.value(), cause);
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).is_err() {
            self.listener_disabled
                .store(true, std::sync::atomic::Ordering::Relaxed);
            self.stats.record(Event::ListenerPanic);
        }
    }
}

#[cfg(all(test, not(strata_loom)))]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::sync::epoch;

    /// A hot key overwritten while the cache fills leaves a run of dead entries at the head of
    /// the small queue. One step releases a bounded number of them, not the whole run.
    #[test]
    pub(crate) fn a_small_queue_step_releases_a_bounded_number_of_dead_entries() {
        let cache = Cache::<u64, u64>::new(1000);
        let overwrites = 2 * policy::DEAD_PER_STEP;
        for i in 0..=overwrites as u64 {
            cache.insert(0, i);
        }
        let inner = &*cache.inner;
        let shard = inner.shards.of_hash(inner.hash(&0u64));
        let small = &shard
            .queues
            .as_ref()
            .expect("a bounded cache has queues")
            .small;
        // Every overwrite left its predecessor queued; the live entry is the newest.
        assert_eq!(small.len(), overwrites + 1);

        let guard = epoch::pin();
        assert!(
            !inner.pop_small(shard, &guard, false, false),
            "no live entry within the bound"
        );
        assert_eq!(small.len(), overwrites + 1 - policy::DEAD_PER_STEP);
        assert!(!inner.pop_small(shard, &guard, false, false));
        assert_eq!(small.len(), 1);
        // The next step reaches the live entry and promotes or evicts it: the queue is empty.
        assert!(inner.pop_small(shard, &guard, false, false));
        assert_eq!(small.len(), 0);
        assert_eq!(cache.get(&0), Some(overwrites as u64));
    }
}
