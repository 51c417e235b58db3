//! The one leader/follower core behind every single-flight entry point: the synchronous and
//! async loaders, their by-reference and `optionally_` forms, the entry API and the placeholder
//! guard.
//!
//! [`Cache::find_or_lead`] is the loop: read the cache; on a miss, join the key's flight; as a
//! follower, wait for the flight's outcome and take it or retry; as the leader, look once more
//! and hand the [`Leader`] back. [`Cache::load`] adds running the loader and settling the flight.
//! Both are `async fn`s that wait on a [`FlightWait`]. The async loaders await them; the
//! synchronous ones pass [`Waiting::Block`], under which every wait blocks the thread and is ready
//! at once, and drive them with [`run_blocking`], which polls once
//! ([`load_blocking`](Cache::load_blocking)). So the sync and async forms differ only in how a
//! follower waits, and in how the leader's loader is called. (The synchronous forms answer a hit
//! before building the future, which would otherwise double a hit's cost.)
//!
//! Every loader is, underneath, a fallible loader that may decline: it yields
//! `Result<Option<(V, ttl)>, E>` ([`Loaded`]). A follower takes the flight's outcome only if it
//! can answer with it: an error only if its own error type is the leader's, "nothing" only if it
//! is an `optionally_` caller (`accept_none`); otherwise it retries, and may lead.

use std::borrow::{Borrow, Cow};
use std::convert::Infallible;
use std::future::{ready, Future};
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

use crate::cache::Cache;
use crate::inner::{Mode, Stored};
use crate::loader::{FlightWait, Leader, Outcome, Role, SharedError, Waiting};
use crate::stats::Event;
use crate::sync::epoch::{self};

/// What a loader produced: a value and its time to live (`None`: the cache's default), or
/// nothing (`None`: the `optionally_` loaders' "do not cache").
pub(crate) type Loaded<V> = Option<(V, Option<Duration>)>;

/// What a caller of [`Cache::load`] gets.
pub(crate) struct Got<V> {
    pub(crate) value: V,
    /// This call's own value went into the cache as the key's entry.
    pub(crate) fresh: bool,
}

/// How [`Cache::find_or_lead`] ended.
pub(crate) enum Found<'a, K: Hash + Eq, V: Clone, E> {
    /// Without leading: a value (from the cache or a flight), a flight's shared "nothing", or a
    /// flight's shared error.
    Done(Result<Option<V>, Arc<E>>),
    /// This caller leads the key's flight, which must now be settled through the leader.
    Lead(Leader<'a, K, V>),
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The leader/follower loop: the value if the cache has it, else the outcome of the flight
    /// this caller followed, else the lead of a new flight (the cache having been looked at once
    /// more after joining, so a value that landed meanwhile is returned instead).
    pub(crate) async fn find_or_lead<E>(
        &self,
        hash: u64,
        key: &K,
        waiting: Waiting,
        accept_none: bool,
    ) -> Found<'_, K, V, E>
    where
        E: Send + Sync + 'static,
    {
        let inner = &*self.inner;
        let leader = loop {
            if let Some(value) = self.get_hashed(hash, key) {
                return Found::Done(Ok(Some(value)));
            }
            let (flight, late) = match inner.flights.join(hash, key) {
                Role::Leader(leader) => break leader,
                Role::Follower(flight, late) => (flight, late),
            };
            let outcome = FlightWait { flight, waiting }.await;
            if let Some(done) = self.follow(hash, key, outcome, late, accept_none) {
                return Found::Done(done);
            }
        };
        // A value may have landed between our miss and our joining.
        if let Some(value) = self.peek_hashed(hash, key) {
            // The mutant hands the value found to the followers, as the engine once did.
            #[cfg(strata_mutant = "shared_peek")]
            {
                leader.publish();
                leader.complete(value.clone(), true);
            }
            #[cfg(not(strata_mutant = "shared_peek"))]
            leader.found_in_cache();
            return Found::Done(Ok(Some(value)));
        }
        Found::Lead(leader)
    }

    /// A whole single-flight load: [`find_or_lead`](Self::find_or_lead), then, as the leader,
    /// `init` and the flight's settling. `key` is borrowed for the lookups and owned (cloned if
    /// borrowed) only to be stored. `init` yields `None` only if `accept_none`.
    pub(crate) async fn load<E, I, F>(
        &self,
        hash: u64,
        key: Cow<'_, K>,
        waiting: Waiting,
        accept_none: bool,
        init: I,
    ) -> Result<Option<Got<V>>, Arc<E>>
    where
        I: FnOnce() -> F,
        F: Future<Output = Result<Loaded<V>, E>>,
        E: Send + Sync + 'static,
    {
        let leader = match self.find_or_lead(hash, &key, waiting, accept_none).await {
            Found::Done(done) => {
                return done.map(|v| {
                    v.map(|value| Got {
                        value,
                        fresh: false,
                    })
                })
            }
            Found::Lead(leader) => leader,
        };
        match init().await {
            Ok(Some((value, ttl))) => {
                let ttl = ttl.or(self.inner.time_to_live);
                Ok(Some(self.store_loaded(
                    hash,
                    key.into_owned(),
                    value,
                    ttl,
                    leader,
                )))
            }
            Ok(None) => {
                debug_assert!(accept_none, "only optionally_ loaders decline");
                leader.decline();
                Ok(None)
            }
            Err(error) => Err(fail(leader, error)),
        }
    }

    /// [`load`](Self::load) for the synchronous loaders, with [`Waiting::Block`] and a
    /// synchronous `init`. A hit is answered before the core's future is built (building and
    /// polling it doubled the cost of a hit); a miss counts once, in the core's own lookup.
    pub(crate) fn load_blocking<E>(
        &self,
        hash: u64,
        key: Cow<'_, K>,
        accept_none: bool,
        init: impl FnOnce() -> Result<Loaded<V>, E>,
    ) -> Result<Option<Got<V>>, Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        if let Some(value) = self.hit_by_ref(hash, &*key) {
            return Ok(Some(Got {
                value,
                fresh: false,
            }));
        }
        let init = || ready(init());
        run_blocking(self.load(hash, key, Waiting::Block, accept_none, init))
    }

    /// [`load_blocking`](Self::load_blocking) for a borrowed key: a hit allocates nothing (the
    /// key is not cloned); a miss makes the owned key and takes the by-value path.
    pub(crate) fn load_by_ref_blocking<Q, E>(
        &self,
        key: &Q,
        accept_none: bool,
        init: impl FnOnce() -> Result<Loaded<V>, E>,
    ) -> Result<Option<Got<V>>, Arc<E>>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
        E: Send + Sync + 'static,
    {
        let hash = self.inner.hash(key);
        if let Some(value) = self.hit_by_ref(hash, key) {
            return Ok(Some(Got {
                value,
                fresh: false,
            }));
        }
        let init = || ready(init());
        let key = Cow::Owned(key.to_owned());
        run_blocking(self.load(hash, key, Waiting::Block, accept_none, init))
    }

    /// The async form of [`load_by_ref_blocking`](Self::load_by_ref_blocking).
    pub(crate) async fn load_by_ref<Q, E, I, F>(
        &self,
        key: &Q,
        accept_none: bool,
        init: I,
    ) -> Result<Option<Got<V>>, Arc<E>>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
        I: FnOnce() -> F,
        F: Future<Output = Result<Loaded<V>, E>>,
        E: Send + Sync + 'static,
    {
        let hash = self.inner.hash(key);
        if let Some(value) = self.hit_by_ref(hash, key) {
            return Ok(Some(Got {
                value,
                fresh: false,
            }));
        }
        let key = Cow::Owned(key.to_owned());
        self.load(hash, key, Waiting::Wake, accept_none, init).await
    }

    /// What a follower returns for its flight's outcome; `None` to try again. `late`: it
    /// joined after the leader published (see `loader`'s module docs).
    fn follow<E>(
        &self,
        hash: u64,
        key: &K,
        outcome: Outcome<V>,
        late: bool,
        accept_none: bool,
    ) -> Option<Result<Option<V>, Arc<E>>>
    where
        E: Send + Sync + 'static,
    {
        match outcome {
            // Joined after the value went in: only what the cache holds now is safe.
            Outcome::Value { .. } if late => self.peek_hashed(hash, key).map(|v| Ok(Some(v))),
            // Joined before: the loaded value was current at some point during this call;
            // what the cache holds now may be newer.
            Outcome::Value {
                value,
                stored: true,
            } => Some(Ok(Some(self.peek_hashed(hash, key).unwrap_or(value)))),
            Outcome::Value {
                value,
                stored: false,
            } => Some(Ok(Some(value))),
            Outcome::Failed(error) => error.downcast::<E>().ok().map(Err),
            Outcome::Declined => accept_none.then_some(Ok(None)),
            Outcome::InCache | Outcome::Abandoned => None,
        }
    }

    /// The leader's insert of its value: only where the key is absent, and not at all if a
    /// removal cancelled the flight meanwhile (see `loader`'s module docs). Settles the flight.
    pub(crate) fn store_loaded(
        &self,
        hash: u64,
        key: K,
        value: V,
        ttl: Option<Duration>,
        leader: Leader<'_, K, V>,
    ) -> Got<V> {
        let inner = &*self.inner;
        leader.publish();
        let (in_cache, fresh) =
            match inner.insert_as(hash, key, value.clone(), ttl, Mode::Load(&leader)) {
                Ok(Stored::Linked) => (true, true),
                // An insert made during the load stays; followers read it.
                Ok(Stored::Kept) => (true, false),
                // A removal during the load wins; too heavy to store. Every caller still gets
                // the value.
                Ok(Stored::Cancelled) | Err(_) => (false, false),
            };
        leader.complete(value.clone(), in_cache);
        Got { value, fresh }
    }

    /// A caller's first look, before the core: the value on a hit, counted as a hit; `None` on
    /// a miss, not counted (the core's own lookup, which follows, counts it).
    pub(crate) fn hit_by_ref<Q>(&self, hash: u64, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &*self.inner;
        let guard = epoch::pin();
        let value = inner
            .read(hash, key, &guard, true)
            .map(|n| n.value().clone());
        if value.is_some() {
            inner.stats.record(Event::Hit);
        }
        value
    }

    fn peek_hashed(&self, hash: u64, key: &K) -> Option<V> {
        let guard = epoch::pin();
        self.inner
            .read(hash, key, &guard, false)
            .map(|n| n.value().clone())
    }
}

/// Shares a loader's error with the flight's followers and returns it to the leader's caller.
fn fail<K: Hash + Eq, V: Clone, E: Send + Sync + 'static>(
    leader: Leader<'_, K, V>,
    error: E,
) -> Arc<E> {
    let error = Arc::new(error);
    let shared: SharedError = error.clone();
    leader.fail(shared);
    error
}

/// The value of a load that can neither fail nor decline.
pub(crate) fn certain<V>(loaded: Result<Option<Got<V>>, Arc<Infallible>>) -> Got<V> {
    match loaded {
        Ok(Some(got)) => got,
        Ok(None) => unreachable!("only optionally_ loaders decline"),
        Err(never) => match *never {},
    }
}

/// The outcome of a load that can fail but not decline.
pub(crate) fn fallible<V, E>(loaded: Result<Option<Got<V>>, Arc<E>>) -> Result<Got<V>, Arc<E>> {
    loaded.map(|got| got.expect("only optionally_ loaders decline"))
}

/// The outcome of a load that can decline but not fail.
pub(crate) fn optional<V>(loaded: Result<Option<Got<V>>, Arc<Infallible>>) -> Option<Got<V>> {
    match loaded {
        Ok(got) => got,
        Err(never) => match *never {},
    }
}

/// Runs a future built with [`Waiting::Block`] (whose waits block the thread, and whose loader,
/// if any, is synchronous) to completion: it is ready on its first poll.
pub(crate) fn run_blocking<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(&noop_waker()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("a blocking load returned Pending"),
    }
}

/// The vtable of [`noop_waker`]: every function ignores the (null) data pointer.
static NOOP_VTABLE: RawWakerVTable =
    RawWakerVTable::new(noop_clone, noop_wake, noop_wake, noop_wake);

/// # Safety
/// Any pointer (it is ignored).
unsafe fn noop_clone(_: *const ()) -> RawWaker {
    RawWaker::new(std::ptr::null(), &NOOP_VTABLE)
}

/// # Safety
/// Any pointer (it is ignored).
unsafe fn noop_wake(_: *const ()) {}

/// A waker that does nothing, without allocating (`Waker::noop` needs Rust 1.85; an `Arc`
/// behind a static was reported as leaked by valgrind).
fn noop_waker() -> Waker {
    // SAFETY: the vtable's functions uphold `RawWaker`'s contract trivially: they ignore the data
    // pointer, clone returns an equal waker, and wake / drop do nothing.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &NOOP_VTABLE)) }
}
