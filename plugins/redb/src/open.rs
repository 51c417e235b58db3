//! Opening the file: redb's open (with its crash repair), the schema check, the typed errors, and
//! discarding a corrupt file when the builder allows it.
//!
//! redb documents that opening a file damaged outside redb may panic unless it checks integrity
//! on open (and its debug builds assert on some damage). The open therefore runs under
//! `catch_unwind`, and a panic is reported as [`RedbTierError::Corrupt`], never propagated.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use redb::Database;

use crate::config::Config;
use crate::error::RedbTierError;
use crate::schema::{self, Meta, SchemaError};
use crate::writer::panic_message;

/// An open file.
pub(crate) struct Opened {
    pub db: Database,
    pub meta: Meta,
    /// redb repaired the file at open (it was not closed cleanly).
    pub repaired: bool,
}

/// Opens (or creates) the tier file and reads its counters.
pub(crate) fn open_file(config: &Config) -> Result<Opened, RedbTierError> {
    let path = config.path.as_path();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| RedbTierError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    match open_once(config) {
        Err(error) if error.is_discardable() && config.recreate_if_corrupt => {
            std::fs::remove_file(path).map_err(|source| RedbTierError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            open_once(config)
        }
        other => other,
    }
}

fn open_once(config: &Config) -> Result<Opened, RedbTierError> {
    let path = config.path.as_path();
    let attempt = panic::catch_unwind(AssertUnwindSafe(|| -> Result<_, RedbTierError> {
        let repaired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&repaired);
        let db = redb::Builder::new()
            .set_cache_size(config.page_cache_size)
            .set_check_integrity_on_open(config.check_integrity_on_open)
            .set_repair_callback(move |_| flag.store(true, Relaxed))
            .create(path)
            .map_err(|error| RedbTierError::from_redb(path, error))?;
        let meta = init_schema(path, &db)?;
        Ok(Opened {
            db,
            meta,
            repaired: repaired.load(Relaxed),
        })
    }));
    match attempt {
        Ok(result) => result,
        Err(panic) => Err(RedbTierError::Corrupt {
            path: path.to_path_buf(),
            detail: format!(
                "redb panicked while opening it: {}",
                panic_message(panic.as_ref())
            ),
        }),
    }
}

fn init_schema(path: &Path, db: &Database) -> Result<Meta, RedbTierError> {
    let txn = db
        .begin_write()
        .map_err(|error| RedbTierError::from_redb(path, error))?;
    let meta = schema::init(&txn).map_err(|error| match error {
        SchemaError::Version(version) => RedbTierError::Incompatible {
            path: path.to_path_buf(),
            detail: format!(
                "schema version {version}, this build reads {}",
                schema::SCHEMA_VERSION
            ),
        },
        SchemaError::Redb(error) => RedbTierError::from_redb(path, error),
    })?;
    txn.commit()
        .map_err(|error| RedbTierError::from_redb(path, error))?;
    Ok(meta)
}
