//! Real `redis-server` processes for tests: a standalone server, or a cluster of three masters
//! with a replica each, on free loopback ports, each in its own temporary directory, stopped
//! (killed and reaped) when dropped, also when the test panics.
//!
//! Where `redis-server` is not installed, [`RedisServer::start`] and [`RedisCluster::start`]
//! answer `Ok(None)` after printing a loud line to stderr, so the test can skip; with
//! `STRATA_REQUIRE_REDIS=1` they answer [`ServerError::Missing`] instead, so the test fails (as
//! CI sets it). Every wait is bounded in count and time.
//!
//! ```no_run
//! # fn main() -> Result<(), strata_testing::redis_server::ServerError> {
//! use strata_testing::redis_server::RedisServer;
//! let Some(server) = RedisServer::start()? else { return Ok(()) };
//! assert!(server.url().starts_with("redis://127.0.0.1:"));
//! # Ok(()) }
//! ```

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server (or a cluster) may take to answer after it was started.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// Pause between two readiness checks.
const POLL: Duration = Duration::from_millis(25);

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `redis-server` (or `redis-cli`) is not installed and `STRATA_REQUIRE_REDIS=1` is set.
    #[error("{0} is not installed and STRATA_REQUIRE_REDIS=1 (apt-get install -y redis-server redis-tools)")]
    Missing(&'static str),
    /// Spawning a process, or talking to it, failed.
    #[error("redis test server: {0}")]
    Io(#[from] std::io::Error),
    /// The server or cluster did not become ready in time.
    #[error("redis test server on port {port} not ready after {waited:?}: {detail}")]
    NotReady {
        /// The port of the server that was waited for.
        port: u16,
        /// How long it was waited for.
        waited: Duration,
        /// What it last answered, or why not.
        detail: String,
    },
}

/// Whether a program can be run (found on `PATH`).
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `Ok(true)` if `program` is installed; `Ok(false)` (after saying so) if it is not and Redis is
/// optional; `Err(Missing)` if it is not and `STRATA_REQUIRE_REDIS=1`.
fn require(program: &'static str) -> Result<bool, ServerError> {
    if installed(program) {
        return Ok(true);
    }
    if std::env::var("STRATA_REQUIRE_REDIS").is_ok_and(|v| v == "1") {
        return Err(ServerError::Missing(program));
    }
    // Written to the process's stderr directly: the test harness captures `eprintln!`, and a
    // skipped test must not pass quietly.
    let _ = writeln!(
        std::io::stderr(),
        "!!! SKIPPED: {program} is not installed, so this Redis test does not run \
         (apt-get install -y redis-server redis-tools; STRATA_REQUIRE_REDIS=1 makes this a failure)"
    );
    Ok(false)
}

/// A loopback port nothing listens on right now. A cluster node also needs its bus port, the
/// port plus 10,000: for one, a port up to 55,535 is chosen whose bus port is free too (at most
/// 100 tries).
fn free_port(cluster: bool) -> Result<u16, ServerError> {
    for _ in 0..100 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        if !cluster {
            return Ok(port);
        }
        if port <= u16::MAX - 10_000
            && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10_000)).is_ok()
        {
            return Ok(port);
        }
    }
    Err(std::io::Error::other("no free loopback port with a free bus port in 100 tries").into())
}

/// Sends one command (as a RESP array of bulk strings) and returns the raw reply's first read.
fn command(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(500),
    )?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    let mut reply = vec![0; 4096];
    let n = stream.read(&mut reply)?;
    Ok(String::from_utf8_lossy(&reply[..n]).into_owned())
}

/// Waits, bounded by [`READY_WITHIN`], until `ready` holds for the reply to `args` on `port`.
fn wait_for(port: u16, args: &[&str], ready: impl Fn(&str) -> bool) -> Result<(), ServerError> {
    let start = Instant::now();
    let mut last = String::from("no answer yet");
    while start.elapsed() < READY_WITHIN {
        match command(port, args) {
            Ok(reply) if ready(&reply) => return Ok(()),
            Ok(reply) => last = reply,
            Err(error) => last = error.to_string(),
        }
        std::thread::sleep(POLL);
    }
    Err(ServerError::NotReady {
        port,
        waited: start.elapsed(),
        detail: last.trim().to_string(),
    })
}

/// Waits, bounded by [`READY_WITHIN`], until a TLS server on `port` answers `redis-cli --tls`.
fn wait_for_tls(port: u16, ca: &Path) -> Result<(), ServerError> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < READY_WITHIN {
        let output = Command::new("redis-cli")
            .args(["--tls", "--cacert"])
            .arg(ca)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "PING"])
            .stdin(Stdio::null())
            .output()?;
        last = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        if last.contains("PONG") {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
    Err(ServerError::NotReady {
        port,
        waited: start.elapsed(),
        detail: last.trim().to_string(),
    })
}

/// One `redis-server` process on a loopback port, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    cluster: bool,
    /// TLS only (`--port 0 --tls-port <port>`), with these files.
    tls: Option<TlsFiles>,
}

/// A TLS server's certificate, key and CA (PEM files).
#[derive(Debug)]
struct TlsFiles {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    ca: std::path::PathBuf,
}

impl RedisServer {
    /// Starts a standalone server (no persistence), or `Ok(None)` if Redis is not installed and
    /// not required (see the module docs).
    pub fn start() -> Result<Option<RedisServer>, ServerError> {
        if !require("redis-server")? {
            return Ok(None);
        }
        Self::spawn(false).map(Some)
    }

    fn spawn(cluster: bool) -> Result<RedisServer, ServerError> {
        let port = free_port(cluster)?;
        let dir = tempfile::tempdir()?;
        let server = RedisServer {
            child: Self::launch(port, dir.path(), cluster, None)?,
            port,
            dir,
            cluster,
            tls: None,
        };
        wait_for(port, &["PING"], |reply| reply.starts_with("+PONG"))?;
        Ok(server)
    }

    /// Starts a server that speaks only TLS, on a free loopback port, presenting `cert` with
    /// `key` (PEM files; `cert` signed by the CA in `ca`) and asking no client certificate; or
    /// `Ok(None)` as for [`start`](Self::start). Readiness is checked with `redis-cli --tls`.
    pub fn start_tls(
        cert: &Path,
        key: &Path,
        ca: &Path,
    ) -> Result<Option<RedisServer>, ServerError> {
        if !require("redis-server")? || !require("redis-cli")? {
            return Ok(None);
        }
        let port = free_port(false)?;
        let dir = tempfile::tempdir()?;
        let tls = Some(TlsFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            ca: ca.to_path_buf(),
        });
        let server = RedisServer {
            child: Self::launch(port, dir.path(), false, tls.as_ref())?,
            port,
            dir,
            cluster: false,
            tls,
        };
        wait_for_tls(port, ca)?;
        Ok(Some(server))
    }

    fn launch(
        port: u16,
        dir: &Path,
        cluster: bool,
        tls: Option<&TlsFiles>,
    ) -> std::io::Result<Child> {
        let port_arg = port.to_string();
        let (plain_port, tls_args) = match tls {
            Some(files) => (
                "0".to_owned(),
                vec![
                    "--tls-port".to_owned(),
                    port_arg.clone(),
                    "--tls-cert-file".to_owned(),
                    files.cert.display().to_string(),
                    "--tls-key-file".to_owned(),
                    files.key.display().to_string(),
                    "--tls-ca-cert-file".to_owned(),
                    files.ca.display().to_string(),
                    "--tls-auth-clients".to_owned(),
                    "no".to_owned(),
                ],
            ),
            None => (port_arg.clone(), Vec::new()),
        };
        let mut args = vec![
            "--port",
            &plain_port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ];
        if cluster {
            args.extend([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                // A replica takes over however long it was without its master (the default
                // refuses after a long disconnect, which a test's killed node can reach).
                "--cluster-replica-validity-factor",
                "0",
            ]);
        }
        Command::new("redis-server")
            .args(&args)
            .args(&tls_args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Stops the process (`SIGSTOP`): connections stay open but nothing is answered.
    pub fn pause(&self) -> Result<(), ServerError> {
        self.signal("-STOP")
    }

    /// Lets a paused process go on (`SIGCONT`).
    pub fn resume(&self) -> Result<(), ServerError> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> Result<(), ServerError> {
        let status = Command::new("kill")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("kill {signal} failed: {status}")).into())
        }
    }

    /// Kills the process and starts a new one on the same port and directory (an empty
    /// dataset, as nothing is persisted), waiting until it answers.
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.stop();
        self.child = Self::launch(self.port, self.dir.path(), self.cluster, self.tls.as_ref())?;
        match &self.tls {
            Some(files) => wait_for_tls(self.port, &files.ca),
            None => wait_for(self.port, &["PING"], |reply| reply.starts_with("+PONG")),
        }
    }

    /// Sends one command and returns the raw reply (for tests that check the server's state).
    pub fn command(&self, args: &[&str]) -> Result<String, ServerError> {
        Ok(command(self.port, args)?)
    }

    /// Kills the process (`SIGKILL`) and leaves it dead: a crash, or a failed cluster node.
    /// [`restart`](Self::restart) starts it again.
    pub fn kill(&mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster of three masters with one replica each, made by `redis-cli --cluster create`
/// on six loopback ports; every node is killed when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the six nodes, joins them, and waits until every node reports
    /// `cluster_state:ok`; or `Ok(None)` if Redis is not installed and not required.
    pub fn start() -> Result<Option<RedisCluster>, ServerError> {
        if !require("redis-server")? || !require("redis-cli")? {
            return Ok(None);
        }
        let nodes = (0..6)
            .map(|_| RedisServer::spawn(true))
            .collect::<Result<Vec<_>, _>>()?;
        let cluster = RedisCluster { nodes };
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()?;
        if !output.status.success() {
            return Err(ServerError::NotReady {
                port: cluster.nodes[0].port,
                waited: Duration::ZERO,
                detail: String::from_utf8_lossy(&output.stdout).into_owned(),
            });
        }
        // Every node sees a healthy cluster, and (replication being set up by gossip after the
        // slots) three masters each with a replica.
        for node in &cluster.nodes {
            wait_for(node.port, &["CLUSTER", "INFO"], |reply| {
                reply.contains("cluster_state:ok")
            })?;
            wait_for(node.port, &["CLUSTER", "NODES"], |reply| {
                reply.matches("master").count() == 3 && reply.matches("slave").count() == 3
            })?;
        }
        // Every replica has completed its first sync (a replica that never synced cannot
        // take over from a failed master).
        for node in &cluster.nodes {
            wait_for(node.port, &["INFO", "replication"], |reply| {
                reply.contains("role:master") || reply.contains("master_link_status:up")
            })?;
        }
        Ok(Some(cluster))
    }

    /// Every node (masters and replicas, in the order they were started).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Every node, to kill or restart one.
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// `redis+cluster://127.0.0.1:<port>,...` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }
}
