//! [`RedisTierBuilder`]: every setting of a [`RedisTier`](crate::RedisTier), with its default.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::RedisTierError;
use crate::tier::RedisTier;

/// Connections opened per standalone server by default (the bb8 pool's bound).
pub const DEFAULT_POOL_SIZE: u32 = 16;
/// Key-routed write connections per standalone server by default.
pub const DEFAULT_WRITE_LANES: usize = 2;
/// How long opening one connection may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one Redis call may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the invalidation subscriber checks its connection by default.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);
/// The largest value stored by default. Redis itself refuses bulk strings above 512 MiB.
pub const DEFAULT_MAX_VALUE_SIZE: usize = 64 << 20;
/// The namespace used when none is given.
pub const DEFAULT_NAMESPACE: &str = "strata";

/// Where the tier connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server: a `redis://` or `rediss://` URL for the redis crate.
    Standalone(String),
    /// A cluster: one such URL per seed node.
    Cluster(Vec<String>),
}

/// Builds a [`RedisTier`]. Start from [`RedisTier::standalone`], [`RedisTier::cluster`] or a
/// URL ([`RedisFactory::builder_from_url`](crate::RedisFactory::builder_from_url)).
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisTierBuilder {
    pub(crate) target: Target,
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) hash_tag: bool,
    pub(crate) pool_size: u32,
    pub(crate) write_lanes: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) max_value_size: usize,
    pub(crate) bus: bool,
    pub(crate) sharded_pubsub: bool,
    pub(crate) tracking: bool,
    pub(crate) scan_count: usize,
    pub(crate) tls_root_cert: Option<PathBuf>,
}

impl RedisTierBuilder {
    pub(crate) fn new(target: Target) -> Self {
        RedisTierBuilder {
            target,
            name: "redis".to_owned(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            hash_tag: false,
            pool_size: DEFAULT_POOL_SIZE,
            write_lanes: DEFAULT_WRITE_LANES,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            heartbeat: DEFAULT_HEARTBEAT,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            bus: true,
            sharded_pubsub: true,
            tracking: false,
            scan_count: 1000,
            tls_root_cert: None,
        }
    }

    /// The tier's name in stats and health reports (default `redis`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Every key is stored as `<namespace>:<key>`, and invalidations travel on the namespace's
    /// channel (default `strata`). Caches that share data share a namespace. A namespace may not
    /// hold `:`, `{` or `}` (`shop` and `shop:eu` would share keys); use `.` or `-` instead.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Stores keys as `{<namespace>}:<key>`: in a cluster, the whole namespace hashes to one
    /// slot (one master), so batches are single-node, at the price of spreading no load.
    pub fn hash_tag(mut self, on: bool) -> Self {
        self.hash_tag = on;
        self
    }

    /// The most connections each read pool of a standalone server opens (default 16): the
    /// direct connections for single-key reads, and the shared multiplexed ones for batches.
    pub fn pool_size(mut self, connections: u32) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// How many connections carry a standalone server's writes (default 2). Each key is routed
    /// to one of them, which keeps writes to a key in the order they were issued even when a
    /// caller gives up on one (see the crate's Consistency section).
    pub fn write_lanes(mut self, lanes: usize) -> Self {
        self.write_lanes = lanes.max(1);
        self
    }

    /// How long opening one connection may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one Redis call may take before it fails with `TierError::Timeout` (default
    /// 500 ms). A `TieredCache` applies its own per-tier deadline on top.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often the invalidation subscriber pings its connection (default 1 s). A ping that
    /// is not answered within the longer of this period and the timeout counts as a lost
    /// subscription.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// The largest value accepted (default 64 MiB); larger ones fail with
    /// `TierError::TooLarge`.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// Whether writes publish invalidations and [`subscribe`](strata_tier::Tier::subscribe)
    /// delivers other instances' (default on).
    pub fn invalidation_bus(mut self, on: bool) -> Self {
        self.bus = on;
        self
    }

    /// In a cluster, whether the bus uses sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, Redis 7+)
    /// when every master supports it (default on); off, it uses `PUBLISH`, which the cluster
    /// broadcasts to every node.
    pub fn sharded_pubsub(mut self, on: bool) -> Self {
        self.sharded_pubsub = on;
        self
    }

    /// Server-assisted invalidation (default off): each subscriber also turns on
    /// `CLIENT TRACKING ON BCAST PREFIX <namespace>:` on its connection (on every master of a
    /// cluster), so that a change to any key of the namespace empties the subscriber's L1 copy,
    /// including changes made by programs that are not Strata (`redis-cli`, another service).
    /// Tracking is enabled anew after every reconnect and failover (the subscriber's whole
    /// connection is rebuilt, and its L1 cleared).
    ///
    /// The cost: the server reports every change, this instance's own writes and every fill
    /// (`SET NX` of a promotion or a load) included, so each instance's L1 also drops the copy
    /// it just wrote or filled, and reads it again from Redis once. Without tracking, only
    /// Strata's own writes are announced, on the bus, and an instance skips its own.
    pub fn tracking(mut self, on: bool) -> Self {
        self.tracking = on;
        self
    }

    /// How many keys one `SCAN` step asks for in `delete_matching` and `clear` (default 1000).
    pub fn scan_count(mut self, count: usize) -> Self {
        self.scan_count = count.max(1);
        self
    }

    /// For `rediss://`: trust the CA certificate in this PEM file instead of the platform's
    /// roots (a private CA, a self-signed server). Needs the `tls` feature.
    pub fn tls_root_cert(mut self, pem_file: impl Into<PathBuf>) -> Self {
        self.tls_root_cert = Some(pem_file.into());
        self
    }

    /// Connects (checking that the server answers within the connect timeout) and returns the
    /// tier. Must be called inside a tokio runtime, which the tier's background tasks use.
    pub async fn open(self) -> Result<RedisTier, RedisTierError> {
        if self.namespace.is_empty() {
            return Err(RedisTierError::InvalidConfig(
                "the namespace must not be empty".into(),
            ));
        }
        // `shop` and `shop:eu` would share keys (`shop:eu:x`), and braces would change the
        // channel's hash tag.
        if let Some(bad) = self
            .namespace
            .chars()
            .find(|c| matches!(c, ':' | '{' | '}'))
        {
            return Err(RedisTierError::InvalidConfig(format!(
                "the namespace {:?} holds {bad:?}: namespaces may not hold ':', '{{' or '}}'",
                self.namespace
            )));
        }
        for (what, value) in [
            ("timeout", self.timeout),
            ("connect_timeout", self.connect_timeout),
            ("heartbeat", self.heartbeat),
        ] {
            if value.is_zero() {
                return Err(RedisTierError::InvalidConfig(format!(
                    "{what} must be more than zero"
                )));
            }
        }
        if self.tls_root_cert.is_some() && !cfg!(feature = "tls") {
            return Err(RedisTierError::InvalidConfig(
                "a TLS root certificate needs strata-redis's `tls` feature".into(),
            ));
        }
        RedisTier::connect(self).await
    }
}
