//! [`RedisTier`]: the [`Tier`] implementation.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::cluster::ClusterClientBuilder;
use redis::{AsyncConnectionConfig, Cmd, Value};
use strata_tier::{
    async_trait, Capabilities, Health, Invalidation, KeyPattern, Lookup, SharedSink, Stored,
    Subscription, Tier, TierError, TierWrite, WriteIntent,
};

use crate::backend::{Backend, Cluster, Standalone};
use crate::builder::{RedisTierBuilder, Target};
use crate::bus::{spawn_subscriber, Feed, Publisher, SubscriberSetup};
use crate::direct::DirectManager;
use crate::error::{redacted, RedisTierError};
use crate::keys::Namespace;
use crate::pool::Manager;
use crate::stats::{Counters, NodeStats, PoolStats, RedisStats};

/// The most keys one `MGET` asks for.
const MGET_CHUNK: usize = 512;
/// The longest expiry sent to Redis (about a century).
const MAX_TTL_MILLIS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// A [`Tier`] on Redis: a standalone server (a bb8 pool of multiplexed connections for reads,
/// key-routed connections for writes) or a Redis Cluster (the redis crate's slot-routing
/// connection). See the [crate docs](crate) for the design and the consistency it gives.
#[derive(Clone)]
pub struct RedisTier {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    backend: Backend,
    namespace: Namespace,
    timeout: Duration,
    connect_timeout: Duration,
    heartbeat: Duration,
    max_value_size: usize,
    scan_count: usize,
    max_pool: u32,
    tracking: bool,
    /// The bus's publishing side; `None` when the bus is off.
    publisher: Option<Publisher>,
    feed: Option<Arc<Feed>>,
    counters: Arc<Counters>,
    runtime: tokio::runtime::Handle,
    /// Subscriber tasks, aborted on `close`.
    subscribers: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl RedisTier {
    /// A builder for a standalone server at `url` (`redis://[user[:password]@]host[:port][/db]`,
    /// or `rediss://` with the `tls` feature).
    pub fn standalone(url: impl Into<String>) -> RedisTierBuilder {
        RedisTierBuilder::new(Target::Standalone(url.into()))
    }

    /// A builder for a cluster reached through `seeds` (each a `redis://host:port` URL; any
    /// node will do, more are tried if one is down).
    pub fn cluster(seeds: impl IntoIterator<Item = impl Into<String>>) -> RedisTierBuilder {
        RedisTierBuilder::new(Target::Cluster(seeds.into_iter().map(Into::into).collect()))
    }

    pub(crate) async fn connect(builder: RedisTierBuilder) -> Result<RedisTier, RedisTierError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| RedisTierError::NoRuntime)?;
        let namespace = Namespace::new(&builder.namespace, builder.hash_tag);
        let connect_error = |target: &str, reason: String| RedisTierError::Connect {
            target: target.to_owned(),
            reason,
        };
        let root_cert = match &builder.tls_root_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                RedisTierError::InvalidConfig(format!(
                    "TLS root certificate {}: {e}",
                    path.display()
                ))
            })?),
            None => None,
        };
        let root_cert = root_cert.as_deref();
        let (backend, feed, sharded) = match &builder.target {
            Target::Standalone(url) => {
                let shown = redacted(url);
                let client = crate::tls::client(url.as_str(), root_cert)
                    .map_err(|e| connect_error(&shown, e.to_string()))?;
                // No response timeout of the redis crate's own: every pooled call is bounded
                // by `backend::bounded`, and a connection whose call ran out is discarded.
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(builder.connect_timeout))
                    .set_response_timeout(None);
                let pool = bb8::Pool::builder()
                    .max_size(builder.pool_size)
                    .connection_timeout(builder.connect_timeout)
                    // A checked-out connection is not pinged: a failed or abandoned command
                    // marks it broken instead (see `pool`), which costs no round trip.
                    .test_on_check_out(false)
                    .retry_connection(false)
                    .build(Manager {
                        client: client.clone(),
                        config,
                    })
                    .await
                    .map_err(|e| connect_error(&shown, e.to_string()))?;
                let mut lanes = Vec::with_capacity(builder.write_lanes);
                for _ in 0..builder.write_lanes {
                    let config = redis::aio::ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(builder.connect_timeout))
                        .set_response_timeout(Some(builder.timeout))
                        .set_number_of_retries(1);
                    let lane = tokio::time::timeout(
                        builder.connect_timeout * 2,
                        ConnectionManager::new_with_config(client.clone(), config),
                    )
                    .await
                    .map_err(|_| connect_error(&shown, "connect timed out".into()))?
                    .map_err(|e| connect_error(&shown, e.to_string()))?;
                    lanes.push(lane);
                }
                let address = client.get_connection_info().addr().to_string();
                let direct = direct_pool(client.get_connection_info(), &builder);
                let backend = Backend::Standalone(Standalone {
                    direct,
                    pool,
                    hot: std::sync::Mutex::new(None),
                    lanes,
                    address,
                });
                let feed = builder
                    .bus
                    .then(|| {
                        let info = client.get_connection_info().clone();
                        let settings = info
                            .redis_settings()
                            .clone()
                            .set_protocol(redis::ProtocolVersion::RESP3);
                        let info = info.set_redis_settings(settings);
                        crate::tls::client(info, root_cert).map(Feed::Standalone)
                    })
                    .transpose()
                    .map_err(|e| connect_error(&shown, e.to_string()))?;
                (backend, feed, false)
            }
            Target::Cluster(seeds) => {
                let shown = seeds
                    .iter()
                    .map(|s| redacted(s))
                    .collect::<Vec<_>>()
                    .join(",");
                let client =
                    crate::tls::cluster(ClusterClientBuilder::new(seeds.clone()), root_cert)
                        .connection_timeout(builder.connect_timeout)
                        .response_timeout(builder.timeout)
                        .retries(2)
                        .build()
                        .map_err(|e| connect_error(&shown, e.to_string()))?;
                // Cluster connects can hang on a half-up cluster: bound them.
                let connection = tokio::time::timeout(
                    builder.connect_timeout * 3,
                    client.get_async_connection(),
                )
                .await
                .map_err(|_| connect_error(&shown, "connect timed out".into()))?
                .map_err(|e| connect_error(&shown, e.to_string()))?;
                let backend = Backend::Cluster(Cluster { connection });
                // Every instance on a namespace must make the same choice, or their buses
                // would not hear each other: a probe that fails fails the open.
                let sharded = builder.sharded_pubsub
                    && all_masters_support_sharded_pubsub(&backend, builder.timeout)
                        .await
                        .map_err(|reason| connect_error(&shown, reason))?;
                let feed = builder.bus.then(|| Feed::Cluster {
                    root_cert: root_cert.map(<[u8]>::to_vec),
                    seeds: seeds.clone(),
                    sharded,
                    slot: namespace.channel_slot(),
                });
                (backend, feed, sharded)
            }
        };
        // The server answers, or opening fails now rather than at the first request.
        let check = backend
            .ping_nodes(builder.connect_timeout.max(builder.timeout))
            .await;
        if let Some((node, Err(error))) = check.iter().find(|(_, r)| r.is_err()) {
            return Err(RedisTierError::Connect {
                target: node.clone(),
                reason: error.to_string(),
            });
        }
        let publisher = builder
            .bus
            .then(|| Publisher::new(namespace.channel(), sharded));
        let tier = RedisTier {
            inner: Arc::new(Inner {
                name: builder.name,
                backend,
                namespace,
                timeout: builder.timeout,
                connect_timeout: builder.connect_timeout,
                heartbeat: builder.heartbeat,
                max_value_size: builder.max_value_size,
                scan_count: builder.scan_count,
                max_pool: builder.pool_size,
                tracking: builder.tracking,
                publisher,
                feed: feed.map(Arc::new),
                counters: Arc::new(Counters::new()),
                runtime,
                subscribers: Mutex::new(Vec::new()),
            }),
        };
        tier.record_nodes(check);
        Ok(tier)
    }

    /// The tier's counters: operations, each node's last round trip, the pool, the bus.
    pub fn stats(&self) -> RedisStats {
        let counters = &self.inner.counters;
        let pool = match &self.inner.backend {
            Backend::Standalone(standalone) => {
                let state = match &standalone.direct {
                    Some(direct) => direct.state(),
                    None => standalone.pool.state(),
                };
                PoolStats {
                    connections: state.connections,
                    idle: state.idle_connections,
                    max: self.inner.max_pool,
                }
            }
            Backend::Cluster(_) => PoolStats::default(),
        };
        RedisStats {
            operations: counters.operations.load(Relaxed),
            failures: counters.failures.load(Relaxed),
            timeouts: counters.timeouts.load(Relaxed),
            nodes: counters
                .nodes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            pool,
            bus: counters.bus(),
        }
    }

    /// The namespace's pub/sub channel (for tools that want to watch it).
    pub fn channel(&self) -> String {
        self.inner.namespace.channel()
    }

    /// Whether this is a cluster tier.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.backend, Backend::Cluster(_))
    }

    fn record_nodes(&self, checks: Vec<(String, Result<Duration, TierError>)>) {
        let nodes = checks
            .into_iter()
            .map(|(address, result)| NodeStats {
                address,
                round_trip: result.as_ref().ok().copied(),
                error: result.err().map(|e| e.to_string()),
            })
            .collect();
        *self
            .inner
            .counters
            .nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = nodes;
    }

    fn closed(&self) -> bool {
        self.inner.counters.closed.load(Relaxed)
    }

    fn publish(&self, events: Vec<Invalidation>) -> Option<Cmd> {
        let publisher = self.inner.publisher.as_ref()?;
        (!events.is_empty()).then(|| publisher.publish(events))
    }

    fn set_command(
        &self,
        key: &str,
        value: &Bytes,
        ttl: Option<Duration>,
        intent: WriteIntent,
    ) -> Cmd {
        let full = self.inner.namespace.key(key);
        // Rounded down: a tier may forget early, never answer late. Below 1 ms the value has
        // already expired: an update removes the old one (which it replaces), a fill stores
        // nothing (a harmless `EXISTS` keeps the batch's answers in step).
        let millis = ttl.map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        if millis == Some(0) {
            let mut cmd = redis::cmd(if intent == WriteIntent::Fill {
                "EXISTS"
            } else {
                "UNLINK"
            });
            cmd.arg(full);
            return cmd;
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(full).arg(value.as_ref());
        if let Some(millis) = millis {
            // Redis refuses expiries that overflow its clock arithmetic: a century is forever.
            cmd.arg("PX").arg(millis.min(MAX_TTL_MILLIS));
        }
        if intent == WriteIntent::Fill {
            cmd.arg("NX");
        }
        cmd
    }

    /// Runs writes grouped by lane (standalone) or all at once (cluster), each group followed by
    /// one publish of the keys it changed. `commands[i]` is for `keys[i]`; `announce[i]` says
    /// whether that write is announced on the bus.
    async fn write_batch(
        &self,
        keys: &[&str],
        commands: Vec<Cmd>,
        announce: &[bool],
    ) -> Vec<Result<Value, TierError>> {
        if keys.is_empty() {
            return Vec::new();
        }
        let inner = &self.inner;
        let groups: Vec<Vec<usize>> = match &inner.backend {
            Backend::Standalone(standalone) => {
                let mut groups = vec![Vec::new(); standalone.lanes.len()];
                for (i, key) in keys.iter().enumerate() {
                    groups[standalone.lane_of(key)].push(i);
                }
                groups.retain(|g| !g.is_empty());
                groups
            }
            Backend::Cluster(_) => vec![(0..keys.len()).collect()],
        };
        let mut commands: Vec<Option<Cmd>> = commands.into_iter().map(Some).collect();
        let runs = groups.into_iter().map(|group| {
            let cmds: Vec<Cmd> = group
                .iter()
                .map(|&i| commands[i].take().expect("once"))
                .collect();
            let events: Vec<Invalidation> = group
                .iter()
                .filter(|&&i| announce[i])
                .map(|&i| Invalidation::Key(keys[i].to_owned()))
                .collect();
            let publish = self.publish(events);
            let lane_key = keys[group[0]];
            async move {
                let answers = inner
                    .backend
                    .write(lane_key, cmds, publish, inner.timeout)
                    .await;
                if matches!(answers.publish, Some(Ok(_))) {
                    inner.counters.published.fetch_add(1, Relaxed);
                }
                (group, answers)
            }
        });
        let mut results: Vec<Option<Result<Value, TierError>>> =
            (0..keys.len()).map(|_| None).collect();
        for (group, answers) in futures_util::future::join_all(runs).await {
            // A write whose announcement failed is reported failed: another instance may still
            // hold the old value in its L1.
            let publish_error = match answers.publish {
                Some(Err(error)) => Some(error.to_string()),
                _ => None,
            };
            for (i, answer) in group.into_iter().zip(answers.commands) {
                let answer = match (&publish_error, answer) {
                    (Some(reason), Ok(_)) if announce[i] => Err(TierError::Unavailable(format!(
                        "stored, but the invalidation was not published: {reason}"
                    ))),
                    (_, answer) => answer,
                };
                inner.counters.record(&answer);
                results[i] = Some(answer);
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every key answered"))
            .collect()
    }

    async fn remove_matching(&self, pattern: Option<&KeyPattern>) -> Result<u64, TierError> {
        let inner = &self.inner;
        let glob = inner.namespace.scan_glob(pattern);
        let namespace = &inner.namespace;
        let accept = |raw: &[u8]| {
            std::str::from_utf8(raw)
                .ok()
                .and_then(|full| namespace.strip(full))
                .is_some_and(|key| pattern.is_none_or(|p| p.matches(key)))
        };
        let removed = inner
            .backend
            .scan_unlink(&glob, inner.scan_count, &accept, inner.timeout)
            .await;
        inner.counters.record(&removed);
        let removed = removed?;
        let event = match pattern {
            Some(pattern) => Invalidation::Pattern(pattern.clone()),
            None => Invalidation::Clear,
        };
        if let Some(cmd) = self.publish(vec![event]) {
            let published = inner.backend.query::<Value>(&cmd, inner.timeout).await;
            inner.counters.record(&published);
            if published.is_ok() {
                inner.counters.published.fetch_add(1, Relaxed);
            }
            published.map_err(|e| {
                TierError::Unavailable(format!(
                    "removed, but the invalidation was not published: {e}"
                ))
            })?;
        }
        Ok(removed)
    }
}

/// Direct read connections for a plain-TCP server (not TLS, not a Unix socket), opened lazily.
fn direct_pool(
    info: &redis::ConnectionInfo,
    builder: &RedisTierBuilder,
) -> Option<bb8::Pool<DirectManager>> {
    let redis::ConnectionAddr::Tcp(host, port) = info.addr() else {
        return None;
    };
    let settings = info.redis_settings();
    let manager = DirectManager {
        host: host.clone(),
        port: *port,
        username: settings.username().map(str::to_owned),
        password: settings.password().map(str::to_owned),
        db: settings.db(),
        connect_timeout: builder.connect_timeout,
    };
    Some(
        bb8::Pool::builder()
            .max_size(builder.pool_size)
            .connection_timeout(builder.connect_timeout)
            .test_on_check_out(false)
            .retry_connection(false)
            .build_unchecked(manager),
    )
}

/// Whether every master runs Redis 7 or later (sharded pub/sub); an error if that cannot be
/// told (a master not answering, a version not found).
async fn all_masters_support_sharded_pubsub(
    backend: &Backend,
    timeout: Duration,
) -> Result<bool, String> {
    let Backend::Cluster(cluster) = backend else {
        return Ok(false);
    };
    let masters = backend
        .masters(timeout)
        .await
        .map_err(|e| format!("listing the masters: {e}"))?;
    for (host, port) in masters {
        let mut connection = cluster.connection.clone();
        let mut info = redis::cmd("INFO");
        info.arg("server");
        let address = format!("{host}:{port}");
        let routing = redis::cluster_routing::RoutingInfo::SingleNode(
            redis::cluster_routing::SingleNodeRoutingInfo::ByAddress { host, port },
        );
        let answer = tokio::time::timeout(timeout, connection.route_command(info, routing))
            .await
            .map_err(|_| format!("INFO server on {address} timed out"))?
            .map_err(|e| format!("INFO server on {address}: {e}"))?;
        let text = redis::from_redis_value::<String>(answer)
            .map_err(|e| format!("INFO server on {address}: {e}"))?;
        let major = text
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .and_then(|v| v.trim().split('.').next()?.parse::<u32>().ok())
            .ok_or_else(|| format!("no redis_version in INFO server on {address}"))?;
        if major < 7 {
            return Ok(false);
        }
    }
    Ok(true)
}

fn stored(answer: Value) -> Stored {
    match answer {
        Value::Nil => Stored::Kept,
        _ => Stored::Written,
    }
}

#[async_trait]
impl Tier for RedisTier {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn capabilities(&self) -> Capabilities {
        let capabilities = Capabilities::NONE.with_fill_if_absent();
        if self.inner.publisher.is_some() {
            capabilities.with_invalidation_events()
        } else {
            capabilities
        }
    }

    async fn get(&self, key: &str) -> Lookup {
        if self.closed() {
            return Lookup::Degraded(TierError::Closed);
        }
        let inner = &self.inner;
        let found = inner
            .backend
            .get(&inner.namespace.key(key), inner.timeout)
            .await;
        inner.counters.record(&found);
        Lookup::from_result(found)
    }

    async fn get_many(&self, keys: &[&str]) -> Vec<Lookup> {
        if self.closed() {
            return keys
                .iter()
                .map(|_| Lookup::Degraded(TierError::Closed))
                .collect();
        }
        let inner = &self.inner;
        let mut answers = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MGET_CHUNK) {
            let full: Vec<String> = chunk.iter().map(|k| inner.namespace.key(k)).collect();
            let found = inner.backend.mget(&full, inner.timeout).await;
            inner.counters.record(&found);
            match found {
                Ok(values) if values.len() == chunk.len() => {
                    answers.extend(values.into_iter().map(|v| Lookup::from(v.map(Bytes::from))))
                }
                Ok(values) => answers.extend(chunk.iter().map(|_| {
                    Lookup::Degraded(TierError::Backend(
                        format!("MGET of {} keys answered {}", chunk.len(), values.len()).into(),
                    ))
                })),
                Err(error) => {
                    let text = error.to_string();
                    answers.push(Lookup::Degraded(error));
                    answers.extend(
                        chunk[1..]
                            .iter()
                            .map(|_| Lookup::Degraded(TierError::Unavailable(text.clone()))),
                    );
                }
            }
        }
        answers
    }

    async fn set(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        intent: WriteIntent,
    ) -> Result<Stored, TierError> {
        let results = self
            .set_many(vec![TierWrite {
                key: key.to_owned(),
                value,
                ttl,
                intent,
            }])
            .await;
        results.into_iter().next().expect("one write, one result")
    }

    async fn set_many(&self, writes: Vec<TierWrite>) -> Vec<Result<Stored, TierError>> {
        if self.closed() {
            return writes.iter().map(|_| Err(TierError::Closed)).collect();
        }
        let limit = self.inner.max_value_size;
        let mut results: Vec<Option<Result<Stored, TierError>>> = writes
            .iter()
            .map(|w| {
                (w.value.len() > limit).then_some(Err(TierError::TooLarge {
                    size: w.value.len(),
                    limit,
                }))
            })
            .collect();
        let accepted: Vec<usize> = (0..writes.len())
            .filter(|&i| results[i].is_none())
            .collect();
        if !accepted.is_empty() {
            let keys: Vec<&str> = accepted.iter().map(|&i| writes[i].key.as_str()).collect();
            let commands = accepted
                .iter()
                .map(|&i| {
                    let w = &writes[i];
                    self.set_command(&w.key, &w.value, w.ttl, w.intent)
                })
                .collect();
            // Fills copy a value read elsewhere: they change nothing another instance could
            // hold, so only updates are announced.
            let announce: Vec<bool> = accepted
                .iter()
                .map(|&i| writes[i].intent == WriteIntent::Update)
                .collect();
            let answers = self.write_batch(&keys, commands, &announce).await;
            for (&i, answer) in accepted.iter().zip(answers) {
                results[i] = Some(answer.map(stored));
            }
        }
        results.into_iter().map(|r| r.expect("answered")).collect()
    }

    async fn delete(&self, key: &str) -> Result<bool, TierError> {
        let results = self.delete_many(&[key]).await;
        results.into_iter().next().expect("one delete, one result")
    }

    async fn delete_many(&self, keys: &[&str]) -> Vec<Result<bool, TierError>> {
        if self.closed() {
            return keys.iter().map(|_| Err(TierError::Closed)).collect();
        }
        let commands = keys
            .iter()
            .map(|key| {
                let mut cmd = redis::cmd("UNLINK");
                cmd.arg(self.inner.namespace.key(key));
                cmd
            })
            .collect();
        let announce = vec![true; keys.len()];
        self.write_batch(keys, commands, &announce)
            .await
            .into_iter()
            .map(|answer| answer.map(|v| matches!(v, Value::Int(n) if n > 0)))
            .collect()
    }

    async fn delete_matching(&self, pattern: &KeyPattern) -> Result<u64, TierError> {
        if self.closed() {
            return Err(TierError::Closed);
        }
        self.remove_matching(Some(pattern)).await
    }

    async fn clear(&self) -> Result<(), TierError> {
        if self.closed() {
            return Err(TierError::Closed);
        }
        self.remove_matching(None).await.map(|_| ())
    }

    async fn health(&self) -> Health {
        if self.closed() {
            return Health::Down("closed".into());
        }
        let inner = &self.inner;
        let checks = inner.backend.ping_nodes(inner.timeout).await;
        for (_, result) in &checks {
            inner.counters.record(result);
        }
        let failed: Vec<String> = checks
            .iter()
            .filter_map(|(node, r)| r.as_ref().err().map(|e| format!("{node}: {e}")))
            .collect();
        let all_failed = failed.len() == checks.len();
        self.record_nodes(checks);
        let bus = inner.counters.bus();
        if all_failed {
            Health::Down(failed.join("; "))
        } else if !failed.is_empty() {
            Health::Degraded(failed.join("; "))
        } else if !bus.subscribed {
            Health::Degraded("invalidation bus not subscribed (resubscribing)".into())
        } else {
            Health::Healthy
        }
    }

    fn subscribe(&self, sink: SharedSink) -> Option<Subscription> {
        let inner = &self.inner;
        let (publisher, feed) = (inner.publisher.as_ref()?, inner.feed.as_ref()?);
        // Under the lock `close` takes, so that a subscription is either refused or aborted.
        let mut subscribers = inner.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed() {
            return None;
        }
        subscribers.retain(|task| !task.is_finished());
        let task = spawn_subscriber(
            &inner.runtime,
            SubscriberSetup {
                feed: Arc::clone(feed),
                channel: publisher.channel.clone(),
                origin: publisher.origin,
                counters: Arc::clone(&inner.counters),
                sink,
                heartbeat: inner.heartbeat,
                connect_timeout: inner.connect_timeout,
                timeout: inner.timeout,
                label: inner.name.clone(),
                namespace: inner.namespace.clone(),
                tracking: inner.tracking,
            },
        );
        let abort = task.abort_handle();
        subscribers.push(abort.clone());
        Some(Subscription::new(move || abort.abort()))
    }

    async fn close(&self) -> Result<(), TierError> {
        // Every write was acknowledged by Redis before it returned: nothing to flush. The
        // connections close when the last handle on the tier is dropped.
        let mut subscribers = self
            .inner
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.inner.counters.closed.store(true, Relaxed);
        for task in subscribers.drain(..) {
            task.abort();
        }
        Ok(())
    }
}

impl std::fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTier")
            .field("name", &self.inner.name)
            .field("namespace", &self.inner.namespace.name())
            .field("cluster", &self.is_cluster())
            .finish()
    }
}
