//! Feedback tokens (see [`crate::access::token`]): an app's backend, holding an ingest key, asks
//! for one per trace and hands it to a client that cannot hold a key.

use axum::Json;
use axum::extract::State;
use feedloop_core::auth::Permission;
use feedloop_core::{Timestamp, TraceId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::access::token::{self, TokenClaims};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ProjectKey, ValidatedJson};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    pub trace_id: String,
    /// Seconds the token is valid: 1 up to the configured maximum (default 3600).
    pub ttl_secs: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeedbackTokenBody {
    /// Send as `Authorization: Bearer <token>` to POST /api/v1/feedback or /api/v1/signals
    /// about this trace.
    pub token: String,
    pub trace_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// A signed token that lets its holder post feedback and signals about one trace until it
/// expires. Needs an ingest (or admin) key.
#[utoipa::path(
    post, path = "/api/v1/feedback-tokens", tag = "ingest",
    request_body = NewTokenBody,
    responses((status = 200, body = FeedbackTokenBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn create_feedback_token(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<NewTokenBody>,
) -> Result<Json<FeedbackTokenBody>, ApiError> {
    let project = key.require(Permission::Ingest)?;
    let trace = TraceId::parse("trace_id", body.trace_id)?;
    let max = state.config.access.max_token_ttl.as_secs();
    let ttl = body.ttl_secs.unwrap_or(3600);
    if ttl == 0 || ttl > max {
        return Err(
            feedloop_core::ValidationError::new("ttl_secs", format!("must be 1 to {max}")).into(),
        );
    }
    let secret = state.access.token_secrets.get(&state, project).await?;
    let expires_at = token::unix_secs(state.clock.now()).saturating_add(ttl as i64);
    let claims = TokenClaims {
        project,
        trace: trace.clone(),
        expires_at,
    };
    Ok(Json(FeedbackTokenBody {
        token: token::sign(&secret, &claims),
        trace_id: trace.into_string(),
        expires_at: Timestamp::from_second(expires_at).unwrap_or(Timestamp::MAX),
    }))
}
