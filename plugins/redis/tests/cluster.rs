//! The Redis tier on a real 3 + 3 cluster, beyond the `Tier` contract: the bus on a sharded
//! channel (`SSUBSCRIBE` on the master owning the namespace's slot), the hash-tag option that
//! puts a namespace in one slot, `SCAN`+`UNLINK` across every master, and health per master.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_testing::redis_server::RedisCluster;
use strata_tier::{Bytes, Health, Invalidation, KeyPattern, Tier, WriteIntent};

fn slot_of(cluster: &RedisCluster, key: &str) -> u16 {
    let reply = cluster.nodes()[0]
        .command(&["CLUSTER", "KEYSLOT", key])
        .unwrap();
    reply.trim().trim_start_matches(':').parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_tier_shards_its_bus_spreads_or_colocates_keys_and_checks_every_master() {
    let Some(cluster) = RedisCluster::start().expect("start a redis cluster") else {
        return;
    };
    let ns = common::namespace("cluster");
    let tier = common::cluster(&cluster, &ns).open().await.unwrap();
    let peer = common::cluster(&cluster, &ns).open().await.unwrap();

    // The bus: a sharded channel, subscribed on the master that owns its slot.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let seen = Arc::clone(&seen);
        move |event: Invalidation| seen.lock().unwrap().push(event)
    };
    let _subscription = tier.subscribe(Arc::new(sink)).unwrap();
    let subscribed = common::eventually_async(Duration::from_secs(10), || async {
        tier.stats().bus.subscribed
    })
    .await;
    assert!(subscribed);
    let channel = tier.channel();
    let listed: Vec<bool> = cluster
        .nodes()
        .iter()
        .map(|n| {
            n.command(&["PUBSUB", "SHARDCHANNELS"])
                .unwrap_or_default()
                .contains(&channel)
        })
        .collect();
    assert_eq!(
        listed.iter().filter(|&&l| l).count(),
        1,
        "{channel} on {listed:?}"
    );
    let delivered = common::eventually_async(Duration::from_secs(10), || {
        let (peer, seen) = (&peer, Arc::clone(&seen));
        async move {
            peer.set(
                "user:1",
                Bytes::from_static(b"v"),
                None,
                WriteIntent::Update,
            )
            .await
            .unwrap();
            seen.lock()
                .unwrap()
                .contains(&Invalidation::Key("user:1".into()))
        }
    })
    .await;
    assert!(delivered, "no invalidation over the sharded channel");

    // Without a hash tag the namespace's keys spread over the slots; a pattern deletion scans
    // every master.
    let keys: Vec<String> = (0..60).map(|i| format!("spread:{i}")).collect();
    for key in &keys {
        tier.set(key, Bytes::from_static(b"x"), None, WriteIntent::Update)
            .await
            .unwrap();
    }
    let slots: std::collections::BTreeSet<u16> = keys
        .iter()
        .map(|k| slot_of(&cluster, &format!("{ns}:{k}")))
        .collect();
    assert!(slots.len() > 10, "keys landed in {} slots", slots.len());
    let removed = tier
        .delete_matching(&KeyPattern::new("spread:*").unwrap())
        .await
        .unwrap();
    assert_eq!(removed, keys.len() as u64);
    let answers = tier
        .get_many(&keys.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert!(answers
        .iter()
        .all(|a| matches!(a, strata_tier::Lookup::Miss)));

    // With the hash tag, every key of the namespace is in one slot: `{ns}:key`.
    let tagged = common::cluster(&cluster, &format!("{ns}-tag"))
        .hash_tag(true)
        .open()
        .await
        .unwrap();
    for key in ["a", "b", "c"] {
        tagged
            .set(key, Bytes::from_static(b"x"), None, WriteIntent::Update)
            .await
            .unwrap();
    }
    let tagged_slots: std::collections::BTreeSet<u16> = ["a", "b", "c"]
        .iter()
        .map(|k| slot_of(&cluster, &format!("{{{ns}-tag}}:{k}")))
        .collect();
    assert_eq!(tagged_slots.len(), 1);
    let exists = cluster
        .nodes()
        .iter()
        .filter_map(|n| n.command(&["EXISTS", &format!("{{{ns}-tag}}:a")]).ok())
        .any(|reply| reply.starts_with(":1"));
    assert!(exists, "the hash-tagged key is not stored as {{ns}}:key");
    assert_eq!(
        tagged
            .get_many(&["a", "b", "c"])
            .await
            .iter()
            .filter(|l| l.is_hit())
            .count(),
        3
    );

    // Empty batches answer empty (on a cluster too).
    assert!(tier.delete_many(&[]).await.is_empty());
    assert!(tier.set_many(Vec::new()).await.is_empty());

    // Health checks each master.
    assert_eq!(tier.health().await, Health::Healthy);
    let nodes = tier.stats().nodes;
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(nodes.iter().all(|n| n.round_trip.is_some()), "{nodes:?}");
}
