//! A custom tier written against `strata-tier` alone: one file per key in a directory, opened
//! from `dir:///path/to/dir?max_value_size=1MiB`. It keeps every promise of the `Tier`
//! contract (checked by `strata_testing::contract::check` in `tiers/tests/custom_tier.rs`).
//!
//! The file name is the key in hex (any key, any character, a fixed alphabet on disk); the file
//! holds the expiry (milliseconds since the Unix epoch, 0 for none) and then the value. Writes go
//! to a temporary file first and are renamed into place, so a reader never sees half a value.
//! Every file operation runs on tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_tier::{
    async_trait, Bytes, Health, KeyPattern, Lookup, OpenFuture, Stored, Tier, TierError,
    TierFactory, WriteIntent,
};

/// One file per key under a directory.
pub struct DirTier {
    dir: PathBuf,
    max_value_size: usize,
    closed: AtomicBool,
    /// Makes temporary file names unique.
    writes: AtomicU64,
}

impl DirTier {
    /// Opens (creating it if needed) the directory.
    pub fn open(dir: impl Into<PathBuf>, max_value_size: usize) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(DirTier {
            dir,
            max_value_size,
            closed: AtomicBool::new(false),
            writes: AtomicU64::new(0),
        })
    }

    fn path_of(&self, key: &str) -> PathBuf {
        self.dir.join(hex(key.as_bytes()))
    }

    fn check_open(&self) -> Result<(), TierError> {
        if self.closed.load(Ordering::Acquire) {
            Err(TierError::Closed)
        } else {
            Ok(())
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(name: &str) -> Option<String> {
    if !name.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..name.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(name.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn io(error: std::io::Error) -> TierError {
    TierError::backend(error)
}

/// Runs blocking file work off the runtime's worker threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TierError> + Send + 'static,
) -> Result<T, TierError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| TierError::Unavailable(format!("blocking task failed: {e}")))?
}

/// The value in `path` if it is there and unexpired; an expired file is deleted.
fn read_live(path: &Path) -> Result<Option<Bytes>, TierError> {
    let data = match std::fs::read(path) {
        Ok(data) => data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let Some((expiry, value)) = data.split_first_chunk::<8>() else {
        return Err(TierError::Corrupt(format!(
            "{} is truncated",
            path.display()
        )));
    };
    let expiry = u64::from_le_bytes(*expiry);
    if expiry != 0 && expiry <= now_millis() {
        let _ = std::fs::remove_file(path);
        return Ok(None);
    }
    Ok(Some(Bytes::copy_from_slice(value)))
}

#[async_trait]
impl Tier for DirTier {
    fn name(&self) -> &str {
        "dir"
    }

    async fn get(&self, key: &str) -> Lookup {
        if let Err(closed) = self.check_open() {
            return Lookup::Degraded(closed);
        }
        let path = self.path_of(key);
        Lookup::from_result(blocking(move || read_live(&path)).await)
    }

    async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        _intent: WriteIntent,
    ) -> Result<Stored, TierError> {
        // No insert-if-absent claimed (`capabilities` keeps its default), so a fill is stored
        // like an update; the cache undoes fills that race with writes.
        self.check_open()?;
        if value.len() > self.max_value_size {
            return Err(TierError::TooLarge {
                size: value.len(),
                limit: self.max_value_size,
            });
        }
        let expiry = match ttl {
            None => 0,
            // `now_millis` truncates, so the deadline is at most `ttl` after this call, never
            // later (rounding it up let a read 0.4 ms past the TTL see the entry); saturate.
            Some(ttl) => now_millis().saturating_add(ttl.as_millis().min(u64::MAX as u128) as u64),
        };
        let path = self.path_of(key);
        let temp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            self.writes.fetch_add(1, Ordering::Relaxed)
        ));
        blocking(move || {
            let mut data = Vec::with_capacity(8 + value.len());
            data.extend_from_slice(&expiry.to_le_bytes());
            data.extend_from_slice(&value);
            std::fs::write(&temp, &data).map_err(io)?;
            std::fs::rename(&temp, &path).map_err(io)?;
            Ok(Stored::Written)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool, TierError> {
        self.check_open()?;
        let path = self.path_of(key);
        blocking(move || {
            let live = read_live(&path).ok().flatten().is_some();
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(live),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(io(e)),
            }
        })
        .await
    }

    async fn delete_matching(&self, pattern: &KeyPattern) -> Result<u64, TierError> {
        self.check_open()?;
        let dir = self.dir.clone();
        let pattern = pattern.clone();
        blocking(move || {
            let mut removed = 0;
            for entry in std::fs::read_dir(&dir).map_err(io)? {
                let entry = entry.map_err(io)?;
                let name = entry.file_name();
                let Some(key) = name.to_str().and_then(unhex) else {
                    continue;
                };
                if pattern.matches(&key) {
                    let live = read_live(&entry.path()).ok().flatten().is_some();
                    match std::fs::remove_file(entry.path()) {
                        Ok(()) => removed += u64::from(live),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io(e)),
                    }
                }
            }
            Ok(removed)
        })
        .await
    }

    async fn clear(&self) -> Result<(), TierError> {
        self.delete_matching(&KeyPattern::prefix(""))
            .await
            .map(|_| ())
    }

    async fn health(&self) -> Health {
        if self.closed.load(Ordering::Acquire) {
            return Health::Down("closed".into());
        }
        match std::fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => Health::Healthy,
            Ok(_) => Health::Down(format!("{} is not a directory", self.dir.display())),
            Err(e) => Health::Down(format!("{}: {e}", self.dir.display())),
        }
    }

    async fn close(&self) -> Result<(), TierError> {
        // Every write was renamed into place before it returned: nothing to flush.
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

/// Opens `dir://` URLs: `dir:///abs/path` or `dir://relative/path`, with an optional
/// `max_value_size` in bytes (`?max_value_size=1048576`). Anything else in the query is
/// refused, so a typo cannot pass unnoticed.
pub struct DirFactory;

impl TierFactory for DirFactory {
    fn schemes(&self) -> &[&'static str] {
        &["dir"]
    }

    fn open(&self, url: &str) -> OpenFuture {
        let parsed = parse(url);
        Box::pin(async move {
            let (path, max_value_size) = parsed?;
            let tier = DirTier::open(path, max_value_size)?;
            Ok(Arc::new(tier) as Arc<dyn Tier>)
        })
    }
}

/// `dir://PATH?max_value_size=N` into its parts.
fn parse(url: &str) -> Result<(PathBuf, usize), String> {
    let rest = url
        .strip_prefix("dir://")
        .ok_or_else(|| format!("{url:?} is not a dir:// URL"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err(format!("{url:?} names no directory"));
    }
    let mut max_value_size = 1 << 20;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("max_value_size", n)) => {
                max_value_size = n
                    .parse()
                    .map_err(|e| format!("max_value_size={n:?}: {e}"))?;
            }
            _ => return Err(format!("unknown option {pair:?} (known: max_value_size)")),
        }
    }
    Ok((PathBuf::from(path), max_value_size))
}
