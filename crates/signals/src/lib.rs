//! Implicit signals the server derives, and the satisfaction estimate it keeps per trace.
//!
//! [`SignalEngine::run`] is one pass of the background job (`server::jobs`, run once per
//! period across replicas):
//! 1. **pairs**: it follows the stored vectors of the configured model (in write order, from a
//!    stored position) and judges each newly embedded trace against its session neighbours,
//!    before and after (so the pair is judged whichever of the two was embedded last) with the
//!    rephrase, regenerate and frustration rules of `feedloop_core::signals::rules`;
//! 2. **abandonment**: per project, it checks the answers that started between its stored
//!    position and `now − timeout`;
//! 3. **satisfaction**: it folds feedback written since its stored position into the estimates
//!    of the traces concerned.
//!
//! Derived signals are feedback with deterministic ids stored through the ordinary ingest, so
//! a pass that runs twice (two replicas, a retry, an overlap) stores nothing twice.
//! [`SignalEngine::recompute`] deletes a project's signals of some rules and derives them again
//! over the whole history, after thresholds changed.

mod derive;
mod fold;

pub use fold::{SATISFACTION_POSITION, current_estimate};

use feedloop_core::signals::DerivedRule;
use feedloop_core::{ProjectId, Timestamp};
use feedloop_store::{Store, StoreError};
use std::sync::Arc;

/// Vectors read per step of the pair pass.
const VECTOR_BATCH: u32 = 2_000;
/// Most steps of each pass in one run, so a run stays bounded after a long pause; the next
/// run continues where this one stopped.
const MAX_STEPS_PER_RUN: usize = 200;

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SignalReport {
    /// Traces judged against their session neighbours.
    pub num_traces_checked: u64,
    /// Answers checked for abandonment.
    pub num_answers_checked: u64,
    /// Derived signals stored (new ones; re-derived ones already stored are not counted).
    pub num_signals_stored: u64,
    /// Derived signals deleted by a recompute.
    pub num_signals_removed: u64,
    /// Traces whose satisfaction estimate was recomputed.
    pub num_estimates_updated: u64,
}

impl SignalReport {
    fn add(&mut self, other: SignalReport) {
        self.num_traces_checked += other.num_traces_checked;
        self.num_answers_checked += other.num_answers_checked;
        self.num_signals_stored += other.num_signals_stored;
        self.num_signals_removed += other.num_signals_removed;
        self.num_estimates_updated += other.num_estimates_updated;
    }
}

/// Derives signals and keeps satisfaction estimates, over one store and one embedding model.
pub struct SignalEngine {
    store: Arc<dyn Store>,
    /// The embedding model whose vectors the rephrase rule compares.
    model: String,
}

impl SignalEngine {
    pub fn new(store: Arc<dyn Store>, model: impl Into<String>) -> Self {
        Self {
            store,
            model: model.into(),
        }
    }

    /// One pass of the job: pairs of newly embedded traces, abandonment up to `now − timeout`,
    /// and satisfaction of traces with new feedback.
    pub async fn run(&self, now: Timestamp) -> Result<SignalReport, StoreError> {
        let mut report = self.follow_vectors(now).await?;
        for project in self.store.list_projects().await? {
            report.add(self.scan_abandonment(project.id, now).await?);
        }
        report.add(self.fold_satisfaction(now).await?);
        Ok(report)
    }

    /// Deletes the project's derived signals of `rules` and derives them again over the whole
    /// history with the current settings; then brings satisfaction up to date.
    pub async fn recompute(
        &self,
        project: ProjectId,
        rules: &[DerivedRule],
        now: Timestamp,
    ) -> Result<SignalReport, StoreError> {
        let mut report = SignalReport::default();
        let mut touched = Vec::new();
        for rule in rules {
            let traces = self
                .store
                .delete_derived_signals(project, &rule.id_prefix())
                .await?;
            report.num_signals_removed += traces.len() as u64;
            touched.extend(traces);
        }
        let pair_rules: Vec<DerivedRule> = rules
            .iter()
            .copied()
            .filter(|rule| *rule != DerivedRule::Abandon)
            .collect();
        if !pair_rules.is_empty() {
            report.add(self.rederive_pairs(project, &pair_rules, now).await?);
        }
        if rules.contains(&DerivedRule::Abandon) {
            report.add(self.rescan_abandonment(project, now).await?);
        }
        report.num_estimates_updated += self.refresh_estimates(project, touched, now).await?;
        report.add(self.fold_satisfaction(now).await?);
        Ok(report)
    }
}
