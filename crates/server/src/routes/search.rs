//! Search by meaning: `POST /api/v1/search` (near a text or a trace) and
//! `GET /api/v1/traces/{id}/similar`.

use axum::Json;
use axum::extract::{RawQuery, State};
use feedloop_core::TraceId;
use feedloop_core::auth::Permission;
use feedloop_core::filter::Filter;
use feedloop_memory::search::MAX_K;
use feedloop_memory::{Query, SearchRequest};
use std::collections::BTreeMap;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{Path, ProjectKey, ValidatedJson};
use crate::query::{ListParams, bad, parse_bool, parse_list_pairs, parse_pairs};
use crate::wire::{SearchBody, SearchResults};

const DEFAULT_K: usize = 10;

/// The traces nearest in meaning to a text or to a stored trace, each with its similarity and a
/// summary of its feedback. `problems_only` keeps traces with current negative feedback (explicit
/// or implicit): similar known problems, with their corrections.
#[utoipa::path(
    post, path = "/api/v1/search", tag = "search",
    request_body = SearchBody,
    responses(
        (status = 200, body = SearchResults),
        (status = 404, body = ErrorBody, description = "trace_id names no trace"),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn search(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<SearchBody>,
) -> Result<Json<SearchResults>, ApiError> {
    let project = key.require(Permission::Read)?;
    let query = match (body.text, body.trace_id) {
        (Some(text), None) if !text.trim().is_empty() => Query::Text(text),
        (Some(_), None) => return Err(invalid("text", "must not be blank")),
        (None, Some(id)) => {
            Query::Trace(TraceId::parse("trace_id", id).map_err(ApiError::invalid)?)
        }
        (Some(_), Some(_)) => return Err(invalid("text", "give text or trace_id, not both")),
        (None, None) => return Err(invalid("text", "give text or trace_id")),
    };
    let k = check_k(body.k)?;
    let filter = filter_from_body(body.filter.unwrap_or_default())?;
    let request = SearchRequest {
        query,
        k,
        filter,
        problems_only: body.problems_only.unwrap_or(false),
    };
    run(&state, project, &request).await
}

/// The traces nearest in meaning to this one (itself left out). Query parameters: `k`
/// (1..=100, default 10), `problems_only` (true, false) and the list filters.
#[utoipa::path(
    get, path = "/api/v1/traces/{id}/similar", tag = "search",
    params(
        ("id" = String, Path, description = "trace id"),
        ("k" = Option<usize>, Query, description = "number of neighbours, 1..=100 (default 10)"),
        ("problems_only" = Option<bool>, Query, description = "only traces with negative feedback"),
        ListParams
    ),
    responses((status = 200, body = SearchResults), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn similar(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<SearchResults>, ApiError> {
    let project = key.require(Permission::Read)?;
    let id = TraceId::parse("id", id).map_err(ApiError::invalid)?;
    let mut k = None;
    let mut problems_only = false;
    let mut rest = Vec::new();
    for (key, value) in parse_pairs(raw.as_deref())? {
        match key.as_str() {
            "k" => {
                let parsed = value.parse().ok().filter(|k| (1..=MAX_K).contains(k));
                k = Some(
                    parsed.ok_or_else(|| bad("k", format!("must be an integer in 1..={MAX_K}")))?,
                );
            }
            "problems_only" => problems_only = parse_bool(&key, &value)?,
            _ => rest.push((key, value)),
        }
    }
    let k = k.unwrap_or(DEFAULT_K);
    let filter = only_filter(parse_list_pairs(rest)?, "")?;
    let request = SearchRequest {
        query: Query::Trace(id),
        k,
        filter,
        problems_only,
    };
    run(&state, project, &request).await
}

async fn run(
    state: &AppState,
    project: feedloop_core::ProjectId,
    request: &SearchRequest,
) -> Result<Json<SearchResults>, ApiError> {
    let hits = state.memory.search(project, request).await?;
    Ok(Json(SearchResults {
        model: state.memory.model_id().to_owned(),
        results: hits.into_iter().map(Into::into).collect(),
    }))
}

fn check_k(k: Option<usize>) -> Result<usize, ApiError> {
    match k {
        None => Ok(DEFAULT_K),
        Some(k) if (1..=MAX_K).contains(&k) => Ok(k),
        Some(_) => Err(invalid("k", &format!("must be in 1..={MAX_K}"))),
    }
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidValue, format!("{field}: {message}")).with_field(field)
}

/// A body's `filter` object: the list filters, values as JSON strings (or booleans).
pub(crate) fn filter_from_body(
    filter: BTreeMap<String, serde_json::Value>,
) -> Result<Filter, ApiError> {
    let mut pairs = Vec::with_capacity(filter.len());
    for (key, value) in filter {
        let value = match value {
            serde_json::Value::String(text) => text,
            serde_json::Value::Bool(flag) => flag.to_string(),
            _ => {
                let field = format!("filter.{key}");
                return Err(ApiError::new(
                    ErrorCode::InvalidField,
                    format!("{field}: must be a string or a boolean"),
                )
                .with_field(field));
            }
        };
        pairs.push((key, value));
    }
    let query = parse_list_pairs(pairs).map_err(|mut error| {
        error.code = ErrorCode::InvalidValue;
        if let Some(field) = &error.field {
            let field = format!("filter.{field}");
            error.message = format!("filter.{}", error.message);
            error.field = Some(field);
        }
        error
    })?;
    only_filter(query, "filter.")
}

/// Rejects page parameters, which mean nothing to a search.
fn only_filter(query: crate::query::ListQuery, prefix: &str) -> Result<Filter, ApiError> {
    let crate::query::ListQuery {
        filter,
        page,
        with_spans,
    } = query;
    if page != feedloop_core::filter::PageRequest::default() || with_spans {
        let field = format!("{prefix}limit");
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("{field}: search takes k, not limit, cursor, order or with_spans"),
        )
        .with_field(field));
    }
    Ok(filter)
}
