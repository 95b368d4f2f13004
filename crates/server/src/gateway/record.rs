//! Every gateway call becomes a trace: success, upstream error, timeout and client disconnect
//! alike. The trace is built from what was known when the call started ([`PendingTrace`]) and
//! how it ended ([`Outcome`]), then stored by the same `ops::ingest` the JSON API uses, on a task
//! of its own: the client never waits for the database, and [`Recorder::drain`] lets shutdown wait
//! for the writes still running.

use feedloop_core::ProjectId;
use feedloop_core::trace::{ModelInfo, Status};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

use super::reply::ReplySummary;
use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::ops;
use crate::wire::TraceBody;

/// Most characters of an upstream error body kept in a trace's `error`.
const MAX_ERROR_CHARS: usize = 2_000;
/// Attempts at storing a trace while the database is unavailable, with doubling pauses between.
const STORE_ATTEMPTS: u32 = 5;
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// How a call ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub summary: ReplySummary,
    /// Why the call failed (the upstream's error body, a timeout, a disconnect); `None`: ok.
    pub error: Option<String>,
    /// The upstream's status, when it answered.
    pub upstream_status: Option<u16>,
}

impl Outcome {
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            ..Self::default()
        }
    }

    /// An upstream answer that is not a success: its status and (the start of) its body.
    pub fn upstream_error(status: u16, body: &[u8]) -> Self {
        let text: String = String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(MAX_ERROR_CHARS)
            .collect();
        Self {
            error: Some(format!("upstream answered {status}: {text}")),
            upstream_status: Some(status),
            ..Self::default()
        }
    }
}

/// A call's trace before its end is known. Completed explicitly with [`PendingTrace::complete`];
/// dropped without that (the client went away and the request future was dropped), it records
/// the call as abandoned.
pub struct PendingTrace {
    inner: Option<(AppState, ProjectId, TraceBody, Instant)>,
}

impl PendingTrace {
    /// `trace` holds what the request said (id, session, input, context, request model,
    /// metadata); `started` is when the request arrived.
    pub fn new(state: AppState, project: ProjectId, trace: TraceBody, started: Instant) -> Self {
        Self {
            inner: Some((state, project, trace, started)),
        }
    }

    pub fn complete(mut self, outcome: Outcome) {
        if let Some((state, project, trace, started)) = self.inner.take() {
            let trace = finish(trace, started, &state, outcome);
            Recorder::spawn_store(&state, project, trace);
        }
    }
}

impl Drop for PendingTrace {
    fn drop(&mut self) {
        if let Some((state, project, trace, started)) = self.inner.take() {
            let outcome = Outcome::failed("the client disconnected before the answer was complete");
            let trace = finish(trace, started, &state, outcome);
            Recorder::spawn_store(&state, project, trace);
        }
    }
}

/// The trace of a finished call.
fn finish(mut trace: TraceBody, started: Instant, state: &AppState, outcome: Outcome) -> TraceBody {
    let Outcome {
        summary,
        error,
        upstream_status,
    } = outcome;
    let error = error.or(summary.error);
    trace.status = Some(if error.is_some() {
        Status::Error
    } else {
        Status::Ok
    });
    trace.error = error;
    trace.output = summary.output;
    let mut model = trace.model.take().unwrap_or_default();
    if summary.model.is_some() {
        model.name = summary.model;
    }
    trace.model = Some(ModelInfo {
        provider: Some(super::PROVIDER.to_owned()),
        ..model
    });
    trace.usage = summary.usage;
    trace.latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    trace.ended_at = Some(state.clock.now());
    if let Some(status) = upstream_status {
        trace
            .metadata
            .insert("feedloop.upstream_status".into(), status.into());
    }
    trace
}

/// Stores gateway traces in the background and knows how many writes are still running.
#[derive(Debug, Default)]
pub struct Recorder {
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Recorder {
    /// Stores `trace` on a task of its own, retrying while the database is unavailable; failures
    /// go to the log.
    pub fn spawn_store(state: &AppState, project: ProjectId, trace: TraceBody) {
        let state = state.clone();
        let recorder = state.recorder.clone();
        recorder.in_flight.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            store(&state, project, trace).await;
            if recorder.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                recorder.idle.notify_waiters();
            }
        });
    }

    /// Writes still running.
    pub fn num_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Waits until no write is running, at most `limit`; false if some still were.
    pub async fn drain(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.num_in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.num_in_flight() == 0;
            }
        }
    }
}

async fn store(state: &AppState, project: ProjectId, trace: TraceBody) {
    let trace_id = trace.id.clone().unwrap_or_default();
    let mut pause = FIRST_RETRY_PAUSE;
    for attempt in 1..=STORE_ATTEMPTS {
        let result: Result<_, ApiError> =
            ops::ingest(state, project, vec![trace.clone()], vec![], |_| {
                String::new()
            })
            .await;
        match result {
            Ok(_) => return,
            Err(error) if error.code == ErrorCode::Unavailable && attempt < STORE_ATTEMPTS => {
                tracing::warn!(%trace_id, attempt, "gateway trace not stored yet: database unavailable; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(error) => {
                tracing::error!(%trace_id, code = ?error.code, message = %error.message, "gateway trace lost");
                return;
            }
        }
    }
}
