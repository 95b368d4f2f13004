//! The derivation passes: pairs of consecutive queries (from the stored vectors) and
//! abandonment (from the session timeline), turned into stored feedback.

use feedloop_core::feedback::Feedback;
use feedloop_core::signals::SignalSettings;
use feedloop_core::signals::rules::{
    DerivedRule, Turn, derived_feedback, judge_abandon, judge_pair,
};
use feedloop_core::trace::Trace;
use feedloop_core::{ProjectId, Timestamp};
use feedloop_store::{IngestBatch, Outcome, StoreError};
use jiff::SignedDuration;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::{MAX_STEPS_PER_RUN, SignalEngine, SignalReport, VECTOR_BATCH};

/// Answers read per step of the abandonment pass.
const ANSWER_BATCH: u32 = 5_000;
/// Derived signals stored per ingest call.
const STORE_BATCH: usize = 1_000;
/// How far back the first abandonment pass of a project looks.
const FIRST_ABANDON_LOOKBACK: SignedDuration = SignedDuration::from_hours(24);

impl SignalEngine {
    fn vectors_position(&self) -> String {
        format!("vectors:{}", self.model)
    }

    /// Judges the traces embedded since the stored position.
    pub(crate) async fn follow_vectors(&self, now: Timestamp) -> Result<SignalReport, StoreError> {
        let name = self.vectors_position();
        let mut after = self.store.signal_progress(&name).await?;
        let mut report = SignalReport::default();
        let mut settings = HashMap::new();
        for _ in 0..MAX_STEPS_PER_RUN {
            let batch = self
                .store
                .embeddings_since(&self.model, after, VECTOR_BATCH)
                .await?;
            let Some(last) = batch.last().map(|embedding| embedding.seq) else {
                break;
            };
            let mut by_project: BTreeMap<ProjectId, Vec<i64>> = BTreeMap::new();
            for embedding in &batch {
                by_project
                    .entry(embedding.project)
                    .or_default()
                    .push(embedding.trace_seq);
            }
            for (project, seqs) in by_project {
                let project_settings = match settings.get(&project) {
                    Some(found) => found,
                    None => settings
                        .entry(project)
                        .or_insert(self.store.signal_settings(project).await?),
                };
                report.add(
                    self.judge_pairs(project, &seqs, project_settings, None, now)
                        .await?,
                );
            }
            self.store.advance_signal_progress(&name, last).await?;
            after = last;
        }
        Ok(report)
    }

    /// Derives `rules` again for every embedded trace of the project.
    pub(crate) async fn rederive_pairs(
        &self,
        project: ProjectId,
        rules: &[DerivedRule],
        now: Timestamp,
    ) -> Result<SignalReport, StoreError> {
        let settings = self.store.signal_settings(project).await?;
        let mut report = SignalReport::default();
        let mut after = 0;
        loop {
            let batch = self
                .store
                .embeddings_since(&self.model, after, VECTOR_BATCH)
                .await?;
            let Some(last) = batch.last().map(|embedding| embedding.seq) else {
                break;
            };
            let seqs: Vec<i64> = batch
                .iter()
                .filter(|embedding| embedding.project == project)
                .map(|embedding| embedding.trace_seq)
                .collect();
            if !seqs.is_empty() {
                report.add(
                    self.judge_pairs(project, &seqs, &settings, Some(rules), now)
                        .await?,
                );
            }
            after = last;
        }
        Ok(report)
    }

    /// Judges each of these traces against its session neighbours, keeping the findings of
    /// `only` (all rules when `None`).
    async fn judge_pairs(
        &self,
        project: ProjectId,
        seqs: &[i64],
        settings: &SignalSettings,
        only: Option<&[DerivedRule]>,
        now: Timestamp,
    ) -> Result<SignalReport, StoreError> {
        let neighbours = self.store.session_neighbours(project, seqs).await?;
        let mut pairs = BTreeSet::new();
        for found in &neighbours {
            if let Some(previous) = found.previous {
                pairs.insert((previous, found.seq));
            }
            if let Some(next) = found.next {
                pairs.insert((found.seq, next));
            }
        }
        let mut report = SignalReport {
            num_traces_checked: seqs.len() as u64,
            ..SignalReport::default()
        };
        if pairs.is_empty() {
            return Ok(report);
        }
        let involved: Vec<i64> = pairs
            .iter()
            .flat_map(|(a, b)| [*a, *b])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let traces: HashMap<i64, Trace> = self
            .store
            .traces_by_seq(project, &involved)
            .await?
            .into_iter()
            .map(|stored| (stored.seq, stored.trace))
            .collect();
        let vectors: HashMap<i64, Vec<f32>> = if settings.rules.rephrase_enabled {
            self.store
                .trace_vectors(&self.model, project, &involved)
                .await?
                .into_iter()
                .collect()
        } else {
            HashMap::new()
        };
        let mut derived = Vec::new();
        for (a, b) in pairs {
            let (Some(previous), Some(next)) = (traces.get(&a), traces.get(&b)) else {
                continue;
            };
            let (Some(previous_input), Some(next_input)) = (&previous.input, &next.input) else {
                continue;
            };
            let similarity = match (vectors.get(&a), vectors.get(&b)) {
                (Some(x), Some(y)) if x.len() == y.len() => {
                    // Stored vectors are L2-normalised: the dot product is the cosine.
                    Some(x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>())
                }
                _ => None,
            };
            let findings = judge_pair(
                Turn {
                    trace_id: &previous.id,
                    input: previous_input,
                    started_at: previous.started_at,
                },
                Turn {
                    trace_id: &next.id,
                    input: next_input,
                    started_at: next.started_at,
                },
                similarity,
                &settings.rules,
            );
            for finding in findings {
                if only.is_some_and(|rules| !rules.contains(&finding.rule)) {
                    continue;
                }
                derived.push(derived_feedback(
                    finding,
                    &previous.id,
                    previous.session_id.as_deref(),
                    next.id.as_str(),
                    next.started_at,
                ));
            }
        }
        report.num_signals_stored += self.store_derived(project, derived, now).await?;
        Ok(report)
    }

    fn abandon_position(project: ProjectId) -> String {
        format!("abandon:{project}")
    }

    /// Checks the project's answers that started since the stored position and whose timeout
    /// has passed.
    pub(crate) async fn scan_abandonment(
        &self,
        project: ProjectId,
        now: Timestamp,
    ) -> Result<SignalReport, StoreError> {
        let settings = self.store.signal_settings(project).await?;
        if !settings.rules.abandon_enabled {
            return Ok(SignalReport::default());
        }
        let name = Self::abandon_position(project);
        let until = abandon_horizon(&settings, now);
        let stored = self.store.signal_progress(&name).await?;
        let from = if stored == 0 {
            until
                .saturating_sub(FIRST_ABANDON_LOOKBACK)
                .unwrap_or(until)
        } else {
            Timestamp::from_microsecond(stored).unwrap_or(until)
        };
        let report = self
            .check_answers(project, &settings, from, until, now)
            .await?;
        self.store
            .advance_signal_progress(&name, until.as_microsecond())
            .await?;
        Ok(report)
    }

    /// Checks every answer of the project again (a recompute).
    pub(crate) async fn rescan_abandonment(
        &self,
        project: ProjectId,
        now: Timestamp,
    ) -> Result<SignalReport, StoreError> {
        let settings = self.store.signal_settings(project).await?;
        if !settings.rules.abandon_enabled {
            return Ok(SignalReport::default());
        }
        let until = abandon_horizon(&settings, now);
        self.check_answers(project, &settings, Timestamp::UNIX_EPOCH, until, now)
            .await
    }

    async fn check_answers(
        &self,
        project: ProjectId,
        settings: &SignalSettings,
        mut from: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<SignalReport, StoreError> {
        let mut report = SignalReport::default();
        for _ in 0..MAX_STEPS_PER_RUN {
            if from >= until {
                break;
            }
            let candidates = self
                .store
                .abandonment_candidates(project, from, until, ANSWER_BATCH)
                .await?;
            let full = candidates.len() == ANSWER_BATCH as usize;
            let mut derived = Vec::new();
            for candidate in &candidates {
                let trace = &candidate.trace.trace;
                if trace.output.is_none() {
                    continue;
                }
                report.num_answers_checked += 1;
                let answered_at = answered_at(trace);
                if let Some(finding) = judge_abandon(
                    answered_at,
                    candidate.next_started_at,
                    candidate.engaged,
                    now,
                    &settings.rules,
                ) {
                    derived.push(derived_feedback(
                        finding,
                        &trace.id,
                        trace.session_id.as_deref(),
                        "abandon",
                        answered_at,
                    ));
                }
            }
            report.num_signals_stored += self.store_derived(project, derived, now).await?;
            match candidates.last() {
                // Resume after the last start time read; answers that share it with the last
                // one are read again, which derivation's idempotence makes harmless.
                Some(last) if full => {
                    let next_from = last.trace.trace.started_at;
                    from = if next_from > from {
                        next_from
                    } else {
                        next_from
                            .saturating_add(SignedDuration::from_micros(1))
                            .unwrap_or(until)
                    };
                }
                _ => break,
            }
        }
        Ok(report)
    }

    /// Stores derived signals; returns how many were new. A signal already stored with other
    /// content (its evidence changed, say the trace's input was edited) keeps the stored one:
    /// it is skipped rather than failing the others.
    async fn store_derived(
        &self,
        project: ProjectId,
        derived: Vec<Feedback>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut num_created = 0;
        for chunk in derived.chunks(STORE_BATCH) {
            let batch = IngestBatch {
                traces: Vec::new(),
                feedback: chunk.to_vec(),
            };
            match self.store.ingest(project, batch, now).await {
                Ok(receipt) => num_created += count_created(&receipt.feedback),
                Err(StoreError::Conflict { .. }) => {
                    for feedback in chunk {
                        let single = IngestBatch {
                            traces: Vec::new(),
                            feedback: vec![feedback.clone()],
                        };
                        match self.store.ingest(project, single, now).await {
                            Ok(receipt) => num_created += count_created(&receipt.feedback),
                            Err(StoreError::Conflict { .. }) => {}
                            Err(error) => return Err(error),
                        }
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Ok(num_created)
    }
}

fn count_created(outcomes: &[Outcome]) -> u64 {
    outcomes
        .iter()
        .filter(|outcome| **outcome == Outcome::Created)
        .count() as u64
}

/// Longest answer the abandonment pass waits for: it checks answers that *started* a timeout
/// plus this ago, so that one that took long to finish has timed out too when it is checked.
const ANSWER_SLACK: SignedDuration = SignedDuration::from_mins(10);

/// Answers that started before this have timed out by `now` (see [`ANSWER_SLACK`]).
fn abandon_horizon(settings: &SignalSettings, now: Timestamp) -> Timestamp {
    let timeout = SignedDuration::from_secs(settings.rules.abandon_timeout_secs as i64);
    now.saturating_sub(timeout)
        .and_then(|t| t.saturating_sub(ANSWER_SLACK))
        .unwrap_or(now)
}

/// When the answer was complete: its end, else its start plus its latency, else its start.
fn answered_at(trace: &Trace) -> Timestamp {
    if let Some(ended_at) = trace.ended_at {
        return ended_at;
    }
    trace
        .latency_ms
        .and_then(|ms| {
            trace
                .started_at
                .saturating_add(SignedDuration::from_micros((ms * 1_000.0) as i64))
                .ok()
        })
        .unwrap_or(trace.started_at)
}
