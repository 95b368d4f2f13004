//! The upstream call: one HTTP client with kept-alive connections, the timeouts (first byte, and
//! between two chunks), the answer's head copied back, and for streams a pump task that hands
//! each chunk to the client as it arrives while the trace's output is assembled beside it.

use axum::body::Body;
use axum::http::header::{AUTHORIZATION, HeaderName};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use std::time::Duration;
use tokio::sync::mpsc;

use super::record::{Outcome, PendingTrace};
use super::reply::StreamAssembler;
use super::{GatewayConfig, OpenAiError};

/// Longest wait for a connection to the upstream (the timeout applies when it is shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Chunks of a stream the pump may be ahead of the client.
const STREAM_BUFFER_CHUNKS: usize = 16;

/// Response headers that describe one connection, not the answer: never copied.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Request headers of the client passed on to the upstream besides the body and the key.
const FORWARDED_REQUEST_HEADERS: [&str; 4] = [
    "accept",
    "openai-organization",
    "openai-project",
    "openai-beta",
];

/// The configured upstream and the client that reaches it.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    base_url: Option<String>,
    /// `Bearer <upstream_api_key>`, ready to send.
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

impl Upstream {
    pub fn new(config: &GatewayConfig) -> Self {
        // reqwest is built without a default rustls provider (see feedloop_embed::tls).
        feedloop_embed::install_tls_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(config.timeout))
            .build()
            .expect("an http client builds once the tls provider is installed");
        let authorization = config.upstream_api_key.as_deref().and_then(|key| {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                .inspect_err(|_| {
                    tracing::error!("gateway.upstream_api_key has characters a header cannot carry; no key is sent");
                })
                .ok()?;
            value.set_sensitive(true);
            Some(value)
        });
        Self {
            client,
            base_url: config
                .upstream_base_url
                .as_deref()
                .map(|url| url.trim_end_matches('/').to_owned())
                .filter(|url| !url.is_empty()),
            authorization,
            timeout: config.timeout,
        }
    }

    /// `{base_url}/{path}`, or 503 when no upstream is configured.
    pub fn url(&self, path: &str) -> Result<String, OpenAiError> {
        match &self.base_url {
            Some(base) => Ok(format!("{base}/{path}")),
            None => Err(OpenAiError::not_configured()),
        }
    }

    /// The configured key as an `Authorization` value.
    pub fn configured_authorization(&self) -> Option<HeaderValue> {
        self.authorization.clone()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A request to `url` with the upstream key chosen by the caller's way of authenticating and
    /// the client headers worth passing on.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        authorization: Option<HeaderValue>,
        client_headers: &HeaderMap,
    ) -> reqwest::RequestBuilder {
        let mut request = self.client.request(method, url);
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        for name in FORWARDED_REQUEST_HEADERS {
            if let Some(value) = client_headers.get(name) {
                request = request.header(name, value);
            }
        }
        request
    }

    /// Sends `request` and waits for the answer's head, at most the timeout.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, OpenAiError> {
        match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => Err(self.timed_out()),
            Ok(Err(error)) => Err(unreachable(&error)),
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// Reads a whole answer body (at most `limit` bytes), the timeout applying between chunks.
    pub async fn read_body(
        &self,
        response: &mut reqwest::Response,
        limit: usize,
    ) -> Result<Bytes, OpenAiError> {
        let mut body = Vec::new();
        loop {
            match tokio::time::timeout(self.timeout, response.chunk()).await {
                Err(_) => return Err(self.timed_out()),
                Ok(Err(error)) => return Err(unreachable(&error)),
                Ok(Ok(None)) => return Ok(Bytes::from(body)),
                Ok(Ok(Some(chunk))) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > limit {
                        return Err(OpenAiError::upstream_unreachable(format!(
                            "the upstream's answer is longer than {limit} bytes"
                        )));
                    }
                }
            }
        }
    }

    fn timed_out(&self) -> OpenAiError {
        OpenAiError::upstream_timeout(format!(
            "the upstream did not answer within {} s",
            self.timeout.as_secs_f64()
        ))
    }
}

fn unreachable(error: &reqwest::Error) -> OpenAiError {
    let message = feedloop_embed::error_chain(error);
    tracing::warn!(%message, "gateway upstream unreachable");
    OpenAiError::upstream_unreachable(format!("the upstream is unreachable: {message}"))
}

/// A response with the upstream's status and headers (those that describe the answer).
pub fn response_head(status: StatusCode, upstream_headers: &HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in upstream_headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            headers.append(HeaderName::clone(name), value.clone());
        }
    }
    response
}

/// Answers with the upstream's stream: a pump task reads the upstream, assembles the trace's
/// output and passes every chunk on as it arrives; when the stream ends (or fails, or the client
/// goes away) it completes the trace.
pub fn stream(upstream: &Upstream, response: reqwest::Response, pending: PendingTrace) -> Response {
    let status = response.status();
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(STREAM_BUFFER_CHUNKS);
    let head = response_head(status, response.headers(), Body::empty());
    tokio::spawn(pump(upstream.clone(), response, sender, pending));
    let chunks = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let (parts, _) = head.into_parts();
    Response::from_parts(parts, Body::from_stream(chunks))
}

async fn pump(
    upstream: Upstream,
    mut response: reqwest::Response,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    pending: PendingTrace,
) {
    let status = response.status().as_u16();
    let mut assembler = StreamAssembler::default();
    let disconnected = || "the client disconnected before the stream ended".to_owned();
    let error = loop {
        let next = tokio::select! {
            biased;
            () = sender.closed() => break Some(disconnected()),
            next = tokio::time::timeout(upstream.timeout, response.chunk()) => next,
        };
        let failure = match next {
            Ok(Ok(None)) => break None,
            Ok(Ok(Some(chunk))) => {
                assembler.feed(&chunk);
                if sender.send(Ok(chunk)).await.is_err() {
                    break Some(disconnected());
                }
                continue;
            }
            Err(_) => upstream.timed_out(),
            Ok(Err(error)) => unreachable(&error),
        };
        // The status went out long ago: the failure reaches the client as a last event, the
        // way OpenAI reports errors inside a stream.
        let event = format!("data: {}\n\n", failure.body());
        let _ = sender.send(Ok(Bytes::from(event))).await;
        break Some(failure.message);
    };
    pending.complete(Outcome {
        summary: assembler.finish(),
        error,
        upstream_status: Some(status),
    });
}
