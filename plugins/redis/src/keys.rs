//! Where the tier's keys and its invalidation channel live in Redis: the namespace prefix, the
//! optional hash tag that puts a whole namespace in one cluster slot, and glob escaping for
//! `SCAN MATCH`.

use strata_tier::KeyPattern;

/// How a namespace maps cache keys to Redis keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Namespace {
    name: String,
    /// `"{name}:"` with a hash tag, `"name:"` without.
    prefix: String,
}

impl Namespace {
    /// A namespace; with `hash_tag`, its prefix is a Redis Cluster hash tag (`{name}:`), so every
    /// key of the namespace hashes to one slot (one master): multi-key commands stay on one node,
    /// at the price of spreading no load.
    pub(crate) fn new(name: &str, hash_tag: bool) -> Self {
        let prefix = if hash_tag {
            format!("{{{name}}}:")
        } else {
            format!("{name}:")
        };
        Namespace {
            name: name.to_owned(),
            prefix,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// What every Redis key of the namespace starts with.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis key of a cache key.
    pub(crate) fn key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.prefix.len() + key.len());
        full.push_str(&self.prefix);
        full.push_str(key);
        full
    }

    /// The cache key of a Redis key of this namespace.
    pub(crate) fn strip<'a>(&self, full: &'a str) -> Option<&'a str> {
        full.strip_prefix(self.prefix.as_str())
    }

    /// The `SCAN MATCH` glob for a cache-key pattern (`None`: every key of the namespace). The
    /// prefix's own glob characters are escaped, so a namespace named `a*` matches only itself.
    pub(crate) fn scan_glob(&self, pattern: Option<&KeyPattern>) -> String {
        let mut glob = strata_tier::KeyPattern::escape(&self.prefix);
        match pattern {
            Some(pattern) => glob.push_str(pattern.as_str()),
            None => glob.push('*'),
        }
        glob
    }

    /// The pub/sub channel on which the namespace's invalidations travel. Its hash tag is the
    /// namespace, so in a cluster the sharded channel lives on the master that owns the
    /// namespace's slot.
    pub(crate) fn channel(&self) -> String {
        format!("strata:{{{}}}:invalidations", self.name)
    }

    /// The cluster slot of [`channel`](Self::channel).
    pub(crate) fn channel_slot(&self) -> u16 {
        slot_of(self.name.as_bytes())
    }
}

/// The Redis Cluster slot of a hash tag's content: CRC16 (XMODEM) modulo 16,384.
pub(crate) fn slot_of(tag: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(tag) % 16_384
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_and_stripped() {
        let ns = Namespace::new("app", false);
        assert_eq!(ns.key("user:1"), "app:user:1");
        assert_eq!(ns.strip("app:user:1"), Some("user:1"));
        assert_eq!(ns.strip("other:user:1"), None);
        let tagged = Namespace::new("app", true);
        assert_eq!(tagged.key("user:1"), "{app}:user:1");
        assert_eq!(tagged.strip("{app}:user:1"), Some("user:1"));
    }

    #[test]
    fn glob_characters_of_the_namespace_are_escaped_and_the_pattern_kept() {
        let ns = Namespace::new("a*b?[c]\\", false);
        let pattern = KeyPattern::new("user:*").unwrap();
        assert_eq!(ns.scan_glob(Some(&pattern)), "a\\*b\\?\\[c\\]\\\\:user:*");
        assert_eq!(ns.scan_glob(None), "a\\*b\\?\\[c\\]\\\\:*");
    }

    #[test]
    fn slots_match_redis_cluster_keyslot() {
        // `CLUSTER KEYSLOT foo` is 12182, `CLUSTER KEYSLOT bar` is 5061 (Redis documentation).
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"bar"), 5061);
    }
}
