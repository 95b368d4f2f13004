//! A small HTTP client for feedloop's own API, used by `import`, `export` and `bench`.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A server's error answer, or a transport failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{method} {path}: HTTP {status}: {body}")]
    Api {
        method: &'static str,
        path: String,
        status: u16,
        body: String,
    },
    #[error("cannot reach the server: {0}")]
    Transport(#[from] reqwest::Error),
}

impl ClientError {
    /// Worth retrying: the server is unreachable, overloaded or unavailable.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            Self::Transport(_) => true,
        }
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    authorization: String,
}

impl Client {
    pub fn new(base: &str, api_key: &str) -> Self {
        Self {
            http: {
                feedloop_embed::install_tls_provider();
                reqwest::Client::new()
            },
            base: base.trim_end_matches('/').to_owned(),
            authorization: format!("Bearer {api_key}"),
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("authorization", &self.authorization)
            .send()
            .await?;
        Self::answer("GET", path, response).await
    }

    /// A GET whose body the caller reads as it arrives (an export).
    pub async fn get_streaming(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("authorization", &self.authorization)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ClientError::Api {
                method: "GET",
                path: path.to_owned(),
                status: status.as_u16(),
                body,
            });
        }
        Ok(response)
    }

    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).expect("request bodies serialise");
        self.post_bytes(path, bytes).await
    }

    /// Posts an already-serialised JSON body.
    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.authorization)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        Self::answer("POST", path, response).await
    }

    async fn answer<T: DeserializeOwned>(
        method: &'static str,
        path: &str,
        response: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ClientError::Api {
                method,
                path: path.to_owned(),
                status: status.as_u16(),
                body,
            });
        }
        Ok(response.json().await?)
    }
}
