//! Single-flight loading: the bookkeeping that makes concurrent misses for one key run their
//! loader once, and hands every caller the flight's one outcome.
//!
//! Only misses come here, so a small sharded map of in-flight loads behind mutexes keeps the hit
//! path free of locks. The first caller to miss becomes the *leader* and runs its loader; the
//! others *follow* its [`Flight`] and wait (blocking or as a future) for the outcome:
//!
//! - **A value.** A follower that joined before the leader began inserting the value returns
//!   what the cache holds once the flight settles (the value, or a newer one written since), or
//!   the flight's value if it is not in the cache (too heavy, removed, cancelled as below): its
//!   call began before the value was written, so the value was current at some point during
//!   it. A follower that joined later may have missed a newer value that replaced the loaded
//!   one and was then evicted (the stress checker in `verify/` caught exactly that), so it
//!   returns only what the cache holds, and loads again if that is nothing.
//! - **An error.** Every follower gets the leader's error (shared behind an `Arc`), so N callers
//!   against a dead backend wait for one failure, not N in turn. A follower whose error type
//!   differs from the leader's (two call sites racing on one key) retries instead.
//! - **Declined.** The leader's loader chose not to produce a value (the `optionally_` loaders):
//!   nothing is cached, and every follower that can answer "nothing" gets `None`; the others
//!   (a plain `get_or_insert_with` cannot) retry, and one of them becomes the next leader.
//! - **Already there.** The leader, looking once more after it joined, found a value in the
//!   cache and loaded nothing. Followers look again rather than take what the leader found: one
//!   that joined later may have missed a newer value written and evicted since.
//! - **Abandoned.** The leader panicked, its future was dropped, or its
//!   [`PlaceholderGuard`](crate::PlaceholderGuard) was dropped without a value: followers wake
//!   and retry, and one of them becomes the next leader.
//!
//! Followers wait either by blocking their thread or as a future woken by the leader
//! ([`Waiting`]); everything else about a flight is the same for both, and the one loop that
//! leads or follows lives in [`crate::load_core`].
//!
//! **Cancellation.** A `remove`, `clear` or `retain` that runs while a load of its key is in
//! flight *cancels* the flight: it marks it and takes it out of the map, so callers arriving
//! later start a new load. The leader inserts its value only where the key is absent (never
//! over an insert made during the load), and links it into the table while holding the
//! flight's shard lock, after checking the mark under that lock ([`Gate`]). The canceller sets
//! the mark under the same lock *before* it removes from the table. So either the leader sees
//! the mark and inserts nothing, or its insert happened before the canceller took the lock,
//! and the canceller's removal, ordered after it by the lock, takes the entry out before the
//! removal returns: no read that starts after the removal returned sees the loaded value.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::{lock, Arc, AtomicUsize, Condvar, Mutex, Ordering};

#[cfg(not(strata_loom))]
const SHARDS: usize = 16;
#[cfg(strata_loom)]
const SHARDS: usize = 2;

/// A loader's error, shared by every caller of its flight. A plain `std` `Arc` even under loom:
/// it is handed over under the flight's lock and takes no part in the synchronisation.
pub(crate) type SharedError = std::sync::Arc<dyn Any + Send + Sync>;

/// How a flight ended, as its followers see it.
pub(crate) enum Outcome<V> {
    /// The leader's value; `stored` if it went into the cache.
    Value { value: V, stored: bool },
    /// The leader's error.
    Failed(SharedError),
    /// The leader's loader produced nothing: nothing cached.
    Declined,
    /// The leader found a value already in the cache, so it loaded nothing: look again. (It
    /// cannot hand over what it found: a follower may have joined after that value was
    /// replaced and the replacement evicted, and must not return the older value.)
    InCache,
    /// The leader gave up (panic, cancelled future, dropped placeholder guard): retry.
    Abandoned,
}

impl<V: Clone> Clone for Outcome<V> {
    fn clone(&self) -> Self {
        match self {
            Outcome::Value { value, stored } => Outcome::Value {
                value: value.clone(),
                stored: *stored,
            },
            Outcome::Failed(error) => Outcome::Failed(std::sync::Arc::clone(error)),
            Outcome::Declined => Outcome::Declined,
            Outcome::InCache => Outcome::InCache,
            Outcome::Abandoned => Outcome::Abandoned,
        }
    }
}

enum State<V> {
    Loading(Vec<Waker>),
    Settled(Outcome<V>),
}

struct FlightState<V> {
    state: State<V>,
    /// A removal of the key ran during the load (set under the shard lock).
    cancelled: bool,
    /// The leader is inserting (or has inserted) its value: a caller that joins from now on
    /// may have missed a newer value that replaced it and was then evicted, so it must not
    /// return the flight's value blindly.
    published: bool,
}

/// One in-flight load that followers wait on.
pub(crate) struct Flight<V> {
    inner: Mutex<FlightState<V>>,
    settled: Condvar,
}

impl<V: Clone> Flight<V> {
    fn new() -> Self {
        Flight {
            inner: Mutex::new(FlightState {
                state: State::Loading(Vec::new()),
                cancelled: false,
                published: false,
            }),
            settled: Condvar::new(),
        }
    }

    fn settle(&self, outcome: Outcome<V>) {
        let wakers = {
            let mut inner = lock(&self.inner);
            match std::mem::replace(&mut inner.state, State::Settled(outcome)) {
                State::Loading(wakers) => wakers,
                State::Settled(_) => Vec::new(),
            }
        };
        self.settled.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Blocks until the leader settles.
    pub(crate) fn wait(&self) -> Outcome<V> {
        let mut inner = lock(&self.inner);
        loop {
            match &inner.state {
                State::Loading(_) => {
                    inner = self
                        .settled
                        .wait(inner)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                State::Settled(outcome) => return outcome.clone(),
            }
        }
    }

    fn poll_settled(&self, cx: &mut Context<'_>) -> Poll<Outcome<V>> {
        let mut inner = lock(&self.inner);
        match &mut inner.state {
            State::Loading(wakers) => {
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
            State::Settled(outcome) => Poll::Ready(outcome.clone()),
        }
    }
}

/// How a follower waits for its flight to settle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// Blocks the calling thread (the synchronous loaders): the future below is then ready on
    /// its first poll.
    Block,
    /// Returns `Pending` and is woken by the leader (the async loaders).
    Wake,
}

/// A future that resolves when a flight settles, waiting as [`Waiting`] says.
pub(crate) struct FlightWait<V> {
    pub(crate) flight: Arc<Flight<V>>,
    pub(crate) waiting: Waiting,
}

impl<V: Clone> Future for FlightWait<V> {
    type Output = Outcome<V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<V>> {
        match self.waiting {
            Waiting::Block => Poll::Ready(self.flight.wait()),
            Waiting::Wake => self.flight.poll_settled(cx),
        }
    }
}

/// Random keys normally; fixed ones under loom, whose executions must replay identically.
fn shard_hasher() -> ahash::RandomState {
    #[cfg(not(strata_loom))]
    return ahash::RandomState::new();
    #[cfg(strata_loom)]
    return ahash::RandomState::with_seeds(1, 2, 3, 4);
}

type Shard<K, V> = Mutex<HashMap<K, Arc<Flight<V>>, ahash::RandomState>>;

/// The in-flight loads of one cache.
pub(crate) struct Flights<K, V> {
    shards: Box<[Shard<K, V>]>,
    /// Flights registered and not yet settled: removals skip the map while it is zero.
    active: AtomicUsize,
}

/// What a caller that missed must do.
pub(crate) enum Role<'a, K: Hash + Eq, V: Clone> {
    /// Run the loader, then [`Leader::complete`], [`Leader::fail`] or [`Leader::decline`].
    Leader(Leader<'a, K, V>),
    /// Wait for this flight; `true` if it joined after the leader published its value (see
    /// [`Leader::publish`]).
    Follower(Arc<Flight<V>>, bool),
}

impl<K, V> Flights<K, V> {
    pub(crate) fn new() -> Self {
        Flights {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(shard_hasher())))
                .collect(),
            active: AtomicUsize::new(0),
        }
    }

    fn shard(&self, hash: u64) -> &Shard<K, V> {
        &self.shards[(hash >> 59) as usize % SHARDS]
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    /// Joins the flight for `key`, starting one if none is in the air.
    pub(crate) fn join(&self, hash: u64, key: &K) -> Role<'_, K, V> {
        let shard = self.shard(hash);
        let mut map = lock(shard);
        if let Some(flight) = map.get(key) {
            let late = lock(&flight.inner).published;
            return Role::Follower(Arc::clone(flight), late);
        }
        let flight = Arc::new(Flight::new());
        map.insert(key.clone(), Arc::clone(&flight));
        // Counted under the shard lock, before the loader runs: a removal that misses this
        // count began before the load did.
        self.active.fetch_add(1, Ordering::SeqCst);
        Role::Leader(Leader {
            flights: self,
            shard,
            key: Some(key.clone()),
            flight,
        })
    }
}

impl<K: Hash + Eq, V> Flights<K, V> {
    /// A removal of `key` is about to run: cancels its flight, if one is in the air. Called
    /// *before* the removal touches the table (see the module docs).
    pub(crate) fn cancel<Q>(&self, hash: u64, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.active.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut map = lock(self.shard(hash));
        if let Some(flight) = map.remove(key) {
            lock(&flight.inner).cancelled = true;
        }
    }

    /// A removal of every key (`clear`, `retain`) is about to run: cancels every flight.
    pub(crate) fn cancel_all(&self) {
        if self.active.load(Ordering::SeqCst) == 0 {
            return;
        }
        for shard in self.shards.iter() {
            let mut map = lock(shard);
            for (_, flight) in map.drain() {
                lock(&flight.inner).cancelled = true;
            }
        }
    }
}

/// The caller that runs the loader for a key (or holds its placeholder guard). Dropping it
/// without settling (a panic, a cancelled future, a guard dropped unused) abandons the flight
/// and wakes the followers.
pub(crate) struct Leader<'a, K: Hash + Eq, V: Clone> {
    flights: &'a Flights<K, V>,
    shard: &'a Shard<K, V>,
    /// `None` once settled.
    key: Option<K>,
    flight: Arc<Flight<V>>,
}

/// Anything held for its `Drop` (a lock guard).
trait Held {}
impl<T> Held for T {}

/// The right to link a loaded value into the table, held while linking: see [`Gate`].
pub(crate) struct Entered<'a> {
    _held: Box<dyn Held + 'a>,
}

/// What the leader's insert passes through: [`enter`](Gate::enter) takes the flight's shard
/// lock and answers `None` if a removal cancelled the flight. The insert links its node while
/// holding what it got, and lets go before anything else (queues, eviction, listener).
pub(crate) trait Gate {
    fn enter(&self) -> Option<Entered<'_>>;
}

impl<K: Hash + Eq, V: Clone> Gate for Leader<'_, K, V> {
    fn enter(&self) -> Option<Entered<'_>> {
        let map = lock(self.shard);
        // The mutant ignores the cancel: a load puts back what a removal took out.
        if lock(&self.flight.inner).cancelled && !cfg!(strata_mutant = "load_over_remove") {
            return None;
        }
        Some(Entered {
            _held: Box::new(map),
        })
    }
}

impl<K: Hash + Eq, V: Clone> Leader<'_, K, V> {
    /// Marks the flight's value as about to enter the cache: call it right before inserting.
    /// Callers that join from then on treat the flight's value as possibly superseded.
    pub(crate) fn publish(&self) {
        lock(&self.flight.inner).published = true;
    }

    /// Hands the loaded value to every follower; `stored` says whether it is in the cache.
    pub(crate) fn complete(mut self, value: V, stored: bool) {
        self.settle(Outcome::Value { value, stored });
    }

    /// Hands the loader's error to every follower.
    pub(crate) fn fail(mut self, error: SharedError) {
        self.settle(Outcome::Failed(error));
    }

    /// Tells every follower that the leader found a value in the cache and loaded nothing:
    /// they look again.
    pub(crate) fn found_in_cache(mut self) {
        self.settle(Outcome::InCache);
    }

    /// Tells every follower that the loader produced nothing.
    pub(crate) fn decline(mut self) {
        self.settle(Outcome::Declined);
    }

    fn settle(&mut self, outcome: Outcome<V>) {
        if let Some(key) = self.key.take() {
            {
                let mut map = lock(self.shard);
                if map.get(&key).is_some_and(|f| Arc::ptr_eq(f, &self.flight)) {
                    map.remove(&key);
                }
            }
            self.flights.active.fetch_sub(1, Ordering::SeqCst);
            self.flight.settle(outcome);
        }
    }
}

impl<K: Hash + Eq, V: Clone> Drop for Leader<'_, K, V> {
    fn drop(&mut self) {
        self.settle(Outcome::Abandoned);
    }
}
