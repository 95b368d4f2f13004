//! Satisfaction estimates: the feedback written since the stored position is folded into the
//! estimates of the traces it is about (each recomputed from all of its current feedback, so
//! the fold is idempotent and order does not matter).
//!
//! On PostgreSQL feedback sequence numbers are not strictly commit order: a row that commits
//! after a later-numbered one was read is not folded until its trace gets more feedback (the
//! trace view always computes its estimate fresh).

use feedloop_core::signals::{SignalSettings, estimate};
use feedloop_core::{ProjectId, Timestamp, TraceId};
use feedloop_store::StoreError;
use std::collections::{BTreeMap, BTreeSet};

use crate::{SignalEngine, SignalReport};

/// The position of the fold, shared by every project.
pub const SATISFACTION_POSITION: &str = "satisfaction";
/// Feedback rows read per step.
const FEEDBACK_BATCH: u32 = 5_000;
/// Steps per run at most: 20,000 feedback rows every 10 s, so the fold keeps up with 2,000
/// feedback items/s. Each step reads its traces' feedback and rewrites their estimates through
/// the same writer as ingest; folding all of a burst at once (up to a million rows per run)
/// took batched feedback ingest on SQLite from ~50k to ~33k items/s. Beyond this rate the fold
/// lags and catches up when ingest eases; the trace view computes its estimate fresh.
const FOLD_STEPS_PER_RUN: usize = 4;

impl SignalEngine {
    /// Folds feedback written since the stored position into the estimates.
    pub(crate) async fn fold_satisfaction(
        &self,
        now: Timestamp,
    ) -> Result<SignalReport, StoreError> {
        let mut after = self.store.signal_progress(SATISFACTION_POSITION).await?;
        let mut report = SignalReport::default();
        for _ in 0..FOLD_STEPS_PER_RUN {
            let changes = self
                .store
                .feedback_changes_since(after, FEEDBACK_BATCH)
                .await?;
            let Some(last) = changes.last().map(|change| change.seq) else {
                break;
            };
            let mut by_project: BTreeMap<ProjectId, BTreeSet<TraceId>> = BTreeMap::new();
            for change in changes {
                by_project
                    .entry(change.project)
                    .or_default()
                    .insert(change.trace_id);
            }
            for (project, traces) in by_project {
                report.num_estimates_updated += self
                    .refresh_estimates(project, traces.into_iter().collect(), now)
                    .await?;
            }
            self.store
                .advance_signal_progress(SATISFACTION_POSITION, last)
                .await?;
            after = last;
        }
        Ok(report)
    }

    /// Recomputes and stores the estimates of these traces; returns how many.
    pub(crate) async fn refresh_estimates(
        &self,
        project: ProjectId,
        traces: Vec<TraceId>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if traces.is_empty() {
            return Ok(0);
        }
        let settings = self.store.signal_settings(project).await?;
        let feedback: BTreeMap<TraceId, Vec<_>> = self
            .store
            .feedback_on(project, &traces)
            .await?
            .into_iter()
            .collect();
        let estimates: Vec<_> = traces
            .into_iter()
            .map(|trace| {
                let found = feedback
                    .get(&trace)
                    .and_then(|items| current_estimate(items, &settings));
                (trace, found)
            })
            .collect();
        self.store
            .put_satisfaction(project, &estimates, now)
            .await?;
        Ok(estimates.len() as u64)
    }

    /// Makes the next run recompute every estimate (after signal settings changed).
    pub async fn reset_estimates(&self) -> Result<(), StoreError> {
        self.store
            .reset_signal_progress(SATISFACTION_POSITION, 0)
            .await
    }
}

/// The estimate from a trace's stored feedback, superseded items left out.
pub fn current_estimate(
    feedback: &[feedloop_store::StoredFeedback],
    settings: &SignalSettings,
) -> Option<feedloop_core::signals::Satisfaction> {
    estimate(
        feedback
            .iter()
            .filter(|item| item.superseded_by.is_none())
            .map(|item| &item.feedback),
        settings,
    )
}
