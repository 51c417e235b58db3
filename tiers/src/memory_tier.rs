//! An in-memory lower tier: for tests, examples, and as a shared in-process L2 between caches.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use strata_tier::{Health, KeyPattern, Lookup, Tier, TierError};

/// A lower tier backed by a `HashMap` behind a mutex. Honours TTLs (an expired entry is a miss
/// and is dropped when read); unbounded unless built with [`with_max_entries`](Self::with_max_entries).
#[derive(Debug)]
pub struct MemoryTier {
    name: String,
    max_entries: usize,
    entries: Mutex<HashMap<String, (Bytes, Option<Instant>)>>,
}

impl MemoryTier {
    /// An empty tier reporting itself as `name`.
    pub fn new(name: impl Into<String>) -> Self {
        MemoryTier {
            name: name.into(),
            max_entries: usize::MAX,
            entries: Mutex::new(HashMap::new()),
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Bytes, Option<Instant>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
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

    /// The raw bytes under `key` (for tests that inspect or damage what is stored).
    pub fn raw(&self, key: &str) -> Option<Bytes> {
        self.lock().get(key).map(|(bytes, _)| bytes.clone())
    }

    /// Stores raw bytes under `key` with no expiry, bypassing any framing (to plant damage).
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

#[async_trait]
impl Tier for MemoryTier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &str) -> Lookup {
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

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<(), TierError> {
        let mut entries = self.lock();
        if entries.len() >= self.max_entries && !entries.contains_key(key) {
            return Err(TierError::Unavailable(format!(
                "memory tier full at {} entries",
                self.max_entries
            )));
        }
        let deadline = ttl.map(|ttl| Instant::now() + ttl);
        entries.insert(key.to_owned(), (value, deadline));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, TierError> {
        Ok(self.lock().remove(key).is_some())
    }

    async fn delete_matching(&self, pattern: &KeyPattern) -> Result<u64, TierError> {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|key, _| !pattern.matches(key));
        Ok((before - entries.len()) as u64)
    }

    async fn clear(&self) -> Result<(), TierError> {
        self.lock().clear();
        Ok(())
    }

    async fn health(&self) -> Health {
        Health::Healthy
    }
}
