//! Errors, one enum per layer, all converting into [`Error`].
//!
//! Messages are lowercase fragments that read after "failed to ..." and carry the context a user
//! needs (the path, the job id).

use std::path::PathBuf;

/// Errors of the redb store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // The cause is part of the message (not a `source`), so a chain printer such as anyhow's
    // `{:#}` does not print it twice.
    #[error("open database {}: {cause}{}", path.display(), open_hint(cause))]
    Open {
        path: PathBuf,
        cause: redb::DatabaseError,
    },
    #[error(
        "open database {path}: it was written by a newer GAIA (schema version {found}, this build knows up to {supported}); upgrade this gaia binary"
    )]
    NewerSchema {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    /// A database file of 0 bytes: redb would take it for a new, empty database, but a file
    /// that exists and is empty is far more often a truncated copy or a failed restore.
    #[error(
        "open database {}: the file is empty (0 bytes) — probably a truncated copy or a failed restore, not a new database; restore it from a backup, or pass --allow-empty-db to start an empty database in its place",
        path.display()
    )]
    Empty { path: PathBuf },
    /// redb found a damaged page (it says which); the hint names the tools that deal with it.
    #[error("database: {0}{DAMAGE_HINT}")]
    Damaged(String),
    #[error("database: {0}")]
    Redb(String),
    #[error("decode stored {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("io on {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("store writer has stopped")]
    WriterGone,
    /// A write step panicked (a bug): its group was rolled back, the writer carries on.
    #[error("internal error in a write (rolled back): {0}; {PANIC_HINT}")]
    Panicked(String),
}

/// What follows an error that says the database file is damaged.
pub const DAMAGE_HINT: &str = " — the database file is damaged: stop gaia serve, then run \
`gaia db check --data-dir DIR` to see what is readable and `gaia db repair --data-dir DIR` to \
move the damaged file aside and rebuild the database from everything readable";

/// What follows a panic met while reading the store: redb panics on some damaged pages
/// (an `unreachable!` in its B-tree descent) instead of returning `Corrupted`.
pub const PANIC_HINT: &str = "if this repeats, the database file may be damaged: stop gaia \
serve and run `gaia db check --data-dir DIR` (and `gaia db repair --data-dir DIR`)";

impl StoreError {
    /// A panic caught around a store read, as the error it stands for.
    pub fn from_panic(p: &(dyn std::any::Any + Send)) -> StoreError {
        let what = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        StoreError::Damaged(format!("redb panicked reading a page ({what})"))
    }
}

/// The storage error inside a redb error, where there is one: a damaged page is reported as
/// `Corrupted` by whichever operation met it.
trait StorageCause {
    fn storage(&self) -> Option<&redb::StorageError>;
}

impl StorageCause for redb::StorageError {
    fn storage(&self) -> Option<&redb::StorageError> {
        Some(self)
    }
}
impl StorageCause for redb::Error {
    fn storage(&self) -> Option<&redb::StorageError> {
        None
    }
}
macro_rules! storage_variant {
    ($($t:ident),*) => {$(
        impl StorageCause for redb::$t {
            fn storage(&self) -> Option<&redb::StorageError> {
                match self {
                    redb::$t::Storage(s) => Some(s),
                    _ => None,
                }
            }
        }
    )*};
}
storage_variant!(TransactionError, TableError, CommitError, DatabaseError);

/// Whether a redb error says the file is damaged.
fn is_damage(e: &(impl StorageCause + std::fmt::Display)) -> bool {
    matches!(e.storage(), Some(redb::StorageError::Corrupted(_)))
        || e.to_string().starts_with("DB corrupted")
}

macro_rules! redb_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                if is_damage(&e) {
                    StoreError::Damaged(e.to_string())
                } else {
                    StoreError::Redb(e.to_string())
                }
            }
        }
    )*};
}
redb_errors!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// What a caller did wrong, or a state conflict: these map to 4xx answers.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RequestError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A worker call about an attempt or lease that is no longer current.
    #[error("{0}")]
    StaleLease(String),
}

/// Errors of the HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reach GAIA server at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{status} from {url}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("decode answer from {url}: {detail}")]
    Decode { url: String, detail: String },
    /// A download went past the size the caller expected; reading stopped there.
    #[error("the answer from {url} is larger than the expected {limit} bytes; stopped reading")]
    TooLarge { url: String, limit: u64 },
    /// The answer stopped before its end: the server failed mid-way, or the connection was
    /// cut. What arrived is not the whole answer.
    #[error(
        "the answer from {url} was cut off after {bytes} bytes ({detail}); the server's log says why"
    )]
    Interrupted {
        url: String,
        bytes: u64,
        detail: String,
    },
    #[error("{0}")]
    Config(String),
    /// A download could not be written where it was asked to go.
    #[error("write {}: {cause}", path.display())]
    File {
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the call may succeed if made again later: the server could not be reached (or
    /// its answer was cut off), or answered that it (or a proxy in front of it) could not take
    /// the request now — 408 (the body stalled on the way), 429, 502, 503, 504. Never a refusal
    /// of the request itself.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable { .. } | ClientError::Interrupted { .. }
        ) || matches!(self, ClientError::Status { status, .. } if matches!(*status, 408 | 429 | 502 | 503 | 504))
    }
}

/// Errors of the worker runtime.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// The umbrella error of gaia-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error("io on {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// Settings that cannot work (say which, and the flag that sets them).
    #[error("invalid settings: {0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
}

/// What to add to a database-open error a user can act on.
fn open_hint(e: &redb::DatabaseError) -> &'static str {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            " (another gaia serve is using this data dir; stop it or pass another --data-dir)"
        }
        e if is_damage(e) => DAMAGE_HINT,
        _ => "",
    }
}

/// Result with gaia-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an io error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClientError;

    #[test]
    fn a_stalled_or_busy_answer_is_retried_a_refusal_is_not() {
        let status = |status| ClientError::Status {
            url: "u".into(),
            status,
            message: "m".into(),
        };
        for retry in [408, 429, 502, 503, 504] {
            assert!(status(retry).is_unreachable(), "{retry}");
        }
        for refused in [400, 401, 403, 404, 409, 413, 500] {
            assert!(!status(refused).is_unreachable(), "{refused}");
        }
    }
}
