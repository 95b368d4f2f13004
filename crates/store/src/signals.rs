//! What the implicit-signal loop keeps in the store besides the signals themselves (which are
//! feedback rows): each project's [`SignalSettings`], the derived-signal job's progress, the
//! session look-ups its rules need, and each trace's stored satisfaction estimate (which the
//! `satisfaction_below`/`satisfaction_above` filters read).

use async_trait::async_trait;
use feedloop_core::signals::{Satisfaction, SignalSettings};
use feedloop_core::{ProjectId, Timestamp, TraceId};

use crate::{Result, StoredTrace};

/// A trace's neighbours in its session (by start time, then store order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionNeighbours {
    pub seq: i64,
    pub previous: Option<i64>,
    pub next: Option<i64>,
}

/// An answered trace of a session that may have been abandoned.
#[derive(Debug, Clone, PartialEq)]
pub struct AbandonCandidate {
    pub trace: StoredTrace,
    /// When the next trace of the session started, if there is one.
    pub next_started_at: Option<Timestamp>,
    /// Whether a person (any source but `automatic`) gave feedback on the trace.
    pub engaged: bool,
}

/// A feedback row written after some position, for folding into satisfaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackChange {
    pub seq: i64,
    pub project: ProjectId,
    pub trace_id: TraceId,
}

/// Settings from their stored document (`None`: never stored, the defaults).
pub(crate) fn settings_from_doc(doc: Option<&str>) -> Result<SignalSettings> {
    let Some(doc) = doc else {
        return Ok(SignalSettings::default());
    };
    let mut settings: SignalSettings = serde_json::from_str(doc)?;
    settings.fill_built_in_types();
    Ok(settings)
}

/// The signal types whose negativity differs between two settings.
pub(crate) fn negativity_changes(old: &SignalSettings, new: &SignalSettings) -> Vec<String> {
    old.types
        .keys()
        .chain(new.types.keys())
        .filter(|name| old.is_negative_type(name) != new.is_negative_type(name))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Of stored signal feedback `(seq, doc)`, the rows whose type is in `changed`, with their
/// negativity under `settings`.
pub(crate) fn remarked(
    rows: impl IntoIterator<Item = (i64, String)>,
    changed: &[String],
    settings: &SignalSettings,
) -> Result<Vec<(i64, bool)>> {
    let mut out = Vec::new();
    for (seq, doc) in rows {
        let feedback: feedloop_core::feedback::Feedback = serde_json::from_str(&doc)?;
        if feedback
            .signal_type()
            .is_some_and(|t| changed.iter().any(|c| c == t))
        {
            out.push((seq, feedback.is_negative_in(settings)));
        }
    }
    Ok(out)
}

#[async_trait]
pub trait Signals: Send + Sync {
    /// The project's settings; the defaults when none were stored.
    async fn signal_settings(&self, project: ProjectId) -> Result<SignalSettings>;

    /// Replaces the project's settings. Where a type's polarity turns negative or stops being
    /// negative, the stored signals of that type are re-marked in the same transaction, so the
    /// `negative_feedback` filter and lesson proposals follow the project's polarities (and an
    /// ingest running meanwhile marks its signals by the old settings or the new, never a mix).
    async fn set_signal_settings(
        &self,
        project: ProjectId,
        settings: &SignalSettings,
        now: Timestamp,
    ) -> Result<()>;

    /// A named position of the derived-signal job; 0 when never set.
    async fn signal_progress(&self, name: &str) -> Result<i64>;

    /// Moves a named position forward to `position` (never back).
    async fn advance_signal_progress(&self, name: &str, position: i64) -> Result<()>;

    /// Sets a named position to `position`, back or forward (to recompute from there).
    async fn reset_signal_progress(&self, name: &str, position: i64) -> Result<()>;

    /// The session neighbours of each of these traces; traces without a session (or missing)
    /// are left out.
    async fn session_neighbours(
        &self,
        project: ProjectId,
        seqs: &[i64],
    ) -> Result<Vec<SessionNeighbours>>;

    /// The stored vectors of `model` of these traces (missing ones are left out).
    async fn trace_vectors(
        &self,
        model: &str,
        project: ProjectId,
        seqs: &[i64],
    ) -> Result<Vec<(i64, Vec<f32>)>>;

    /// Traces of a session that started in `from..to`, by start time, at most `limit`, with the
    /// next trace's start and whether a person engaged with them (the caller checks that each
    /// has an answer).
    async fn abandonment_candidates(
        &self,
        project: ProjectId,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<AbandonCandidate>>;

    /// Deletes the derived signals whose ids start with `id_prefix` (source `automatic`);
    /// returns the traces they were about. The only deletion of feedback: derived signals are
    /// the server's own computation, which may be redone when thresholds change.
    async fn delete_derived_signals(
        &self,
        project: ProjectId,
        id_prefix: &str,
    ) -> Result<Vec<TraceId>>;

    /// Feedback rows written after `after` (store order, across projects), at most `limit`.
    async fn feedback_changes_since(&self, after: i64, limit: u32) -> Result<Vec<FeedbackChange>>;

    /// Stores each trace's estimate; `None` removes it.
    async fn put_satisfaction(
        &self,
        project: ProjectId,
        estimates: &[(TraceId, Option<Satisfaction>)],
        now: Timestamp,
    ) -> Result<()>;

    /// The stored estimates of these traces (traces without one are left out).
    async fn satisfaction_of(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, Satisfaction)>>;
}

/// The end of the id range that starts with `prefix`: every id with the prefix sorts in
/// `prefix..end` (ids are printable ASCII, and `prefix` ends in `-`, one below `.`).
pub(crate) fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_owned();
    if let Some(last) = end.pop() {
        end.push(char::from(last as u8 + 1));
    }
    end
}
