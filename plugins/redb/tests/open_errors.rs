//! Opening a file the tier cannot use: a file of garbage bytes, a truncated tier file, another
//! application's redb file, a file another tier holds, a bad option. Guards against a panic (redb
//! may panic on damaged files), an untyped or misleading error, and `recreate_if_corrupt`
//! failing to start over with an empty, working tier.

mod common;

use std::io::Write;

use common::{Rng, TempTier};
use strata_redb::{RedbTier, RedbTierError};
use strata_tier::{Bytes, Tier, WriteIntent};

fn write_file(path: &std::path::Path, bytes: &[u8]) {
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(bytes).unwrap();
}

async fn assert_recreates(file: &TempTier) {
    let tier = file
        .builder()
        .recreate_if_corrupt(true)
        .open()
        .expect("recreate_if_corrupt opens an empty tier");
    assert_eq!(tier.stats().entries, 0);
    assert!(!tier.get("k").await.is_hit());
    tier.set("k", Bytes::from_static(b"v"), None, WriteIntent::Update)
        .await
        .unwrap();
    tier.flush().await.unwrap();
    assert!(tier.get("k").await.is_hit());
    tier.close().await.unwrap();
    let tier = file.open();
    assert!(
        tier.get("k").await.is_hit(),
        "the recreated file keeps its data"
    );
    tier.close().await.unwrap();
}

/// A closed tier file holding 2,000 entries of 500 bytes (about 1 MiB of pages to damage).
async fn filled_file() -> TempTier {
    let file = TempTier::new();
    let tier = file.open();
    for i in 0..2000 {
        tier.set(
            &format!("key:{i}"),
            Bytes::from(vec![9u8; 500]),
            None,
            WriteIntent::Update,
        )
        .await
        .unwrap();
    }
    tier.close().await.unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_are_a_typed_corrupt_error() {
    let seed = common::seed("garbage_bytes_are_a_typed_corrupt_error");
    let mut rng = Rng::new(seed);
    for len in [1usize, 100, 4096, 1 << 20] {
        let file = TempTier::new();
        let garbage: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        write_file(&file.path, &garbage);
        match file.builder().open() {
            Err(RedbTierError::Corrupt { path, detail }) => {
                assert_eq!(path, file.path);
                assert!(!detail.is_empty());
            }
            other => panic!("{len} garbage bytes: expected Corrupt, got {other:?}"),
        }
        // The file is left alone without the flag.
        assert_eq!(std::fs::read(&file.path).unwrap(), garbage);
        assert_recreates(&file).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_file_is_a_typed_error_or_opens_clean() {
    for keep in [0.5, 0.1, 0.01] {
        let file = filled_file().await;
        let len = std::fs::metadata(&file.path).unwrap().len();
        let cut = (len as f64 * keep) as u64;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file.path)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let opened = file.builder().open();
        eprintln!(
            "cut to {cut} of {len} bytes: {:?}",
            opened.as_ref().map(|_| "opened")
        );
        match opened {
            Err(error) => {
                assert!(
                    matches!(error, RedbTierError::Corrupt { .. }),
                    "cut to {cut} of {len} bytes: {error:?}"
                );
                assert!(error.is_discardable());
                assert!(error.to_string().contains("recreate_if_corrupt"));
                assert_recreates(&file).await;
            }
            Ok(tier) => {
                // redb may recover what the cut left; then every record must pass its checks.
                let report = tier.verify().await.expect("a recovered file verifies");
                assert!(report.corrupt_keys.is_empty(), "{report:?}");
                tier.close().await.unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_redb_file_is_incompatible() {
    let file = TempTier::new();
    {
        let db = redb::Database::create(&file.path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("strata_values");
            txn.open_table(def).unwrap().insert(1, 2).unwrap();
        }
        txn.commit().unwrap();
    }
    match file.builder().open() {
        Err(error @ RedbTierError::Incompatible { .. }) => assert!(error.is_discardable()),
        other => panic!("expected Incompatible, got {other:?}"),
    }
    assert_recreates(&file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_in_use_is_already_open_and_never_discarded() {
    let file = TempTier::new();
    let tier = file.open();
    tier.set("k", Bytes::from_static(b"v"), None, WriteIntent::Update)
        .await
        .unwrap();
    match file.builder().recreate_if_corrupt(true).open() {
        Err(error @ RedbTierError::AlreadyOpen { .. }) => assert!(!error.is_discardable()),
        other => panic!("expected AlreadyOpen, got {other:?}"),
    }
    assert!(tier.get("k").await.is_hit());
    tier.close().await.unwrap();
}

#[test]
fn empty_files_and_missing_directories_are_created() {
    let file = TempTier::new();
    write_file(&file.path, b"");
    drop(file.open());
    let nested = file.dir.path().join("a/b/tier.redb");
    let tier = RedbTier::builder(&nested).open().unwrap();
    assert!(nested.exists());
    drop(tier);
}

#[test]
fn bad_options_are_invalid_config() {
    let file = TempTier::new();
    for builder in [
        file.builder().max_size(0),
        file.builder().purge_interval(std::time::Duration::ZERO),
        file.builder().purge_batch(0),
        file.builder().queue_bytes(10),
    ] {
        assert!(matches!(
            builder.open(),
            Err(RedbTierError::InvalidConfig(_))
        ));
    }
    assert!(
        !file.path.exists(),
        "an invalid configuration touches no file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwritten_pages_never_panic_the_caller() {
    let seed = common::seed("overwritten_pages_never_panic_the_caller");
    let mut rng = Rng::new(seed);
    for check in [true, false] {
        let file = filled_file().await;
        let mut bytes = std::fs::read(&file.path).unwrap();
        // Keep redb's header (the first page) and scribble over a run of pages after it.
        let start = 4096 + rng.below(bytes.len() as u64 / 2) as usize;
        let end = (start + 64 * 1024).min(bytes.len());
        for byte in &mut bytes[start..end] {
            *byte = rng.next_u64() as u8;
        }
        write_file(&file.path, &bytes);
        match file.builder().check_integrity_on_open(check).open() {
            Err(error) => {
                eprintln!("check={check}: {error}");
                assert!(error.is_discardable(), "{error:?}");
                assert_recreates(&file).await;
            }
            Ok(tier) => {
                // Reads may find the damage: they must answer (hit, miss or degraded), not panic.
                let keys: Vec<String> = (0..2000).map(|i| format!("key:{i}")).collect();
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                let answers = tier.get_many(&refs).await;
                let degraded = answers.iter().filter(|a| a.is_degraded()).count();
                eprintln!("check={check}: opened; {degraded} degraded reads");
                let _ = tier.verify().await;
                tier.close().await.unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_file_is_upgraded_in_place() {
    use redb::ReadableTable;
    let file = TempTier::new();
    let tier = file.open();
    let keys: Vec<String> = (0..50).map(|i| format!("v1:{i}")).collect();
    for key in &keys {
        tier.set(key, Bytes::from(key.clone()), None, WriteIntent::Update)
            .await
            .unwrap();
    }
    tier.close().await.unwrap();
    {
        // Turn the file into what version 1 wrote: no ticks table, keys charged three times.
        let db = redb::Database::create(&file.path).unwrap();
        let txn = db.begin_write().unwrap();
        let ticks: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("strata_ticks");
        assert!(txn.delete_table(ticks).unwrap());
        {
            let meta_def: redb::TableDefinition<&str, u64> =
                redb::TableDefinition::new("strata_meta");
            let mut meta = txn.open_table(meta_def).unwrap();
            let live = meta.get("live_bytes").unwrap().unwrap().value();
            let key_bytes: u64 = keys.iter().map(|k| k.len() as u64).sum();
            meta.insert("live_bytes", live - key_bytes).unwrap();
            meta.insert("schema_version", 1).unwrap();
        }
        txn.commit().unwrap();
    }
    let tier = file.open();
    let report = tier.verify().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.dangling_index_entries, 0, "{report:?}");
    for key in &keys {
        assert_eq!(
            tier.get(key).await.into_hit().as_deref(),
            Some(key.as_bytes())
        );
    }
    tier.close().await.unwrap();
}
