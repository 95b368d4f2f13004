//! The OpenAI-compatible gateway: `POST /v1/chat/completions` and `GET /v1/models`, forwarded to
//! one configured upstream, with lessons injected into the system message and every call stored
//! as a trace.
//!
//! The request body is kept as a `serde_json::Value`, so fields this code does not know reach the
//! upstream as they came; only `messages` is read (and, when lessons are injected, its system
//! message changed). The answer goes back as the upstream gave it: status, body, and for streams
//! each chunk as it arrives. The trace is written after the answer is complete, on a task of its
//! own (see [`Recorder`]), so the client never waits for the database.
//!
//! - [`chat`]: reading the request (the query, the messages for the trace) and the injection.
//! - [`reply`]: reading the answer (assembled stream output, model, usage).
//! - [`forward`]: the upstream call with its timeouts, and the streaming pump.
//! - [`record`]: the call's trace and the task that stores it.
//! - [`error`]: errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`.

pub mod chat;
pub mod error;
pub mod forward;
pub mod record;
pub mod reply;

use async_trait::async_trait;
use feedloop_core::ProjectId;
use feedloop_core::trace::Environment;
use std::time::Duration;

use crate::error::ApiError;

pub use error::OpenAiError;
pub use record::Recorder;

/// Response header carrying the id of the trace the gateway stores for a call.
pub const TRACE_ID_HEADER: &str = "x-feedloop-trace-id";
/// The model provider recorded on gateway traces.
pub const PROVIDER: &str = "openai-compatible";
/// The tag every gateway trace carries.
pub const TAG: &str = "gateway";

/// Most gateway trace writes still running (they outlive their calls) before new calls are
/// refused with 503: the bound on what a slow or unreachable store can pile up in memory.
pub const MAX_PENDING_TRACE_WRITES: usize = 10_000;

/// Where the gateway forwards to.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// The upstream's base URL (`…/v1`); `None`: the gateway answers 503.
    pub upstream_base_url: Option<String>,
    /// Sent as `Authorization: Bearer …` when the client authenticates with its feedloop key in
    /// `Authorization`; `None` sends no key (a local model server, say).
    pub upstream_api_key: Option<String>,
    /// Longest wait for the upstream's first byte, and between two chunks of its answer.
    pub timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            upstream_base_url: None,
            upstream_api_key: None,
            timeout: Duration::from_secs(120),
        }
    }
}

/// What the gateway asks a [`ContextSource`] for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayContextRequest {
    /// The text of the last user message.
    pub query: String,
    /// From the `x-feedloop-session-id` header.
    pub session_id: Option<String>,
    /// The id the gateway chose for this call's trace.
    pub trace_id: String,
    pub metadata: CallMetadata,
}

/// What the gateway knows about a call besides its messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallMetadata {
    /// The request's `model`.
    pub model: Option<String>,
    /// From `x-feedloop-environment`.
    pub environment: Option<Environment>,
    /// From `x-feedloop-tags` (comma-separated).
    pub tags: Vec<String>,
    /// From `x-feedloop-user-id`, else the body's `user`.
    pub user_id: Option<String>,
}

/// What a [`ContextSource`] answers: the text to inject and what to record about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayContext {
    /// Text appended to the system message; `None`: nothing to inject.
    pub block: Option<String>,
    /// Recorded as the trace's `feedloop.injection_id` metadata.
    pub injection_id: Option<String>,
    /// The lessons behind the block, recorded as `feedloop.lessons`.
    pub lessons: Vec<serde_json::Value>,
    /// The call is in the hold-out group: nothing is injected, but the choice is recorded.
    pub holdout: bool,
}

/// The lessons to put in front of the model for one call. The server holds at most one
/// (`AppState::context_source`); without one, nothing is injected.
#[async_trait]
pub trait ContextSource: Send + Sync {
    async fn context(
        &self,
        project: ProjectId,
        request: GatewayContextRequest,
    ) -> Result<GatewayContext, ApiError>;
}

/// The lesson engine as the gateway's source of context: the call's last user message is the
/// query, its model, environment and tags the metadata the lessons' filters see.
pub struct LessonContext {
    pub engine: std::sync::Arc<feedloop_lessons::LessonEngine>,
    pub clock: std::sync::Arc<dyn feedloop_core::clock::Clock>,
}

#[async_trait]
impl ContextSource for LessonContext {
    async fn context(
        &self,
        project: ProjectId,
        request: GatewayContextRequest,
    ) -> Result<GatewayContext, ApiError> {
        let trace_id = feedloop_core::TraceId::parse("trace_id", request.trace_id)?;
        let metadata = feedloop_core::lesson::QueryMetadata {
            environment: request.metadata.environment,
            model_name: request.metadata.model,
            tags: request.metadata.tags,
            ..Default::default()
        };
        let answer = self
            .engine
            .context(
                project,
                feedloop_lessons::ContextRequest {
                    query: request.query,
                    session_id: request.session_id,
                    trace_id: Some(trace_id),
                    metadata,
                    budget: None,
                },
                self.clock.now(),
            )
            .await?;
        let lessons = answer
            .lessons
            .iter()
            .filter(|applied| applied.injected || answer.holdout)
            .map(|applied| {
                serde_json::json!({
                    "id": applied.lesson.id,
                    "version": applied.lesson.version,
                    "score": applied.score,
                    "similarity": applied.similarity,
                })
            })
            .collect();
        Ok(GatewayContext {
            block: answer.block,
            injection_id: answer.injection_id.map(|id| id.into_string()),
            lessons,
            holdout: answer.holdout,
        })
    }
}
