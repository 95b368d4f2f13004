//! List query parameters: every filter of [`Filter`], a page size, a cursor and an order.
//! Unknown parameters are rejected, so a typo never silently widens a result.
//!
//! `from`, `to` (RFC 3339), `session_id`, `user_id`, `user_role`, `model`, `model_version`,
//! `prompt_name`, `prompt_version`, `environment`, `tag`, `trace_id`, `kind`, `category`,
//! `rating` (positive, negative, neutral), `source`, `negative_feedback` (true, false),
//! `satisfaction_below`, `satisfaction_above` (-1..1),
//! `meta.<key>=<value>` (repeatable),
//! `limit` (1..=1000), `cursor`, `order` (desc, asc).

use feedloop_core::feedback::{FeedbackKind, RatingSign, Source};
use feedloop_core::filter::{
    Cursor, Filter, MAX_PAGE_LIMIT, Order, PageRequest, check_metadata_key,
};
use feedloop_core::trace::Environment;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ErrorCode};

/// The documented form of the list parameters (parsing is done by [`parse_list_query`], which
/// also takes `meta.<key>` parameters).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// Items at or after this time (RFC 3339).
    from: Option<String>,
    /// Items before this time (RFC 3339).
    to: Option<String>,
    session_id: Option<String>,
    user_id: Option<String>,
    user_role: Option<String>,
    model: Option<String>,
    model_version: Option<String>,
    prompt_name: Option<String>,
    prompt_version: Option<String>,
    /// dev, test, staging or prod.
    environment: Option<String>,
    tag: Option<String>,
    trace_id: Option<String>,
    /// Feedback kind: rating, category, comment, correction, annotation, signal.
    kind: Option<String>,
    /// A taxonomy category.
    category: Option<String>,
    /// Rating sign: positive, negative or neutral.
    rating: Option<String>,
    /// end_user, reviewer, expert or automatic.
    source: Option<String>,
    /// Page size, 1..=1000 (default 50).
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// desc (newest first, default) or asc.
    order: Option<String>,
    /// Has current negative feedback, explicit (a negative rating, a category, a correction,
    /// an annotation) or implicit (regenerate, abandon, rephrase): true or false.
    negative_feedback: Option<bool>,
    /// The trace's satisfaction estimate (-1..1, from explicit and implicit feedback with the
    /// project's signal weights) is below this; traces without an estimate do not match.
    satisfaction_below: Option<f64>,
    /// The trace's satisfaction estimate is above this.
    satisfaction_above: Option<f64>,
    /// Traces only: include each trace's spans.
    with_spans: Option<bool>,
}

fn parse_score(key: &str, value: &str) -> Result<f64, ApiError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|score| (-1.0..=1.0).contains(score))
        .ok_or_else(|| bad(key, "must be a number within -1..=1"))
}

pub fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidQuery,
        format!("{field}: {}", message.into()),
    )
    .with_field(field)
}

fn parse_enum<T>(
    field: &str,
    value: &str,
    parse: impl Fn(&str) -> Option<T>,
    allowed: &str,
) -> Result<T, ApiError> {
    parse(value).ok_or_else(|| bad(field, format!("{value:?} is not one of {allowed}")))
}

/// A parsed list query.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub filter: Filter,
    pub page: PageRequest,
    /// Load each trace's spans too (trace lists only).
    pub with_spans: bool,
}

/// Parses a raw query string into a filter, a page request and options.
pub fn parse_list_query(raw: Option<&str>) -> Result<ListQuery, ApiError> {
    parse_list_pairs(parse_pairs(raw)?)
}

/// A raw query string as (key, value) pairs.
pub fn parse_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("malformed query string: {e}"),
        )
    })
}

/// `true` or `false`.
pub fn parse_bool(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(key, "must be true or false")),
    }
}

/// Parses list parameters given as pairs; see the module's documentation.
pub fn parse_list_pairs(pairs: Vec<(String, String)>) -> Result<ListQuery, ApiError> {
    let mut filter = Filter::default();
    let mut page = PageRequest::default();
    let mut with_spans = false;
    for (key, value) in pairs {
        let key = key.as_str();
        let text = || Some(value.clone());
        match key {
            "from" | "to" => {
                let time = value
                    .parse()
                    .map_err(|e| bad(key, format!("not an RFC 3339 time: {e}")))?;
                if key == "from" {
                    filter.from = Some(time)
                } else {
                    filter.to = Some(time)
                }
            }
            "session_id" => filter.session_id = text(),
            "user_id" => filter.user_id = text(),
            "user_role" => filter.user_role = text(),
            "model" => filter.model = text(),
            "model_version" => filter.model_version = text(),
            "prompt_name" => filter.prompt_name = text(),
            "prompt_version" => filter.prompt_version = text(),
            "tag" => filter.tag = text(),
            "trace_id" => filter.trace_id = text(),
            "category" => filter.category = text(),
            "environment" => {
                filter.environment = Some(parse_enum(
                    key,
                    &value,
                    Environment::parse,
                    "dev, test, staging, prod",
                )?)
            }
            "kind" => {
                filter.feedback_kind = Some(parse_enum(
                    key,
                    &value,
                    FeedbackKind::parse,
                    "rating, category, comment, correction, annotation, signal",
                )?)
            }
            "rating" => {
                filter.rating = Some(parse_enum(
                    key,
                    &value,
                    RatingSign::parse,
                    "positive, negative, neutral",
                )?)
            }
            "source" => {
                filter.source = Some(parse_enum(
                    key,
                    &value,
                    Source::parse,
                    "end_user, reviewer, expert, automatic",
                )?)
            }
            "limit" => {
                page.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad(key, format!("must be an integer in 1..={MAX_PAGE_LIMIT}"))
                    })?
            }
            "with_spans" => with_spans = parse_bool(key, &value)?,
            "negative_feedback" => filter.negative_feedback = parse_bool(key, &value)?,
            "satisfaction_below" => filter.satisfaction_below = Some(parse_score(key, &value)?),
            "satisfaction_above" => filter.satisfaction_above = Some(parse_score(key, &value)?),
            "cursor" => {
                page.after = Some(Cursor::decode(key, &value).map_err(|e| bad(key, e.message))?)
            }
            "order" => {
                page.order = match value.as_str() {
                    "desc" => Order::Desc,
                    "asc" => Order::Asc,
                    _ => return Err(bad(key, "must be desc or asc")),
                }
            }
            _ => match key.strip_prefix("meta.") {
                Some(meta_key) => {
                    check_metadata_key(key, meta_key).map_err(|e| bad(key, e.message))?;
                    filter.metadata.push((meta_key.to_owned(), value));
                }
                None => return Err(bad(key, "unknown query parameter")),
            },
        }
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(bad("to", "must not be before from"));
    }
    Ok(ListQuery {
        filter,
        page,
        with_spans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_parses() {
        let ListQuery { filter, page, .. } = parse_list_query(Some(
            "from=2026-01-01T00:00:00Z&session_id=s&kind=rating&rating=negative&source=expert\
             &environment=prod&meta.app.version=2&limit=10&order=asc&tag=beta",
        ))
        .unwrap();
        assert_eq!(filter.session_id.as_deref(), Some("s"));
        assert_eq!(filter.rating, Some(RatingSign::Negative));
        assert_eq!(
            filter.metadata,
            vec![("app.version".to_owned(), "2".to_owned())]
        );
        assert_eq!(page.limit, 10);
        assert_eq!(page.order, Order::Asc);
    }

    #[test]
    fn bad_parameters_are_named() {
        assert_eq!(
            parse_list_query(Some("limt=5"))
                .unwrap_err()
                .field
                .as_deref(),
            Some("limt")
        );
        assert_eq!(
            parse_list_query(Some("limit=0"))
                .unwrap_err()
                .field
                .as_deref(),
            Some("limit")
        );
        assert_eq!(
            parse_list_query(Some("rating=bad"))
                .unwrap_err()
                .field
                .as_deref(),
            Some("rating")
        );
        assert_eq!(
            parse_list_query(Some("from=yesterday"))
                .unwrap_err()
                .field
                .as_deref(),
            Some("from")
        );
        assert_eq!(
            parse_list_query(Some("cursor=zzz"))
                .unwrap_err()
                .field
                .as_deref(),
            Some("cursor")
        );
    }
}
