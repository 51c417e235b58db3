//! The subscriber task: one connection subscribed to the namespace channel, a heartbeat, and a
//! resubscribe loop that clears the subscriber's L1 each time it (re)subscribes, because
//! whatever was published while it was not subscribed is unknown.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{
    AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, RedisError, Value,
};
use strata_tier::{Invalidation, SharedSink};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::{now_micros, Message};
use crate::keys::Namespace;
use crate::stats::Counters;

/// The most pushes applied as one coalesced batch.
const BATCH: usize = 1024;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where a subscriber connects.
pub(crate) enum Feed {
    /// A standalone server: a RESP3 client (pushes need RESP3).
    Standalone(Client),
    /// A cluster: RESP3 seed URLs, whether the channel is sharded, and the channel's slot.
    Cluster {
        seeds: Vec<String>,
        sharded: bool,
        slot: u16,
        root_cert: Option<Vec<u8>>,
    },
}

/// What a subscriber needs.
pub(crate) struct SubscriberSetup {
    pub(crate) feed: Arc<Feed>,
    pub(crate) channel: String,
    pub(crate) origin: u64,
    pub(crate) counters: Arc<Counters>,
    pub(crate) sink: SharedSink,
    pub(crate) heartbeat: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) label: String,
    /// The namespace, to turn tracked Redis keys back into cache keys.
    pub(crate) namespace: Namespace,
    /// Server-assisted tracking: `CLIENT TRACKING ON BCAST PREFIX <namespace prefix>` on the
    /// subscriber's connection (on every master in a cluster), enabled anew on every
    /// (re)connection.
    pub(crate) tracking: bool,
}

enum Live {
    Standalone(MultiplexedConnection),
    Cluster(ClusterConnection, u16),
}

/// Starts the subscriber on `runtime`; it runs until the handle is aborted.
pub(crate) fn spawn_subscriber(
    runtime: &tokio::runtime::Handle,
    setup: SubscriberSetup,
) -> tokio::task::JoinHandle<()> {
    setup.counters.subscriptions.fetch_add(1, Relaxed);
    let counters = Arc::clone(&setup.counters);
    let guard = Gauge(counters);
    runtime.spawn(async move {
        let _guard = guard;
        run(setup).await
    })
}

/// Takes a subscription off the gauge when its task ends (aborted or not).
struct Gauge(Arc<Counters>);

impl Drop for Gauge {
    fn drop(&mut self) {
        self.0.subscriptions.fetch_sub(1, Relaxed);
    }
}

/// Marks the subscription subscribed for as long as it lives.
struct Subscribed<'a>(&'a Counters);

impl<'a> Subscribed<'a> {
    fn new(counters: &'a Counters) -> Self {
        counters.subscribed.fetch_add(1, Relaxed);
        Subscribed(counters)
    }
}

impl Drop for Subscribed<'_> {
    fn drop(&mut self) {
        self.0.subscribed.fetch_sub(1, Relaxed);
    }
}

async fn run(setup: SubscriberSetup) {
    let mut first = true;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let (sender, mut pushes) = unbounded_channel();
        let connecting = connect(&setup, sender);
        let mut live = match tokio::time::timeout(setup.connect_timeout * 2, connecting).await {
            Ok(Ok(live)) => live,
            failed => {
                let reason = match failed {
                    Ok(Err(error)) => error.to_string(),
                    _ => "timed out".to_owned(),
                };
                tracing::debug!(tier = %setup.label, %reason, "invalidation bus: subscribe failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        let subscribed = Subscribed::new(&setup.counters);
        // Whatever was published while this subscriber was not listening is unknown.
        setup.sink.events_lost();
        if !first {
            setup.counters.clears_after_reconnect.fetch_add(1, Relaxed);
            tracing::warn!(
                tier = %setup.label,
                "invalidation bus resubscribed: cleared L1, as events may have been missed"
            );
        }
        first = false;
        let reason = listen(&setup, &mut live, &mut pushes).await;
        drop(subscribed);
        setup.counters.disconnects.fetch_add(1, Relaxed);
        tracing::warn!(tier = %setup.label, %reason, "invalidation bus subscription lost; resubscribing");
    }
}

async fn connect(
    setup: &SubscriberSetup,
    sender: UnboundedSender<PushInfo>,
) -> Result<Live, RedisError> {
    match &*setup.feed {
        Feed::Standalone(client) => {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(setup.connect_timeout))
                .set_response_timeout(Some(setup.timeout))
                .set_push_sender(sender);
            let mut connection = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            connection.subscribe(&setup.channel).await?;
            if setup.tracking {
                tracking_command(setup)
                    .query_async::<()>(&mut connection)
                    .await?;
            }
            Ok(Live::Standalone(connection))
        }
        Feed::Cluster {
            seeds,
            sharded,
            slot,
            root_cert,
        } => {
            let builder = ClusterClientBuilder::new(seeds.clone());
            let client = crate::tls::cluster(builder, root_cert.as_deref())
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(sender)
                .connection_timeout(setup.connect_timeout)
                .response_timeout(setup.timeout)
                .retries(1)
                .build()?;
            let mut connection = client.get_async_connection().await?;
            if *sharded {
                connection.ssubscribe(&setup.channel).await?;
            } else {
                connection.subscribe(&setup.channel).await?;
            }
            if setup.tracking {
                let every_master = RoutingInfo::MultiNode((
                    MultipleNodeRoutingInfo::AllMasters,
                    Some(ResponsePolicy::AllSucceeded),
                ));
                connection
                    .route_command(tracking_command(setup), every_master)
                    .await?;
            }
            Ok(Live::Cluster(connection, *slot))
        }
    }
}

/// `CLIENT TRACKING ON BCAST PREFIX <prefix>`: the server pushes an `invalidate` for every
/// change to a key under the prefix, by any client (Strata or not).
fn tracking_command(setup: &SubscriberSetup) -> redis::Cmd {
    let mut cmd = redis::cmd("CLIENT");
    cmd.arg("TRACKING")
        .arg("ON")
        .arg("BCAST")
        .arg("PREFIX")
        .arg(setup.namespace.prefix());
    cmd
}

/// Applies pushes until the subscription is lost; returns why it was.
async fn listen(
    setup: &SubscriberSetup,
    live: &mut Live,
    pushes: &mut UnboundedReceiver<PushInfo>,
) -> String {
    let mut heartbeat = tokio::time::interval(setup.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            push = pushes.recv() => {
                let Some(push) = push else {
                    return "the connection's push channel closed".to_owned();
                };
                let mut batch = vec![push];
                while batch.len() < BATCH {
                    match pushes.try_recv() {
                        Ok(push) => batch.push(push),
                        Err(_) => break,
                    }
                }
                if let Some(reason) = apply(setup, batch) {
                    return reason;
                }
            }
            _ = heartbeat.tick() => {
                // A ping may take as long as the heartbeat's period, not just one call's
                // deadline: a busy server or machine must not cost every instance its L1.
                if let Err(reason) = ping(live, setup.timeout.max(setup.heartbeat)).await {
                    return format!("heartbeat unanswered: {reason}");
                }
            }
        }
    }
}

async fn ping(live: &mut Live, timeout: Duration) -> Result<(), String> {
    let answered = match live {
        Live::Standalone(connection) => {
            tokio::time::timeout(timeout, redis::cmd("PING").query_async::<Value>(connection)).await
        }
        Live::Cluster(connection, slot) => {
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
                *slot,
                SlotAddr::Master,
            )));
            tokio::time::timeout(
                timeout,
                connection.route_command(redis::cmd("PING"), routing),
            )
            .await
        }
    };
    match answered {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Applies a batch of pushes as one: keys deduplicated, a clear standing for everything.
/// Returns why the subscription is lost, if a push says so.
fn apply(setup: &SubscriberSetup, batch: Vec<PushInfo>) -> Option<String> {
    let counters = &setup.counters;
    let mut keys = HashSet::new();
    let mut patterns = Vec::new();
    let mut clear = false;
    let mut lost = None;
    let now = now_micros();
    for push in batch {
        match push.kind {
            PushKind::Message | PushKind::SMessage => {
                let Some(Value::BulkString(payload)) = push.data.get(1) else {
                    counters.malformed.fetch_add(1, Relaxed);
                    continue;
                };
                let message = match Message::decode(payload) {
                    Ok(message) => message,
                    Err(error) => {
                        counters.malformed.fetch_add(1, Relaxed);
                        tracing::debug!(tier = %setup.label, %error, "invalidation bus: skipped a message");
                        continue;
                    }
                };
                if message.origin == setup.origin {
                    counters.own_skipped.fetch_add(1, Relaxed);
                    continue;
                }
                counters.record_lag(Duration::from_micros(
                    now.saturating_sub(message.sent_at_micros),
                ));
                for event in message.events {
                    match event {
                        Invalidation::Key(key) => {
                            keys.insert(key);
                        }
                        Invalidation::Pattern(pattern) => patterns.push(pattern),
                        _ => clear = true,
                    }
                }
            }
            PushKind::Invalidate => match push.data.first() {
                // A flush of the database (or of the tracking table): everything.
                Some(Value::Nil) | None => clear = true,
                Some(Value::Array(tracked)) => {
                    for raw in tracked {
                        let text = match raw {
                            Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
                            Value::SimpleString(text) => Some(text.as_str()),
                            _ => None,
                        };
                        match text.and_then(|text| setup.namespace.strip(text)) {
                            Some(key) => {
                                keys.insert(key.to_owned());
                            }
                            None => {
                                counters.malformed.fetch_add(1, Relaxed);
                            }
                        }
                    }
                }
                Some(_) => {
                    counters.malformed.fetch_add(1, Relaxed);
                }
            },
            PushKind::Disconnection => lost = Some("disconnected".to_owned()),
            PushKind::Unsubscribe | PushKind::SUnsubscribe => {
                lost = Some("the server unsubscribed this connection (slot moved?)".to_owned())
            }
            _ => {}
        }
    }
    let sink = &setup.sink;
    if clear {
        sink.invalidate(Invalidation::Clear);
        counters.applied.fetch_add(1, Relaxed);
    } else {
        counters
            .applied
            .fetch_add((keys.len() + patterns.len()) as u64, Relaxed);
        for pattern in patterns {
            sink.invalidate(Invalidation::Pattern(pattern));
        }
        for key in keys {
            sink.invalidate(Invalidation::Key(key));
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use strata_tier::KeyPattern;

    use super::*;

    fn setup(sink: SharedSink) -> SubscriberSetup {
        SubscriberSetup {
            feed: Arc::new(Feed::Standalone(
                Client::open("redis://127.0.0.1:1").expect("a valid URL"),
            )),
            channel: "strata:{ns}:invalidations".into(),
            origin: 7,
            counters: Arc::new(Counters::new()),
            sink,
            heartbeat: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            label: "test".into(),
            namespace: Namespace::new("ns", false),
            tracking: false,
        }
    }

    fn message(origin: u64, events: Vec<Invalidation>) -> PushInfo {
        let payload = Message {
            origin,
            generation: 1,
            sent_at_micros: now_micros(),
            events,
        }
        .encode();
        PushInfo {
            kind: PushKind::Message,
            data: vec![
                Value::BulkString(b"strata:{ns}:invalidations".to_vec()),
                Value::BulkString(payload),
            ],
        }
    }

    fn recorder() -> (Arc<Mutex<Vec<Invalidation>>>, SharedSink) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let seen = Arc::clone(&seen);
            move |event: Invalidation| seen.lock().unwrap().push(event)
        };
        (seen, Arc::new(sink))
    }

    #[test]
    fn a_burst_is_applied_once_per_key_and_own_and_foreign_messages_are_skipped() {
        let (seen, sink) = recorder();
        let setup = setup(sink);
        let key = |k: &str| Invalidation::Key(k.to_owned());
        let mut burst: Vec<PushInfo> = (0..50).map(|_| message(1, vec![key("hot")])).collect();
        burst.push(message(2, vec![key("a"), key("b"), key("hot")]));
        burst.push(message(7, vec![key("own")])); // this subscriber's own origin
        burst.push(PushInfo {
            kind: PushKind::Message,
            data: vec![
                Value::BulkString(b"c".to_vec()),
                Value::BulkString(b"hello".to_vec()),
            ],
        });
        assert_eq!(apply(&setup, burst), None);
        let mut applied = seen.lock().unwrap().clone();
        applied.sort_by_key(|e| e.to_string());
        assert_eq!(applied, vec![key("a"), key("b"), key("hot")]);
        let bus = setup.counters.bus();
        assert_eq!((bus.applied, bus.own_skipped, bus.malformed), (3, 1, 1));
    }

    #[test]
    fn a_clear_in_a_burst_stands_for_everything_and_a_disconnect_is_a_loss() {
        let (seen, sink) = recorder();
        let setup = setup(sink);
        let pattern = Invalidation::Pattern(KeyPattern::new("user:*").unwrap());
        let burst = vec![
            message(1, vec![Invalidation::Key("a".into()), pattern]),
            message(1, vec![Invalidation::Clear]),
            PushInfo {
                kind: PushKind::Disconnection,
                data: vec![],
            },
        ];
        assert!(
            apply(&setup, burst).is_some(),
            "a disconnect must end the subscription"
        );
        assert_eq!(*seen.lock().unwrap(), vec![Invalidation::Clear]);
    }

    #[test]
    fn tracking_pushes_name_redis_keys_and_a_flush_clears() {
        let (seen, sink) = recorder();
        let setup = setup(sink);
        let burst = vec![PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Array(vec![
                Value::BulkString(b"ns:user:1".to_vec()),
                Value::BulkString(b"other:user:1".to_vec()),
            ])],
        }];
        assert_eq!(apply(&setup, burst), None);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![Invalidation::Key("user:1".into())]
        );
        let flush = vec![PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Nil],
        }];
        assert_eq!(apply(&setup, flush), None);
        assert_eq!(seen.lock().unwrap().last(), Some(&Invalidation::Clear));
    }
}
