//! [`RedisFactory`]: opening a tier from a `redis://`, `rediss://`, `redis+cluster://` or
//! `rediss+cluster://` URL, for a tier registry.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use redis::IntoConnectionInfo;
use strata_tier::{OpenFuture, Tier, TierFactory};

use crate::builder::{RedisTierBuilder, Target};
use crate::error::{redacted, RedisTierError};

/// The query parameters a Redis tier URL may carry.
const KNOWN: &[&str] = &[
    "namespace",
    "hash_tag",
    "pool_size",
    "write_lanes",
    "connect_timeout",
    "timeout",
    "heartbeat",
    "max_value_size",
    "bus",
    "sharded_pubsub",
    "tracking",
    "tls_ca",
    "scan_count",
    "name",
];

/// Opens [`RedisTier`](crate::RedisTier)s from URLs (implements [`TierFactory`] for `redis`,
/// `rediss`, `redis+cluster` and `rediss+cluster`).
///
/// - `redis://[user[:password]@]host[:port][/db]`: a standalone server (`rediss://`: over TLS,
///   with the `tls` feature). Credentials are percent-encoded as in any URL.
/// - `redis+cluster://[user[:password]@]host:port[,host:port…]`: a cluster, through these seed
///   nodes (any one reachable node is enough).
///
/// Options go in the query:
///
/// | parameter | meaning | default |
/// | --- | --- | --- |
/// | `namespace` | key prefix and channel name | `strata` |
/// | `hash_tag` | `true`: keys are `{namespace}:key`, one cluster slot | `false` |
/// | `pool_size` | read pool bound (standalone) | 16 |
/// | `write_lanes` | key-routed write connections (standalone) | 2 |
/// | `connect_timeout` | opening one connection (humantime) | `1s` |
/// | `timeout` | one Redis call (humantime) | `500ms` |
/// | `heartbeat` | bus subscriber's ping interval | `1s` |
/// | `max_value_size` | largest value (`B`, `KiB`, `MiB`, `GiB`) | `64MiB` |
/// | `bus` | publish and apply invalidations | `true` |
/// | `sharded_pubsub` | cluster: `SPUBLISH` where supported | `true` |
/// | `tls_ca` | `rediss`: a PEM file of the CA to trust (feature `tls`) | platform roots |
/// | `tracking` | also `CLIENT TRACKING BCAST` (see [`tracking`](crate::RedisTierBuilder::tracking)) | `false` |
/// | `scan_count` | keys per `SCAN` step | 1000 |
/// | `name` | the tier's name in stats | `redis` |
///
/// Anything else (a misspelt name, a parameter given twice, a fragment) is an error naming it.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedisFactory;

impl RedisFactory {
    /// The builder a URL describes, without connecting.
    pub fn builder_from_url(url: &str) -> Result<RedisTierBuilder, RedisTierError> {
        parse(url).map_err(RedisTierError::InvalidUrl)
    }
}

impl TierFactory for RedisFactory {
    fn schemes(&self) -> &[&'static str] {
        &["redis", "rediss", "redis+cluster", "rediss+cluster"]
    }

    fn open(&self, url: &str) -> OpenFuture {
        let builder = RedisFactory::builder_from_url(url);
        Box::pin(async move {
            let tier = builder?.open().await?;
            Ok(Arc::new(tier) as Arc<dyn Tier>)
        })
    }
}

fn parse(url: &str) -> Result<RedisTierBuilder, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} has no scheme (redis://, rediss://, redis+cluster://)"))?;
    let scheme = scheme.to_ascii_lowercase();
    if rest.contains('#') {
        return Err("a Redis tier URL takes no fragment ('#')".into());
    }
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (rest, None),
    };
    let target = match scheme.as_str() {
        "redis" | "rediss" => {
            let server = format!("{scheme}://{location}");
            check(&server)?;
            Target::Standalone(server)
        }
        "redis+cluster" | "rediss+cluster" => {
            let base = &scheme[..scheme.len() - "+cluster".len()];
            let location = location.strip_suffix('/').unwrap_or(location);
            if location.contains('/') {
                return Err(
                    "a cluster URL selects no database (cluster mode has only db 0)".into(),
                );
            }
            let (userinfo, hosts) = match location.rsplit_once('@') {
                Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
                None => (String::new(), location),
            };
            let mut seeds = Vec::new();
            for host in hosts.split(',') {
                if host.is_empty() {
                    return Err(format!("empty seed node in {hosts:?}"));
                }
                let seed = format!("{base}://{userinfo}{host}");
                check(&seed)?;
                seeds.push(seed);
            }
            Target::Cluster(seeds)
        }
        other => return Err(format!("scheme {other:?} is not a Redis scheme")),
    };
    let mut builder = RedisTierBuilder::new(target);
    let mut seen = BTreeSet::new();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !KNOWN.contains(&name.as_ref()) {
            return Err(format!(
                "unknown parameter {name:?} (known: {})",
                KNOWN.join(", ")
            ));
        }
        if !seen.insert(name.to_string()) {
            return Err(format!("parameter {name:?} given twice"));
        }
        let bad = |why: String| format!("parameter {name}={value:?}: {why}");
        builder = match name.as_ref() {
            "namespace" if value.is_empty() => return Err(bad("must not be empty".into())),
            "namespace" => builder.namespace(value.as_ref()),
            "name" => builder.name(value.as_ref()),
            "hash_tag" => builder.hash_tag(flag(&value).map_err(bad)?),
            "bus" => builder.invalidation_bus(flag(&value).map_err(bad)?),
            "sharded_pubsub" => builder.sharded_pubsub(flag(&value).map_err(bad)?),
            "tracking" => builder.tracking(flag(&value).map_err(bad)?),
            "tls_ca" if value.is_empty() => return Err(bad("must name a file".into())),
            "tls_ca" => builder.tls_root_cert(value.as_ref()),
            "pool_size" => builder.pool_size(count(&value).map_err(bad)?),
            "write_lanes" => builder.write_lanes(count(&value).map_err(bad)? as usize),
            "scan_count" => builder.scan_count(count(&value).map_err(bad)? as usize),
            "connect_timeout" => builder.connect_timeout(duration(&value).map_err(bad)?),
            "timeout" => builder.timeout(duration(&value).map_err(bad)?),
            "heartbeat" => builder.heartbeat(duration(&value).map_err(bad)?),
            "max_value_size" => builder.max_value_size(size(&value).map_err(bad)?),
            _ => unreachable!("every known parameter is handled"),
        };
    }
    Ok(builder)
}

/// The redis crate accepts the server URL (host, port, credentials, database, TLS support).
fn check(server: &str) -> Result<(), String> {
    server
        .into_connection_info()
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", redacted(server)))
}

fn flag(value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn count(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn duration(value: &str) -> Result<Duration, String> {
    match humantime::parse_duration(value) {
        Ok(d) if d.is_zero() => Err("must be more than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write e.g. 500ms, 2s)")),
    }
}

fn size(value: &str) -> Result<usize, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let number: usize = digits
        .parse()
        .map_err(|_| "expected a size such as 1048576, 512KiB or 8MiB".to_owned())?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} (B, KiB, MiB, GiB)")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| "size overflows".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_urls_carry_their_options() {
        let b = parse("redis://user:p%40ss@127.0.0.1:6380/2?namespace=app&timeout=50ms&pool_size=4&max_value_size=8MiB&bus=false").unwrap();
        assert_eq!(
            b.target,
            Target::Standalone("redis://user:p%40ss@127.0.0.1:6380/2".into())
        );
        assert_eq!(b.namespace, "app");
        assert_eq!(b.timeout, Duration::from_millis(50));
        assert_eq!(b.pool_size, 4);
        assert_eq!(b.max_value_size, 8 << 20);
        assert!(!b.bus);
    }

    #[test]
    fn cluster_urls_list_their_seeds_with_shared_credentials() {
        let b = parse("redis+cluster://u:pw@127.0.0.1:7000,127.0.0.1:7001/?hash_tag=true").unwrap();
        assert_eq!(
            b.target,
            Target::Cluster(vec![
                "redis://u:pw@127.0.0.1:7000".into(),
                "redis://u:pw@127.0.0.1:7001".into()
            ])
        );
        assert!(b.hash_tag);
    }

    #[test]
    fn bad_urls_are_errors_that_say_what_is_wrong() {
        for (url, says) in [
            ("redis://127.0.0.1?nope=1", "unknown parameter \"nope\""),
            ("redis://127.0.0.1?timeout=1s&timeout=2s", "given twice"),
            ("redis://127.0.0.1?timeout=soon", "timeout=\"soon\""),
            ("redis://127.0.0.1?timeout=0s", "more than zero"),
            ("redis://127.0.0.1?pool_size=0", "at least 1"),
            ("redis://127.0.0.1?max_value_size=3XB", "unknown unit"),
            ("redis://127.0.0.1?namespace=", "must not be empty"),
            ("redis://127.0.0.1#frag", "fragment"),
            ("redis+cluster://127.0.0.1:1,,127.0.0.1:2", "empty seed"),
            ("redis+cluster://127.0.0.1:1/3", "no database"),
            ("memcached://127.0.0.1", "not a Redis scheme"),
            ("127.0.0.1:6379", "no scheme"),
            ("redis://127.0.0.1:notaport", "redis://127.0.0.1:notaport"),
        ] {
            let error = parse(url).err().unwrap_or_else(|| panic!("{url} parsed"));
            assert!(error.contains(says), "{url}: {error}");
        }
    }

    #[test]
    fn passwords_stay_out_of_errors() {
        let error = parse("redis://u:secret@127.0.0.1:99999").unwrap_err();
        assert!(!error.contains("secret"), "{error}");
    }
}
