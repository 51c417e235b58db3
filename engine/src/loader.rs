//! Single-flight loading: the bookkeeping that makes concurrent misses for one key run their
//! loader once.
//!
//! Only misses come here, so a small sharded map of in-flight loads behind mutexes keeps the hit
//! path free of locks. The first caller to miss becomes the *leader* and runs its loader; the
//! others *follow* its [`Flight`] and wait (blocking or as a future) for the value. A leader that
//! panics, fails or is dropped mid-load abandons its flight; its followers wake and retry, and one
//! of them becomes the next leader.
//!
//! A follower does not return the flight's value blindly: it may have joined after that value
//! entered the cache and was then overwritten or removed (the stress checker in `verify/` caught
//! exactly that), so it returns what the cache holds once the flight settles, and retries if the
//! entry is gone (see `Cache::try_get_or_insert_with`).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::{lock, Arc, Condvar, Mutex};

#[cfg(not(strata_loom))]
const SHARDS: usize = 16;
#[cfg(strata_loom)]
const SHARDS: usize = 2;

enum State<V> {
    Loading(Vec<Waker>),
    Done(V),
    Abandoned,
}

/// One in-flight load that followers wait on.
pub(crate) struct Flight<V> {
    state: Mutex<State<V>>,
    settled: Condvar,
}

impl<V: Clone> Flight<V> {
    fn new() -> Self {
        Flight {
            state: Mutex::new(State::Loading(Vec::new())),
            settled: Condvar::new(),
        }
    }

    fn settle(&self, outcome: State<V>) {
        let wakers = match std::mem::replace(&mut *lock(&self.state), outcome) {
            State::Loading(wakers) => wakers,
            _ => Vec::new(),
        };
        self.settled.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Blocks until the leader settles: `Some(value)` if it loaded one, `None` if it gave up.
    pub(crate) fn wait(&self) -> Option<V> {
        let mut state = lock(&self.state);
        loop {
            match &*state {
                State::Loading(_) => {
                    state = self
                        .settled
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                State::Done(value) => return Some(value.clone()),
                State::Abandoned => return None,
            }
        }
    }

    fn poll_settled(&self, cx: &mut Context<'_>) -> Poll<Option<V>> {
        let mut state = lock(&self.state);
        match &mut *state {
            State::Loading(wakers) => {
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
            State::Done(value) => Poll::Ready(Some(value.clone())),
            State::Abandoned => Poll::Ready(None),
        }
    }
}

/// A future that resolves when a flight settles (see [`Flight::wait`]).
pub(crate) struct FlightWait<V> {
    pub(crate) flight: Arc<Flight<V>>,
}

impl<V: Clone> Future for FlightWait<V> {
    type Output = Option<V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<V>> {
        self.flight.poll_settled(cx)
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
}

/// What a caller that missed must do.
pub(crate) enum Role<'a, K: Hash + Eq, V: Clone> {
    /// Run the loader, then [`Leader::complete`].
    Leader(Leader<'a, K, V>),
    /// Wait for this flight.
    Follower(Arc<Flight<V>>),
}

impl<K, V> Flights<K, V> {
    pub(crate) fn new() -> Self {
        Flights {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(shard_hasher())))
                .collect(),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    /// Joins the flight for `key`, starting one if none is in the air.
    pub(crate) fn join(&self, hash: u64, key: &K) -> Role<'_, K, V> {
        let shard = &self.shards[(hash >> 59) as usize % SHARDS];
        let mut map = lock(shard);
        if let Some(flight) = map.get(key) {
            return Role::Follower(Arc::clone(flight));
        }
        let flight = Arc::new(Flight::new());
        map.insert(key.clone(), Arc::clone(&flight));
        Role::Leader(Leader {
            shard,
            key: Some(key.clone()),
            flight,
        })
    }
}

/// The caller that runs the loader for a key. Dropping it without [`complete`](Self::complete)
/// (a panic, an error, a cancelled future) abandons the flight and wakes the followers.
pub(crate) struct Leader<'a, K: Hash + Eq, V: Clone> {
    shard: &'a Shard<K, V>,
    /// `None` once settled.
    key: Option<K>,
    flight: Arc<Flight<V>>,
}

impl<K: Hash + Eq, V: Clone> Leader<'_, K, V> {
    /// Hands `value` to every follower, after it is in the cache.
    pub(crate) fn complete(mut self, value: V) {
        self.settle(State::Done(value));
    }

    fn settle(&mut self, outcome: State<V>) {
        if let Some(key) = self.key.take() {
            {
                let mut map = lock(self.shard);
                if map.get(&key).is_some_and(|f| Arc::ptr_eq(f, &self.flight)) {
                    map.remove(&key);
                }
            }
            self.flight.settle(outcome);
        }
    }
}

impl<K: Hash + Eq, V: Clone> Drop for Leader<'_, K, V> {
    fn drop(&mut self) {
        self.settle(State::Abandoned);
    }
}
