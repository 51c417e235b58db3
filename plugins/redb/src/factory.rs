//! [`RedbFactory`]: opening a tier from a `redb://` URL, for a tier registry.
//!
//! The URL is parsed by hand rather than by a general URL parser, because what follows `redb://`
//! is a file path, not a host: the path is everything up to the first raw `?`, percent-decoded
//! exactly once; the query is everything after it. A path holding `?`, `#` or `%` writes them
//! `%3F`, `%23` and `%25`; an encoded `%3F` is never taken for the query's start, and `%253F`
//! names a file whose name holds the three characters `%3F`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use strata_tier::{OpenFuture, Tier, TierFactory};

use crate::builder::RedbTierBuilder;
use crate::config::{Durability, WriteAck};
use crate::error::RedbTierError;
use crate::tier::RedbTier;

/// The query parameters a `redb://` URL may carry.
const KNOWN: &[&str] = &[
    "max_size",
    "max_entry_size",
    "purge_interval",
    "durability",
    "ack",
    "recreate_if_corrupt",
];

/// Opens [`RedbTier`]s from `redb://` URLs (implements [`TierFactory`] for the scheme `redb`).
///
/// `redb:///var/cache/app.redb` names an absolute path, `redb://cache.redb` or
/// `redb://data/cache.redb` a path relative to the working directory. The path is
/// percent-decoded once: write `?` as `%3F`, `#` as `%23` and `%` as `%25` (a raw `#` is
/// refused, a `%` that starts no `%XX` escape too). Options go in the query:
///
/// | parameter | meaning | example |
/// | --- | --- | --- |
/// | `max_size` | bound on live bytes (`B`, `KiB`, `MiB`, `GiB`, `TiB`) | `max_size=2GiB` |
/// | `max_entry_size` | largest entry accepted (same units) | `max_entry_size=8MiB` |
/// | `purge_interval` | how often expired entries are purged (humantime) | `purge_interval=30s` |
/// | `durability` | `every_commit`, or a period for [`Durability::Periodic`] | `durability=500ms` |
/// | `ack` | `enqueued`, `committed` or `durable` ([`WriteAck`]) | `ack=committed` |
/// | `recreate_if_corrupt` | `true`: discard an unreadable file and start empty | `recreate_if_corrupt=true` |
///
/// Anything else in the query (a misspelt name, a parameter given twice, a fragment) is an
/// error that names it: a typo must not open a tier with default settings. Other options
/// have their [builder](crate::RedbTierBuilder) defaults.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedbFactory;

impl RedbFactory {
    /// The builder a `redb://` URL describes, without opening anything.
    pub fn builder_from_url(url: &str) -> Result<RedbTierBuilder, RedbTierError> {
        parse(url).map_err(RedbTierError::InvalidUrl)
    }
}

impl TierFactory for RedbFactory {
    fn schemes(&self) -> &[&'static str] {
        &["redb"]
    }

    fn open(&self, url: &str) -> OpenFuture {
        let builder = RedbFactory::builder_from_url(url);
        Box::pin(async move {
            let tier = builder?.open_async().await?;
            Ok(Arc::new(tier) as Arc<dyn Tier>)
        })
    }
}

fn parse(url: &str) -> Result<RedbTierBuilder, String> {
    let rest = url
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("redb://"))
        .map(|_| &url[7..])
        .ok_or_else(|| format!("{url:?} is not a redb:// URL"))?;
    if rest.contains('#') {
        return Err(format!(
            "{url:?}: a raw '#' would start a fragment, which redb URLs do not have; \
             write a '#' of the path as %23"
        ));
    }
    let (raw_path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let path = decode_path(raw_path)?;
    if path.as_os_str().is_empty() || path.as_os_str() == "/" {
        return Err(format!("{url:?} names no file"));
    }
    let mut builder = RedbTier::builder(path);
    let mut seen = BTreeSet::new();
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode_text(name)?;
        let value = decode_text(value)?;
        if !KNOWN.contains(&name.as_str()) {
            return Err(format!(
                "unknown query parameter {name:?} (known: {})",
                KNOWN.join(", ")
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(format!("query parameter {name:?} is given twice"));
        }
        let bad = |error: String| format!("query parameter {name}={value:?}: {error}");
        builder = match name.as_str() {
            "max_size" => builder.max_size(parse_size(&value).map_err(bad)?),
            "max_entry_size" => builder.max_entry_size(parse_size(&value).map_err(bad)?),
            "purge_interval" => builder
                .purge_interval(humantime::parse_duration(&value).map_err(|e| bad(e.to_string()))?),
            "durability" => builder.durability(
                value
                    .parse::<Durability>()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "ack" => builder.ack(value.parse::<WriteAck>().map_err(|e| bad(e.to_string()))?),
            _ => builder.recreate_if_corrupt(
                value
                    .parse::<bool>()
                    .map_err(|_| bad("expected true or false".to_owned()))?,
            ),
        };
    }
    Ok(builder)
}

/// Percent-decodes `text` once; a `%` that does not start a `%XX` escape is an error.
fn decode_bytes(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('%') {
        let escape = bytes.get(i + 1..i + 3);
        if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
            return Err(format!(
                "{text:?}: a '%' must start a %XX escape (write '%' itself as %25)"
            ));
        }
    }
    Ok(percent_encoding::percent_decode(bytes).collect())
}

fn decode_text(text: &str) -> Result<String, String> {
    String::from_utf8(decode_bytes(text)?)
        .map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

#[cfg(unix)]
fn decode_path(text: &str) -> Result<PathBuf, String> {
    use std::os::unix::ffi::OsStringExt;
    Ok(PathBuf::from(std::ffi::OsString::from_vec(decode_bytes(
        text,
    )?)))
}

#[cfg(not(unix))]
fn decode_path(text: &str) -> Result<PathBuf, String> {
    decode_text(text).map(PathBuf::from)
}

/// A byte count with an optional binary unit: `4096`, `64KiB`, `2GiB`.
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
        other => {
            return Err(format!(
                "unknown size unit {other:?} (B, KiB, MiB, GiB, TiB)"
            ))
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?} is not a byte count"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config(url: &str) -> crate::config::Config {
        RedbFactory::builder_from_url(url)
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .config()
            .clone()
    }

    fn error(url: &str) -> String {
        match RedbFactory::builder_from_url(url) {
            Ok(_) => panic!("{url} parsed"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn paths_absolute_and_relative() {
        assert_eq!(
            config("redb:///var/cache/a.redb").path,
            PathBuf::from("/var/cache/a.redb")
        );
        assert_eq!(
            config("REDB://data/cache.redb").path,
            PathBuf::from("data/cache.redb")
        );
        assert_eq!(
            config("redb:///a%20b.redb").path,
            PathBuf::from("/a b.redb")
        );
        assert!(error("redb:///").contains("names no file"));
        assert!(error("redb://").contains("names no file"));
        assert!(error("file:///x").contains("not a redb"));
    }

    #[test]
    fn reserved_characters_are_decoded_exactly_once() {
        let c = config("redb:///tmp/a%3Fb%23c%25d.redb?max_size=1MiB");
        assert_eq!(c.path, PathBuf::from("/tmp/a?b#c%d.redb"));
        assert_eq!(c.max_size, 1 << 20);
        // An encoded '?' is part of the path, never the start of the query.
        let c = config("redb:///tmp/x%3Fmax_size=5.redb");
        assert_eq!(c.path, PathBuf::from("/tmp/x?max_size=5.redb"));
        assert_eq!(c.max_size, 1 << 30);
        // Decoded once: %253F is the three characters %3F.
        assert_eq!(
            config("redb:///tmp/%253F.redb").path,
            PathBuf::from("/tmp/%3F.redb")
        );
        assert!(error("redb:///tmp/a#b.redb").contains("%23"));
        assert!(error("redb:///tmp/100%.redb").contains("%25"));
        assert!(error("redb:///tmp/a%zz.redb").contains("%25"));
    }

    #[test]
    fn every_parameter() {
        let c = config(
            "redb:///x.redb?max_size=2GiB&max_entry_size=8MiB&purge_interval=30s\
             &durability=every_commit&ack=durable&recreate_if_corrupt=true",
        );
        assert_eq!(c.max_size, 2 << 30);
        assert_eq!(c.max_entry_size, 8 << 20);
        assert_eq!(c.purge_interval, Duration::from_secs(30));
        assert_eq!(c.durability, Durability::EveryCommit);
        assert_eq!(c.ack, WriteAck::Durable);
        assert!(c.recreate_if_corrupt);
        let c = config("redb:///x.redb?durability=500ms&ack=committed&max_size=4096");
        assert_eq!(
            c.durability,
            Durability::Periodic(Duration::from_millis(500))
        );
        assert_eq!(c.ack, WriteAck::Committed);
        assert_eq!(c.max_size, 4096);
        assert_eq!(config("redb:///x.redb?max_size=3TiB").max_size, 3 << 40);
    }

    #[test]
    fn unknown_and_malformed_parameters_are_errors() {
        let typo = error("redb:///x.redb?max_sise=1GiB");
        assert!(typo.contains("\"max_sise\""), "{typo}");
        assert!(typo.contains("max_size, max_entry_size"), "{typo}");
        assert!(error("redb:///x?ack=maybe").contains("ack"));
        assert!(error("redb:///x?durability=soon").contains("durability"));
        assert!(error("redb:///x?durability=0s").contains("positive"));
        assert!(error("redb:///x?max_size=lots").contains("max_size"));
        assert!(error("redb:///x?max_size=99999999999TiB").contains("byte count"));
        assert!(error("redb:///x?max_size=1&max_size=2").contains("twice"));
        assert!(error("redb:///x?recreate_if_corrupt=yes").contains("true or false"));
    }

    #[test]
    fn one_parser_for_acks_and_durability() {
        assert_eq!("Enqueued".parse::<WriteAck>(), Ok(WriteAck::Enqueued));
        assert_eq!("commit".parse::<WriteAck>(), Ok(WriteAck::Committed));
        assert!("later".parse::<WriteAck>().is_err());
        assert_eq!(
            "immediate".parse::<Durability>(),
            Ok(Durability::EveryCommit)
        );
        assert_eq!(
            "2s".parse::<Durability>(),
            Ok(Durability::Periodic(Duration::from_secs(2)))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_factory_opens_exactly_the_named_file() {
        let dir = tempfile::tempdir().unwrap();
        let name = "odd?name#with%chars.redb";
        let encoded: String = dir
            .path()
            .join(name)
            .to_str()
            .unwrap()
            .chars()
            .map(|c| match c {
                '?' => "%3F".to_owned(),
                '#' => "%23".to_owned(),
                '%' => "%25".to_owned(),
                c => c.to_string(),
            })
            .collect();
        let url = format!("redb://{encoded}?max_size=1MiB&ack=committed");
        let factory = RedbFactory;
        assert_eq!(factory.schemes(), ["redb"]);
        let tier = factory.open(&url).await.unwrap();
        tier.set(
            "k",
            strata_tier::Bytes::from_static(b"v"),
            None,
            strata_tier::WriteIntent::Update,
        )
        .await
        .unwrap();
        tier.close().await.unwrap();
        let files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files, vec![name.to_owned()]);
        let typo = format!("redb://{encoded}?max_sise=1MiB");
        let failure = factory.open(&typo).await.expect_err("a typo must fail");
        assert!(failure.to_string().contains("max_sise"), "{failure}");
    }
}
