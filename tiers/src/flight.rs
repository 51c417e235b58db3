//! Single-flight loading across the stack: concurrent `get_or_load` calls that miss one key
//! share one lower-tier lookup and one loader run, and every caller gets its outcome, value or
//! error alike (N callers against a dead backend wait one timeout, not N).
//!
//! A write or invalidation of a key *detaches* its flight when it begins and again when it ends:
//! callers that arrive after the write began do not wait for a value read before it, and
//! callers that arrive after it returned do not join a load that began during it (which may
//! have read the old value from a tier the write had not reached yet; the stack checker in
//! `verify/` found exactly that).

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, Mutex, MutexGuard};

use strata_tier::KeyPattern;
use tokio::sync::Notify;

const SHARDS: usize = 16;

/// What a loader's failure becomes: shared by every caller of the flight.
pub(crate) type SharedError = Arc<dyn Error + Send + Sync + 'static>;

enum State<V> {
    Loading,
    Done(Result<V, SharedError>),
    /// The leader was cancelled or panicked: a follower takes over.
    Abandoned,
}

pub(crate) struct Flight<V> {
    state: Mutex<State<V>>,
    settled: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<V: Clone> Flight<V> {
    /// Waits for the leader: `Some(outcome)`, or `None` if it gave up and the caller should
    /// join again.
    pub(crate) async fn wait(&self) -> Option<Result<V, SharedError>> {
        loop {
            let notified = self.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match &*lock(&self.state) {
                State::Loading => {}
                State::Done(outcome) => return Some(outcome.clone()),
                State::Abandoned => return None,
            }
            notified.await;
        }
    }

    fn settle(&self, state: State<V>) {
        *lock(&self.state) = state;
        self.settled.notify_waiters();
    }
}

type Shard<V> = Mutex<HashMap<Box<str>, Arc<Flight<V>>, ahash::RandomState>>;

/// The loads in flight of one cache.
pub(crate) struct Flights<V> {
    shards: Box<[Shard<V>]>,
    hasher: ahash::RandomState,
}

/// What a caller that missed must do.
pub(crate) enum Role<'a, V: Clone> {
    /// Load, then [`Leader::complete`].
    Leader(Leader<'a, V>),
    /// Wait for this flight.
    Follower(Arc<Flight<V>>),
}

impl<V: Clone> Flights<V> {
    pub(crate) fn new() -> Self {
        Flights {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(ahash::RandomState::new())))
                .collect(),
            hasher: ahash::RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> &Shard<V> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// Joins the flight for `key`, starting one if none is in the air.
    pub(crate) fn join(&self, key: &str) -> Role<'_, V> {
        let shard = self.shard(key);
        let mut map = lock(shard);
        if let Some(flight) = map.get(key) {
            return Role::Follower(Arc::clone(flight));
        }
        let flight = Arc::new(Flight {
            state: Mutex::new(State::Loading),
            settled: Notify::new(),
        });
        map.insert(key.into(), Arc::clone(&flight));
        Role::Leader(Leader {
            shard,
            key: Some(key.into()),
            flight,
        })
    }

    /// A write of `key` began: later callers start a new flight.
    pub(crate) fn detach(&self, key: &str) {
        lock(self.shard(key)).remove(key);
    }

    /// An invalidation of `pattern` (`None`: everything) began.
    pub(crate) fn detach_matching(&self, pattern: Option<&KeyPattern>) {
        for shard in self.shards.iter() {
            lock(shard).retain(|key, _| pattern.is_some_and(|p| !p.matches(key)));
        }
    }
}

/// The caller that loads a key. Dropping it without [`complete`](Self::complete) (a panic, a
/// cancelled future) abandons the flight, and a follower takes over.
pub(crate) struct Leader<'a, V: Clone> {
    shard: &'a Shard<V>,
    /// `None` once settled.
    key: Option<Box<str>>,
    flight: Arc<Flight<V>>,
}

impl<V: Clone> Leader<'_, V> {
    /// Hands the outcome to every follower.
    pub(crate) fn complete(mut self, outcome: Result<V, SharedError>) {
        self.settle(State::Done(outcome));
    }

    fn settle(&mut self, state: State<V>) {
        if let Some(key) = self.key.take() {
            {
                let mut map = lock(self.shard);
                if map.get(&key).is_some_and(|f| Arc::ptr_eq(f, &self.flight)) {
                    map.remove(&key);
                }
            }
            self.flight.settle(state);
        }
    }
}

impl<V: Clone> Drop for Leader<'_, V> {
    fn drop(&mut self) {
        self.settle(State::Abandoned);
    }
}
