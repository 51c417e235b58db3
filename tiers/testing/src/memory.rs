//! An in-memory lower tier: for tests, examples, and as a shared in-process L2 between caches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use strata_tier::{
    Capabilities, Health, Invalidation, InvalidationSink, KeyPattern, Lookup, OpenFuture, Stored,
    Subscription, Tier, TierError, TierFactory, WriteIntent,
};

type Entries = HashMap<String, (Bytes, Option<Instant>)>;

/// One subscriber: the handle it subscribed through, its subscription's id, its sink.
type Subscriber = (u64, u64, Arc<dyn InvalidationSink>);

/// What handles of one storage share: the entries and who listens for invalidations.
struct Storage {
    entries: Mutex<Entries>,
    sinks: Mutex<Vec<Subscriber>>,
    next_id: AtomicU64,
}

/// A lower tier backed by a `HashMap` behind a mutex.
///
/// Honours TTLs (an expired entry is a miss and is dropped when read), stores fills only where
/// the key is absent, and is unbounded unless built with
/// [`with_max_entries`](Self::with_max_entries). Handles made with [`peer`](Self::peer) share
/// the entries and stand for other processes: an update or invalidation through one handle is
/// delivered to the subscribers of every *other* handle, as a Redis tier's pub/sub does.
pub struct MemoryTier {
    name: String,
    id: u64,
    max_entries: usize,
    storage: Arc<Storage>,
    closed: AtomicBool,
}

impl MemoryTier {
    /// An empty tier reporting itself as `name`.
    pub fn new(name: impl Into<String>) -> Self {
        MemoryTier {
            name: name.into(),
            id: 0,
            max_entries: usize::MAX,
            storage: Arc::new(Storage {
                entries: Mutex::new(HashMap::new()),
                sinks: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
            }),
            closed: AtomicBool::new(false),
        }
    }

    /// An empty tier that refuses writes of new keys beyond `max_entries` with
    /// [`TierError::Unavailable`].
    pub fn with_max_entries(name: impl Into<String>, max_entries: usize) -> Self {
        MemoryTier {
            max_entries,
            ..MemoryTier::new(name)
        }
    }

    /// Another handle on the same entries, standing for another process: it receives the
    /// invalidations made through this handle and the others, and they receive its own.
    pub fn peer(&self) -> MemoryTier {
        MemoryTier {
            name: self.name.clone(),
            id: self.storage.next_id.fetch_add(1, Ordering::Relaxed),
            max_entries: self.max_entries,
            storage: Arc::clone(&self.storage),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.storage
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn check_open(&self) -> Result<(), TierError> {
        if self.closed.load(Ordering::Acquire) {
            Err(TierError::Closed)
        } else {
            Ok(())
        }
    }

    /// Tells the other handles' subscribers.
    fn publish(&self, event: Invalidation) {
        let sinks: Vec<_> = self
            .storage
            .sinks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(handle, _, _)| *handle != self.id)
            .map(|(_, _, sink)| Arc::clone(sink))
            .collect();
        for sink in sinks {
            sink.invalidate(event.clone());
        }
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.lock()
            .values()
            .filter(|(_, deadline)| deadline.is_none_or(|d| d > now))
            .count()
    }

    /// Whether it holds no live entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The remaining lifetime of `key`: `None` if absent, `Some(None)` if it has no expiry.
    pub fn ttl_of(&self, key: &str) -> Option<Option<Duration>> {
        let now = Instant::now();
        let entries = self.lock();
        let (_, deadline) = entries.get(key)?;
        match deadline {
            None => Some(None),
            Some(d) if *d > now => Some(Some(*d - now)),
            Some(_) => None,
        }
    }

    /// The raw bytes under `key`, expired or not (for tests that inspect what is stored).
    pub fn raw(&self, key: &str) -> Option<Bytes> {
        self.lock().get(key).map(|(bytes, _)| bytes.clone())
    }

    /// Stores raw bytes under `key` with no expiry, bypassing any framing (to plant damage or
    /// an old value).
    pub fn put_raw(&self, key: &str, bytes: Bytes) {
        self.lock().insert(key.to_owned(), (bytes, None));
    }

    /// Every live key.
    pub fn keys(&self) -> Vec<String> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(_, (_, deadline))| deadline.is_none_or(|d| d > now))
            .map(|(key, _)| key.clone())
            .collect()
    }
}

impl std::fmt::Debug for MemoryTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTier")
            .field("name", &self.name)
            .field("handle", &self.id)
            .field("entries", &self.len())
            .finish()
    }
}

#[async_trait]
impl Tier for MemoryTier {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_fill_if_absent()
            .with_invalidation_events()
    }

    async fn get(&self, key: &str) -> Lookup {
        if let Err(closed) = self.check_open() {
            return Lookup::Degraded(closed);
        }
        let mut entries = self.lock();
        match entries.get(key) {
            Some((bytes, deadline)) if deadline.is_none_or(|d| d > Instant::now()) => {
                Lookup::Hit(bytes.clone())
            }
            Some(_) => {
                entries.remove(key);
                Lookup::Miss
            }
            None => Lookup::Miss,
        }
    }

    async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        intent: WriteIntent,
    ) -> Result<Stored, TierError> {
        self.check_open()?;
        let now = Instant::now();
        {
            let mut entries = self.lock();
            let live = entries
                .get(key)
                .is_some_and(|(_, deadline)| deadline.is_none_or(|d| d > now));
            if intent == WriteIntent::Fill && live {
                return Ok(Stored::Kept);
            }
            if entries.len() >= self.max_entries && !entries.contains_key(key) {
                return Err(TierError::Unavailable(format!(
                    "memory tier full at {} entries",
                    self.max_entries
                )));
            }
            let deadline = ttl.map(|ttl| now.checked_add(ttl));
            match deadline {
                // A lifetime past what `Instant` can hold never ends.
                Some(None) | None => entries.insert(key.to_owned(), (value, None)),
                Some(Some(at)) => entries.insert(key.to_owned(), (value, Some(at))),
            };
        }
        if intent == WriteIntent::Update {
            self.publish(Invalidation::Key(key.to_owned()));
        }
        Ok(Stored::Written)
    }

    async fn delete(&self, key: &str) -> Result<bool, TierError> {
        self.check_open()?;
        let removed = self.lock().remove(key).is_some();
        self.publish(Invalidation::Key(key.to_owned()));
        Ok(removed)
    }

    async fn delete_matching(&self, pattern: &KeyPattern) -> Result<u64, TierError> {
        self.check_open()?;
        let removed = {
            let mut entries = self.lock();
            let before = entries.len();
            entries.retain(|key, _| !pattern.matches(key));
            (before - entries.len()) as u64
        };
        self.publish(Invalidation::Pattern(pattern.clone()));
        Ok(removed)
    }

    async fn clear(&self) -> Result<(), TierError> {
        self.check_open()?;
        self.lock().clear();
        self.publish(Invalidation::Clear);
        Ok(())
    }

    async fn health(&self) -> Health {
        match self.check_open() {
            Ok(()) => Health::Healthy,
            Err(_) => Health::Down("closed".into()),
        }
    }

    fn subscribe(&self, sink: Arc<dyn InvalidationSink>) -> Option<Subscription> {
        let subscription = self.storage.next_id.fetch_add(1, Ordering::Relaxed);
        self.storage
            .sinks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((self.id, subscription, sink));
        let storage = Arc::downgrade(&self.storage);
        Some(Subscription::new(move || {
            if let Some(storage) = storage.upgrade() {
                storage
                    .sinks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|(_, id, _)| *id != subscription);
            }
        }))
    }

    async fn close(&self) -> Result<(), TierError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

/// Opens `memory://NAME?max_entries=N` tiers. Every URL naming the same `NAME` opens a
/// [`peer`](MemoryTier::peer) of one storage, so two caches configured with `memory://shared`
/// share it as they would share a Redis server.
#[derive(Default)]
pub struct MemoryFactory {
    opened: Mutex<HashMap<String, Arc<MemoryTier>>>,
}

impl TierFactory for MemoryFactory {
    fn schemes(&self) -> &[&'static str] {
        &["memory"]
    }

    fn open(&self, url: &str) -> OpenFuture {
        let opened = parse_memory_url(url).map(|(name, max_entries)| {
            let mut known = self.opened.lock().unwrap_or_else(|p| p.into_inner());
            let first = known.entry(name.clone()).or_insert_with(|| {
                Arc::new(match max_entries {
                    Some(max) => MemoryTier::with_max_entries(name, max),
                    None => MemoryTier::new(name),
                })
            });
            Arc::new(first.peer()) as Arc<dyn Tier>
        });
        Box::pin(async move { opened.map_err(Into::into) })
    }
}

/// `memory://NAME?max_entries=N` into its name and bound; anything else is an error.
fn parse_memory_url(url: &str) -> Result<(String, Option<usize>), String> {
    let rest = url
        .strip_prefix("memory://")
        .ok_or_else(|| format!("{url:?} is not a memory:// URL"))?;
    let (name, query) = match rest.split_once('?') {
        Some((name, query)) => (name, Some(query)),
        None => (rest, None),
    };
    let name = name.trim_end_matches('/');
    let name = if name.is_empty() { "memory" } else { name };
    let mut max_entries = None;
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        match pair.split_once('=') {
            Some(("max_entries", value)) => {
                max_entries = Some(value.parse().map_err(|e| {
                    format!("memory tier: query parameter max_entries={value:?}: {e}")
                })?);
            }
            _ => {
                return Err(format!(
                    "memory tier: unknown query parameter {pair:?} (known: max_entries)"
                ))
            }
        }
    }
    Ok((name.to_owned(), max_entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_urls() {
        assert_eq!(
            parse_memory_url("memory://l2").unwrap(),
            ("l2".into(), None)
        );
        assert_eq!(
            parse_memory_url("memory://l2?max_entries=5").unwrap(),
            ("l2".into(), Some(5))
        );
        assert_eq!(
            parse_memory_url("memory://").unwrap(),
            ("memory".into(), None)
        );
        assert!(parse_memory_url("memory://l2?max_entires=5").is_err());
        assert!(parse_memory_url("memory://l2?max_entries=lots").is_err());
        assert!(parse_memory_url("redis://l2").is_err());
    }
}
