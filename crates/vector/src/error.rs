//! The errors of the vector index, grouped by whose fault they are.

use std::path::PathBuf;

/// What went wrong in a [`crate::VectorIndex`] operation.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// The caller passed a vector (or query) of the wrong length.
    #[error("wrong dimensions: expected {expected}, got {actual}")]
    WrongDimensions { expected: usize, actual: usize },
    /// The caller passed a vector that cannot be normalised (all zeros, NaN or infinite).
    #[error("vector is zero or has a non-finite component")]
    InvalidVector,
    /// The caller asked for settings the index cannot run with.
    #[error("invalid settings: {0}")]
    InvalidSettings(&'static str),
    /// The file holds an index of other dimensions than the caller expects (another model).
    #[error("index file {path} has {found} dimensions, expected {expected}")]
    DimensionsMismatch {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    /// The environment: reading or writing the index file failed.
    #[error("io error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The environment: the index file is truncated, damaged or not an index file.
    #[error("corrupt index file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl VectorError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &std::path::Path, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
