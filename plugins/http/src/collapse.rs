//! Request collapsing: concurrent misses for one key send one request upstream.
//!
//! The first caller leads; the others wait for its outcome. When the leader has stored a
//! *shared* entry, each waiter looks up its own key again (so it finds its own `Vary` variant,
//! or nothing) and checks what it finds against its own request like any lookup. Any
//! other outcome (uncacheable, private, too large, an upstream error, a cancelled leader)
//! sends every waiter upstream on its own, at once: a collapsed response is never handed to a
//! request it was not made for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// What a leader hands its waiters.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// A response was stored as a shared entry: look it up (under your own key).
    Stored,
    /// Go upstream yourself.
    Alone,
}

type Slot = watch::Receiver<Option<Outcome>>;

#[derive(Default)]
pub(crate) struct Collapser {
    inflight: Mutex<HashMap<String, (u64, Slot)>>,
    next_id: std::sync::atomic::AtomicU64,
}

pub(crate) enum Role {
    Leader(Leader),
    Follower(Slot),
}

/// The leading caller of a key; dropping it without [`Leader::finish`] releases the waiters
/// with [`Outcome::Alone`].
pub(crate) struct Leader {
    collapser: Arc<Collapser>,
    key: String,
    id: u64,
    sender: watch::Sender<Option<Outcome>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Collapser {
    /// Joins the flight for `key`, leading it if there is none.
    pub(crate) fn join(self: &Arc<Self>, key: &str) -> Role {
        let mut inflight = lock(&self.inflight);
        if let Some((_, slot)) = inflight.get(key) {
            return Role::Follower(slot.clone());
        }
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sender, receiver) = watch::channel(None);
        inflight.insert(key.to_owned(), (id, receiver));
        Role::Leader(Leader {
            collapser: Arc::clone(self),
            key: key.to_owned(),
            id,
            sender,
        })
    }

    /// Flights in progress.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.inflight).len()
    }
}

impl Leader {
    /// Releases the waiters with `outcome`.
    pub(crate) fn finish(self, outcome: Outcome) {
        self.sender.send_replace(Some(outcome));
        // Drop removes the flight.
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        {
            let mut inflight = lock(&self.collapser.inflight);
            if inflight
                .get(&self.key)
                .is_some_and(|(id, _)| *id == self.id)
            {
                inflight.remove(&self.key);
            }
        }
        if self.sender.borrow().is_none() {
            self.sender.send_replace(Some(Outcome::Alone));
        }
    }
}

/// Waits for the leader's outcome (`Alone` if it went away).
pub(crate) async fn wait(mut slot: Slot) -> Outcome {
    match slot.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().unwrap_or(Outcome::Alone),
        Err(_) => Outcome::Alone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dropped_leader_sends_its_waiters_alone_and_the_key_is_free_again() {
        let collapser = Arc::new(Collapser::default());
        let Role::Leader(leader) = collapser.join("k") else {
            panic!("first caller leads")
        };
        let Role::Follower(slot) = collapser.join("k") else {
            panic!("second caller follows")
        };
        drop(leader);
        assert!(matches!(wait(slot).await, Outcome::Alone));
        assert_eq!(collapser.len(), 0);
        assert!(matches!(collapser.join("k"), Role::Leader(_)));
    }
}
