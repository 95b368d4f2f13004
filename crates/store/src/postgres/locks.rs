//! The advisory locks of ingests on PostgreSQL, all transaction-scoped (released at commit or
//! rollback) and taken at the start of an ingest's transaction, before any row is written.
//!
//! - The project's **ingest lock**: every ingest holds it, normally shared, so ingests run side
//!   by side. Two of them can still deadlock where they write the same new rows in opposite
//!   orders (existing traces are locked in id order up front by [`lock_existing_traces`], new
//!   rows cannot be); PostgreSQL then aborts one. Retried at once it would likely meet the same
//!   opponent, still running, and deadlock again, so the retry takes the ingest lock
//!   exclusively: it waits for the ingests in flight in the project to end, and runs before the
//!   ones that arrive meanwhile (PostgreSQL queues new shared requests behind a waiting
//!   exclusive one).
//! - A trace's **supersession stripe**: supersession reads a group of judgements and marks all
//!   but the latest, so two transactions must not do it for the same trace at once. Traces hash
//!   onto [`SUPERSESSION_STRIPES`] locks per project, so a batch that restates judgements on
//!   thousands of traces still takes at most that many locks (PostgreSQL's shared lock table is
//!   small) while batches on other traces mostly run side by side. Taken in sorted order, so
//!   ingests cannot deadlock on them.

use deadpool_postgres::GenericClient;
use feedloop_core::trace::TracePart;
use feedloop_core::{ProjectId, TraceId};
use sha2::Digest;
use std::collections::BTreeSet;

use super::ingest::Attempt;
use super::{execute, query};

/// Supersession locks per project: the most one batch takes.
pub const SUPERSESSION_STRIPES: u64 = 32;

/// An advisory lock key: of the project alone for its ingest lock, or of (project, the stripe of
/// a trace id) for supersession.
fn lock_key(project: ProjectId, trace_id: Option<&TraceId>) -> i64 {
    let mut hash = sha2::Sha256::new();
    hash.update(b"feedloop ingest\0");
    hash.update(project.0.to_be_bytes());
    if let Some(trace_id) = trace_id {
        let stripe = u64::from_be_bytes(
            sha2::Sha256::digest(trace_id.as_str())[..8]
                .try_into()
                .expect("8 bytes"),
        ) % SUPERSESSION_STRIPES;
        hash.update(b"stripe\0");
        hash.update(stripe.to_be_bytes());
    }
    let digest = hash.finalize();
    let mut key = [0; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(key)
}

/// Takes the project's ingest lock, shared or (`alone`) exclusive, in the statement that checks
/// that the project exists; false if it does not.
pub async fn lock_project(
    tx: &impl GenericClient,
    project: ProjectId,
    alone: bool,
) -> Attempt<bool> {
    let sql = if alone {
        "SELECT pg_advisory_xact_lock($2) FROM projects WHERE id = $1"
    } else {
        "SELECT pg_advisory_xact_lock_shared($2) FROM projects WHERE id = $1"
    };
    let rows = query(tx, sql, &[&project.0, &lock_key(project, None)]).await?;
    Ok(!rows.is_empty())
}

/// Takes the supersession lock of each trace that the batch restates judgements on.
pub async fn lock_supersession(
    tx: &impl GenericClient,
    project: ProjectId,
    traces: BTreeSet<&TraceId>,
) -> Attempt<()> {
    if traces.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<i64> = traces
        .into_iter()
        .map(|id| lock_key(project, Some(id)))
        .collect();
    // In one order for every transaction, so that two of them never wait for each other.
    keys.sort_unstable();
    keys.dedup();
    execute(
        tx,
        "SELECT pg_advisory_xact_lock(key) FROM unnest($1::bigint[]) AS key",
        &[&keys],
    )
    .await?;
    Ok(())
}

/// Locks the batch's traces that exist already, in id order, before any is written: two batches
/// that share traces then wait for each other instead of deadlocking.
pub async fn lock_existing_traces(
    tx: &impl GenericClient,
    project: ProjectId,
    parts: &[TracePart],
) -> Attempt<()> {
    let ids: BTreeSet<&str> = parts.iter().map(|part| part.id.as_str()).collect();
    if ids.len() < 2 {
        return Ok(());
    }
    let ids: Vec<&str> = ids.into_iter().collect();
    query(
        tx,
        "SELECT seq FROM traces WHERE project_id = $1 AND id = ANY ($2) ORDER BY id FOR UPDATE",
        &[&project.0, &ids],
    )
    .await?;
    Ok(())
}
