//! The connections a tier talks through: a standalone server (a bb8 read pool and key-routed
//! write lanes) or a cluster (the redis crate's slot-routing cluster connection), and the few
//! Redis primitives the tier is built from. Every call here is bounded by the tier's timeout.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, Value};
use strata_tier::TierError;

use crate::direct::{is_server_reply, DirectManager};
use crate::error::tier_error;
use crate::pool::{Lease, Manager};

/// A standalone server's connections.
pub(crate) struct Standalone {
    /// Direct connections for single-key reads (a plain-TCP server only; see `direct`).
    pub(crate) direct: Option<bb8::Pool<DirectManager>>,
    pub(crate) pool: bb8::Pool<Manager>,
    /// The connection the last checkout leased, reused by reads until its alarm is raised: a
    /// read then costs no pool checkout (bb8's own deadline and bookkeeping), only a clone of
    /// the connection's handle.
    pub(crate) hot: std::sync::Mutex<Option<Lease>>,
    /// Writes to a key always go through `lanes[hash(key) % len]`: one connection, so one
    /// order, whatever callers abandon.
    pub(crate) lanes: Vec<ConnectionManager>,
    /// `host:port`, for stats and errors.
    pub(crate) address: String,
}

/// A cluster's connection (it holds one multiplexed connection per node, and follows
/// `MOVED`/`ASK` redirections and failovers by itself).
pub(crate) struct Cluster {
    pub(crate) connection: ClusterConnection,
}

pub(crate) enum Backend {
    Standalone(Standalone),
    Cluster(Cluster),
}

/// The answers to a write: one per command, then the publish's (if one was sent).
pub(crate) struct WriteAnswers {
    pub(crate) commands: Vec<Result<Value, TierError>>,
    pub(crate) publish: Option<Result<Value, TierError>>,
}

/// Runs `work` under `timeout`, as a tier error.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    work: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, TierError> {
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(tier_error(error, timeout)),
        Err(_) => Err(TierError::Timeout(timeout)),
    }
}

/// A failed pool checkout as the pool's own error type.
fn checkout_error<E: From<std::io::Error>>(error: bb8::RunError<E>) -> E {
    match error {
        bb8::RunError::User(error) => error,
        bb8::RunError::TimedOut => E::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no pooled connection within the connect timeout",
        )),
    }
}

fn parsed<T: FromRedisValue>(value: Value) -> Result<T, TierError> {
    T::from_redis_value(value).map_err(|e| TierError::backend(RedisError::from(e)))
}

fn answer(value: Value, timeout: Duration) -> Result<Value, TierError> {
    match value {
        Value::ServerError(error) => Err(tier_error(error.into(), timeout)),
        other => Ok(other),
    }
}

impl Standalone {
    /// The index of the lane that carries `key`'s writes.
    pub(crate) fn lane_of(&self, key: &str) -> usize {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        (hasher.finish() % self.lanes.len() as u64) as usize
    }

    fn lane(&self, key: &str) -> ConnectionManager {
        self.lanes[self.lane_of(key)].clone()
    }

    /// One command on a pooled connection, shared with concurrent callers.
    async fn pooled<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        timeout: Duration,
    ) -> Result<T, TierError> {
        bounded(timeout, async {
            let hot = self
                .hot
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .filter(|lease| !lease.is_broken())
                .cloned();
            let lease = match hot {
                Some(lease) => lease,
                None => self.checkout().await?,
            };
            lease.query::<T>(cmd).await
        })
        .await
    }

    /// A lease from the pool, which becomes the hot one. A connection whose alarm is up is
    /// dropped from the pool (bb8 asks `has_broken` when the checkout ends); at most every
    /// pooled connection once, then a new one.
    async fn checkout(&self) -> Result<Lease, RedisError> {
        for _ in 0..=self.pool.state().connections {
            let connection = self.pool.get().await.map_err(checkout_error)?;
            if !connection.is_broken() {
                let lease = connection.lease();
                *self.hot.lock().unwrap_or_else(|p| p.into_inner()) = Some(lease.clone());
                return Ok(lease);
            }
        }
        Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "every pooled connection is broken",
        )))
    }
}

impl Backend {
    /// `GET key`: on a direct connection where there are some, else like any command.
    pub(crate) async fn get(
        &self,
        key: &str,
        timeout: Duration,
    ) -> Result<Option<Bytes>, TierError> {
        if let Backend::Standalone(Standalone {
            direct: Some(direct),
            ..
        }) = self
        {
            let read = async {
                let mut connection = direct.get().await.map_err(checkout_error)?;
                connection.get(key).await
            };
            return match tokio::time::timeout(timeout, read).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) if is_server_reply(&error) => Err(TierError::backend(error)),
                Ok(Err(error)) => Err(tier_error(RedisError::from(error), timeout)),
                Err(_) => Err(TierError::Timeout(timeout)),
            };
        }
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let value: Option<Vec<u8>> = self.query(&cmd, timeout).await?;
        Ok(value.map(Bytes::from))
    }

    /// `MGET keys…` (split by slot in a cluster).
    pub(crate) async fn mget(
        &self,
        keys: &[String],
        timeout: Duration,
    ) -> Result<Vec<Option<Vec<u8>>>, TierError> {
        let mut cmd = redis::cmd("MGET");
        cmd.arg(keys);
        self.query(&cmd, timeout).await
    }

    /// One command: a pooled connection, or the cluster connection.
    pub(crate) async fn query<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        timeout: Duration,
    ) -> Result<T, TierError> {
        match self {
            Backend::Standalone(standalone) => standalone.pooled(cmd, timeout).await,
            Backend::Cluster(cluster) => {
                let mut connection = cluster.connection.clone();
                bounded(timeout, cmd.query_async::<T>(&mut connection)).await
            }
        }
    }

    /// Write commands whose order per key matters, then `publish`. Standalone: one pipeline on
    /// the lane of `lane_key` (every command's key must share that lane), so the publish is
    /// sent after the writes on the same connection and subscribers hear of them only once
    /// they are applied. Cluster: the commands concurrently (each on its key's node), then the
    /// publish once they all answered.
    pub(crate) async fn write(
        &self,
        lane_key: &str,
        commands: Vec<Cmd>,
        publish: Option<Cmd>,
        timeout: Duration,
    ) -> WriteAnswers {
        match self {
            Backend::Standalone(standalone) => {
                let mut pipe = Pipeline::with_capacity(commands.len() + 1);
                pipe.ignore_errors();
                let count = commands.len();
                for cmd in commands {
                    pipe.add_command(cmd);
                }
                let published = publish.is_some();
                if let Some(cmd) = publish {
                    pipe.add_command(cmd);
                }
                let mut lane = standalone.lane(lane_key);
                match bounded(timeout, pipe.query_async::<Vec<Value>>(&mut lane)).await {
                    Ok(values) if values.len() == count + usize::from(published) => {
                        let mut answers: Vec<_> =
                            values.into_iter().map(|v| answer(v, timeout)).collect();
                        let publish = published.then(|| answers.pop().expect("counted"));
                        WriteAnswers {
                            commands: answers,
                            publish,
                        }
                    }
                    Ok(values) => {
                        let error = || {
                            TierError::Backend(
                                format!("pipeline of {count} answered {} replies", values.len())
                                    .into(),
                            )
                        };
                        WriteAnswers {
                            commands: (0..count).map(|_| Err(error())).collect(),
                            publish: published.then(|| Err(error())),
                        }
                    }
                    Err(error) => WriteAnswers {
                        commands: (0..count).map(|_| Err(copy_error(&error))).collect(),
                        publish: published.then(|| Err(copy_error(&error))),
                    },
                }
            }
            Backend::Cluster(cluster) => {
                let runs = commands.iter().map(|cmd| {
                    let mut connection = cluster.connection.clone();
                    async move {
                        bounded(timeout, cmd.query_async::<Value>(&mut connection))
                            .await
                            .and_then(|v| answer(v, timeout))
                    }
                });
                let answers = join_all(runs).await;
                let publish = match publish {
                    Some(cmd) => {
                        let mut connection = cluster.connection.clone();
                        Some(
                            bounded(timeout, cmd.query_async::<Value>(&mut connection))
                                .await
                                .and_then(|v| answer(v, timeout)),
                        )
                    }
                    None => None,
                };
                WriteAnswers {
                    commands: answers,
                    publish,
                }
            }
        }
    }

    /// Deletes every key `SCAN MATCH glob` finds (on every master of a cluster) that `keep`
    /// accepts, by `UNLINK` in batches; returns how many were removed. Each step is bounded by
    /// `timeout`; the whole scan is not.
    pub(crate) async fn scan_unlink(
        &self,
        glob: &str,
        count: usize,
        accept: &(dyn Fn(&[u8]) -> bool + Sync),
        timeout: Duration,
    ) -> Result<u64, TierError> {
        let nodes: Vec<Option<(String, u16)>> = match self {
            Backend::Standalone(_) => vec![None],
            Backend::Cluster(_) => self.masters(timeout).await?.into_iter().map(Some).collect(),
        };
        let mut removed = 0u64;
        for node in nodes {
            let mut cursor: u64 = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(glob)
                    .arg("COUNT")
                    .arg(count);
                let (next, keys): (u64, Vec<Vec<u8>>) = match (&node, self) {
                    (None, _) => self.query(&scan, timeout).await?,
                    (Some((host, port)), Backend::Cluster(cluster)) => {
                        let mut connection = cluster.connection.clone();
                        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port: *port,
                        });
                        parsed(bounded(timeout, connection.route_command(scan, routing)).await?)?
                    }
                    (Some(_), Backend::Standalone(_)) => unreachable!("standalone has no nodes"),
                };
                let doomed: Vec<Vec<u8>> = keys.into_iter().filter(|k| accept(k)).collect();
                if !doomed.is_empty() {
                    let mut unlink = redis::cmd("UNLINK");
                    unlink.arg(&doomed);
                    removed += self.query::<u64>(&unlink, timeout).await?;
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(removed)
    }

    /// The cluster's masters that serve slots, as `(host, port)`.
    pub(crate) async fn masters(&self, timeout: Duration) -> Result<Vec<(String, u16)>, TierError> {
        let Backend::Cluster(cluster) = self else {
            return Ok(Vec::new());
        };
        let mut connection = cluster.connection.clone();
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("NODES");
        let text: String = parsed(
            bounded(
                timeout,
                connection
                    .route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random)),
            )
            .await?,
        )?;
        Ok(parse_masters(&text))
    }

    /// Pings every node (the server, or each master) and times the answers.
    pub(crate) async fn ping_nodes(
        &self,
        timeout: Duration,
    ) -> Vec<(String, Result<Duration, TierError>)> {
        match self {
            Backend::Standalone(standalone) => {
                let start = Instant::now();
                let result = standalone
                    .pooled::<()>(&redis::cmd("PING"), timeout)
                    .await
                    .map(|()| start.elapsed());
                vec![(standalone.address.clone(), result)]
            }
            Backend::Cluster(cluster) => {
                let masters = match self.masters(timeout).await {
                    Ok(masters) => masters,
                    Err(error) => return vec![("cluster".to_owned(), Err(error))],
                };
                let pings = masters.into_iter().map(|(host, port)| {
                    let mut connection = cluster.connection.clone();
                    async move {
                        let start = Instant::now();
                        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port,
                        });
                        let result = bounded(
                            timeout,
                            connection.route_command(redis::cmd("PING"), routing),
                        )
                        .await
                        .map(|_| start.elapsed());
                        (format!("{host}:{port}"), result)
                    }
                });
                join_all(pings).await
            }
        }
    }
}

/// The masters serving slots in `CLUSTER NODES` output.
fn parse_masters(text: &str) -> Vec<(String, u16)> {
    let mut masters = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 {
            continue; // no slots
        }
        let flags = fields[2];
        if !flags.split(',').any(|f| f == "master")
            || flags
                .split(',')
                .any(|f| f == "fail" || f == "noaddr" || f == "handshake")
        {
            continue;
        }
        let address = fields[1].split('@').next().unwrap_or_default();
        if let Some((host, port)) = address.rsplit_once(':') {
            if let Ok(port) = port.parse() {
                masters.push((host.to_owned(), port));
            }
        }
    }
    masters
}

fn copy_error(error: &TierError) -> TierError {
    match error {
        TierError::Unavailable(text) => TierError::Unavailable(text.clone()),
        TierError::Timeout(after) => TierError::Timeout(*after),
        TierError::Closed => TierError::Closed,
        other => TierError::Unavailable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_masters;

    #[test]
    fn masters_are_read_from_cluster_nodes() {
        let text = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922
c3 127.0.0.1:7002@17002 master,fail - 0 0 3 connected 10923-16383
d4 127.0.0.1:7003@17003 slave a1 0 0 1 connected
e5 127.0.0.1:7004@17004 master - 0 0 5 connected
";
        assert_eq!(
            parse_masters(text),
            vec![
                ("127.0.0.1".to_owned(), 7000),
                ("127.0.0.1".to_owned(), 7001)
            ]
        );
    }
}
