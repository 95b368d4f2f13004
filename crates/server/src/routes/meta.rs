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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<ReadinessDetails>,
}

/// What the background work is doing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadinessDetails {
    /// The embedding model in use.
    pub embedding_model: String,
    /// Traces waiting to be embedded.
    pub embedding_backlog: u64,
    /// Traces this replica embedded since it started.
    pub embedded_since_start: u64,
    /// Vectors in this replica's indexes.
    pub indexed_vectors: usize,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the database answers. Details say how far the embedding worker and the vector
/// indexes are behind.
#[utoipa::path(
    get, path = "/readyz", tag = "meta",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    // The backlog is read from the database, so an answer also says the database answers.
    match state.memory.status().await {
        Ok(status) => (
            StatusCode::OK,
            Json(Readiness {
                status: "ready".into(),
                details: Some(ReadinessDetails {
                    embedding_model: status.model,
                    embedding_backlog: status.backlog,
                    embedded_since_start: status.embedded,
                    indexed_vectors: status.indexed_vectors,
                }),
            }),
        ),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Readiness {
                    status: "database unavailable".into(),
                    details: None,
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
    /// The role of the caller: a key's role, a person's role, or `feedback_token`.
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
        role: key.role_name().into(),
    }))
}

/// Metrics in the Prometheus text format: how far semantic memory is behind on this replica.
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    use std::fmt::Write;
    let status = state.memory.status().await?;
    let index_bytes = state.memory.index_bytes().await?;
    let metrics = [
        (
            "feedloop_embedding_backlog",
            "gauge",
            "Traces waiting to be embedded.",
            status.backlog,
        ),
        (
            "feedloop_embedded_traces_total",
            "counter",
            "Traces this replica embedded since it started.",
            status.embedded,
        ),
        (
            "feedloop_embedding_failed_batches_total",
            "counter",
            "Embedding batches that failed (retried when their claim expires).",
            status.failed_batches,
        ),
        (
            "feedloop_indexed_vectors",
            "gauge",
            "Vectors in this replica's indexes.",
            status.indexed_vectors as u64,
        ),
        (
            "feedloop_vector_index_bytes",
            "gauge",
            "Bytes of memory this replica's vector indexes hold.",
            index_bytes as u64,
        ),
        (
            "feedloop_sqlite_memory_bytes",
            "gauge",
            "Bytes SQLite's allocator holds in this process (page caches, statements; 0 on PostgreSQL).",
            feedloop_store::sqlite::memory_used(),
        ),
    ];
    let mut body = String::new();
    for (name, kind, help, value) in metrics {
        let _ = write!(
            body,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    }
    state.analytics.metrics.render(&mut body);
    crate::analytics::metrics::render_shared(&state, state.clock.now(), &mut body).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}

/// The OpenAPI document of this API, generated from the code.
pub async fn openapi_json() -> impl IntoResponse {
    Json(crate::openapi_document())
}
