//! An OpenAI-compatible embedding endpoint: `POST {base_url}/embeddings` with
//! `{"model", "input": [...]}`, as served by OpenAI, vLLM, Ollama, LocalAI, text-embeddings-inference
//! and most gateways.
//!
//! Texts go in batches of `batch_size`, one request at a time. Every answer is checked before a
//! vector is kept: one embedding per input, indices a permutation of the inputs, the configured
//! number of dimensions. Vectors are L2-normalised here, whatever the upstream does.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::excerpt;
use crate::{EmbedError, install_tls_provider, l2_normalize};

/// How long to wait for a connection to the endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one batch may take, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How much of an error body goes into the error message.
const ERROR_BODY_CHARS: usize = 500;
/// The largest error body read.
const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;
/// Bytes allowed per returned float in a JSON answer (digits, sign, exponent, comma and slack).
const MAX_BYTES_PER_FLOAT: usize = 32;
/// Bytes allowed for the rest of an answer (usage, model name, per-item wrappers).
const ANSWER_OVERHEAD_BYTES: usize = 64 * 1024;

/// A client of one OpenAI-compatible embedding model.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedder {
    client: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
    dimensions: usize,
    batch_size: usize,
}

#[derive(Serialize)]
struct EmbeddingRequest<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
    index: usize,
}

impl OpenAiEmbedder {
    /// A client for `{base_url}/embeddings` (`base_url` like `http://host:8080/v1`). `https`
    /// works through rustls with the ring provider and the platform's certificate store.
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<String>,
        dimensions: usize,
        batch_size: usize,
    ) -> Result<Self, EmbedError> {
        let base_url = base_url.trim_end_matches('/');
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(EmbedError::Config(format!(
                "embedding base url {base_url:?} must start with http:// or https://"
            )));
        }
        if model.is_empty() {
            return Err(EmbedError::Config("embedding model name is empty".into()));
        }
        if dimensions == 0 || batch_size == 0 {
            return Err(EmbedError::Config(
                "embedding dimensions and batch size must be at least 1".into(),
            ));
        }
        // reqwest is built without a default rustls provider (see `tls.rs`).
        install_tls_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|err| EmbedError::Config(format!("cannot build the http client: {err}")))?;
        Ok(OpenAiEmbedder {
            client,
            url: format!("{base_url}/embeddings"),
            model: model.to_owned(),
            api_key: api_key.filter(|key| !key.is_empty()),
            dimensions,
            batch_size,
        })
    }

    /// The configured model name.
    pub fn model_id(&self) -> &str {
        &self.model
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// One L2-normalised vector per text, in order, in batches of `batch_size`.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch_size) {
            vectors.extend(self.embed_batch(batch).await?);
        }
        Ok(vectors)
    }

    async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut request = self.client.post(&self.url).json(&EmbeddingRequest {
            model: &self.model,
            input: texts,
        });
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|err| self.unreachable(&err))?;
        let status = response.status();
        if !status.is_success() {
            let body = read_limited(response, MAX_ERROR_BODY_BYTES)
                .await
                .unwrap_or_default();
            return Err(EmbedError::UpstreamStatus {
                url: self.url.clone(),
                status: status.as_u16(),
                body: excerpt(String::from_utf8_lossy(&body).trim(), ERROR_BODY_CHARS),
            });
        }
        let limit = texts.len() * self.dimensions * MAX_BYTES_PER_FLOAT + ANSWER_OVERHEAD_BYTES;
        let body = read_limited(response, limit)
            .await
            .map_err(|err| self.unreachable(&err))?;
        if body.len() > limit {
            return Err(self.bad_response(format!("answer longer than {limit} bytes")));
        }
        let answer: EmbeddingResponse = serde_json::from_slice(&body)
            .map_err(|err| self.bad_response(format!("not an embedding answer: {err}")))?;
        self.check_answer(texts.len(), answer)
    }

    /// Puts the vectors in input order and checks counts and dimensions.
    fn check_answer(
        &self,
        num_texts: usize,
        answer: EmbeddingResponse,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if answer.data.len() != num_texts {
            return Err(self.bad_response(format!(
                "{} embeddings for {num_texts} inputs",
                answer.data.len()
            )));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; num_texts];
        for item in answer.data {
            if item.embedding.len() != self.dimensions {
                return Err(EmbedError::WrongDimensions {
                    expected: self.dimensions,
                    actual: item.embedding.len(),
                });
            }
            let Some(slot) = slots.get_mut(item.index) else {
                return Err(self.bad_response(format!(
                    "index {} out of range for {num_texts} inputs",
                    item.index
                )));
            };
            if slot.is_some() {
                return Err(self.bad_response(format!("index {} appears twice", item.index)));
            }
            let mut vector = item.embedding;
            l2_normalize(&mut vector);
            *slot = Some(vector);
        }
        // Every slot is filled: as many items as slots, none twice, none out of range.
        Ok(slots.into_iter().flatten().collect())
    }

    fn unreachable(&self, err: &reqwest::Error) -> EmbedError {
        EmbedError::UpstreamUnreachable {
            url: self.url.clone(),
            message: error_chain(err),
        }
    }

    fn bad_response(&self, message: String) -> EmbedError {
        EmbedError::UpstreamResponse {
            url: self.url.clone(),
            message,
        }
    }
}

/// Reads at most `limit + 1` bytes of the body, so the caller can tell an over-long body.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = (limit + 1).saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() > limit {
            break;
        }
    }
    Ok(body)
}

/// An HTTP client error with all its causes: reqwest's Display stops at the outermost error, and
/// the causes say what really happened (refused, reset, TLS, DNS).
pub fn error_chain(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_must_be_http() {
        let err = OpenAiEmbedder::new("localhost:8080/v1", "m", None, 4, 8).unwrap_err();
        assert!(err.to_string().contains("must start with http://"), "{err}");
    }

    #[test]
    fn trailing_slash_is_ignored() {
        let embedder = OpenAiEmbedder::new("http://127.0.0.1:1/v1/", "m", None, 4, 8).unwrap();
        assert_eq!(embedder.url, "http://127.0.0.1:1/v1/embeddings");
    }

    #[test]
    fn plain_reqwest_clients_build_once_the_provider_is_installed() {
        install_tls_provider();
        install_tls_provider();
        reqwest::Client::new();
    }

    #[test]
    fn https_clients_build_without_aws_lc() {
        OpenAiEmbedder::new("https://example.invalid/v1", "m", None, 4, 8).unwrap();
    }
}
