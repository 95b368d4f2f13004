//! Privacy operations: redaction of what is ingested (before it is stored, embedded or
//! logged), retention enforcement, and erasure of one end user. Every way in (the JSON API,
//! OTLP, the gateway, review actions) stores through `ops::store_batch`, which redacts here
//! first; the `enforce_retention` job, `POST /api/v1/privacy/retention/run`, `POST
//! /api/v1/erasure` and `feedloop erase` come here too.

use std::collections::HashMap;

use feedloop_core::feedback::FeedbackValue;
use feedloop_core::pii::{PiiCounts, PiiMode};
use feedloop_core::privacy::redact::{OutputSeen, redact_feedback, redact_trace_part};
use feedloop_core::{ProjectId, Timestamp, TraceId, ValidationError};
use feedloop_store::privacy::{DeletedRows, ErasureReceipt};
use feedloop_store::{IngestBatch, Store, StoreError};

/// Traces and feedback rows one retention transaction deletes at most: small enough that the
/// project's ingest waits only briefly for each batch.
pub const RETENTION_BATCH: u32 = 500;

/// Redacts a batch in place by the project's PII mode; returns what was replaced. Annotations
/// are placed against their trace's original output when the batch carries it, else against
/// the stored (redacted) output (see `feedloop_core::privacy::redact`).
pub async fn redact_batch(
    store: &dyn Store,
    project: ProjectId,
    batch: &mut IngestBatch,
) -> Result<PiiCounts, StoreError> {
    let mode = store.privacy_settings(project).await?.pii_mode;
    let mut counts = PiiCounts::default();
    if mode == PiiMode::Off {
        return Ok(counts);
    }
    let originals: HashMap<TraceId, String> = batch
        .traces
        .iter()
        .filter_map(|part| Some((part.id.clone(), part.output.clone()?)))
        .collect();
    let stored = stored_outputs(store, project, batch, &originals).await?;
    for part in &mut batch.traces {
        counts.add(&redact_trace_part(part, mode));
    }
    for feedback in &mut batch.feedback {
        let seen = match (
            originals.get(&feedback.trace_id),
            stored.get(&feedback.trace_id),
        ) {
            (Some(original), _) => OutputSeen::Original(original),
            (None, Some(stored)) => OutputSeen::Stored(stored),
            (None, None) => OutputSeen::Unknown,
        };
        counts.add(&redact_feedback(feedback, mode, seen));
    }
    if counts.total() > 0 {
        tracing::debug!(
            project = project.0,
            email = counts.email,
            phone = counts.phone,
            card_number = counts.card_number,
            ip_address = counts.ip_address,
            secret = counts.secret,
            "redacted personal data on ingest"
        );
    }
    Ok(counts)
}

/// The stored outputs of the traces that annotations of the batch mark, when the batch does
/// not carry them.
async fn stored_outputs(
    store: &dyn Store,
    project: ProjectId,
    batch: &IngestBatch,
    originals: &HashMap<TraceId, String>,
) -> Result<HashMap<TraceId, String>, StoreError> {
    let mut wanted: Vec<TraceId> = batch
        .feedback
        .iter()
        .filter(|f| matches!(f.value, FeedbackValue::Annotation(_)))
        .map(|f| f.trace_id.clone())
        .filter(|id| !originals.contains_key(id))
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    wanted.sort();
    wanted.dedup();
    Ok(store
        .traces_by_id(project, &wanted)
        .await?
        .into_iter()
        .filter_map(|stored| Some((stored.trace.id, stored.trace.output?)))
        .collect())
}

/// What one enforcement of a project's retention deleted.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RetentionReport {
    pub num_batches: u64,
    pub num_traces: u64,
    pub num_feedback: u64,
    /// Rows deleted, by table.
    pub deleted: DeletedRows,
}

impl RetentionReport {
    fn add(&mut self, batch: feedloop_store::privacy::RetentionBatch) {
        self.num_batches += 1;
        self.num_traces += batch.num_traces;
        self.num_feedback += batch.num_feedback;
        for (table, n) in batch.deleted {
            *self.deleted.entry(table).or_default() += n;
        }
    }
}

/// Deletes what the project's retention settings say has expired at `now`, in batches, with
/// progress in the log.
pub async fn enforce_retention(
    store: &dyn Store,
    project: ProjectId,
    now: Timestamp,
) -> Result<RetentionReport, StoreError> {
    let retention = store.privacy_settings(project).await?.retention;
    let mut report = RetentionReport::default();
    if retention.is_forever() {
        return Ok(report);
    }
    let cutoffs = retention.cutoffs(now);
    loop {
        let batch = store
            .delete_expired(project, cutoffs, RETENTION_BATCH, now)
            .await?;
        if batch.is_empty() {
            return Ok(report);
        }
        tracing::info!(
            project = project.0,
            batch = report.num_batches + 1,
            num_traces = batch.num_traces,
            num_feedback = batch.num_feedback,
            "retention deleted a batch"
        );
        report.add(batch);
    }
}

/// Enforces every project's retention; one project's failure does not stop the others.
pub async fn enforce_retention_everywhere(
    store: &dyn Store,
    now: Timestamp,
) -> Result<RetentionReport, StoreError> {
    let mut total = RetentionReport::default();
    for project in store.list_projects().await? {
        match enforce_retention(store, project.id, now).await {
            Ok(report) => {
                total.num_batches += report.num_batches;
                total.num_traces += report.num_traces;
                total.num_feedback += report.num_feedback;
                for (table, n) in report.deleted {
                    *total.deleted.entry(table).or_default() += n;
                }
            }
            Err(StoreError::Unavailable(message)) => return Err(StoreError::Unavailable(message)),
            Err(error) => {
                tracing::warn!(project = project.id.0, %error, "enforcing retention failed");
            }
        }
    }
    Ok(total)
}

/// The longest user id accepted for erasure (ingest accepts 256 bytes).
const MAX_USER_ID_BYTES: usize = 256;

/// Checks a user id named for erasure.
pub fn check_user_id(user_id: &str) -> Result<(), ValidationError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_BYTES {
        return Err(ValidationError::new(
            "user_id",
            format!("must be 1 to {MAX_USER_ID_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Erases everything about one end user of the project and returns the receipt. The log
/// names the receipt and the digest of the user id, never the id.
pub async fn erase_user(
    store: &dyn Store,
    project: ProjectId,
    user_id: &str,
    actor: &str,
    requested_at: Timestamp,
    now: Timestamp,
) -> Result<ErasureReceipt, StoreError> {
    let receipt_id = crate::ops::new_id("er_", requested_at.as_microsecond());
    let receipt = store
        .erase_user(project, user_id, &receipt_id, requested_at, now)
        .await?;
    let num_traces = receipt.deleted.get("traces").copied().unwrap_or(0);
    let num_feedback = receipt.deleted.get("feedback").copied().unwrap_or(0);
    tracing::info!(
        project = project.0,
        receipt = %receipt.id,
        user_id_sha256 = %receipt.user_id_sha256,
        num_traces,
        num_feedback,
        "erased an end user's data"
    );
    store
        .record_audit(
            project,
            actor,
            "erasure.run",
            &receipt.id,
            &serde_json::json!({
                "user_id_sha256": receipt.user_id_sha256,
                "num_traces": num_traces,
                "num_feedback": num_feedback,
            }),
            now,
        )
        .await?;
    Ok(receipt)
}
