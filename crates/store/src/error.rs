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
            Some(
                ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::SystemIoFailure,
            ) => Self::Unavailable(error.to_string()),
            _ => Self::Internal(error.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        Self::Internal(format!("stored json: {error}"))
    }
}
