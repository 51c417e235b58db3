//! Stale marks: what a tier may still hold after a write to it failed or was skipped.
//!
//! When `set` or `delete` of a key fails in a tier (an error, a timeout, an open breaker), the
//! tier may still hold the old value, and once L1's entry ends a read would find it there and
//! bring it back. The layer therefore marks the key *stale* in that tier: reads skip the tier
//! for that key (a degraded miss) until a later update or delete of the key succeeds there, or
//! until the tier's own TTL cap has passed (nothing written before the mark can outlive it). A
//! failed pattern invalidation marks the pattern, a failed clear the whole tier. Too many marked
//! keys collapse into one mark on the whole tier, so memory stays bounded when a tier is down.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use strata_tier::KeyPattern;

/// More marked keys than this become one mark on the whole tier.
const MAX_KEYS: usize = 65_536;

#[derive(Default)]
struct Marks {
    /// Key -> until when (`None`: until cleared).
    keys: HashMap<String, Option<Instant>>,
    patterns: Vec<(KeyPattern, Option<Instant>)>,
    /// The whole tier, until when.
    all: Option<Option<Instant>>,
}

pub(crate) struct StaleMarks {
    marks: Mutex<Marks>,
    /// Whether anything is marked, kept by every change under the lock: reads and successful
    /// writes of a tier with no marks (the usual case) take no lock.
    marked: AtomicBool,
    /// How long a mark lasts: the tier's TTL cap, if it has one.
    lasts: Option<Duration>,
}

fn live(until: &Option<Instant>, now: Instant) -> bool {
    until.is_none_or(|until| until > now)
}

impl StaleMarks {
    pub(crate) fn new(lasts: Option<Duration>) -> Self {
        StaleMarks {
            marks: Mutex::new(Marks::default()),
            marked: AtomicBool::new(false),
            lasts,
        }
    }

    fn lock(&self) -> Locked<'_> {
        Locked {
            marks: self.marks.lock().unwrap_or_else(|p| p.into_inner()),
            marked: &self.marked,
        }
    }

    /// Whether nothing is marked (without the lock). A mark made by a write that has returned
    /// is seen: the flag is set under the lock before the write's call returns.
    fn unmarked(&self) -> bool {
        !self.marked.load(Ordering::Acquire)
    }

    fn until(&self) -> Option<Instant> {
        self.lasts
            .and_then(|lasts| Instant::now().checked_add(lasts))
    }

    /// Whether the tier may hold a stale value of `key`.
    pub(crate) fn is_stale(&self, key: &str) -> bool {
        if self.unmarked() {
            return false;
        }
        let now = Instant::now();
        let mut marks = self.lock();
        if marks.is_empty() {
            return false;
        }
        if let Some(until) = marks.all {
            if live(&until, now) {
                return true;
            }
            marks.all = None;
        }
        marks.patterns.retain(|(_, until)| live(until, now));
        if marks.patterns.iter().any(|(p, _)| p.matches(key)) {
            return true;
        }
        match marks.keys.get(key) {
            Some(until) if live(until, now) => true,
            Some(_) => {
                marks.keys.remove(key);
                false
            }
            None => false,
        }
    }

    /// Whether anything is marked (for health).
    pub(crate) fn any(&self) -> bool {
        !self.unmarked()
    }

    pub(crate) fn mark_key(&self, key: &str) {
        let until = self.until();
        let mut marks = self.lock();
        match marks.all {
            // The whole tier is marked for good: this mark adds nothing.
            Some(None) => return,
            // An expired whole-tier mark no longer covers anything; a live one ends before
            // this key's mark would, so the key's mark is kept either way.
            Some(Some(all)) if all <= Instant::now() => marks.all = None,
            _ => {}
        }
        if marks.keys.len() >= MAX_KEYS {
            let now = Instant::now();
            marks.keys.retain(|_, until| live(until, now));
            if marks.keys.len() >= MAX_KEYS {
                marks.keys.clear();
                marks.all = Some(until);
                return;
            }
        }
        marks.keys.insert(key.to_owned(), until);
    }

    pub(crate) fn mark_pattern(&self, pattern: &KeyPattern) {
        let until = self.until();
        let mut marks = self.lock();
        if marks.patterns.len() >= 64 {
            marks.patterns.clear();
            marks.all = Some(until);
            return;
        }
        marks.patterns.push((pattern.clone(), until));
    }

    pub(crate) fn mark_all(&self) {
        let until = self.until();
        let mut marks = self.lock();
        marks.keys.clear();
        marks.patterns.clear();
        marks.all = Some(until);
    }

    /// An update or delete of `key` succeeded in the tier: it no longer holds an old value.
    pub(crate) fn clear_key(&self, key: &str) {
        if self.unmarked() {
            return;
        }
        let mut marks = self.lock();
        if !marks.keys.is_empty() {
            marks.keys.remove(key);
        }
    }

    /// A pattern invalidation succeeded: keys it matches hold no old value.
    pub(crate) fn clear_pattern(&self, pattern: &KeyPattern) {
        let mut marks = self.lock();
        marks.patterns.retain(|(p, _)| p != pattern);
        if pattern.as_str() == "*" {
            *marks = Marks::default();
        } else if !marks.keys.is_empty() {
            marks.keys.retain(|key, _| !pattern.matches(key));
        }
    }

    /// A clear succeeded: nothing old is left.
    pub(crate) fn clear_all(&self) {
        *self.lock() = Marks::default();
    }
}

impl Marks {
    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.patterns.is_empty() && self.all.is_none()
    }
}

/// The marks, locked; on unlock the `marked` flag is brought up to date.
struct Locked<'a> {
    marks: MutexGuard<'a, Marks>,
    marked: &'a AtomicBool,
}

impl Deref for Locked<'_> {
    type Target = Marks;

    fn deref(&self) -> &Marks {
        &self.marks
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Marks {
        &mut self.marks
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.marked.store(!self.marks.is_empty(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_patterns_and_all() {
        let marks = StaleMarks::new(None);
        assert!(!marks.is_stale("a"));
        marks.mark_key("a");
        assert!(marks.is_stale("a") && !marks.is_stale("b"));
        marks.clear_key("a");
        assert!(!marks.is_stale("a"));
        let users = KeyPattern::new("user:*").unwrap();
        marks.mark_pattern(&users);
        assert!(marks.is_stale("user:1") && !marks.is_stale("order:1"));
        marks.clear_pattern(&users);
        assert!(!marks.is_stale("user:1"));
        marks.mark_all();
        assert!(marks.is_stale("anything"));
        marks.clear_all();
        assert!(!marks.any());
    }

    #[test]
    fn marks_end_with_the_tiers_ttl_cap() {
        let marks = StaleMarks::new(Some(Duration::from_millis(20)));
        marks.mark_key("a");
        assert!(marks.is_stale("a"));
        std::thread::sleep(Duration::from_millis(30));
        assert!(!marks.is_stale("a"));
    }

    #[test]
    fn a_key_mark_is_kept_when_a_whole_tier_mark_has_expired() {
        let marks = StaleMarks::new(Some(Duration::from_millis(20)));
        marks.mark_all();
        std::thread::sleep(Duration::from_millis(30));
        // No read has discarded the expired whole-tier mark yet.
        marks.mark_key("k");
        assert!(marks.is_stale("k"), "the key's mark was dropped");
    }

    #[test]
    fn too_many_keys_mark_the_whole_tier() {
        let marks = StaleMarks::new(None);
        for i in 0..=MAX_KEYS {
            marks.mark_key(&i.to_string());
        }
        assert!(marks.is_stale("never-written"));
    }
}
