//! Items in bulk from a feedback filter: every trace the filter matches becomes the items its
//! chain makes ([`feedloop_core::dataset::items_from_chain`]), added page by page. Items of a
//! trace already in the dataset are duplicates, so running the same filter again adds nothing.

use feedloop_core::ProjectId;
use feedloop_core::TraceId;
use feedloop_core::dataset::{Adder, DatasetItem, items_from_chain};
use feedloop_core::feedback::{Feedback, FeedbackValue};
use feedloop_core::filter::{Filter, Order, PageRequest};
use feedloop_core::trace::Trace;
use feedloop_store::{Outcome, Store};
use std::collections::HashMap;

use crate::DatasetError;

/// Traces read per page.
const PAGE: u32 = 500;

/// What a bulk add did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct FromFeedbackReport {
    /// Traces the filter matched (up to the limit).
    pub matched_traces: u64,
    /// Items their chains made.
    pub items: u64,
    /// Items added.
    pub created: u64,
    /// Items the dataset already had (by trace, or by id).
    pub duplicates: u64,
}

/// Adds the items of every trace that matches `filter` (oldest first, at most `max_traces`).
pub async fn add_from_feedback(
    store: &dyn Store,
    project: ProjectId,
    dataset: &str,
    filter: &Filter,
    adder: &Adder,
    max_traces: u64,
) -> Result<FromFeedbackReport, DatasetError> {
    if store.dataset(project, dataset).await?.is_none() {
        return Err(DatasetError::DatasetNotFound(dataset.to_owned()));
    }
    let mut report = FromFeedbackReport::default();
    let mut page = PageRequest {
        limit: PAGE,
        after: None,
        order: Order::Asc,
    };
    while report.matched_traces < max_traces {
        let remaining = max_traces - report.matched_traces;
        page.limit = PAGE.min(u32::try_from(remaining).unwrap_or(PAGE));
        let traces = store.list_traces(project, filter, page).await?;
        report.matched_traces += traces.items.len() as u64;
        let chains: Vec<Trace> = traces
            .items
            .into_iter()
            .map(|stored| stored.trace)
            .collect();
        let items = items_of(store, project, &chains, adder).await?;
        report.items += items.len() as u64;
        if !items.is_empty() {
            for outcome in store.add_dataset_items(project, dataset, &items).await? {
                match outcome {
                    Outcome::Created => report.created += 1,
                    Outcome::Duplicate | Outcome::Merged => report.duplicates += 1,
                }
            }
        }
        match traces.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    Ok(report)
}

/// The items of a page of traces, from their current feedback and the traces their pairwise
/// votes compare them with.
async fn items_of(
    store: &dyn Store,
    project: ProjectId,
    traces: &[Trace],
    adder: &Adder,
) -> Result<Vec<DatasetItem>, DatasetError> {
    let ids: Vec<TraceId> = traces.iter().map(|t| t.id.clone()).collect();
    let mut feedback: HashMap<TraceId, Vec<Feedback>> = HashMap::new();
    for (trace_id, stored) in store.feedback_on(project, &ids).await? {
        let current = stored
            .into_iter()
            .filter(|f| f.superseded_by.is_none())
            .map(|f| f.feedback)
            .collect();
        feedback.insert(trace_id, current);
    }
    let compared = compared_traces(store, project, feedback.values().flatten()).await?;
    let mut items = Vec::new();
    for trace in traces {
        let chain = feedback.get(&trace.id).map_or(&[][..], Vec::as_slice);
        items.extend(items_from_chain(trace, chain, |id| compared.get(id), adder));
    }
    Ok(items)
}

/// The traces that pairwise votes among `feedback` compare with.
async fn compared_traces(
    store: &dyn Store,
    project: ProjectId,
    feedback: impl Iterator<Item = &Feedback>,
) -> Result<HashMap<TraceId, Trace>, DatasetError> {
    let mut wanted: Vec<TraceId> = feedback
        .filter_map(|f| match &f.value {
            FeedbackValue::Rating(rating) => rating.compared_to.clone(),
            _ => None,
        })
        .collect();
    wanted.sort();
    wanted.dedup();
    let mut found = HashMap::with_capacity(wanted.len());
    for id in wanted {
        if let Some(chain) = store.trace_chain(project, &id).await? {
            found.insert(id, chain.trace.trace);
        }
    }
    Ok(found)
}
