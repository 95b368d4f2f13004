//! Reading traces, feedback and sessions.

use axum::Json;
use axum::extract::{RawQuery, State};
use feedloop_core::TraceId;
use feedloop_core::auth::Permission;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{Path, ProjectKey};
use crate::query::{ListParams, parse_list_query};
use crate::wire::{FeedbackView, PageBody, SessionBody, TraceChainBody, TraceView};

/// List traces, newest first, with any of the filters; feedback filters mean "has feedback that …".
#[utoipa::path(
    get, path = "/api/v1/traces", tag = "read",
    params(ListParams, ("meta.<key>" = Option<String>, Query, description = "metadata key = value; repeatable")),
    responses((status = 200, body = PageBody<TraceView>), (status = 400, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_traces(
    State(state): State<AppState>,
    key: ProjectKey,
    RawQuery(query): RawQuery,
) -> Result<Json<PageBody<TraceView>>, ApiError> {
    let project = key.require(Permission::Read)?;
    let query = parse_list_query(query.as_deref())?;
    let mut page = state
        .store
        .list_traces(project, &query.filter, query.page)
        .await?;
    if query.with_spans {
        let ids: Vec<TraceId> = page.items.iter().map(|t| t.trace.id.clone()).collect();
        let mut spans: std::collections::HashMap<TraceId, _> = state
            .store
            .spans_of(project, &ids)
            .await?
            .into_iter()
            .collect();
        for item in &mut page.items {
            item.spans = spans.remove(&item.trace.id).unwrap_or_default();
        }
    }
    Ok(Json(PageBody {
        items: page.items.into_iter().map(TraceView::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// One trace as its full chain: the trace with its spans, all its feedback, and its neighbours in
/// the session.
#[utoipa::path(
    get, path = "/api/v1/traces/{id}", tag = "read",
    params(("id" = String, Path, description = "trace id")),
    responses((status = 200, body = TraceChainBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_trace(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(id): Path<String>,
) -> Result<Json<TraceChainBody>, ApiError> {
    let project = key.require(Permission::Read)?;
    let not_found = || ApiError::new(ErrorCode::TraceNotFound, format!("trace {id:?} not found"));
    let trace_id = TraceId::parse("id", id.clone()).map_err(|_| not_found())?;
    let chain = state
        .store
        .trace_chain(project, &trace_id)
        .await?
        .ok_or_else(not_found)?;
    let settings = state.store.signal_settings(project).await?;
    let satisfaction = feedloop_signals::current_estimate(&chain.feedback, &settings);
    let mut body = TraceChainBody::from(chain);
    body.satisfaction = satisfaction;
    Ok(Json(body))
}

/// List feedback, newest first; trace filters (model, user, environment, …) apply to the trace
/// the feedback is about.
#[utoipa::path(
    get, path = "/api/v1/feedback", tag = "read",
    params(ListParams, ("meta.<key>" = Option<String>, Query, description = "feedback metadata key = value; repeatable")),
    responses((status = 200, body = PageBody<FeedbackView>), (status = 400, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_feedback(
    State(state): State<AppState>,
    key: ProjectKey,
    RawQuery(query): RawQuery,
) -> Result<Json<PageBody<FeedbackView>>, ApiError> {
    let project = key.require(Permission::Read)?;
    let query = parse_list_query(query.as_deref())?;
    if query.with_spans {
        return Err(
            ApiError::new(ErrorCode::InvalidQuery, "with_spans applies to traces only")
                .with_field("with_spans"),
        );
    }
    let page = state
        .store
        .list_feedback(project, &query.filter, query.page)
        .await?;
    Ok(Json(PageBody {
        items: page.items.into_iter().map(FeedbackView::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// A session's timeline: its traces in order, each with its feedback.
#[utoipa::path(
    get, path = "/api/v1/sessions/{id}", tag = "read",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = SessionBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_session(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(id): Path<String>,
) -> Result<Json<SessionBody>, ApiError> {
    let project = key.require(Permission::Read)?;
    let session = state
        .store
        .session(project, &id, state.config.max_session_traces)
        .await?;
    let session = session.ok_or_else(|| {
        ApiError::new(
            ErrorCode::SessionNotFound,
            format!("session {id:?} not found"),
        )
    })?;
    let settings = state.store.signal_settings(project).await?;
    let estimates: Vec<_> = session
        .traces
        .iter()
        .map(|(_, feedback)| feedloop_signals::current_estimate(feedback, &settings))
        .collect();
    let mut body = SessionBody::from(session);
    for (entry, estimate) in body.traces.iter_mut().zip(estimates) {
        entry.satisfaction = estimate;
    }
    Ok(Json(body))
}
