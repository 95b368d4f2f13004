//! The OpenAI-compatible gateway's routes: `POST /v1/chat/completions` and `GET /v1/models`.
//! Not in the OpenAPI document: they are OpenAI's API, answered in its shapes (see
//! [`crate::gateway`]).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use feedloop_core::ProjectId;
use feedloop_core::auth::{KEY_PREFIX, Permission};
use feedloop_core::trace::{Context, Environment, ModelInfo};
use serde_json::{Map, Value};
use std::time::Instant;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ProjectKey, json_body};
use crate::gateway::record::{Outcome, PendingTrace};
use crate::gateway::reply::summarize_body;
use crate::gateway::{
    CallMetadata, GatewayContext, GatewayContextRequest, OpenAiError, TAG, TRACE_ID_HEADER, chat,
    forward,
};
use crate::ops;
use crate::wire::TraceBody;

const KEY_HEADER: &str = "x-feedloop-key";
const SESSION_HEADER: &str = "x-feedloop-session-id";
const ENVIRONMENT_HEADER: &str = "x-feedloop-environment";
const TAGS_HEADER: &str = "x-feedloop-tags";
const USER_HEADER: &str = "x-feedloop-user-id";
/// Longest session or user id, in bytes (as for traces sent to the API).
const MAX_ID_BYTES: usize = 256;
const MAX_TAG_BYTES: usize = 128;
/// Tags a client may add; `gateway` is one more.
const MAX_CLIENT_TAGS: usize = 63;

/// Forwards a chat completion (streaming or not) and records it as a trace.
pub async fn chat_completions(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    // Trace writes outlive their calls; when the store falls this far behind, new calls are
    // refused (503, Retry-After) rather than piling up writes in memory.
    if state.recorder.num_in_flight() >= crate::gateway::MAX_PENDING_TRACE_WRITES {
        return crate::gateway::error::OpenAiError::from(crate::error::ApiError::overloaded())
            .into_response();
    }
    match chat_call(&state, request, started).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// Passes `GET /v1/models` through to the upstream.
pub async fn models(State(state): State<AppState>, request: Request) -> Response {
    match models_call(&state, request.headers()).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn models_call(state: &AppState, headers: &HeaderMap) -> Result<Response, OpenAiError> {
    let caller = authenticate(state, headers).await?;
    let upstream = &state.upstream;
    let url = upstream.url("models")?;
    let request = upstream.request(
        reqwest::Method::GET,
        &url,
        caller.upstream_authorization,
        headers,
    );
    let mut response = upstream.send(request).await?;
    let body = upstream
        .read_body(&mut response, state.config.max_body_bytes)
        .await?;
    Ok(forward::response_head(
        response.status(),
        response.headers(),
        Body::from(body),
    ))
}

/// Who is calling, and what `Authorization` the upstream gets.
struct Caller {
    project: ProjectId,
    upstream_authorization: Option<HeaderValue>,
}

/// The feedloop key comes in `x-feedloop-key` (the client's own `Authorization` then goes to the
/// upstream unchanged) or as the bearer token (the configured upstream key goes instead).
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, OpenAiError> {
    let authorization = headers.get(AUTHORIZATION);
    let (secret, upstream_authorization) = match headers.get(KEY_HEADER) {
        Some(key) => (key.to_str().unwrap_or(""), authorization.cloned()),
        None => {
            let bearer = authorization
                .and_then(|value| value.to_str().ok())
                .and_then(|value| {
                    value
                        .strip_prefix("Bearer ")
                        .or_else(|| value.strip_prefix("bearer "))
                })
                .filter(|token| token.trim().starts_with(KEY_PREFIX));
            let Some(secret) = bearer else {
                return Err(ApiError::new(
                    ErrorCode::Unauthorized,
                    format!(
                        "a feedloop key is required: send 'Authorization: Bearer {KEY_PREFIX}…' \
                         (the upstream key then comes from the config), or '{KEY_HEADER}: \
                         {KEY_PREFIX}…' beside your own upstream 'Authorization'"
                    ),
                )
                .into());
            };
            (secret, state.upstream.configured_authorization())
        }
    };
    let key = ProjectKey::from_secret(state, secret.trim()).await?;
    Ok(Caller {
        project: key.require(Permission::Ingest)?,
        upstream_authorization,
    })
}

async fn chat_call(
    state: &AppState,
    request: Request,
    started: Instant,
) -> Result<Response, OpenAiError> {
    let headers = request.headers().clone();
    let caller = authenticate(state, &headers).await?;
    let upstream = &state.upstream;
    let url = upstream.url("chat/completions")?;
    let bytes = json_body(request, state.config.max_body_bytes).await?;
    let mut body: Value = serde_json::from_slice(&bytes).map_err(|error| {
        OpenAiError::from(ApiError::new(
            ErrorCode::MalformedJson,
            format!("malformed json: {error}"),
        ))
    })?;
    let Some(object) = body.as_object_mut() else {
        return Err(OpenAiError::invalid_request(
            "body",
            "the body must be a JSON object",
        ));
    };
    let mut messages = match object.remove("messages") {
        Some(Value::Array(messages)) => messages,
        _ => {
            return Err(OpenAiError::invalid_request(
                "messages",
                "messages: an array of chat messages is required",
            ));
        }
    };
    let (session_id, metadata) = read_call_headers(&headers, object)?;
    let stream = object.get("stream") == Some(&Value::Bool(true));

    let now = state.clock.now();
    let trace_id = ops::new_id("tr_", now.as_microsecond());
    let query = chat::last_user_text(&messages);
    let context = lessons(
        state,
        caller.project,
        GatewayContextRequest {
            query: query.clone().unwrap_or_default(),
            session_id: session_id.clone(),
            trace_id: trace_id.clone(),
            metadata: metadata.clone(),
        },
    )
    .await;
    if let Some(block) = context.block.as_deref().filter(|_| !context.holdout) {
        chat::inject_system_block(&mut messages, block);
    }
    let trace = TraceBody {
        id: Some(trace_id.clone()),
        session_id,
        user_id: metadata.user_id,
        environment: metadata.environment,
        input: query,
        context: Some(Context {
            system_prompt: chat::system_prompt(&messages),
            messages: chat::trace_messages(&messages),
            ..Context::default()
        }),
        model: Some(ModelInfo {
            name: metadata.model,
            ..ModelInfo::default()
        }),
        tags: metadata.tags.into_iter().chain([TAG.to_owned()]).collect(),
        metadata: trace_metadata(&context, stream),
        started_at: Some(now),
        ..TraceBody::default()
    };
    object.insert("messages".into(), Value::Array(messages));
    let upstream_body = serde_json::to_vec(&body).expect("a JSON value serialises");

    let pending = PendingTrace::new(state.clone(), caller.project, trace, started);
    let request = upstream
        .request(
            reqwest::Method::POST,
            &url,
            caller.upstream_authorization,
            &headers,
        )
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(upstream_body);
    // Every answer from here on, errors included, is a recorded call and names its trace.
    let result: Result<Response, OpenAiError> = async {
        let mut response = match upstream.send(request).await {
            Ok(response) => response,
            Err(error) => {
                pending.complete(Outcome::failed(error.message.clone()));
                return Err(error);
            }
        };
        let status = response.status();
        let is_event_stream = response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if stream && status.is_success() && is_event_stream {
            return Ok(forward::stream(upstream, response, pending));
        }
        let body = match upstream
            .read_body(&mut response, state.config.max_body_bytes)
            .await
        {
            Ok(body) => body,
            Err(error) => {
                pending.complete(Outcome::failed(error.message.clone()));
                return Err(error);
            }
        };
        pending.complete(if status.is_success() {
            Outcome {
                summary: summarize_body(&body),
                error: None,
                upstream_status: Some(status.as_u16()),
            }
        } else {
            Outcome::upstream_error(status.as_u16(), &body)
        });
        Ok(forward::response_head(
            status,
            response.headers(),
            Body::from(body),
        ))
    }
    .await;
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert(TRACE_ID_HEADER, value);
    }
    Ok(response)
}

/// Asks the context source (if any) for lessons. A failing source never fails the call: the
/// request goes out without lessons, and the log says why.
async fn lessons(
    state: &AppState,
    project: ProjectId,
    request: GatewayContextRequest,
) -> GatewayContext {
    let Some(source) = &state.context_source else {
        return GatewayContext::default();
    };
    match source.context(project, request).await {
        Ok(context) => context,
        Err(error) => {
            tracing::warn!(code = ?error.code, message = %error.message, "gateway: no lessons for this call");
            GatewayContext::default()
        }
    }
}

fn trace_metadata(context: &GatewayContext, stream: bool) -> Map<String, Value> {
    let mut metadata = Map::new();
    if let Some(id) = &context.injection_id {
        metadata.insert("feedloop.injection_id".into(), id.clone().into());
    }
    if !context.lessons.is_empty() {
        metadata.insert(
            "feedloop.lessons".into(),
            Value::Array(context.lessons.clone()),
        );
    }
    if context.holdout {
        metadata.insert("feedloop.holdout".into(), true.into());
    }
    metadata.insert("feedloop.stream".into(), stream.into());
    metadata
}

/// The session id and the call's metadata from the `x-feedloop-*` headers and the body.
fn read_call_headers(
    headers: &HeaderMap,
    body: &Map<String, Value>,
) -> Result<(Option<String>, CallMetadata), OpenAiError> {
    let header = |name: &str| -> Result<Option<String>, OpenAiError> {
        match headers.get(name) {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .map(|v| Some(v.trim().to_owned()))
                .map_err(|_| OpenAiError::invalid_request(name, format!("{name} must be ascii"))),
        }
    };
    let id_header = |name: &str| -> Result<Option<String>, OpenAiError> {
        let value = header(name)?;
        if let Some(value) = &value
            && (value.is_empty() || value.len() > MAX_ID_BYTES)
        {
            return Err(OpenAiError::invalid_request(
                name,
                format!("{name} must be 1 to {MAX_ID_BYTES} bytes"),
            ));
        }
        Ok(value)
    };
    let session_id = id_header(SESSION_HEADER)?;
    let environment = match header(ENVIRONMENT_HEADER)? {
        None => None,
        Some(name) => Some(Environment::parse(&name).ok_or_else(|| {
            OpenAiError::invalid_request(
                ENVIRONMENT_HEADER,
                format!("{ENVIRONMENT_HEADER} must be dev, test, staging or prod, not {name:?}"),
            )
        })?),
    };
    let tags: Vec<String> = header(TAGS_HEADER)?
        .map(|tags| {
            tags.split(',')
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if tags.len() > MAX_CLIENT_TAGS || tags.iter().any(|tag| tag.len() > MAX_TAG_BYTES) {
        return Err(OpenAiError::invalid_request(
            TAGS_HEADER,
            format!(
                "{TAGS_HEADER}: at most {MAX_CLIENT_TAGS} tags of at most {MAX_TAG_BYTES} bytes"
            ),
        ));
    }
    // The body's `user` (OpenAI's end-user id) stands in for the header; one too long is left out
    // rather than refused, since the upstream accepted it.
    let user_id = match id_header(USER_HEADER)? {
        Some(user) => Some(user),
        None => body
            .get("user")
            .and_then(Value::as_str)
            .filter(|user| !user.is_empty() && user.len() <= MAX_ID_BYTES)
            .map(str::to_owned),
    };
    let metadata = CallMetadata {
        model: body.get("model").and_then(Value::as_str).map(str::to_owned),
        environment,
        tags,
        user_id,
    };
    Ok((session_id, metadata))
}
