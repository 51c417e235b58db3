//! Fences: what keeps a read that raced with a write from leaving the older value behind, in L1
//! or in a lower tier.
//!
//! A read that misses L1 fetches a value from a lower tier (or a loader) and then *fills* it
//! into L1 and the tiers above. If a `set`, `delete`, pattern invalidation or `clear` of the
//! same key ran meanwhile, the value read may be older than what the writer wrote, and a fill
//! would resurrect it. Every key with a read or write in flight therefore has a [`KeyState`]:
//!
//! - a *generation*, bumped when a write of the key starts and again when it ends;
//! - how many writes of it are running, and how many tier fills are in flight.
//!
//! A read notes the generation when it starts ([`Fences::begin_read`]). A fill goes ahead only
//! if the generation is unchanged, no write of the key is running and no running pattern
//! invalidation matches the key; the L1 fill is made under the state's lock, so a writer that
//! starts later writes L1 after it. A tier fill cannot be made under a lock, so it registers
//! itself ([`ReadTicket::begin_tier_fill`]), writes, and checks again: if a write started
//! meanwhile it undoes the fill with a delete. A writer waits, before it returns, until the
//! tier fills of its keys in flight have finished, so an undo always lands before the write
//! returns.
//!
//! States exist only while a read or write of the key is in flight, so unrelated keys never
//! share a fence: a write of one key, or a pattern that does not match it, never cancels
//! another key's fill. Pattern invalidations and clears bump only the in-flight keys they
//! match.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use strata_tier::KeyPattern;
use tokio::sync::Notify;

const SHARDS: usize = 64;

/// The least a writer waits for racing tier fills to settle (a fill and its undo each take at
/// most a tier timeout, so [`Fences::new`] is given a limit above twice the longest one).
pub(crate) const MIN_FILL_WAIT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct KeyState {
    generation: u64,
    /// Writes of this key that have started and not ended.
    writers: u32,
    /// Reads and writes holding this state alive.
    users: u32,
    /// Tier fills in flight.
    fills: u32,
    /// Wakes writers waiting for `fills` to reach zero.
    settled: Option<Arc<Notify>>,
    /// Wakes writers waiting for `writers` to reach zero (writes of one key take turns).
    write_done: Option<Arc<Notify>>,
}

type Shard = HashMap<Box<str>, KeyState, ahash::RandomState>;

/// The fences of one cache.
pub(crate) struct Fences {
    shards: Box<[Mutex<Shard>]>,
    hasher: ahash::RandomState,
    /// Pattern invalidations (and clears, as `None`) in progress.
    patterns: Mutex<Vec<(u64, Option<KeyPattern>)>>,
    active_patterns: AtomicUsize,
    next_pattern: AtomicU64,
    /// How long a writer waits for racing fills before it gives up (and has the caller mark
    /// the keys stale in every tier instead).
    fill_wait: Duration,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn covers(pattern: &Option<KeyPattern>, key: &str) -> bool {
    pattern.as_ref().is_none_or(|p| p.matches(key))
}

impl Fences {
    pub(crate) fn new(fill_wait: Duration) -> Self {
        Fences {
            fill_wait: fill_wait.max(MIN_FILL_WAIT),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(ahash::RandomState::new())))
                .collect(),
            hasher: ahash::RandomState::new(),
            patterns: Mutex::new(Vec::new()),
            active_patterns: AtomicUsize::new(0),
            next_pattern: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// Whether a pattern invalidation covering `key` is running. Called under a shard lock.
    fn pattern_running(&self, key: &str) -> bool {
        self.active_patterns.load(SeqCst) > 0
            && lock(&self.patterns).iter().any(|(_, p)| covers(p, key))
    }

    /// A read of `key` starts: the generation it must still see when it fills.
    pub(crate) fn begin_read<'a>(&'a self, key: &str) -> ReadTicket<'a> {
        let mut shard = lock(self.shard(key));
        let state = shard.entry(key.into()).or_default();
        state.users += 1;
        ReadTicket {
            fences: self,
            key: key.into(),
            seen: state.generation,
        }
    }

    /// A write of `key` starts, once any other write of it has finished: writes of one key
    /// take turns, so L1 and every tier see them in the same order. Fills of reads that began
    /// before [`WriteTicket::finish`] are dropped.
    pub(crate) async fn begin_write<'a>(&'a self, key: &str) -> WriteTicket<'a> {
        loop {
            let notify = {
                let mut shard = lock(self.shard(key));
                let state = shard.entry(key.into()).or_default();
                if state.writers == 0 {
                    state.users += 1;
                    state.writers += 1;
                    state.generation += 1;
                    return WriteTicket {
                        fences: self,
                        key: Some(key.into()),
                    };
                }
                Arc::clone(state.write_done.get_or_insert_with(Default::default))
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // The write we wait for may have ended before we registered.
            let still_busy = {
                let shard = lock(self.shard(key));
                shard.get(key).is_some_and(|state| {
                    state.writers > 0
                        && state
                            .write_done
                            .as_ref()
                            .is_some_and(|n| Arc::ptr_eq(n, &notify))
                })
            };
            if still_busy {
                notified.await;
            }
        }
    }

    /// A write of `key` that touches only this process's L1 (a remote invalidation) starts
    /// now, without waiting its turn: it needs no ordering with tier writes.
    pub(crate) fn begin_local_write<'a>(&'a self, key: &str) -> WriteTicket<'a> {
        let mut shard = lock(self.shard(key));
        let state = shard.entry(key.into()).or_default();
        state.users += 1;
        state.writers += 1;
        state.generation += 1;
        WriteTicket {
            fences: self,
            key: Some(key.into()),
        }
    }

    /// A pattern invalidation (`None`: a clear) starts. Fills of matching keys whose reads
    /// began before [`PatternTicket::finish`] are dropped; other keys are not touched.
    pub(crate) fn begin_pattern(&self, pattern: Option<KeyPattern>) -> PatternTicket<'_> {
        let id = self.next_pattern.fetch_add(1, SeqCst);
        lock(&self.patterns).push((id, pattern.clone()));
        self.active_patterns.fetch_add(1, SeqCst);
        self.bump_matching(&pattern);
        PatternTicket {
            fences: self,
            id: Some(id),
            pattern,
        }
    }

    fn bump_matching(&self, pattern: &Option<KeyPattern>) {
        for shard in self.shards.iter() {
            for (key, state) in lock(shard).iter_mut() {
                if covers(pattern, key) {
                    state.generation += 1;
                }
            }
        }
    }

    fn end_pattern(&self, id: u64) {
        lock(&self.patterns).retain(|(other, _)| *other != id);
        self.active_patterns.fetch_sub(1, SeqCst);
    }

    /// Releases one user of `key`'s state, dropping the state when nobody holds it.
    fn release(&self, key: &str, wrote: bool) {
        let mut shard = lock(self.shard(key));
        let Some(state) = shard.get_mut(key) else {
            debug_assert!(false, "a fence state vanished while held");
            return;
        };
        if wrote {
            state.generation += 1;
            state.writers -= 1;
            if state.writers == 0 {
                if let Some(notify) = state.write_done.take() {
                    notify.notify_waiters();
                }
            }
        }
        state.users -= 1;
        if state.users == 0 && state.fills == 0 {
            shard.remove(key);
        }
    }

    /// Waits until no tier fill of a key `covered` accepts is in flight; `false` if it gave up.
    async fn wait_for_fills(&self, covered: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + self.fill_wait;
        loop {
            let mut waiting = None;
            for shard in self.shards.iter() {
                let mut shard = lock(shard);
                let busy = shard
                    .iter_mut()
                    .find(|(key, state)| state.fills > 0 && covered(key));
                if let Some((_, state)) = busy {
                    waiting = Some(Arc::clone(
                        state.settled.get_or_insert_with(Default::default),
                    ));
                    break;
                }
            }
            let Some(notify) = waiting else { return true };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // The fill may have settled between the scan and `enable`: it took this `Notify`
            // out of its state when it did, so ours is still there only if it has not.
            if !self.still_waiting_on(&notify) {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                tracing::warn!(
                    "a tier fill did not settle within {:?}: its keys are skipped in every tier",
                    self.fill_wait
                );
                return false;
            }
        }
    }

    /// Whether some state still holds `notify` as its fills' wake-up (it is taken out when the
    /// fills reach zero).
    fn still_waiting_on(&self, notify: &Arc<Notify>) -> bool {
        self.shards.iter().any(|shard| {
            lock(shard).values().any(|state| {
                state
                    .settled
                    .as_ref()
                    .is_some_and(|held| Arc::ptr_eq(held, notify))
            })
        })
    }

    /// Keys with a read or write in flight (for tests: it returns to 0 when all finish).
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }
}

/// A read in flight: what decides whether its value may be filled anywhere.
pub(crate) struct ReadTicket<'a> {
    fences: &'a Fences,
    key: Box<str>,
    seen: u64,
}

impl ReadTicket<'_> {
    /// Whether a fill may go ahead now: no write or matching invalidation started since the
    /// read began, and none is running.
    fn clear_to_fill(&self, state: &KeyState) -> bool {
        state.generation == self.seen
            && state.writers == 0
            && !self.fences.pattern_running(&self.key)
    }

    /// Runs `fill` (the L1 insert) if no write or matching invalidation of the key started
    /// since the read began; returns whether it ran. Runs under the key's lock, so a write
    /// that starts after it writes L1 after it.
    pub(crate) fn fill_l1(&self, fill: impl FnOnce()) -> bool {
        let shard = lock(self.fences.shard(&self.key));
        let Some(state) = shard.get(&self.key) else {
            return false;
        };
        if !self.clear_to_fill(state) {
            return false;
        }
        fill();
        true
    }

    /// Whether the fence still holds (nothing wrote the key since the read began).
    #[cfg(test)]
    pub(crate) fn holds(&self) -> bool {
        let shard = lock(self.fences.shard(&self.key));
        shard
            .get(&self.key)
            .is_some_and(|state| self.clear_to_fill(state))
    }

    /// Registers a tier fill, if the fence holds: the fill writes the tier, then asks
    /// [`TierFill::holds`] and undoes itself if a write got in. Writers of the key wait for it.
    pub(crate) fn begin_tier_fill(&self) -> Option<TierFill<'_>> {
        let mut shard = lock(self.fences.shard(&self.key));
        let state = shard.get_mut(&self.key)?;
        if !self.clear_to_fill(state) {
            return None;
        }
        state.fills += 1;
        Some(TierFill { ticket: self })
    }
}

impl Drop for ReadTicket<'_> {
    fn drop(&mut self) {
        self.fences.release(&self.key, false);
    }
}

/// A tier fill in flight; dropping it lets waiting writers go.
pub(crate) struct TierFill<'a> {
    ticket: &'a ReadTicket<'a>,
}

impl TierFill<'_> {
    /// Whether the fence still holds after the fill's write (if not, the caller undoes it);
    /// if it does, runs `then` under the key's lock, so that no write of the key can start
    /// between the check and `then` (which clears a stale mark the write might set).
    pub(crate) fn holds_then(&self, then: impl FnOnce()) -> bool {
        let ticket = self.ticket;
        let shard = lock(ticket.fences.shard(&ticket.key));
        let holds = shard
            .get(&ticket.key)
            .is_some_and(|state| ticket.clear_to_fill(state));
        if holds {
            then();
        }
        holds
    }
}

impl Drop for TierFill<'_> {
    fn drop(&mut self) {
        let fences = self.ticket.fences;
        let key = &self.ticket.key;
        let mut shard = lock(fences.shard(key));
        if let Some(state) = shard.get_mut(key) {
            state.fills -= 1;
            if state.fills == 0 {
                if let Some(notify) = state.settled.take() {
                    notify.notify_waiters();
                }
            }
        }
    }
}

/// A write of one key in flight.
pub(crate) struct WriteTicket<'a> {
    fences: &'a Fences,
    /// `None` once finished.
    key: Option<Box<str>>,
}

impl WriteTicket<'_> {
    /// The write has reached every tier it will reach: waits for racing tier fills of the key
    /// to settle (each sees the write and undoes itself), then ends the write, bumping the
    /// generation again so that reads that began during it do not fill. The write stays
    /// registered while it waits: a read that starts meanwhile could otherwise find a racing
    /// fill's value in a tier before its undo and copy it into L1.
    ///
    /// Returns `false` if a fill did not settle in time: the caller must then mark the key
    /// stale in every tier, since the fill may still land.
    #[must_use = "an unsettled fill needs the key marked stale"]
    pub(crate) async fn finish(mut self) -> bool {
        let mut settled = true;
        if let Some(key) = self.key.as_deref() {
            settled = self.fences.wait_for_fills(|other| other == key).await;
        }
        if let Some(key) = self.key.take() {
            self.fences.release(&key, true);
        }
        settled
    }
}

impl Drop for WriteTicket<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.fences.release(&key, true);
        }
    }
}

/// A pattern invalidation or clear in flight.
pub(crate) struct PatternTicket<'a> {
    fences: &'a Fences,
    id: Option<u64>,
    pattern: Option<KeyPattern>,
}

impl PatternTicket<'_> {
    /// The invalidation has reached every tier: waits for racing tier fills of matching keys
    /// to settle (each undoes itself), then cancels fills of matching reads that began during
    /// it and ends it. It stays registered as running until then, for the reason given at
    /// [`WriteTicket::finish`].
    ///
    /// Returns `false` if a fill did not settle in time (see [`WriteTicket::finish`]).
    #[must_use = "an unsettled fill needs the pattern marked stale"]
    pub(crate) async fn finish(mut self) -> bool {
        let pattern = self.pattern.clone();
        let settled = self
            .fences
            .wait_for_fills(|key| covers(&pattern, key))
            .await;
        if let Some(id) = self.id.take() {
            // Bump while still registered as running, so no fill slips between the two.
            self.fences.bump_matching(&self.pattern);
            self.fences.end_pattern(id);
        }
        settled
    }
}

impl Drop for PatternTicket<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.fences.bump_matching(&self.pattern);
            self.fences.end_pattern(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_cancels_only_its_own_key() {
        let fences = Fences::new(MIN_FILL_WAIT);
        let a = fences.begin_read("a");
        let b = fences.begin_read("b");
        drop(fences.begin_local_write("a"));
        assert!(!a.fill_l1(|| ()));
        assert!(b.fill_l1(|| ()));
    }

    #[test]
    fn a_write_running_blocks_fills_of_reads_started_during_it() {
        let fences = Fences::new(MIN_FILL_WAIT);
        let write = fences.begin_local_write("k");
        let read = fences.begin_read("k");
        assert!(!read.holds());
        drop(write);
        // The write ended after the read began: the read may hold an older value.
        assert!(!read.fill_l1(|| ()));
        let later = fences.begin_read("k");
        assert!(later.fill_l1(|| ()));
    }

    #[test]
    fn patterns_cancel_matching_keys_only() {
        let fences = Fences::new(MIN_FILL_WAIT);
        let user = fences.begin_read("user:1");
        let other = fences.begin_read("order:1");
        let pattern = fences.begin_pattern(Some(KeyPattern::new("user:*").unwrap()));
        let during = fences.begin_read("user:2");
        assert!(!during.holds());
        assert!(other.holds());
        drop(pattern);
        assert!(!user.holds());
        assert!(!during.holds());
        assert!(other.fill_l1(|| ()));
        let clear = fences.begin_pattern(None);
        assert!(!other.holds());
        drop(clear);
    }

    #[test]
    fn states_are_dropped_when_nobody_holds_them() {
        let fences = Fences::new(MIN_FILL_WAIT);
        {
            let read = fences.begin_read("k");
            let _fill = read.begin_tier_fill().unwrap();
            let _write = fences.begin_local_write("j");
            assert_eq!(fences.tracked(), 2);
        }
        assert_eq!(fences.tracked(), 0);
    }

    #[tokio::test]
    async fn writes_of_one_key_take_turns() {
        let fences = Arc::new(Fences::new(MIN_FILL_WAIT));
        let first = fences.begin_write("k").await;
        let second = {
            let fences = Arc::clone(&fences);
            tokio::spawn(async move {
                let write = fences.begin_write("k").await;
                assert!(write.finish().await);
            })
        };
        let other = fences.begin_write("other").await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            !second.is_finished(),
            "a second write of the key did not wait"
        );
        assert!(other.finish().await);
        assert!(first.finish().await);
        tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the second write went ahead once the first finished")
            .unwrap();
        assert_eq!(fences.tracked(), 0);
    }

    #[tokio::test]
    async fn a_writer_waits_for_racing_tier_fills() {
        let fences = Arc::new(Fences::new(MIN_FILL_WAIT));
        let read = fences.begin_read("k");
        let fill = read.begin_tier_fill().unwrap();
        let write = fences.begin_write("k").await;
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let waiter = {
            let fences = Arc::clone(&fences);
            let finished = Arc::clone(&finished);
            tokio::spawn(async move {
                let write = fences.begin_write("k").await;
                assert!(write.finish().await);
                finished.store(true, SeqCst);
            })
        };
        drop(write);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !finished.load(SeqCst),
            "the writer returned with a fill in flight"
        );
        assert!(!fill.holds_then(|| ()));
        drop(fill);
        waiter.await.unwrap();
        assert!(finished.load(SeqCst));
    }
}
