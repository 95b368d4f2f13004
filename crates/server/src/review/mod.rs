//! Review queue operations, apart from HTTP: queue definitions checked against the list query
//! syntax, manual enqueue with triage priorities, reviewer actions ([`actions`]) and the
//! `review_rules` job that enqueues what the rules match ([`rules`]).

pub mod actions;
pub mod rules;

use feedloop_core::filter::Filter;
use feedloop_core::review::{Queue, Rule};
use feedloop_core::{ProjectId, Timestamp, TraceId, ValidationError};
use feedloop_store::review::Enqueued;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::query::parse_list_pairs;

/// List parameters that page or shape a list rather than filter it: not allowed in rules.
const NOT_FILTERS: [&str; 4] = ["limit", "cursor", "order", "with_spans"];

/// A rule's filter, parsed like list query parameters; errors name
/// `rules[i].filter.<parameter>`.
pub fn rule_filter(rule: &Rule, index: usize) -> Result<Filter, ApiError> {
    let field = |key: &str| format!("rules[{index}].filter.{key}");
    if let Some(key) = rule
        .filter
        .keys()
        .find(|k| NOT_FILTERS.contains(&k.as_str()))
    {
        return Err(invalid(&field(key), "pages a list and is not a filter"));
    }
    let pairs = rule
        .filter
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match parse_list_pairs(pairs) {
        Ok(query) => Ok(query.filter),
        Err(error) => {
            let key = error.field.clone().unwrap_or_default();
            // The parser's message starts with the parameter's name; keep only the reason.
            let reason = error
                .message
                .strip_prefix(&format!("{key}: "))
                .unwrap_or(&error.message)
                .to_owned();
            Err(invalid(&field(&key), &reason))
        }
    }
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidValue, format!("{field}: {message}")).with_field(field)
}

/// Checks a queue: its own rules and that every rule's filter parses.
pub fn check_queue(queue: &Queue) -> Result<(), ApiError> {
    queue.check()?;
    for (index, rule) in queue.rules.iter().enumerate() {
        rule_filter(rule, index)?;
    }
    Ok(())
}

/// A reviewer's or author's name: not blank, at most 256 bytes.
pub fn check_person(field: &str, name: &str) -> Result<(), ValidationError> {
    if name.trim().is_empty() || name.len() > 256 {
        return Err(ValidationError::new(
            field,
            "must be 1 to 256 bytes, not blank",
        ));
    }
    Ok(())
}

/// The queue, or 404.
pub async fn find_queue(
    state: &AppState,
    project: ProjectId,
    name: &str,
) -> Result<Queue, ApiError> {
    state
        .store
        .queue(project, name)
        .await?
        .ok_or_else(|| queue_not_found(name))
}

pub fn queue_not_found(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::QueueNotFound,
        format!("queue {name:?} not found"),
    )
}

/// Puts traces in a queue by hand, each with its triage priority computed now; traces in the
/// queue already are left as they are.
pub async fn enqueue_by_hand(
    state: &AppState,
    project: ProjectId,
    queue: &Queue,
    trace_ids: Vec<TraceId>,
    author: &str,
    now: Timestamp,
) -> Result<Vec<Enqueued>, ApiError> {
    let facts = rules::priority_facts(state, project, &trace_ids).await?;
    let traces: Vec<(TraceId, f64)> = trace_ids
        .into_iter()
        .map(|id| {
            let priority = facts
                .get(&id)
                .map_or(0.0, |facts| facts.priority(queue, now));
            (id, priority)
        })
        .collect();
    let outcomes = state
        .store
        .enqueue(project, &queue.name, &traces, author, now)
        .await?;
    for (outcome, (trace_id, _)) in outcomes.iter().zip(&traces) {
        if let Enqueued::Created(item) = outcome {
            rules::announce_item(state, project, &queue.name, *item, trace_id, now).await;
        }
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn rule(pairs: &[(&str, &str)]) -> Rule {
        Rule {
            filter: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            sampling_rate: 1.0,
        }
    }

    #[test]
    fn rules_are_written_like_list_parameters() {
        let filter = rule_filter(
            &rule(&[
                ("negative_feedback", "true"),
                ("category", "factually_incorrect"),
                ("environment", "prod"),
            ]),
            0,
        )
        .unwrap();
        assert!(filter.negative_feedback);
        assert_eq!(filter.category.as_deref(), Some("factually_incorrect"));
        let filter = rule_filter(&rule(&[("satisfaction_below", "0.3")]), 0).unwrap();
        assert_eq!(filter.satisfaction_below, Some(0.3));
    }

    #[test]
    fn bad_rules_name_the_parameter() {
        let error = rule_filter(&rule(&[("environment", "moon")]), 2).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("rules[2].filter.environment"));
        assert_eq!(error.code, ErrorCode::InvalidValue);
        let error = rule_filter(&rule(&[("limit", "5")]), 0).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("rules[0].filter.limit"));
        let error = rule_filter(&rule(&[("colour", "red")]), 0).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("rules[0].filter.colour"));
    }
}
