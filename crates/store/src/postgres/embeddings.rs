//! Semantic memory on PostgreSQL: the embedding queue and the stored vectors (see
//! [`crate::embeddings`]), with the same rules as `sqlite/embeddings.rs`.
//!
//! Several replicas run embedding workers on one database, so:
//!
//! - **Claims** lock the queue rows they take with `FOR UPDATE SKIP LOCKED`: two workers
//!   claiming at once take different traces, and neither waits for the other or for an ingest
//!   that is re-queueing a trace. The inputs are read after the rows are locked, in a statement
//!   of their own, so a claim never pairs a new generation with an old input.
//! - **Stores** take an advisory lock before they write vectors and hold it to commit
//!   ([`EMBEDDINGS_LOCK`]), so that the identity
//!   `embeddings.seq` becomes visible in the order it is taken. Followers read
//!   `seq > last seen`; without the lock a vector numbered before another but committed after
//!   it would be skipped for good (the change log does the same, see `admin.rs`).

use deadpool_postgres::{GenericClient, Object};
use feedloop_core::filter::Filter;
use feedloop_core::{ProjectId, Timestamp, TraceId};
use std::collections::{HashMap, HashSet};

use super::ingest::{Attempt, Failure};
use super::{execute, micros, query, query_one, read};
use crate::embeddings::{
    EmbeddingTask, NewEmbedding, StoredEmbedding, vector_from_bytes, vector_to_bytes,
};
use crate::sql_filter::{self, Dialect, Subject};
use crate::{Result, StoredFeedback, StoredTrace};

/// The advisory lock that serialises writes of vectors (see the module docs); the two-key form,
/// next to the change log's `("feed", 1)`.
pub(super) const EMBEDDINGS_LOCK: (i32, i32) = (0x6665_6564, 2); // "feed", 2

/// Attempts of a write that PostgreSQL aborted to break a deadlock (with an ingest re-queueing
/// the same traces in another order).
const MAX_ATTEMPTS: u32 = 3;

/// Queues a trace for the embedding worker, in the ingest's transaction (again, with a new
/// generation and no claim, if its input changed while it waited or was being embedded).
pub(super) async fn queue_embedding(
    tx: &impl GenericClient,
    project: ProjectId,
    trace_seq: i64,
) -> Attempt<()> {
    execute(
        tx,
        "INSERT INTO embedding_queue (trace_seq, project_id) VALUES ($1, $2)
         ON CONFLICT (trace_seq) DO UPDATE
         SET generation = embedding_queue.generation + 1, claimed_until = NULL",
        &[&trace_seq, &project.0],
    )
    .await?;
    Ok(())
}

pub async fn claim_tasks(
    client: &mut Object,
    limit: u32,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Vec<EmbeddingTask>> {
    let tx = client.transaction().await?;
    // Rows another transaction holds (a claim in flight, an ingest re-queueing) are skipped, not
    // waited for; a row whose claim was renewed since this statement's snapshot is checked again
    // against its latest version, so it is not claimed twice.
    let due = query(
        &tx,
        "SELECT trace_seq, project_id, generation FROM embedding_queue
         WHERE claimed_until IS NULL OR claimed_until < $1
         ORDER BY trace_seq LIMIT $2
         FOR UPDATE SKIP LOCKED",
        &[&micros(now), &i64::from(limit)],
    )
    .await?;
    if due.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let mut queued = Vec::with_capacity(due.len());
    for row in &due {
        queued.push((
            row.try_get::<_, i64>(0)?,
            ProjectId(row.try_get(1)?),
            row.try_get::<_, i64>(2)?,
        ));
    }
    let seqs: Vec<i64> = queued.iter().map(|(seq, _, _)| *seq).collect();
    // A new statement, so a new snapshot: an ingest that changed an input and bumped its
    // generation committed before the row lock above was granted, so its input is seen here.
    let mut inputs: HashMap<i64, String> = HashMap::with_capacity(seqs.len());
    for row in query(
        &tx,
        "SELECT seq, doc::json ->> 'input' FROM traces
         WHERE seq = ANY ($1) AND doc::json ->> 'input' IS NOT NULL",
        &[&seqs],
    )
    .await?
    {
        inputs.insert(row.try_get(0)?, row.try_get(1)?);
    }
    let mut tasks = Vec::with_capacity(queued.len());
    let mut forgotten = Vec::new();
    for (trace_seq, project, generation) in queued {
        match inputs.remove(&trace_seq) {
            Some(text) => tasks.push(EmbeddingTask {
                project,
                trace_seq,
                generation,
                text,
            }),
            // The trace is gone or has no input: there is nothing to embed.
            None => forgotten.push(trace_seq),
        }
    }
    let claimed: Vec<i64> = tasks.iter().map(|task| task.trace_seq).collect();
    if !claimed.is_empty() {
        execute(
            &tx,
            "UPDATE embedding_queue SET claimed_until = $2 WHERE trace_seq = ANY ($1)",
            &[&claimed, &micros(lease_until)],
        )
        .await?;
    }
    if !forgotten.is_empty() {
        execute(
            &tx,
            "DELETE FROM embedding_queue WHERE trace_seq = ANY ($1)",
            &[&forgotten],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(tasks)
}

pub async fn store(
    client: &mut Object,
    model: &str,
    embeddings: &[NewEmbedding],
    now: Timestamp,
) -> Result<()> {
    if embeddings.is_empty() {
        return Ok(());
    }
    let mut attempt = 1;
    loop {
        let tx = client.transaction().await?;
        match store_once(&tx, model, embeddings, now).await {
            Ok(()) => {
                tx.commit().await?;
                return Ok(());
            }
            Err(Failure::Retry(error)) if attempt < MAX_ATTEMPTS => {
                tracing::debug!(%error, attempt, "postgres vector store aborted by the server; retrying");
                tx.rollback().await?;
                attempt += 1;
            }
            Err(failure) => return Err(failure.into()),
        }
    }
}

async fn store_once(
    tx: &impl GenericClient,
    model: &str,
    embeddings: &[NewEmbedding],
    now: Timestamp,
) -> Attempt<()> {
    let trace_seqs: Vec<i64> = embeddings.iter().map(|e| e.trace_seq).collect();
    let generations: Vec<i64> = embeddings.iter().map(|e| e.generation).collect();
    // Only the generation still queued is stored: a vector of an input that changed since its
    // claim (whose trace was queued again, and may have been embedded again already by another
    // worker) must not replace the vector of the current input. The deleted row also stands
    // for the trace's vector: a concurrent store of the same trace waits for it and then finds
    // nothing to delete, so two transactions never write one (model, trace) at once.
    let mut current: HashSet<(i64, i64)> = HashSet::new();
    for row in query(
        tx,
        "DELETE FROM embedding_queue q
         USING unnest($1::bigint[], $2::bigint[]) AS e (trace_seq, generation)
         WHERE q.trace_seq = e.trace_seq AND q.generation = e.generation
         RETURNING q.trace_seq, q.generation",
        &[&trace_seqs, &generations],
    )
    .await?
    {
        current.insert((row.try_get(0)?, row.try_get(1)?));
    }
    if current.is_empty() {
        return Ok(());
    }
    // The first vector given for each current (trace, generation), in the order given.
    let mut stored_seqs = Vec::with_capacity(current.len());
    let mut vectors = Vec::with_capacity(current.len());
    for embedding in embeddings {
        if current.remove(&(embedding.trace_seq, embedding.generation)) {
            stored_seqs.push(embedding.trace_seq);
            vectors.push(vector_to_bytes(&embedding.vector));
        }
    }
    // From here to commit, one transaction at a time: the vectors' numbers are taken and become
    // visible in the same order (see the module docs). Taken after the queue rows, so that no
    // store holds it while it waits for an ingest that is re-queueing one of its traces.
    execute(
        tx,
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&EMBEDDINGS_LOCK.0, &EMBEDDINGS_LOCK.1],
    )
    .await?;
    execute(
        tx,
        "DELETE FROM embeddings WHERE model = $1 AND trace_seq = ANY ($2)",
        &[&model, &stored_seqs],
    )
    .await?;
    // A trace removed while it was being embedded keeps no vector (the join drops it).
    execute(
        tx,
        "INSERT INTO embeddings (project_id, trace_seq, model, vector, embedded_at)
         SELECT t.project_id, e.trace_seq, $1, e.vector, $4
         FROM unnest($2::bigint[], $3::bytea[]) WITH ORDINALITY AS e (trace_seq, vector, n)
         JOIN traces t ON t.seq = e.trace_seq
         ORDER BY e.n",
        &[&model, &stored_seqs, &vectors, &micros(now)],
    )
    .await?;
    Ok(())
}

pub async fn backlog(conn: &impl GenericClient) -> Result<u64> {
    let row = query_one(conn, "SELECT COUNT(*) FROM embedding_queue", &[]).await?;
    Ok(row.try_get::<_, i64>(0)?.unsigned_abs())
}

pub async fn queue_missing(client: &mut Object, model: &str) -> Result<u64> {
    let mut attempt = 1;
    loop {
        let tx = client.transaction().await?;
        let queued: Attempt<u64> = execute(
            &tx,
            "INSERT INTO embedding_queue (trace_seq, project_id)
             SELECT t.seq, t.project_id FROM traces t
             WHERE t.doc::json ->> 'input' IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model = $1 AND e.trace_seq = t.seq)
             ON CONFLICT (trace_seq) DO NOTHING",
            &[&model],
        )
        .await
        .map_err(Failure::from);
        match queued {
            Ok(queued) => {
                tx.commit().await?;
                return Ok(queued);
            }
            Err(Failure::Retry(error)) if attempt < MAX_ATTEMPTS => {
                tracing::debug!(%error, attempt, "postgres embedding re-queue aborted by the server; retrying");
                tx.rollback().await?;
                attempt += 1;
            }
            Err(failure) => return Err(failure.into()),
        }
    }
}

pub async fn since(
    conn: &impl GenericClient,
    model: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<StoredEmbedding>> {
    query(
        conn,
        "SELECT seq, project_id, trace_seq, vector FROM embeddings
         WHERE model = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        &[&model, &after, &i64::from(limit)],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(StoredEmbedding {
            seq: row.try_get(0)?,
            project: ProjectId(row.try_get(1)?),
            trace_seq: row.try_get(2)?,
            vector: vector_from_bytes(row.try_get(3)?)?,
        })
    })
    .collect()
}

pub async fn traces_by_seq(
    conn: &impl GenericClient,
    project: ProjectId,
    seqs: &[i64],
) -> Result<Vec<StoredTrace>> {
    query(
        conn,
        "SELECT seq, doc FROM traces WHERE project_id = $1 AND seq = ANY ($2)",
        &[&project.0, &seqs],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(StoredTrace {
            seq: row.try_get(0)?,
            trace: serde_json::from_str(row.try_get(1)?)?,
            spans: Vec::new(),
        })
    })
    .collect()
}

pub async fn trace_seqs(
    conn: &impl GenericClient,
    project: ProjectId,
    filter: &Filter,
    limit: u32,
) -> Result<Vec<i64>> {
    let c = sql_filter::conditions(Dialect::Postgres, Subject::Traces, project.0, filter);
    let sql = format!(
        "SELECT t.seq FROM traces t WHERE {} LIMIT {limit}",
        c.to_sql()
    );
    // Unprepared, like the lists in `read.rs`: the text varies with the filter.
    conn.query(sql.as_str(), &c.postgres_params())
        .await?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
}

pub async fn feedback_on(
    conn: &impl GenericClient,
    project: ProjectId,
    trace_ids: &[TraceId],
) -> Result<Vec<(TraceId, Vec<StoredFeedback>)>> {
    let mut out = Vec::new();
    for id in trace_ids {
        let feedback = read::feedback_of_trace(conn, project, id.as_str()).await?;
        if !feedback.is_empty() {
            out.push((id.clone(), feedback));
        }
    }
    Ok(out)
}
