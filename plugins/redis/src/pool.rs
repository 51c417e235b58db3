//! The standalone read pool: bb8 over multiplexed connections that are opened with explicit
//! connect and response timeouts, and that are discarded once they failed or timed out.
//!
//! bb8-redis's manager opens connections with the redis crate's default timeouts and never
//! reports one broken, so a connection to a restarted server would stay in the pool; this
//! manager marks a connection *suspect* while a command is in flight and clears the mark only
//! when an answer came back, so a connection whose command was abandoned (its future dropped
//! by a deadline) or failed at the connection level leaves the pool when it is returned.

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, FromRedisValue, RedisError};

use crate::error::breaks_connection;

/// Opens the pool's connections.
pub(crate) struct Manager {
    pub(crate) client: Client,
    pub(crate) config: AsyncConnectionConfig,
}

/// A pooled connection and whether it may be broken.
pub(crate) struct PoolConnection {
    connection: MultiplexedConnection,
    suspect: bool,
}

impl PoolConnection {
    /// Runs one command, keeping the connection suspect unless an answer came back.
    pub(crate) async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> Result<T, RedisError> {
        self.suspect = true;
        let result = cmd.query_async::<T>(&mut self.connection).await;
        self.suspect = matches!(&result, Err(error) if breaks_connection(error));
        result
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
            suspect: false,
        })
    }

    async fn is_valid(&self, connection: &mut PoolConnection) -> Result<(), RedisError> {
        connection.query::<()>(&redis::cmd("PING")).await
    }

    fn has_broken(&self, connection: &mut PoolConnection) -> bool {
        connection.suspect
    }
}
