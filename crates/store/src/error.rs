//! Store errors, saying whose fault each is: the caller's input, the environment, or a bug.

use feedloop_core::ValidationError;

/// Which list of a batch an item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemList {
    Traces,
    Feedback,
}

/// The place of an item in an ingest batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemRef {
    pub list: ItemList,
    pub index: usize,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The caller's input broke a rule that needs stored data to check (an annotation range
    /// against the stored output, for example).
    #[error("invalid item: {error}")]
    Invalid {
        item: Option<ItemRef>,
        error: ValidationError,
    },
    /// Feedback names a category that the project's taxonomy does not have (or has retired).
    #[error("unknown category {name:?}")]
    UnknownCategory {
        item: Option<ItemRef>,
        field: String,
        name: String,
    },
    /// The id exists with other content, or the name is taken.
    #[error("conflict: {message}")]
    Conflict {
        item: Option<ItemRef>,
        field: String,
        message: String,
    },
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    /// The database cannot be reached or is overloaded; retrying later may work.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The disk holding the database is full (SQLITE_FULL, PostgreSQL 53100): the write was
    /// rolled back whole; it may succeed once space is freed.
    #[error("database disk full: {0}")]
    StorageFull(String),
    /// The configuration names something the store cannot open.
    #[error("store configuration: {0}")]
    Config(String),
    /// A bug or corrupt data.
    #[error("internal store error: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                Self::Unavailable(error.to_string())
            }
            Some(ErrorCode::DiskFull) => Self::StorageFull(error.to_string()),
            Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::SystemIoFailure) => {
                Self::Unavailable(error.to_string())
            }
            _ => Self::Internal(error.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        Self::Internal(format!("stored json: {error}"))
    }
}

/// PostgreSQL errors: the server being unreachable, out of resources or shutting down is the
/// environment's fault ([`StoreError::Unavailable`], a 503 that may succeed later); anything
/// else, unexpected unique violations included, is a bug ([`StoreError::Internal`]).
impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        if error.code().is_some_and(|state| state.code() == "53100") {
            Self::StorageFull(describe_postgres(&error))
        } else if postgres_unavailable(&error) {
            Self::Unavailable(describe_postgres(&error))
        } else {
            Self::Internal(describe_postgres(&error))
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match error {
            PoolError::Backend(error) => error.into(),
            PoolError::Timeout(_) | PoolError::Closed => {
                Self::Unavailable(format!("database connection pool: {error}"))
            }
            PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
                Self::Internal(format!("database connection pool: {error}"))
            }
        }
    }
}

/// Whether `error` says the database cannot serve now: the connection was refused, broke or
/// timed out, or the server reported SQLSTATE class 08 (connection exception), class 53
/// (insufficient resources) or 57P01..57P03 (shutting down, crashed, not accepting connections).
fn postgres_unavailable(error: &tokio_postgres::Error) -> bool {
    if let Some(state) = error.code() {
        let code = state.code();
        return code.starts_with("08")
            || code.starts_with("53")
            || matches!(code, "57P01" | "57P02" | "57P03");
    }
    // Without a server error: a closed connection, a socket error (refused, reset) or a timeout
    // of the client's connect.
    error.is_closed()
        || std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
        || error.to_string().starts_with("timeout")
}

/// The error with its cause: tokio-postgres's own `Display` names only the kind of error.
fn describe_postgres(error: &tokio_postgres::Error) -> String {
    match (error.as_db_error(), std::error::Error::source(error)) {
        (Some(db), _) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        (None, Some(source)) => format!("{error}: {source}"),
        (None, None) => error.to_string(),
    }
}
