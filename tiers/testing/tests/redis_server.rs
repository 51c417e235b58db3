//! The Redis test servers themselves: a standalone server that stores, pauses, resumes,
//! restarts empty and is gone when dropped; a 3 + 3 cluster whose every node reports a healthy
//! cluster. Skipped (loudly) without `redis-server`, unless `STRATA_REQUIRE_REDIS=1`.

use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use strata_testing::redis_server::{RedisCluster, RedisServer};

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(200),
    )
    .is_ok()
}

#[test]
fn a_standalone_server_stores_pauses_restarts_and_stops() {
    let Some(mut server) = RedisServer::start().expect("start redis-server") else {
        return;
    };
    let port = server.port();
    assert_eq!(server.url(), format!("redis://127.0.0.1:{port}"));
    assert!(server
        .command(&["SET", "k", "v"])
        .unwrap()
        .starts_with("+OK"));
    assert!(server.command(&["GET", "k"]).unwrap().contains("v"));

    // Paused: the connection is accepted by the kernel, but no reply comes within the timeout.
    server.pause().unwrap();
    assert!(
        server.command(&["PING"]).is_err(),
        "a paused server answered"
    );
    server.resume().unwrap();
    assert!(server.command(&["PING"]).unwrap().starts_with("+PONG"));

    // Restarted: same port, nothing persisted.
    server.restart().unwrap();
    assert_eq!(server.port(), port);
    assert!(server.command(&["GET", "k"]).unwrap().starts_with("$-1"));

    drop(server);
    assert!(!listening(port), "the server outlived its handle");
}

#[test]
fn a_cluster_has_three_masters_with_a_replica_each() {
    let Some(cluster) = RedisCluster::start().expect("start a redis cluster") else {
        return;
    };
    let nodes = cluster.nodes();
    assert_eq!(nodes.len(), 6);
    for node in nodes {
        let info = node.command(&["CLUSTER", "INFO"]).unwrap();
        assert!(info.contains("cluster_state:ok"), "{info}");
    }
    let layout = nodes[0].command(&["CLUSTER", "NODES"]).unwrap();
    assert_eq!(layout.matches("master").count(), 3, "{layout}");
    assert_eq!(layout.matches("slave").count(), 3, "{layout}");
    assert!(cluster.url().starts_with("redis+cluster://127.0.0.1:"));
    let ports: Vec<u16> = nodes.iter().map(RedisServer::port).collect();
    drop(cluster);
    for port in ports {
        assert!(!listening(port), "node {port} outlived the cluster");
    }
}
