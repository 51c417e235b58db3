//! `redb://` in the registry (feature `redb`): the embedded disk tier from a URL.
//!
//! `redb:///var/cache/app.redb` is an absolute path, `redb://cache.redb` or
//! `redb://data/cache.redb` a path relative to the working directory. Options go in the query:
//!
//! | parameter | meaning | example |
//! | --- | --- | --- |
//! | `max_size` | bound on live bytes (`B`, `KiB`, `MiB`, `GiB` suffixes) | `max_size=2GiB` |
//! | `max_entry_size` | largest entry accepted | `max_entry_size=8MiB` |
//! | `purge_interval` | how often expired entries are purged | `purge_interval=30s` |
//! | `durability` | `every_commit`, or a period for `Periodic` | `durability=500ms` |
//! | `ack` | `enqueued`, `committed` or `durable` | `ack=committed` |
//! | `recreate_if_corrupt` | discard an unreadable file and start empty | `recreate_if_corrupt=true` |

use std::path::PathBuf;
use std::sync::Arc;

use strata_redb::{Durability, RedbTier, WriteAck};
use strata_tier::Tier;
use url::Url;

use crate::registry::{query_param, TierRegistry};

pub(crate) fn register(registry: &mut TierRegistry) {
    registry.register("redb", |url| {
        Box::pin(async move {
            let builder = builder_from_url(&url)?;
            let tier = builder.open_async().await?;
            Ok(Arc::new(tier) as Arc<dyn Tier>)
        })
    });
}

fn builder_from_url(url: &Url) -> Result<strata_redb::RedbTierBuilder, String> {
    let mut builder = RedbTier::builder(path_of(url)?);
    if let Some(size) = query_param::<String>(url, "max_size")? {
        builder = builder.max_size(parse_size(&size)?);
    }
    if let Some(size) = query_param::<String>(url, "max_entry_size")? {
        builder = builder.max_entry_size(parse_size(&size)?);
    }
    if let Some(every) = query_param::<String>(url, "purge_interval")? {
        builder = builder.purge_interval(parse_duration("purge_interval", &every)?);
    }
    if let Some(durability) = query_param::<String>(url, "durability")? {
        builder = builder.durability(match durability.as_str() {
            "every_commit" | "immediate" => Durability::EveryCommit,
            period => Durability::Periodic(parse_duration("durability", period)?),
        });
    }
    if let Some(ack) = query_param::<String>(url, "ack")? {
        builder = builder.ack(match ack.as_str() {
            "enqueued" => WriteAck::Enqueued,
            "committed" => WriteAck::Committed,
            "durable" => WriteAck::Durable,
            other => {
                return Err(format!(
                    "ack={other:?}: expected enqueued, committed or durable"
                ))
            }
        });
    }
    if let Some(recreate) = query_param::<bool>(url, "recreate_if_corrupt")? {
        builder = builder.recreate_if_corrupt(recreate);
    }
    Ok(builder)
}

fn path_of(url: &Url) -> Result<PathBuf, String> {
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|e| format!("path is not UTF-8: {e}"))
    };
    let path = match url.host_str() {
        None | Some("") => decode(url.path())?,
        Some(host) => format!("{}{}", decode(host)?, decode(url.path())?),
    };
    if path.is_empty() || path == "/" {
        return Err(format!("{url} names no file"));
    }
    Ok(PathBuf::from(path))
}

fn parse_duration(name: &str, text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{name}={text:?}: {e}"))
}

fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "KB" => 1 << 10,
        "MiB" | "M" | "MB" => 1 << 20,
        "GiB" | "G" | "GB" => 1 << 30,
        "TiB" | "T" | "TB" => 1 << 40,
        other => return Err(format!("size {text:?}: unknown unit {other:?}")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("size {text:?} is not a byte count"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_sizes_from_urls() {
        let url = Url::parse("redb:///var/cache/a%20b.redb?max_size=2GiB").unwrap();
        assert_eq!(path_of(&url).unwrap(), PathBuf::from("/var/cache/a b.redb"));
        let relative = Url::parse("redb://data/cache.redb").unwrap();
        assert_eq!(
            path_of(&relative).unwrap(),
            PathBuf::from("data/cache.redb")
        );
        assert!(path_of(&Url::parse("redb:///").unwrap()).is_err());
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999TiB").is_err());
        assert!(builder_from_url(&Url::parse("redb:///x?ack=maybe").unwrap()).is_err());
        assert!(builder_from_url(&Url::parse("redb:///x?durability=soon").unwrap()).is_err());
        assert!(builder_from_url(
            &Url::parse("redb:///x?durability=every_commit&ack=durable&purge_interval=5s").unwrap()
        )
        .is_ok());
    }
}
