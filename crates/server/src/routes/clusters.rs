//! Problem clusters: the project's traces with negative feedback grouped by meaning (see
//! `feedloop_clusters`), each with its name, size, daily trend, top categories and examples.

use axum::Json;
use axum::extract::{RawQuery, State};
use feedloop_core::auth::Permission;
use feedloop_core::stats::Bucket;
use feedloop_core::{ProjectId, Timestamp};
use feedloop_store::clusters::ProblemCluster;
use jiff::SignedDuration;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{Path, ProjectKey};
use crate::query::{bad, parse_pairs};

/// Examples a cluster in a list shows; its own page shows more.
const LIST_EXAMPLES: u32 = 3;
const DETAIL_EXAMPLES: u32 = 20;
const TOP_CATEGORIES: usize = 5;

/// A problem cluster.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterView {
    pub id: i64,
    /// The distinctive terms, joined: what the cluster is about.
    pub name: String,
    /// The distinctive terms of its members' queries, best first.
    pub terms: Vec<String>,
    /// Traces in the cluster.
    pub size: u64,
    /// Members whose trace started in the last 7 days, and in the 7 days before.
    pub last_7_days: u64,
    pub previous_7_days: u64,
    /// Members per UTC day of their trace's start, over `trend_days` (days without members
    /// left out).
    pub trend: Vec<DayCount>,
    /// Categories of the members' current feedback, with the number of members carrying each.
    pub top_categories: Vec<CategoryCount>,
    /// Members nearest the centroid.
    pub examples: Vec<ClusterExample>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DayCount {
    #[schema(value_type = String, format = DateTime)]
    pub day: Timestamp,
    pub count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryCount {
    pub name: String,
    pub count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterExample {
    pub trace_id: String,
    pub query: String,
    /// Similarity to the centroid when the trace joined.
    pub similarity: f32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterList {
    /// Largest first.
    pub clusters: Vec<ClusterView>,
}

/// What a refresh did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterRefresh {
    /// Problems placed into clusters.
    pub placed: u64,
    /// Ids of the clusters founded.
    pub new_clusters: Vec<i64>,
    /// Existing clusters that grew.
    pub grown: u64,
}

/// Options of the list.
struct ListOptions {
    min_size: u64,
    limit: usize,
    trend_days: i64,
}

/// The query of the list (`list`), or of one cluster (only `trend_days`).
fn list_options(raw: Option<&str>, list: bool) -> Result<ListOptions, ApiError> {
    let mut options = ListOptions {
        min_size: 2,
        limit: 20,
        trend_days: 14,
    };
    for (name, value) in parse_pairs(raw)? {
        let number = |range: std::ops::RangeInclusive<i64>| {
            value
                .parse::<i64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    bad(
                        &name,
                        format!("must be an integer in {}..={}", range.start(), range.end()),
                    )
                })
        };
        match name.as_str() {
            "min_size" if list => options.min_size = number(1..=1_000_000)? as u64,
            "limit" if list => options.limit = number(1..=200)? as usize,
            "trend_days" => options.trend_days = number(1..=365)?,
            other => return Err(bad(other, "unknown query parameter")),
        }
    }
    Ok(options)
}

/// The project's problem clusters, largest first. Query: `min_size` (default 2: single
/// problems are not clusters), `limit` (1..=200, default 20), `trend_days` (1..=365, default 14).
#[utoipa::path(
    get, path = "/api/v1/clusters", tag = "clusters",
    params(
        ("min_size" = Option<u64>, Query, description = "least members, default 2"),
        ("limit" = Option<u32>, Query, description = "1..=200, default 20"),
        ("trend_days" = Option<u32>, Query, description = "days of daily counts, default 14")
    ),
    responses((status = 200, body = ClusterList), (status = 400, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_clusters(
    State(state): State<AppState>,
    key: ProjectKey,
    RawQuery(raw): RawQuery,
) -> Result<Json<ClusterList>, ApiError> {
    let project = key.require(Permission::Read)?;
    let options = list_options(raw.as_deref(), true)?;
    let mut clusters: Vec<ProblemCluster> = state
        .store
        .problem_clusters(project, state.clusters.model())
        .await?
        .into_iter()
        .filter(|c| c.size >= options.min_size)
        .collect();
    clusters.sort_by(|a, b| b.size.cmp(&a.size).then(a.id.cmp(&b.id)));
    clusters.truncate(options.limit);
    let mut views = Vec::with_capacity(clusters.len());
    for cluster in clusters {
        views.push(view(&state, project, cluster, LIST_EXAMPLES, options.trend_days).await?);
    }
    Ok(Json(ClusterList { clusters: views }))
}

/// One problem cluster with more examples. Query: `trend_days` (1..=365, default 14).
#[utoipa::path(
    get, path = "/api/v1/clusters/{id}", tag = "clusters",
    params(
        ("id" = i64, Path, description = "the cluster's id"),
        ("trend_days" = Option<u32>, Query, description = "days of daily counts, default 14")
    ),
    responses(
        (status = 200, body = ClusterView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn get_cluster(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ClusterView>, ApiError> {
    let project = key.require(Permission::Read)?;
    let options = list_options(raw.as_deref(), false)?;
    let not_found = || {
        ApiError::new(
            ErrorCode::ClusterNotFound,
            format!("cluster {id:?} not found"),
        )
    };
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let cluster = state
        .store
        .problem_clusters(project, state.clusters.model())
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(not_found)?;
    Ok(Json(
        view(
            &state,
            project,
            cluster,
            DETAIL_EXAMPLES,
            options.trend_days,
        )
        .await?,
    ))
}

/// Places the project's unclustered problems now, as the background job does every few
/// minutes (useful after an import).
#[utoipa::path(
    post, path = "/api/v1/clusters/refresh", tag = "clusters",
    responses((status = 200, body = ClusterRefresh), (status = 403, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn refresh_clusters(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<ClusterRefresh>, ApiError> {
    let project = key.require(Permission::Review)?;
    let report = crate::ops::refresh_clusters(&state, Some(project), state.clock.now()).await?;
    Ok(Json(ClusterRefresh {
        placed: report.num_placed,
        new_clusters: report.new_clusters.into_iter().map(|c| c.id).collect(),
        grown: report.num_grown,
    }))
}

async fn view(
    state: &AppState,
    project: ProjectId,
    cluster: ProblemCluster,
    num_examples: u32,
    trend_days: i64,
) -> Result<ClusterView, ApiError> {
    let now = state.clock.now();
    let days_ago = |days: i64| {
        let start = now
            .saturating_sub(SignedDuration::from_hours(24 * days))
            .unwrap_or(now);
        // Whole UTC days, so the first bucket is not cut short.
        Timestamp::from_microsecond(Bucket::Day.start_of(start.as_microsecond())).unwrap_or(start)
    };
    let since = days_ago(trend_days.max(14));
    let counts = state
        .store
        .cluster_trend(project, cluster.id, since)
        .await?;
    let (week, previous_week) = (days_ago(7), days_ago(14));
    let sum = |from: Timestamp, to: Timestamp| {
        counts
            .iter()
            .filter(|(day, _)| *day >= from && *day < to)
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let far_future = Timestamp::MAX;
    let trend_start = days_ago(trend_days);
    let categories = state.store.cluster_categories(project, cluster.id).await?;
    let examples = state
        .store
        .cluster_members(project, cluster.id, num_examples)
        .await?;
    Ok(ClusterView {
        id: cluster.id,
        name: cluster.terms.join(", "),
        last_7_days: sum(week, far_future),
        previous_7_days: sum(previous_week, week),
        trend: counts
            .iter()
            .filter(|(day, _)| *day >= trend_start)
            .map(|&(day, count)| DayCount { day, count })
            .collect(),
        top_categories: categories
            .into_iter()
            .take(TOP_CATEGORIES)
            .map(|(name, count)| CategoryCount { name, count })
            .collect(),
        examples: examples
            .into_iter()
            .map(|m| ClusterExample {
                trace_id: m.trace_id.as_str().to_owned(),
                query: m.query,
                similarity: m.similarity,
            })
            .collect(),
        terms: cluster.terms,
        size: cluster.size,
        created_at: cluster.created_at,
        updated_at: cluster.updated_at,
    })
}
