//! The audit log of administrative actions (keys, people, settings, deletions, exports),
//! newest first, with a cursor.

use axum::Json;
use axum::extract::{Query, State};
use feedloop_core::Timestamp;
use feedloop_core::auth::Permission;
use feedloop_store::access::AuditEntry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::ProjectKey;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    pub seq: i64,
    /// `key 3`, `user 7`.
    pub actor: String,
    /// `key.create`, `member.remove`, `taxonomy.add`, `dataset.export`…
    pub action: String,
    pub target: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(entry: AuditEntry) -> Self {
        AuditEntryView {
            seq: entry.seq,
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            details: entry.details,
            at: entry.at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditBody {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// The project's audit log, newest first.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "people",
    params(AuditQuery),
    responses((status = 200, body = AuditBody), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_audit(
    State(state): State<AppState>,
    key: ProjectKey,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditBody>, ApiError> {
    let project = key.require(Permission::Admin)?;
    let Query(query) =
        query.map_err(|error| ApiError::new(ErrorCode::InvalidQuery, error.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(
            ApiError::new(ErrorCode::InvalidQuery, "limit must be 1 to 1000").with_field("limit"),
        );
    }
    let before = query
        .cursor
        .map(|cursor| {
            cursor.parse::<i64>().map_err(|_| {
                ApiError::new(ErrorCode::InvalidQuery, "malformed cursor").with_field("cursor")
            })
        })
        .transpose()?;
    let entries = state.store.list_audit(project, before, limit).await?;
    let next_cursor = (entries.len() == limit as usize)
        .then(|| entries.last().map(|entry| entry.seq.to_string()))
        .flatten();
    Ok(Json(AuditBody {
        entries: entries.into_iter().map(AuditEntryView::from).collect(),
        next_cursor,
    }))
}
