//! The standalone read pool: bb8 over multiplexed connections that are opened with an explicit
//! connect timeout, *shared* while in use, and discarded once they failed or timed out.
//!
//! A caller checks a connection out only to clone its handle and returns it at once (and later
//! reads reuse that handle until it breaks), so that concurrent reads share a connection and the
//! redis crate pipelines them (a read holding
//! a connection for its whole round trip would give each concurrent caller its own socket, and
//! Redis a system call per request). The pool still bounds the connections, opens them within
//! the connect timeout, and replaces broken ones: a call that fails at the connection level, or
//! is abandoned (its deadline passed), raises the connection's alarm, and a connection whose
//! alarm is raised is dropped from the pool at its next checkout. bb8-redis's own manager opens
//! connections with the redis crate's default timeouts and never reports one broken, which is
//! why this one exists.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, FromRedisValue, RedisError};

use crate::error::breaks_connection;

/// Opens the pool's connections.
pub(crate) struct Manager {
    pub(crate) client: Client,
    pub(crate) config: AsyncConnectionConfig,
}

/// A pooled connection and its alarm.
pub(crate) struct PoolConnection {
    connection: MultiplexedConnection,
    broken: Arc<AtomicBool>,
}

impl PoolConnection {
    /// A handle on the connection for one call, detached from the pool.
    pub(crate) fn lease(&self) -> Lease {
        Lease {
            connection: self.connection.clone(),
            broken: Arc::clone(&self.broken),
        }
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }
}

/// One call's handle on a pooled connection.
#[derive(Clone)]
pub(crate) struct Lease {
    connection: MultiplexedConnection,
    broken: Arc<AtomicBool>,
}

impl Lease {
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// Runs one command. The alarm is raised unless an answer came back (or the error was the
    /// server's, on a healthy connection), also when this future is dropped half-way.
    pub(crate) async fn query<T: FromRedisValue>(mut self, cmd: &Cmd) -> Result<T, RedisError> {
        let alarm = Alarm(Some(&self.broken));
        let result = cmd.query_async::<T>(&mut self.connection).await;
        if !matches!(&result, Err(error) if breaks_connection(error)) {
            alarm.disarm();
        }
        result
    }
}

/// Raises the alarm when dropped armed.
struct Alarm<'a>(Option<&'a AtomicBool>);

impl Alarm<'_> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Alarm<'_> {
    fn drop(&mut self) {
        if let Some(broken) = self.0 {
            broken.store(true, Ordering::Relaxed);
        }
    }
}

impl bb8::ManageConnection for Manager {
    type Connection = PoolConnection;
    type Error = RedisError;

    async fn connect(&self) -> Result<PoolConnection, RedisError> {
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        Ok(PoolConnection {
            connection,
            broken: Arc::new(AtomicBool::new(false)),
        })
    }

    async fn is_valid(&self, connection: &mut PoolConnection) -> Result<(), RedisError> {
        connection.lease().query::<()>(&redis::cmd("PING")).await
    }

    fn has_broken(&self, connection: &mut PoolConnection) -> bool {
        connection.is_broken()
    }
}
