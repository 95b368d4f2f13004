//! Analytics: feedback aggregated over time buckets and a dimension, comparisons of two trace
//! sets' negative rates, and the alerts the detectors raised.

use axum::Json;
use axum::extract::{RawQuery, State};
use feedloop_core::auth::Permission;
use feedloop_core::filter::{Filter, check_metadata_key};
use feedloop_core::stats::Bucket;
use feedloop_core::trace::Environment;
use feedloop_store::analytics::{Dimension, FeedbackQuery};

use crate::AppState;
use crate::analytics::detect::compare;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ProjectKey, ValidatedJson};
use crate::query::{ListParams, bad, parse_list_pairs, parse_pairs};
use crate::wire::analytics::{
    AlertList, BucketCounts, CompareAnswer, CompareBody, CompareSideBody, FeedbackAnalytics,
};

/// The most buckets one aggregation may span (a year of days, or a month of hours).
const MAX_BUCKETS: i64 = 2_000;

const DEFAULT_MIN_TRACES: u64 = 30;

/// The aggregation parameters (the list filters apply too, except paging).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AnalyticsParams {
    /// hour, day (default) or week (UTC; weeks start on Monday).
    bucket: Option<String>,
    /// model, model_version, prompt_name, prompt_version, environment, user_role, tag or
    /// metadata.<key> (of the trace).
    group_by: Option<String>,
    /// true: count every bucket from the records, ignoring the stored results of closed
    /// buckets (they are kept true by the store; this is for checking that).
    fresh: Option<bool>,
}

/// Parses `from`, `to` (both required), `bucket`, `group_by` and the list filters.
fn parse_query(raw: Option<&str>) -> Result<FeedbackQuery, ApiError> {
    let mut bucket = Bucket::Day;
    let mut group_by = None;
    let mut fresh = false;
    let mut rest = Vec::new();
    for (key, value) in parse_pairs(raw)? {
        match key.as_str() {
            "bucket" => {
                bucket = Bucket::parse(&value).ok_or_else(|| {
                    bad("bucket", format!("{value:?} is not one of hour, day, week"))
                })?
            }
            "group_by" => {
                let dimension = Dimension::parse(&value).ok_or_else(|| {
                    bad(
                        "group_by",
                        format!("{value:?} is not one of model, model_version, prompt_name, prompt_version, environment, user_role, tag, metadata.<key>"),
                    )
                })?;
                if let Dimension::Metadata(key) = &dimension {
                    check_metadata_key("group_by", key).map_err(|e| bad("group_by", e.message))?;
                }
                group_by = Some(dimension);
            }
            "fresh" => {
                fresh = value
                    .parse()
                    .map_err(|_| bad("fresh", format!("{value:?} is not true or false")))?
            }
            "limit" | "cursor" | "order" | "with_spans" => {
                return Err(bad(&key, "aggregations are not paged"));
            }
            _ => rest.push((key, value)),
        }
    }
    let filter = parse_list_pairs(rest)?.filter;
    let from = filter.from.ok_or_else(|| bad("from", "is required"))?;
    let to = filter.to.ok_or_else(|| bad("to", "is required"))?;
    if to <= from {
        return Err(bad("to", "must be after from"));
    }
    let span = to.as_microsecond() - from.as_microsecond();
    if span / bucket.width_micros() > MAX_BUCKETS {
        return Err(bad(
            "bucket",
            format!("the range spans more than {MAX_BUCKETS} buckets; use a wider bucket"),
        ));
    }
    Ok(FeedbackQuery {
        from,
        to,
        bucket,
        group_by,
        filter,
        fresh,
    })
}

/// Current feedback in `from..to` counted per bucket and group: items per kind, category and
/// signal type, negative items and traces, ratings by sign, mean satisfaction; every share with
/// its 95 % Wilson interval.
#[utoipa::path(
    get, path = "/api/v1/analytics/feedback", tag = "analytics",
    params(AnalyticsParams, ListParams),
    responses(
        (status = 200, body = FeedbackAnalytics),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn feedback(
    State(state): State<AppState>,
    key: ProjectKey,
    RawQuery(raw): RawQuery,
) -> Result<Json<FeedbackAnalytics>, ApiError> {
    let project = key.require(Permission::Read)?;
    let query = parse_query(raw.as_deref())?;
    let counts = state.store.aggregate_feedback(project, &query).await?;
    Ok(Json(FeedbackAnalytics {
        from: query.from,
        to: query.to,
        bucket: query.bucket,
        group_by: query.group_by.as_ref().map(Dimension::name),
        buckets: counts.into_iter().map(BucketCounts::from_counts).collect(),
    }))
}

fn side_filter(side: &CompareSideBody, field: &str) -> Result<Filter, ApiError> {
    let environment = side
        .environment
        .as_deref()
        .map(|value| {
            Environment::parse(value).ok_or_else(|| {
                bad(
                    &format!("{field}.environment"),
                    "must be one of dev, test, staging, prod",
                )
            })
        })
        .transpose()?;
    if let (Some(from), Some(to)) = (side.from, side.to)
        && to <= from
    {
        return Err(bad(&format!("{field}.to"), "must be after from"));
    }
    Ok(Filter {
        from: side.from,
        to: side.to,
        model: side.model.clone(),
        model_version: side.model_version.clone(),
        prompt_name: side.prompt_name.clone(),
        prompt_version: side.prompt_version.clone(),
        environment,
        tag: side.tag.clone(),
        ..Filter::default()
    })
}

/// Compares the negative rate (share of traces with current negative feedback) of two trace
/// sets, `b` against `a`: each rate with its Wilson interval, the difference, a two-proportion
/// z-test and a verdict (`worse`, `better`, `no_significant_difference`, `insufficient_data`).
#[utoipa::path(
    post, path = "/api/v1/analytics/compare", tag = "analytics",
    request_body = CompareBody,
    responses(
        (status = 200, body = CompareAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn compare_sets(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<CompareBody>,
) -> Result<Json<CompareAnswer>, ApiError> {
    let project = key.require(Permission::Read)?;
    let alpha = body
        .alpha
        .unwrap_or(state.analytics.config.regression_alpha);
    if !(alpha > 0.0 && alpha <= 0.5) {
        return Err(ApiError::invalid(feedloop_core::ValidationError::new(
            "alpha",
            "must be in (0, 0.5]",
        )));
    }
    let a = state
        .store
        .negative_counts(project, &side_filter(&body.a, "a")?)
        .await?;
    let b = state
        .store
        .negative_counts(project, &side_filter(&body.b, "b")?)
        .await?;
    Ok(Json(CompareAnswer {
        a_label: body.a.label.clone().unwrap_or_else(|| "a".into()),
        b_label: body.b.label.clone().unwrap_or_else(|| "b".into()),
        comparison: compare(a, b, alpha, body.min_traces.unwrap_or(DEFAULT_MIN_TRACES)),
    }))
}

/// Alerts raised by the regression and negative-spike detectors, newest first (`limit`,
/// default 100).
#[utoipa::path(
    get, path = "/api/v1/analytics/alerts", tag = "analytics",
    params(("limit" = Option<u32>, Query, description = "1..=1000, default 100")),
    responses((status = 200, body = AlertList), (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn alerts(
    State(state): State<AppState>,
    key: ProjectKey,
    RawQuery(raw): RawQuery,
) -> Result<Json<AlertList>, ApiError> {
    let project = key.require(Permission::Read)?;
    let limit = parse_limit(raw.as_deref())?;
    let alerts = state.store.list_alerts(project, limit).await?;
    Ok(Json(AlertList {
        alerts: alerts.into_iter().map(Into::into).collect(),
    }))
}

/// `limit` (1..=1000, default 100) and nothing else.
pub(super) fn parse_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    let mut limit = 100;
    for (key, value) in parse_pairs(raw)? {
        match key.as_str() {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=1_000).contains(n))
                    .ok_or_else(|| bad("limit", "must be an integer in 1..=1000"))?
            }
            _ => return Err(bad(&key, "unknown parameter")),
        }
    }
    Ok(limit)
}
