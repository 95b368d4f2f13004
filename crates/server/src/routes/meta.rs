//! Health, readiness, counts, the caller's project and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use feedloop_core::auth::Permission;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ProjectKey;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the database answers.
#[utoipa::path(
    get, path = "/readyz", tag = "meta",
    responses((status = 200, body = Health), (status = 503, body = Health))
)]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.list_projects().await {
        Ok(_) => (
            StatusCode::OK,
            Json(Health {
                status: "ready".into(),
            }),
        ),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "database unavailable".into(),
                }),
            )
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatsBody {
    pub traces: StatsCount,
    pub spans: StatsCount,
    pub feedback: FeedbackStats,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatsCount {
    pub total: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeedbackStats {
    pub total: u64,
    pub by_kind: BTreeMap<String, u64>,
}

/// Counts of the project's stored traces, spans and feedback.
#[utoipa::path(
    get, path = "/api/v1/stats", tag = "meta",
    responses((status = 200, body = StatsBody), (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn stats(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<StatsBody>, ApiError> {
    let project = key.require(Permission::Read)?;
    let stats = state.store.stats(project).await?;
    Ok(Json(StatsBody {
        traces: StatsCount {
            total: stats.traces,
        },
        spans: StatsCount { total: stats.spans },
        feedback: FeedbackStats {
            total: stats.feedback,
            by_kind: stats.feedback_by_kind,
        },
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProjectBody {
    pub id: i64,
    pub name: String,
    /// The role of the key that asked.
    pub role: String,
}

/// The project of the calling key.
#[utoipa::path(
    get, path = "/api/v1/project", tag = "meta",
    responses((status = 200, body = ProjectBody), (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn project(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<ProjectBody>, ApiError> {
    let project = state.store.project(key.project).await?.ok_or_else(|| {
        ApiError::new(
            crate::error::ErrorCode::Unauthorized,
            "the key's project is gone",
        )
    })?;
    Ok(Json(ProjectBody {
        id: project.id.0,
        name: project.name,
        role: key.role.as_str().into(),
    }))
}

/// The OpenAPI document of this API, generated from the code.
pub async fn openapi_json() -> impl IntoResponse {
    Json(crate::openapi_document())
}
