//! Direct read connections for single-key `GET`s on a plain-TCP standalone server: the reading
//! task writes the request and reads the reply itself, with no multiplexer task in between.
//!
//! The redis crate's multiplexed connection hands each request to a driver task and back (two
//! task switches and one more `epoll_wait` per request than a client driving its own socket);
//! for a one-at-a-time `GET` that is measurable against `redis-benchmark -c 1` (see
//! `benches/README.md`). These connections speak just enough RESP2 for `AUTH`, `SELECT` and
//! `GET`, are held exclusively for one request (bb8 hands them out), and are discarded when a
//! request failed or was abandoned half-way (its reply would otherwise be read by the next
//! caller). Batches, writes, scans and TLS servers go through the redis crate.

use std::io::{self, Write as _};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest reply accepted: Redis refuses bulk strings above 512 MiB.
const MAX_BULK: usize = 512 << 20;

/// Opens direct connections (and authenticates them).
pub(crate) struct DirectManager {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) db: i64,
    pub(crate) connect_timeout: Duration,
}

/// One direct connection.
pub(crate) struct DirectConnection {
    stream: TcpStream,
    buffer: BytesMut,
    request: Vec<u8>,
    /// Set while a request is in flight; a connection dropped back with it set is discarded.
    busy: bool,
}

/// A reply this client understands.
enum Reply {
    Ok,
    Bulk(Option<Bytes>),
}

fn protocol(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// An error reply from the server (`-ERR …`): the connection is still in step.
#[derive(Debug, thiserror::Error)]
#[error("Redis answered an error: {0}")]
pub(crate) struct ServerReply(pub(crate) String);

/// Whether `error` is an error reply of the server (rather than a broken connection).
pub(crate) fn is_server_reply(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<ServerReply>())
}

impl DirectConnection {
    /// `GET key`: the value, or `None`. A server error (`-WRONGTYPE`, say) is an error; the
    /// connection stays usable after one.
    pub(crate) async fn get(&mut self, key: &str) -> io::Result<Option<Bytes>> {
        match self.call(&[b"GET", key.as_bytes()]).await? {
            Reply::Bulk(value) => Ok(value),
            Reply::Ok => Err(protocol("GET answered a status")),
        }
    }

    async fn call(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.busy = true;
        self.request.clear();
        // Writes into a Vec cannot fail.
        let _ = write!(self.request, "*{}\r\n", args.len());
        for arg in args {
            let _ = write!(self.request, "${}\r\n", arg.len());
            self.request.extend_from_slice(arg);
            self.request.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&self.request).await?;
        let reply = self.read_reply().await;
        // A server error leaves the connection in step; anything else that failed does not.
        // Bytes beyond the reply (the server answered more than asked) would be read as the
        // next request's answer: such a connection is out of step too.
        self.busy =
            matches!(&reply, Err(error) if !is_server_reply(error)) || !self.buffer.is_empty();
        reply
    }

    async fn read_reply(&mut self) -> io::Result<Reply> {
        loop {
            if let Some(reply) = parse(&mut self.buffer)? {
                return reply;
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
        }
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.busy
    }
}

/// One reply from the front of `buffer` (consumed), or `None` if it is not all there yet. The
/// outer error is a protocol violation; the inner one a server error reply.
fn parse(buffer: &mut BytesMut) -> io::Result<Option<io::Result<Reply>>> {
    let Some(end) = buffer.windows(2).position(|w| w == b"\r\n") else {
        if buffer.len() > 64 * 1024 {
            return Err(protocol("a reply line longer than 64 KiB"));
        }
        return Ok(None);
    };
    if end == 0 {
        return Err(protocol("an empty reply line"));
    }
    let line = &buffer[1..end];
    match buffer.first() {
        Some(b'+') => {
            buffer.advance(end + 2);
            Ok(Some(Ok(Reply::Ok)))
        }
        Some(b'-') => {
            let message = String::from_utf8_lossy(line).into_owned();
            buffer.advance(end + 2);
            Ok(Some(Err(io::Error::other(ServerReply(message)))))
        }
        Some(b'$') => {
            let length: i64 = std::str::from_utf8(line)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| protocol("a bulk length that is not a number"))?;
            if length < 0 {
                buffer.advance(end + 2);
                return Ok(Some(Ok(Reply::Bulk(None))));
            }
            let length =
                usize::try_from(length).map_err(|_| protocol("a bulk length overflows"))?;
            if length > MAX_BULK {
                return Err(protocol("a bulk reply above 512 MiB"));
            }
            let total = end + 2 + length + 2;
            if buffer.len() < total {
                buffer.reserve(total - buffer.len());
                return Ok(None);
            }
            if &buffer[total - 2..total] != b"\r\n" {
                return Err(protocol("a bulk reply not ended by CRLF"));
            }
            buffer.advance(end + 2);
            // A small value is copied: a slice of the read buffer would keep all of it alive
            // for as long as the value sits in a cache.
            let value = if length < 1024 {
                let value = Bytes::copy_from_slice(&buffer[..length]);
                buffer.advance(length);
                value
            } else {
                buffer.split_to(length).freeze()
            };
            buffer.advance(2);
            Ok(Some(Ok(Reply::Bulk(Some(value)))))
        }
        _ => Err(protocol("an unexpected reply type")),
    }
}

impl bb8::ManageConnection for DirectManager {
    type Connection = DirectConnection;
    type Error = io::Error;

    async fn connect(&self) -> io::Result<DirectConnection> {
        let connecting = TcpStream::connect((self.host.as_str(), self.port));
        let stream = tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        let mut connection = DirectConnection {
            stream,
            buffer: BytesMut::with_capacity(4096),
            request: Vec::with_capacity(128),
            busy: false,
        };
        let handshake = async {
            if let Some(password) = &self.password {
                let reply = match &self.username {
                    Some(user) => {
                        connection
                            .call(&[b"AUTH", user.as_bytes(), password.as_bytes()])
                            .await
                    }
                    None => connection.call(&[b"AUTH", password.as_bytes()]).await,
                };
                reply?;
            }
            if self.db != 0 {
                connection
                    .call(&[b"SELECT", self.db.to_string().as_bytes()])
                    .await?;
            }
            Ok::<_, io::Error>(())
        };
        tokio::time::timeout(self.connect_timeout, handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))??;
        Ok(connection)
    }

    async fn is_valid(&self, connection: &mut DirectConnection) -> io::Result<()> {
        connection.call(&[b"PING"]).await.map(|_| ())
    }

    fn has_broken(&self, connection: &mut DirectConnection) -> bool {
        connection.is_broken()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(bytes: &[u8]) -> (io::Result<Option<io::Result<Reply>>>, usize) {
        let mut buffer = BytesMut::from(bytes);
        let result = parse(&mut buffer);
        (result, buffer.len())
    }

    #[test]
    fn replies_are_parsed_and_consumed_exactly() {
        let (reply, left) = parsed(b"$5\r\nhello\r\n+OK\r\n");
        assert!(matches!(reply, Ok(Some(Ok(Reply::Bulk(Some(v))))) if v == "hello"));
        assert_eq!(left, 5);
        let (reply, left) = parsed(b"$-1\r\n");
        assert!(matches!(reply, Ok(Some(Ok(Reply::Bulk(None))))));
        assert_eq!(left, 0);
        let (reply, _) = parsed(b"$0\r\n\r\n");
        assert!(matches!(reply, Ok(Some(Ok(Reply::Bulk(Some(v))))) if v.is_empty()));
        let (reply, _) = parsed(b"+OK\r\n");
        assert!(matches!(reply, Ok(Some(Ok(Reply::Ok)))));
        let (reply, _) = parsed(b"-WRONGTYPE nope\r\n");
        assert!(
            matches!(reply, Ok(Some(Err(e))) if is_server_reply(&e) && e.to_string().contains("WRONGTYPE"))
        );
    }

    #[test]
    fn partial_replies_wait_and_bad_ones_are_errors() {
        for partial in [&b"$5\r\nhel"[..], b"$5", b"", b"$5\r\nhello\r"] {
            assert!(matches!(parsed(partial).0, Ok(None)), "{partial:?}");
        }
        for bad in [
            &b":1\r\n"[..],
            b"$x\r\n",
            b"$5\r\nhelloXY",
            b"$999999999999\r\n",
            b"\r\n",
        ] {
            assert!(parsed(bad).0.is_err(), "{bad:?}");
        }
    }
}
