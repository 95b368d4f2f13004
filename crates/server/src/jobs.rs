//! Periodic background jobs, run once per period across all replicas. Every replica ticks; the
//! store's job-run claims decide which one runs a period (see `feedloop_store::coordination`).
//! A claim is a lease: if its holder dies, another replica takes the period over once the lease
//! has expired.

use feedloop_core::Timestamp;
use jiff::SignedDuration;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;

use crate::AppState;
use crate::replica::wait;

/// How long the change log keeps entries; followers poll far more often than this.
const CHANGE_LOG_RETENTION: SignedDuration = SignedDuration::from_hours(24);

/// A job that runs once every `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    /// Deletes change-log entries older than a day.
    PruneChangeLog,
    /// Groups recent negative feedback of every project into proposed lessons.
    ProposeLessons,
    /// Derives implicit signals from new traces and idle sessions, and updates satisfaction
    /// estimates (see `feedloop_signals`).
    DeriveSignals,
    /// Enqueues the traces that review queue rules match, and recomputes the triage priority
    /// of open items whose trace got new feedback (see `crate::review::rules`).
    ReviewRules,
    /// Places new negative traces into problem clusters (see `feedloop_clusters`).
    ClusterProblems,
    /// Looks for regressions of new model and prompt versions and for negative spikes, and
    /// raises alerts (see `analytics::detect`).
    DetectAnomalies,
    /// Sends due webhook deliveries and schedules retries (see `analytics::webhooks`).
    DeliverWebhooks,
    /// Deletes the traces and feedback that projects' retention settings say have expired, in
    /// batches (see `crate::privacy`).
    EnforceRetention,
}

impl Job {
    /// In the order a tick runs them: signals (and satisfaction) before proposals, which leave
    /// out cases whose trace is satisfied all told, and before review rules, which may filter
    /// on satisfaction. The analytics jobs come next, so a tick sends what it raised; retention
    /// runs last, so its deletions never delay the others' first tick.
    pub const ALL: [Job; 8] = [
        Job::PruneChangeLog,
        Job::DeriveSignals,
        Job::ReviewRules,
        Job::ProposeLessons,
        Job::ClusterProblems,
        Job::DetectAnomalies,
        Job::DeliverWebhooks,
        Job::EnforceRetention,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::PruneChangeLog => "prune_change_log",
            Self::ProposeLessons => "propose_lessons",
            Self::DeriveSignals => "derive_signals",
            Self::ReviewRules => "review_rules",
            Self::ClusterProblems => "cluster_problems",
            Self::DetectAnomalies => "detect_anomalies",
            Self::DeliverWebhooks => "deliver_webhooks",
            Self::EnforceRetention => "enforce_retention",
        }
    }

    pub fn period(self) -> SignedDuration {
        match self {
            Self::PruneChangeLog => SignedDuration::from_hours(1),
            Self::ProposeLessons => SignedDuration::from_mins(15),
            // Short: each run continues from stored positions, so runs stay small and derived
            // signals follow traffic within seconds (the replica's tick interval permitting).
            Self::DeriveSignals => SignedDuration::from_secs(10),
            // Like signals: each run continues from stored positions.
            Self::ReviewRules => SignedDuration::from_secs(10),
            // Each run reads the window's negative feedback to find what is unclustered.
            Self::ClusterProblems => SignedDuration::from_mins(2),
            Self::DetectAnomalies => SignedDuration::from_mins(5),
            // Retries are scheduled in the outbox; each run sends what is due by then.
            Self::DeliverWebhooks => SignedDuration::from_secs(5),
            // Retention is counted in days; an hour late is well inside it.
            Self::EnforceRetention => SignedDuration::from_hours(1),
        }
    }

    /// How long a claim holds before another replica may take the period over.
    pub fn lease(self) -> SignedDuration {
        match self {
            Self::PruneChangeLog
            | Self::ProposeLessons
            | Self::DeriveSignals
            | Self::ReviewRules
            | Self::ClusterProblems
            | Self::DetectAnomalies
            | Self::DeliverWebhooks => SignedDuration::from_mins(5),
            // A first run over a large backlog deletes many batches; another replica must not
            // take it over while it is still going.
            Self::EnforceRetention => SignedDuration::from_mins(30),
        }
    }

    /// The number of the period `now` falls in.
    pub fn period_of(self, now: Timestamp) -> i64 {
        now.as_second().div_euclid(self.period().as_secs())
    }

    async fn run(
        self,
        state: &AppState,
        now: Timestamp,
    ) -> Result<String, feedloop_store::StoreError> {
        match self {
            Self::PruneChangeLog => {
                let before = now.saturating_sub(CHANGE_LOG_RETENTION).unwrap_or(now);
                let deleted = state.store.prune_changes(before).await?;
                Ok(format!("deleted {deleted} changes"))
            }
            Self::ProposeLessons => {
                let mut proposed = 0;
                for project in state.store.list_projects().await? {
                    match crate::ops::propose_lessons(state, project.id, now).await {
                        Ok(lessons) => proposed += lessons.len(),
                        Err(feedloop_lessons::LoopError::Store(error)) => return Err(error),
                        // One project's embedding trouble does not stop the others.
                        Err(error) => {
                            tracing::warn!(project = project.id.0, %error, "proposing lessons failed");
                        }
                    }
                }
                Ok(format!("proposed {proposed} lessons"))
            }
            Self::DeriveSignals => {
                let report = state.signals.run(now).await?;
                Ok(format!(
                    "checked {} traces and {} answers, stored {} signals, updated {} estimates",
                    report.num_traces_checked,
                    report.num_answers_checked,
                    report.num_signals_stored,
                    report.num_estimates_updated
                ))
            }
            Self::DetectAnomalies => {
                let num_raised = crate::analytics::detect::detect_all(state, now).await?;
                Ok(format!("raised {num_raised} alerts"))
            }
            Self::EnforceRetention => {
                let report =
                    crate::privacy::enforce_retention_everywhere(state.store.as_ref(), now).await?;
                Ok(format!(
                    "deleted {} traces and {} feedback in {} batches",
                    report.num_traces, report.num_feedback, report.num_batches
                ))
            }
            Self::DeliverWebhooks => {
                let report = crate::analytics::webhooks::deliver_due(state, now).await?;
                Ok(format!(
                    "delivered {}, retrying {}, gave up {}",
                    report.num_delivered, report.num_retrying, report.num_given_up
                ))
            }
            Self::ClusterProblems => {
                let report = crate::ops::refresh_clusters(state, None, now).await?;
                Ok(format!(
                    "placed {} problems, founded {} clusters, grew {}",
                    report.num_placed,
                    report.new_clusters.len(),
                    report.num_grown
                ))
            }
            Self::ReviewRules => {
                let report = crate::review::rules::run(state, now).await?;
                Ok(format!(
                    "checked {} traces, enqueued {} items, updated {} priorities",
                    report.num_traces_checked, report.num_enqueued, report.num_priorities_updated
                ))
            }
        }
    }
}

/// What one replica remembers between ticks, so that it asks for each period once (and again
/// only when a lease could have expired).
#[derive(Debug, Default)]
pub struct JobScheduler {
    next_attempt: HashMap<Job, (i64, Timestamp)>,
}

/// The outcome of one job in one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// This replica claimed the period and ran the job.
    Ran { period: i64, outcome: String },
    /// Another replica holds the period.
    HeldElsewhere { period: i64 },
    /// Nothing to do yet.
    Idle,
}

impl JobScheduler {
    /// Runs every job whose current period this replica wins. `holder` names the replica.
    pub async fn tick(
        &mut self,
        state: &AppState,
        holder: &str,
        now: Timestamp,
    ) -> Vec<(Job, TickOutcome)> {
        let mut outcomes = Vec::new();
        for job in Job::ALL {
            let period = job.period_of(now);
            let due = match self.next_attempt.get(&job) {
                Some((done_period, retry_at)) => period > *done_period || now >= *retry_at,
                None => true,
            };
            if !due {
                outcomes.push((job, TickOutcome::Idle));
                continue;
            }
            let lease_until = now.saturating_add(job.lease()).unwrap_or(now);
            let outcome = match state
                .store
                .claim_job_run(job.name(), period, holder, now, lease_until)
                .await
            {
                Ok(true) => {
                    let started = std::time::Instant::now();
                    let outcome = match job.run(state, now).await {
                        Ok(outcome) => outcome,
                        Err(error) => format!("failed: {error}"),
                    };
                    let elapsed_ms = started.elapsed().as_millis() as u64;
                    tracing::info!(job = job.name(), period, elapsed_ms, %outcome, "background job ran");
                    if let Err(error) = state
                        .store
                        .finish_job_run(job.name(), period, holder, &outcome, state.clock.now())
                        .await
                    {
                        tracing::warn!(job = job.name(), %error, "cannot record the end of a job run");
                    }
                    // Done for this period; the next one is due when the period changes.
                    self.next_attempt.insert(job, (period, Timestamp::MAX));
                    TickOutcome::Ran { period, outcome }
                }
                Ok(false) => {
                    // Someone else holds it; look again once their lease could have run out.
                    self.next_attempt.insert(job, (period, lease_until));
                    TickOutcome::HeldElsewhere { period }
                }
                Err(error) => {
                    tracing::warn!(job = job.name(), %error, "cannot claim a job run");
                    TickOutcome::Idle
                }
            };
            outcomes.push((job, outcome));
        }
        outcomes
    }
}

/// Ticks every `interval` until `stop` turns true.
pub async fn run_jobs(
    state: AppState,
    holder: String,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut scheduler = JobScheduler::default();
    loop {
        scheduler.tick(&state, &holder, state.clock.now()).await;
        if wait(&mut stop, interval).await {
            return;
        }
    }
}
