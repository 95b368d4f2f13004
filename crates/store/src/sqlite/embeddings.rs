//! Semantic memory on SQLite: the embedding queue and the stored vectors (see
//! [`crate::embeddings`]).

use feedloop_core::filter::Filter;
use feedloop_core::{ProjectId, Timestamp, TraceId};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::filter::{self, Subject};
use super::{micros, read};
use crate::embeddings::{
    EmbeddingTask, NewEmbedding, StoredEmbedding, vector_from_bytes, vector_to_bytes,
};
use crate::{Result, StoredFeedback, StoredTrace};

pub fn claim_tasks(
    tx: &Connection,
    limit: u32,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Vec<EmbeddingTask>> {
    let rows = tx
        .prepare_cached(
            "SELECT q.trace_seq, q.project_id, q.generation, t.doc ->> '$.input'
             FROM embedding_queue q LEFT JOIN traces t ON t.seq = q.trace_seq
             WHERE q.claimed_until IS NULL OR q.claimed_until < ?1
             ORDER BY q.trace_seq LIMIT ?2",
        )?
        .query_map(params![micros(now), limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, Option<String>>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut claim =
        tx.prepare_cached("UPDATE embedding_queue SET claimed_until = ?2 WHERE trace_seq = ?1")?;
    let mut forget = tx.prepare_cached("DELETE FROM embedding_queue WHERE trace_seq = ?1")?;
    let mut tasks = Vec::with_capacity(rows.len());
    for (trace_seq, project, generation, input) in rows {
        match input {
            Some(text) => {
                claim.execute(params![trace_seq, micros(lease_until)])?;
                tasks.push(EmbeddingTask {
                    project: ProjectId(project),
                    trace_seq,
                    generation,
                    text,
                });
            }
            // The trace is gone or has no input: there is nothing to embed.
            None => {
                forget.execute(params![trace_seq])?;
            }
        }
    }
    Ok(tasks)
}

pub fn store(
    tx: &Connection,
    model: &str,
    embeddings: &[NewEmbedding],
    now: Timestamp,
) -> Result<()> {
    let mut project_of = tx.prepare_cached("SELECT project_id FROM traces WHERE seq = ?1")?;
    let mut replace =
        tx.prepare_cached("DELETE FROM embeddings WHERE model = ?1 AND trace_seq = ?2")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO embeddings (project_id, trace_seq, model, vector, embedded_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut dequeue =
        tx.prepare_cached("DELETE FROM embedding_queue WHERE trace_seq = ?1 AND generation = ?2")?;
    for embedding in embeddings {
        // Only the generation still queued is stored: a vector of an input that changed since
        // its claim (the trace was queued again, and another worker may have embedded the new
        // input already) must not replace the vector of the current input.
        if dequeue.execute(params![embedding.trace_seq, embedding.generation])? == 0 {
            continue;
        }
        let project: Option<i64> = project_of
            .query_row(params![embedding.trace_seq], |row| row.get(0))
            .optional()?;
        // A trace removed while it was being embedded keeps no vector.
        let Some(project) = project else { continue };
        replace.execute(params![model, embedding.trace_seq])?;
        insert.execute(params![
            project,
            embedding.trace_seq,
            model,
            vector_to_bytes(&embedding.vector),
            micros(now),
        ])?;
    }
    Ok(())
}

pub fn backlog(conn: &Connection) -> Result<u64> {
    let count: i64 =
        conn.query_row("SELECT COUNT(*) FROM embedding_queue", [], |row| row.get(0))?;
    Ok(count.unsigned_abs())
}

pub fn queue_missing(tx: &Connection, model: &str) -> Result<u64> {
    let queued = tx.execute(
        "INSERT INTO embedding_queue (trace_seq, project_id)
         SELECT t.seq, t.project_id FROM traces t
         WHERE t.doc ->> '$.input' IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model = ?1 AND e.trace_seq = t.seq)
         ON CONFLICT (trace_seq) DO NOTHING",
        params![model],
    )?;
    Ok(queued as u64)
}

pub fn since(
    conn: &Connection,
    model: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<StoredEmbedding>> {
    let rows = conn
        .prepare_cached(
            "SELECT seq, project_id, trace_seq, vector FROM embeddings
             WHERE model = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?
        .query_map(params![model, after, limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, Vec<u8>>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(seq, project, trace_seq, bytes)| {
            Ok(StoredEmbedding {
                seq,
                project: ProjectId(project),
                trace_seq,
                vector: vector_from_bytes(&bytes)?,
            })
        })
        .collect()
}

pub fn traces_by_seq(
    conn: &Connection,
    project: ProjectId,
    seqs: &[i64],
) -> Result<Vec<StoredTrace>> {
    let mut statement = conn.prepare_cached(
        "SELECT t.seq, t.doc FROM traces t WHERE t.seq = ?1 AND t.project_id = ?2",
    )?;
    let mut traces = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        let mut rows = statement.query(params![seq, project.0])?;
        if let Some(row) = rows.next()? {
            traces.push(StoredTrace {
                seq: row.get(0)?,
                trace: serde_json::from_str(&row.get::<_, String>(1)?)?,
                spans: Vec::new(),
            });
        }
    }
    Ok(traces)
}

pub fn trace_seqs(
    conn: &Connection,
    project: ProjectId,
    filter: &Filter,
    limit: u32,
) -> Result<Vec<i64>> {
    let c = filter::conditions(Subject::Traces, project.0, filter);
    let sql = format!(
        "SELECT t.seq FROM traces t WHERE {} LIMIT {limit}",
        c.to_sql()
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(c.params.iter()), |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn feedback_on(
    conn: &Connection,
    project: ProjectId,
    trace_ids: &[TraceId],
) -> Result<Vec<(TraceId, Vec<StoredFeedback>)>> {
    let mut out = Vec::new();
    for id in trace_ids {
        let feedback = read::feedback_of_trace(conn, project, id.as_str())?;
        if !feedback.is_empty() {
            out.push((id.clone(), feedback));
        }
    }
    Ok(out)
}
