//! Errors of opening and checking a tier file: [`RedbTierError`]. Errors of reads and writes on an
//! open tier are `strata_tier::TierError`s.

use std::io;
use std::path::PathBuf;

use strata_tier::TierError;

/// Why a redb tier could not be opened or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedbTierError {
    /// The file exists but is not a readable redb database: garbage bytes, a truncated file, a
    /// failed integrity check. Cache data is disposable: open with
    /// [`recreate_if_corrupt(true)`](crate::RedbTierBuilder::recreate_if_corrupt) to discard the
    /// file and start empty.
    #[error("{path} is corrupt: {detail} (open with recreate_if_corrupt(true) to discard it)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What redb or this crate found wrong.
        detail: String,
    },
    /// The file is a redb database, but not one this build of the tier wrote (another
    /// application's tables, or a newer layout). Open with `recreate_if_corrupt(true)` to discard
    /// it, or point the tier at another path.
    #[error("{path} is not a strata-redb tier file this build can read: {detail}")]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// What did not match.
        detail: String,
    },
    /// Another handle, in this process or another, has the file open. Close it first (see
    /// [`Tier::close`](strata_tier::Tier::close)); one file serves one tier.
    #[error("{path} is already open by another tier or process")]
    AlreadyOpen {
        /// The file.
        path: PathBuf,
    },
    /// The file or its directory could not be read, written or created (permissions, missing
    /// directory, disk full).
    #[error("cannot use {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A `redb://` URL that [`RedbFactory`](crate::RedbFactory) cannot read: not a `redb://`
    /// URL, no file named, an unknown or repeated query parameter, a malformed value.
    #[error("invalid redb tier URL: {0}")]
    InvalidUrl(String),
    /// A builder option is out of range.
    #[error("invalid redb tier configuration: {0}")]
    InvalidConfig(String),
    /// redb failed in a way not listed above.
    #[error("redb error on {path}: {source}")]
    Database {
        /// The file.
        path: PathBuf,
        /// redb's error.
        #[source]
        source: redb::Error,
    },
}

impl RedbTierError {
    /// Whether discarding the file would help: the file is corrupt or is not a tier file.
    pub fn is_discardable(&self) -> bool {
        matches!(
            self,
            RedbTierError::Corrupt { .. } | RedbTierError::Incompatible { .. }
        )
    }

    /// Classifies a redb error met while opening or checking `path`.
    pub(crate) fn from_redb(path: &std::path::Path, error: impl Into<redb::Error>) -> Self {
        let path = path.to_path_buf();
        match error.into() {
            redb::Error::Corrupted(detail) => RedbTierError::Corrupt { path, detail },
            redb::Error::DatabaseAlreadyOpen => RedbTierError::AlreadyOpen { path },
            redb::Error::UpgradeRequired(version) => RedbTierError::Incompatible {
                path,
                detail: format!("redb file format {version} needs an upgrade"),
            },
            redb::Error::RepairAborted => RedbTierError::Corrupt {
                path,
                detail: "the crash repair was aborted".to_owned(),
            },
            // A file shorter than the structures its header describes reads past its end.
            redb::Error::Io(source)
                if matches!(
                    source.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
                ) =>
            {
                RedbTierError::Corrupt {
                    path,
                    detail: source.to_string(),
                }
            }
            redb::Error::Io(source) => RedbTierError::Io { path, source },
            redb::Error::TableTypeMismatch { table, key, value } => RedbTierError::Incompatible {
                path,
                detail: format!("table {table} holds {key:?} -> {value:?}"),
            },
            redb::Error::TableIsMultimap(table) => RedbTierError::Incompatible {
                path,
                detail: format!("table {table} is a multimap table"),
            },
            redb::Error::TypeDefinitionChanged { name, .. } => RedbTierError::Incompatible {
                path,
                detail: format!("type {name:?} changed its definition"),
            },
            source => RedbTierError::Database { path, source },
        }
    }
}

/// A copy of a `TierError` for several answers (it is not `Clone`: it can hold a boxed source).
/// The variants the tier produces for many callers at once are kept; others become
/// `Unavailable` with their message.
pub(crate) fn copy_tier_error(error: &TierError) -> TierError {
    match error {
        TierError::Closed => TierError::Closed,
        TierError::Unavailable(reason) => TierError::Unavailable(reason.clone()),
        TierError::Corrupt(reason) => TierError::Corrupt(reason.clone()),
        other => TierError::Unavailable(other.to_string()),
    }
}
