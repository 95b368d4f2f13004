//! The `review_rules` job and triage priorities. Each run follows the traces and the feedback
//! written since its stored positions (like the satisfaction fold in `feedloop_signals`), asks
//! the store which of the touched traces match each queue's rules, enqueues the sampled ones
//! (the store makes a second enqueue a no-op), and recomputes the priority of every open item
//! of a touched trace, so priorities follow new feedback.
//!
//! On PostgreSQL sequence numbers are not strictly commit order: a trace or feedback row that
//! commits after a later-numbered one was read is evaluated when its trace is touched again.

use feedloop_core::review::priority::{PriorityInputs, age, priority, severity};
use feedloop_core::review::{Queue, sampled};
use feedloop_core::{ProjectId, Timestamp, TraceId};
use feedloop_memory::{MemoryError, Query, SearchRequest};
use feedloop_store::StoreError;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::AppState;

/// The job's position in the traces (by sequence number).
pub const TRACES_POSITION: &str = "review_rules:traces";
/// The job's position in the feedback (by sequence number).
pub const FEEDBACK_POSITION: &str = "review_rules:feedback";
/// The author of items the rules enqueue, in their history.
pub const RULES_AUTHOR: &str = "feedloop:review_rules";
/// Rows of each kind read per run: a run stays short; a backlog is worked off run by run.
const CHANGES_PER_RUN: u32 = 5_000;
/// Traces asked about in one store query.
const TRACES_PER_QUERY: usize = 1_000;
/// The most neighbours one neighbourhood search looks at: bounds its cost.
const NEIGHBOURHOOD_K: usize = 50;
/// Neighbours at least this similar count (the lesson engine's repeat-mistake threshold).
const NEIGHBOURHOOD_SIMILARITY: f32 = 0.75;

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RulesReport {
    pub num_traces_checked: usize,
    pub num_enqueued: usize,
    pub num_priorities_updated: usize,
}

/// One run of the job over what was written since the stored positions.
pub async fn run(state: &AppState, now: Timestamp) -> Result<RulesReport, StoreError> {
    let store = &state.store;
    let trace_changes = store
        .trace_changes_since(
            store.review_progress(TRACES_POSITION).await?,
            CHANGES_PER_RUN,
        )
        .await?;
    let feedback_changes = store
        .feedback_changes_since(
            store.review_progress(FEEDBACK_POSITION).await?,
            CHANGES_PER_RUN,
        )
        .await?;
    let mut touched: BTreeMap<ProjectId, BTreeSet<TraceId>> = BTreeMap::new();
    for change in &trace_changes {
        touched
            .entry(change.project)
            .or_default()
            .insert(change.trace_id.clone());
    }
    for change in &feedback_changes {
        touched
            .entry(change.project)
            .or_default()
            .insert(change.trace_id.clone());
    }
    let mut report = RulesReport::default();
    for (project, traces) in touched {
        let traces: Vec<TraceId> = traces.into_iter().collect();
        report.num_traces_checked += traces.len();
        let queues = store.list_queues(project).await?;
        if queues.is_empty() {
            continue;
        }
        for queue in &queues {
            report.num_enqueued += apply_rules(state, project, queue, &traces, now).await?;
        }
        report.num_priorities_updated +=
            refresh_priorities(state, project, &queues, &traces, now).await?;
    }
    if let Some(last) = trace_changes.last() {
        store
            .advance_review_progress(TRACES_POSITION, last.seq)
            .await?;
    }
    if let Some(last) = feedback_changes.last() {
        store
            .advance_review_progress(FEEDBACK_POSITION, last.seq)
            .await?;
    }
    Ok(report)
}

/// The most recent traces a new or changed queue's rules are checked against at once; older
/// ones go in by manual enqueue.
const BACKFILL_TRACES: usize = 10_000;

/// Checks a new or changed queue's rules against the project's most recent traces (up to
/// [`BACKFILL_TRACES`] per rule) and enqueues the sampled matches with their priorities, so
/// a queue made after the traces arrived still holds them; arrivals after this are the job's.
/// Returns how many items were created.
pub async fn backfill(
    state: &AppState,
    project: ProjectId,
    queue: &Queue,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let mut traces: BTreeSet<TraceId> = BTreeSet::new();
    for (index, rule) in queue.rules.iter().enumerate() {
        let Ok(filter) = super::rule_filter(rule, index) else {
            continue;
        };
        let mut page = feedloop_core::filter::PageRequest {
            limit: feedloop_core::filter::MAX_PAGE_LIMIT,
            ..Default::default()
        };
        let mut seen = 0;
        while seen < BACKFILL_TRACES {
            let found = state.store.list_traces(project, &filter, page).await?;
            seen += found.items.len();
            traces.extend(found.items.into_iter().map(|t| t.trace.id));
            match found.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
    }
    let traces: Vec<TraceId> = traces.into_iter().collect();
    let created = apply_rules(state, project, queue, &traces, now).await?;
    if created > 0 {
        refresh_priorities(state, project, std::slice::from_ref(queue), &traces, now).await?;
    }
    Ok(created)
}

/// Enqueues the traces that match one of the queue's rules and fall in its sample; returns how
/// many items were created.
async fn apply_rules(
    state: &AppState,
    project: ProjectId,
    queue: &Queue,
    traces: &[TraceId],
    now: Timestamp,
) -> Result<usize, StoreError> {
    let mut chosen = BTreeSet::new();
    for (index, rule) in queue.rules.iter().enumerate() {
        // Stored queues were checked when written; a rule that no longer parses (the syntax
        // changed) is skipped, not fatal to the other queues.
        let filter = match super::rule_filter(rule, index) {
            Ok(filter) => filter,
            Err(error) => {
                tracing::warn!(queue = %queue.name, index, message = %error.message, "skipping a review rule");
                continue;
            }
        };
        for chunk in traces.chunks(TRACES_PER_QUERY) {
            let matched = state.store.traces_matching(project, &filter, chunk).await?;
            chosen.extend(
                matched
                    .into_iter()
                    .filter(|id| sampled(&queue.name, id.as_str(), rule.sampling_rate)),
            );
        }
    }
    if chosen.is_empty() {
        return Ok(0);
    }
    // Priorities are computed for the open items of touched traces right after (new ones
    // included), so they are enqueued at 0 here rather than computed twice.
    let items: Vec<(TraceId, f64)> = chosen.into_iter().map(|id| (id, 0.0)).collect();
    let outcomes = state
        .store
        .enqueue(project, &queue.name, &items, RULES_AUTHOR, now)
        .await?;
    let mut created = 0;
    for (outcome, (trace_id, _)) in outcomes.iter().zip(&items) {
        if let feedloop_store::review::Enqueued::Created(item) = outcome {
            created += 1;
            announce_item(state, project, &queue.name, *item, trace_id, now).await;
        }
    }
    Ok(created)
}

/// Announces a new review item (`review_item_created`) to the project's webhooks; a failure is
/// logged, not fatal to the enqueue it follows.
pub async fn announce_item(
    state: &AppState,
    project: ProjectId,
    queue: &str,
    item: i64,
    trace_id: &TraceId,
    now: Timestamp,
) {
    let event = feedloop_core::events::Event::new(
        feedloop_core::events::EventType::ReviewItemCreated,
        serde_json::json!({"queue": queue, "item_id": item, "trace_id": trace_id}),
        now,
    );
    if let Err(error) = crate::events::emit(state.store.as_ref(), project, event).await {
        tracing::warn!(project = project.0, queue, item, %error, "cannot queue the review_item_created event");
    }
}

/// Recomputes the priority of every open item of these traces; returns how many.
async fn refresh_priorities(
    state: &AppState,
    project: ProjectId,
    queues: &[Queue],
    traces: &[TraceId],
    now: Timestamp,
) -> Result<usize, StoreError> {
    let items = state.store.open_items_of(project, traces).await?;
    if items.is_empty() {
        return Ok(0);
    }
    let with_items: Vec<TraceId> = items
        .iter()
        .map(|item| item.trace_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let facts = priority_facts(state, project, &with_items).await?;
    let queues: HashMap<&str, &Queue> = queues.iter().map(|q| (q.name.as_str(), q)).collect();
    let priorities: Vec<(i64, f64)> = items
        .iter()
        .filter_map(|item| {
            let queue = queues.get(item.queue.as_str())?;
            let facts = facts.get(&item.trace_id)?;
            Some((item.id, facts.priority(queue, now)))
        })
        .collect();
    state.store.set_priorities(project, &priorities).await?;
    Ok(priorities.len())
}

/// What a trace's priority is computed from, apart from the queue's role weights.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorityFacts {
    pub severity: f64,
    pub num_neighbours: usize,
    pub user_role: Option<String>,
    pub started_at: Timestamp,
}

impl PriorityFacts {
    /// The priority in `queue` at `now` (see `feedloop_core::review::priority`).
    pub fn priority(&self, queue: &Queue, now: Timestamp) -> f64 {
        let role_weight = self
            .user_role
            .as_ref()
            .and_then(|role| queue.role_weights.get(role))
            .copied()
            .unwrap_or(0.0);
        priority(PriorityInputs {
            severity: self.severity,
            num_neighbours: self.num_neighbours,
            role_weight,
            age: age(self.started_at, now),
        })
    }
}

/// The priority facts of each of these traces (missing traces are left out).
pub async fn priority_facts(
    state: &AppState,
    project: ProjectId,
    trace_ids: &[TraceId],
) -> Result<HashMap<TraceId, PriorityFacts>, StoreError> {
    let traces = state.store.traces_by_id(project, trace_ids).await?;
    let feedback: HashMap<TraceId, Vec<_>> = state
        .store
        .feedback_on(project, trace_ids)
        .await?
        .into_iter()
        .collect();
    // A problem cluster says how common a trace's problem is even beyond the nearest k.
    let cluster_sizes: HashMap<TraceId, u64> = state
        .store
        .cluster_sizes_of(project, state.clusters.model(), trace_ids)
        .await?
        .into_iter()
        .collect();
    let mut out = HashMap::with_capacity(traces.len());
    for stored in traces {
        let trace = stored.trace;
        let current = feedback
            .get(&trace.id)
            .into_iter()
            .flatten()
            .filter(|item| item.superseded_by.is_none())
            .map(|item| &item.feedback);
        let facts = PriorityFacts {
            severity: severity(current),
            num_neighbours: neighbourhood_size(state, project, &trace.id).await?.max(
                cluster_sizes
                    .get(&trace.id)
                    .map_or(0, |size| size.saturating_sub(1) as usize),
            ),
            user_role: trace.user_role.clone(),
            started_at: trace.started_at,
        };
        out.insert(trace.id, facts);
    }
    Ok(out)
}

/// How many traces with current negative feedback are within the similarity threshold of this
/// one (at most [`NEIGHBOURHOOD_K`]). A trace not embedded yet has no neighbourhood yet (0); it
/// gets one when new feedback on it recomputes its priority.
async fn neighbourhood_size(
    state: &AppState,
    project: ProjectId,
    trace_id: &TraceId,
) -> Result<usize, StoreError> {
    let request = SearchRequest {
        query: Query::Trace(trace_id.clone()),
        k: NEIGHBOURHOOD_K,
        filter: Default::default(),
        problems_only: true,
    };
    match state.memory.search(project, &request).await {
        Ok(hits) => Ok(hits
            .iter()
            .filter(|hit| hit.similarity >= NEIGHBOURHOOD_SIMILARITY)
            .count()),
        Err(MemoryError::Store(error)) => Err(error),
        Err(error) => {
            tracing::debug!(trace = %trace_id, %error, "no neighbourhood for a review item");
            Ok(0)
        }
    }
}
