//! The invalidation bus: every write through a [`RedisTier`](crate::RedisTier) publishes what it
//! invalidated on the namespace's channel, and every subscriber applies other instances'
//! messages to its cache's L1.

mod message;
mod subscriber;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use redis::Cmd;
use strata_tier::Invalidation;

pub(crate) use message::Message;
pub(crate) use subscriber::{spawn_subscriber, Feed, SubscriberSetup};

/// The publishing side: who this tier is, and how it publishes.
pub(crate) struct Publisher {
    pub(crate) origin: u64,
    generation: AtomicU64,
    pub(crate) channel: String,
    /// `PUBLISH`, or `SPUBLISH` on a cluster with sharded pub/sub.
    command: &'static str,
}

impl Publisher {
    pub(crate) fn new(channel: String, sharded: bool) -> Self {
        Publisher {
            origin: random_origin(),
            generation: AtomicU64::new(0),
            channel,
            command: if sharded { "SPUBLISH" } else { "PUBLISH" },
        }
    }

    /// The command that tells the other instances about `events`.
    pub(crate) fn publish(&self, events: Vec<Invalidation>) -> Cmd {
        let message = Message {
            origin: self.origin,
            generation: self.generation.fetch_add(1, Relaxed) + 1,
            sent_at_micros: now_micros(),
            events,
        };
        let mut cmd = redis::cmd(self.command);
        cmd.arg(&self.channel).arg(message.encode());
        cmd
    }
}

/// A per-handle identity, random enough that two processes (or two handles in one process)
/// do not share it.
fn random_origin() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(now_micros() as u128);
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    hasher.write_u64(COUNTER.fetch_add(1, Relaxed));
    hasher.finish()
}

pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
