//! Review queues on SQLite (see [`crate::review`]). Every write runs on the writer thread, so a
//! read-check-write of an item (reserve, resolve, …) is never interleaved with another.

use async_trait::async_trait;
use feedloop_core::filter::Filter;
use feedloop_core::review::{ItemAction, ItemState, Queue, ReviewItem, Verdict, apply};
use feedloop_core::{ProjectId, Timestamp, TraceId};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::{SqliteStore, filter, micros, timestamp};
use crate::records::trace_id;
use crate::review::{
    Enqueued, ItemChange, ItemCounts, ItemQuery, QueueSize, Review, ReviewEvent, TraceChange,
    item_not_found, queue_not_found, transition_error,
};
use crate::sql_filter::Subject;
use crate::{Result, StoreError, StoredTrace};

/// An item from its row: the document, with the id and priority the columns own.
fn item_from_row(id: i64, priority: f64, doc: &str) -> Result<ReviewItem> {
    let mut item: ReviewItem = serde_json::from_str(doc)?;
    item.id = id;
    item.priority = priority;
    Ok(item)
}

const ITEM_COLUMNS: &str = "id, priority, doc";

fn read_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, f64, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn load_queue(conn: &Connection, project: ProjectId, name: &str) -> Result<Option<Queue>> {
    conn.prepare_cached("SELECT doc FROM review_queues WHERE project_id = ?1 AND name = ?2")?
        .query_row(params![project.0, name], |row| row.get::<_, String>(0))
        .optional()?
        .map(|doc| Ok(serde_json::from_str(&doc)?))
        .transpose()
}

fn load_item(
    conn: &Connection,
    project: ProjectId,
    queue: &str,
    item_id: i64,
) -> Result<Option<ReviewItem>> {
    conn.prepare_cached(&format!(
        "SELECT {ITEM_COLUMNS} FROM review_items WHERE id = ?1 AND project_id = ?2 AND queue = ?3"
    ))?
    .query_row(params![item_id, project.0, queue], read_item)
    .optional()?
    .map(|(id, priority, doc)| item_from_row(id, priority, &doc))
    .transpose()
}

/// Writes an item's document and the columns derived from it, and its new verdicts.
fn write_item(conn: &Connection, item: &ReviewItem) -> Result<()> {
    conn.prepare_cached(
        "UPDATE review_items SET state = ?2, assignee = ?3, lock_until = ?4, num_verdicts = ?5,
                updated_at = ?6, doc = ?7
         WHERE id = ?1",
    )?
    .execute(params![
        item.id,
        item.state.as_str(),
        item.assignee,
        item.lock_until.map(micros),
        item.verdicts.len() as i64,
        micros(item.updated_at),
        serde_json::to_string(item)?
    ])?;
    let mut verdict = conn.prepare_cached(
        "INSERT INTO review_verdicts (item_id, reviewer) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for v in &item.verdicts {
        verdict.execute(params![item.id, v.reviewer])?;
    }
    Ok(())
}

fn record_event(
    conn: &Connection,
    project: ProjectId,
    item_id: i64,
    author: &str,
    action: &str,
    payload: &serde_json::Value,
    now: Timestamp,
) -> Result<ReviewEvent> {
    conn.prepare_cached(
        "INSERT INTO review_events (project_id, item_id, at, author, action, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        project.0,
        item_id,
        micros(now),
        author,
        action,
        payload.to_string()
    ])?;
    Ok(ReviewEvent {
        id: conn.last_insert_rowid(),
        item_id,
        at: now,
        author: author.to_owned(),
        action: action.to_owned(),
        payload: payload.clone(),
    })
}

fn enqueue(
    conn: &Connection,
    project: ProjectId,
    queue: &str,
    traces: &[(TraceId, f64)],
    author: &str,
    now: Timestamp,
) -> Result<Vec<Enqueued>> {
    let definition = load_queue(conn, project, queue)?.ok_or_else(|| queue_not_found(queue))?;
    let mut exists =
        conn.prepare_cached("SELECT 1 FROM traces WHERE project_id = ?1 AND id = ?2")?;
    let mut existing = conn.prepare_cached(
        "SELECT id FROM review_items WHERE project_id = ?1 AND queue = ?2 AND trace_id = ?3",
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO review_items (project_id, queue, trace_id, state, priority, num_verdicts, updated_at, doc)
         VALUES (?1, ?2, ?3, 'pending', ?4, 0, ?5, '')",
    )?;
    let mut out = Vec::with_capacity(traces.len());
    for (trace, priority) in traces {
        if exists
            .query_row(params![project.0, trace.as_str()], |_| Ok(()))
            .optional()?
            .is_none()
        {
            return Err(StoreError::NotFound {
                what: "trace",
                id: trace.to_string(),
            });
        }
        if let Some(id) = existing
            .query_row(params![project.0, queue, trace.as_str()], |row| row.get(0))
            .optional()?
        {
            out.push(Enqueued::Existing(id));
            continue;
        }
        insert.execute(params![
            project.0,
            queue,
            trace.as_str(),
            priority,
            micros(now)
        ])?;
        let mut item = ReviewItem::new(queue, trace.clone(), definition.reviewers_required, now);
        item.id = conn.last_insert_rowid();
        item.priority = *priority;
        write_item(conn, &item)?;
        record_event(
            conn,
            project,
            item.id,
            author,
            "enqueued",
            &serde_json::json!({"priority": priority}),
            now,
        )?;
        out.push(Enqueued::Created(item.id));
    }
    Ok(out)
}

fn change_item(
    conn: &Connection,
    project: ProjectId,
    queue: &str,
    item_id: i64,
    change: &ItemChange,
    now: Timestamp,
) -> Result<(ReviewItem, ReviewEvent)> {
    let item = load_item(conn, project, queue, item_id)?.ok_or_else(|| item_not_found(item_id))?;
    let item = apply(item, &change.transition, now).map_err(transition_error)?;
    write_item(conn, &item)?;
    let event = record_event(
        conn,
        project,
        item_id,
        &change.author,
        &change.action,
        &change.payload,
        now,
    )?;
    Ok((item, event))
}

fn reserve_next(
    conn: &Connection,
    project: ProjectId,
    queue: &str,
    reviewer: &str,
    now: Timestamp,
) -> Result<Option<ReviewItem>> {
    let definition = load_queue(conn, project, queue)?.ok_or_else(|| queue_not_found(queue))?;
    let found = conn
        .prepare_cached(&format!(
            "SELECT {ITEM_COLUMNS} FROM review_items i
             WHERE project_id = ?1 AND queue = ?2
               AND (state = 'pending' OR (state = 'in_progress' AND lock_until <= ?3))
               AND (assignee IS NULL OR assignee = ?4)
               AND NOT EXISTS (SELECT 1 FROM review_verdicts v WHERE v.item_id = i.id AND v.reviewer = ?4)
             ORDER BY priority DESC, id LIMIT 1"
        ))?
        .query_row(params![project.0, queue, micros(now), reviewer], read_item)
        .optional()?;
    let Some((id, priority, doc)) = found else {
        return Ok(None);
    };
    let item = item_from_row(id, priority, &doc)?;
    let action = ItemAction::Reserve {
        reviewer: reviewer.to_owned(),
        lock: definition.lock(),
    };
    let item = apply(item, &action, now).map_err(transition_error)?;
    write_item(conn, &item)?;
    record_event(
        conn,
        project,
        id,
        reviewer,
        "reserve",
        &serde_json::json!({"lock_until": item.lock_until, "next": true}),
        now,
    )?;
    Ok(Some(item))
}

fn review_items(
    conn: &Connection,
    project: ProjectId,
    queue: &str,
    query: &ItemQuery,
    now: Timestamp,
) -> Result<Vec<ReviewItem>> {
    let mut sql =
        format!("SELECT {ITEM_COLUMNS} FROM review_items WHERE project_id = ? AND queue = ?");
    let mut values: Vec<rusqlite::types::Value> = vec![project.0.into(), queue.to_owned().into()];
    if let Some(state) = query.state {
        sql.push_str(state_condition(state));
        if matches!(state, ItemState::Pending | ItemState::InProgress) {
            values.push(micros(now).into());
        }
    }
    if let Some(assignee) = &query.assignee {
        sql.push_str(" AND assignee = ?");
        values.push(assignee.clone().into());
    }
    if let Some((priority, id)) = query.after {
        sql.push_str(" AND (priority < ? OR (priority = ? AND id > ?))");
        values.extend([priority.into(), priority.into(), id.into()]);
    }
    sql.push_str(&format!(
        " ORDER BY priority DESC, id LIMIT {}",
        query.limit
    ));
    conn.prepare_cached(&sql)?
        .query_map(params_from_iter(values.iter()), read_item)?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .map(|(id, priority, doc)| item_from_row(id, priority, &doc))
        .collect()
}

fn review_item_counts(
    conn: &Connection,
    project: ProjectId,
    queue: &str,
    now: Timestamp,
) -> Result<ItemCounts> {
    let (pending, in_progress, resolved, dismissed) = conn
        .prepare_cached(
            "SELECT
               COALESCE(SUM(state = 'pending' OR (state = 'in_progress' AND lock_until <= ?3)), 0),
               COALESCE(SUM(state = 'in_progress' AND lock_until > ?3), 0),
               COALESCE(SUM(state = 'resolved'), 0),
               COALESCE(SUM(state = 'dismissed'), 0)
             FROM review_items WHERE project_id = ?1 AND queue = ?2",
        )?
        .query_row(params![project.0, queue, micros(now)], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
    Ok(ItemCounts {
        pending: pending as u64,
        in_progress: in_progress as u64,
        resolved: resolved as u64,
        dismissed: dismissed as u64,
    })
}

/// The condition for an item's state at a time (one `?` for the time where it matters): an
/// expired reservation is pending.
pub(crate) fn state_condition(state: ItemState) -> &'static str {
    match state {
        ItemState::Pending => {
            " AND (state = 'pending' OR (state = 'in_progress' AND lock_until <= ?))"
        }
        ItemState::InProgress => " AND state = 'in_progress' AND lock_until > ?",
        ItemState::Resolved => " AND state = 'resolved'",
        ItemState::Dismissed => " AND state = 'dismissed'",
    }
}

fn traces_matching(
    conn: &Connection,
    project: ProjectId,
    filter: &Filter,
    trace_ids: &[TraceId],
) -> Result<Vec<TraceId>> {
    let mut c = filter::conditions(Subject::Traces, project.0, filter);
    let ids: Vec<&str> = trace_ids.iter().map(TraceId::as_str).collect();
    c.push_trace_ids(&ids);
    let sql = format!("SELECT t.id FROM traces t WHERE {}", c.to_sql());
    conn.prepare(&sql)?
        .query_map(params_from_iter(c.params.iter()), |row| {
            row.get::<_, String>(0)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .map(trace_id)
        .collect()
}

#[async_trait]
impl Review for SqliteStore {
    async fn create_queue(&self, project: ProjectId, queue: &Queue) -> Result<()> {
        let (name, doc) = (queue.name.clone(), serde_json::to_string(queue)?);
        let updated_at = micros(queue.updated_at);
        self.writer
            .run(1, move |tx| {
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO review_queues (project_id, name, updated_at, doc)
                         SELECT id, ?2, ?3, ?4 FROM projects WHERE id = ?1
                         ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![project.0, name, updated_at, doc])?;
                if inserted == 0 {
                    return Err(StoreError::Conflict {
                        item: None,
                        field: "name".into(),
                        message: format!("a queue named {name:?} exists"),
                    });
                }
                Ok(())
            })
            .await
    }

    async fn update_queue(&self, project: ProjectId, queue: &Queue) -> Result<()> {
        let (name, doc) = (queue.name.clone(), serde_json::to_string(queue)?);
        let updated_at = micros(queue.updated_at);
        self.writer
            .run(1, move |tx| {
                let updated = tx
                    .prepare_cached(
                        "UPDATE review_queues SET updated_at = ?3, doc = ?4
                         WHERE project_id = ?1 AND name = ?2",
                    )?
                    .execute(params![project.0, name, updated_at, doc])?;
                if updated == 0 {
                    return Err(queue_not_found(&name));
                }
                Ok(())
            })
            .await
    }

    async fn delete_queue(&self, project: ProjectId, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.writer
            .run(1, move |tx| {
                let items = "SELECT id FROM review_items WHERE project_id = ?1 AND queue = ?2";
                tx.execute(
                    &format!("DELETE FROM review_events WHERE item_id IN ({items})"),
                    params![project.0, name],
                )?;
                tx.execute(
                    &format!("DELETE FROM review_verdicts WHERE item_id IN ({items})"),
                    params![project.0, name],
                )?;
                tx.execute(
                    "DELETE FROM review_items WHERE project_id = ?1 AND queue = ?2",
                    params![project.0, name],
                )?;
                let deleted = tx.execute(
                    "DELETE FROM review_queues WHERE project_id = ?1 AND name = ?2",
                    params![project.0, name],
                )?;
                if deleted == 0 {
                    return Err(queue_not_found(&name));
                }
                Ok(())
            })
            .await
    }

    async fn queue(&self, project: ProjectId, name: &str) -> Result<Option<Queue>> {
        let name = name.to_owned();
        self.readers
            .run(move |conn| load_queue(conn, project, &name))
            .await
    }

    async fn list_queues(&self, project: ProjectId) -> Result<Vec<Queue>> {
        self.readers
            .run(move |conn| {
                conn.prepare_cached(
                    "SELECT doc FROM review_queues WHERE project_id = ?1 ORDER BY name",
                )?
                .query_map(params![project.0], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .iter()
                .map(|doc| Ok(serde_json::from_str(doc)?))
                .collect()
            })
            .await
    }

    async fn enqueue(
        &self,
        project: ProjectId,
        queue: &str,
        traces: &[(TraceId, f64)],
        author: &str,
        now: Timestamp,
    ) -> Result<Vec<Enqueued>> {
        let (queue, traces, author) = (queue.to_owned(), traces.to_vec(), author.to_owned());
        self.writer
            .run(traces.len().max(1), move |tx| {
                enqueue(tx, project, &queue, &traces, &author, now)
            })
            .await
    }

    async fn review_item(
        &self,
        project: ProjectId,
        queue: &str,
        item_id: i64,
    ) -> Result<Option<ReviewItem>> {
        let queue = queue.to_owned();
        self.readers
            .run(move |conn| load_item(conn, project, &queue, item_id))
            .await
    }

    async fn review_items(
        &self,
        project: ProjectId,
        queue: &str,
        query: &ItemQuery,
        now: Timestamp,
    ) -> Result<Vec<ReviewItem>> {
        let (queue, query) = (queue.to_owned(), query.clone());
        self.readers
            .run(move |conn| review_items(conn, project, &queue, &query, now))
            .await
    }

    async fn review_item_counts(
        &self,
        project: ProjectId,
        queue: &str,
        now: Timestamp,
    ) -> Result<ItemCounts> {
        let queue = queue.to_owned();
        self.readers
            .run(move |conn| review_item_counts(conn, project, &queue, now))
            .await
    }

    async fn change_item(
        &self,
        project: ProjectId,
        queue: &str,
        item_id: i64,
        change: &ItemChange,
        now: Timestamp,
    ) -> Result<(ReviewItem, ReviewEvent)> {
        let (queue, change) = (queue.to_owned(), change.clone());
        self.writer
            .run(1, move |tx| {
                change_item(tx, project, &queue, item_id, &change, now)
            })
            .await
    }

    async fn reserve_next(
        &self,
        project: ProjectId,
        queue: &str,
        reviewer: &str,
        now: Timestamp,
    ) -> Result<Option<ReviewItem>> {
        let (queue, reviewer) = (queue.to_owned(), reviewer.to_owned());
        self.writer
            .run(1, move |tx| {
                reserve_next(tx, project, &queue, &reviewer, now)
            })
            .await
    }

    async fn item_history(
        &self,
        project: ProjectId,
        queue: &str,
        item_id: i64,
    ) -> Result<Vec<ReviewEvent>> {
        let queue = queue.to_owned();
        self.readers
            .run(move |conn| {
                if load_item(conn, project, &queue, item_id)?.is_none() {
                    return Err(item_not_found(item_id));
                }
                let rows = conn
                    .prepare_cached(
                        "SELECT id, at, author, action, payload FROM review_events
                         WHERE item_id = ?1 AND project_id = ?2 ORDER BY id",
                    )?
                    .query_map(params![item_id, project.0], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(id, at, author, action, payload)| {
                        Ok(ReviewEvent {
                            id,
                            item_id,
                            at: timestamp(at)?,
                            author,
                            action,
                            payload: serde_json::from_str(&payload)?,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn queue_verdicts(
        &self,
        project: ProjectId,
        queue: &str,
    ) -> Result<Vec<(i64, Vec<Verdict>)>> {
        let queue = queue.to_owned();
        self.readers
            .run(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {ITEM_COLUMNS} FROM review_items
                     WHERE project_id = ?1 AND queue = ?2 AND num_verdicts > 0 ORDER BY id"
                ))?
                .query_map(params![project.0, queue], read_item)?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .map(|(id, priority, doc)| {
                    let item = item_from_row(id, priority, &doc)?;
                    Ok((item.id, item.verdicts))
                })
                .collect()
            })
            .await
    }

    async fn open_items_of(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<ReviewItem>> {
        let trace_ids = trace_ids.to_vec();
        self.readers
            .run(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {ITEM_COLUMNS} FROM review_items
                     WHERE project_id = ?1 AND trace_id = ?2 AND state IN ('pending', 'in_progress')
                     ORDER BY id"
                ))?;
                let mut out = Vec::new();
                for trace in &trace_ids {
                    for row in statement.query_map(params![project.0, trace.as_str()], read_item)? {
                        let (id, priority, doc) = row?;
                        out.push(item_from_row(id, priority, &doc)?);
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn set_priorities(&self, project: ProjectId, priorities: &[(i64, f64)]) -> Result<()> {
        let priorities = priorities.to_vec();
        self.writer
            .run(priorities.len().max(1), move |tx| {
                let mut update = tx.prepare_cached(
                    "UPDATE review_items SET priority = ?3 WHERE id = ?1 AND project_id = ?2",
                )?;
                for (id, priority) in &priorities {
                    update.execute(params![id, project.0, priority])?;
                }
                Ok(())
            })
            .await
    }

    async fn traces_matching(
        &self,
        project: ProjectId,
        filter: &Filter,
        trace_ids: &[TraceId],
    ) -> Result<Vec<TraceId>> {
        let (filter, trace_ids) = (filter.clone(), trace_ids.to_vec());
        self.readers
            .run(move |conn| traces_matching(conn, project, &filter, &trace_ids))
            .await
    }

    async fn traces_by_id(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<StoredTrace>> {
        let trace_ids = trace_ids.to_vec();
        self.readers
            .run(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT seq, doc FROM traces WHERE project_id = ?1 AND id = ?2",
                )?;
                let mut out = Vec::with_capacity(trace_ids.len());
                for id in &trace_ids {
                    let found = statement
                        .query_row(params![project.0, id.as_str()], |row| {
                            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                        })
                        .optional()?;
                    if let Some((seq, doc)) = found {
                        out.push(StoredTrace {
                            seq,
                            trace: serde_json::from_str(&doc)?,
                            spans: Vec::new(),
                        });
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn trace_changes_since(&self, after: i64, limit: u32) -> Result<Vec<TraceChange>> {
        self.readers
            .run(move |conn| {
                conn.prepare_cached(
                    "SELECT seq, project_id, id FROM traces WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )?
                .query_map(params![after, limit], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .map(|(seq, project, id)| {
                    Ok(TraceChange {
                        seq,
                        project: ProjectId(project),
                        trace_id: trace_id(id)?,
                    })
                })
                .collect()
            })
            .await
    }

    async fn queue_sizes(&self, now: Timestamp) -> Result<Vec<QueueSize>> {
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT p.name, i.queue,
                    CASE WHEN i.state = 'in_progress' AND (i.lock_until IS NULL OR i.lock_until <= ?1)
                         THEN 'pending' ELSE i.state END AS item_state,
                    COUNT(*)
             FROM review_items i JOIN projects p ON p.id = i.project_id
             GROUP BY p.name, i.queue, item_state
             ORDER BY p.name, i.queue, item_state",
                    )?
                    .query_map(params![micros(now)], |row| {
                        Ok(QueueSize {
                            project: row.get(0)?,
                            queue: row.get(1)?,
                            state: row.get(2)?,
                            items: row.get::<_, i64>(3)? as u64,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await
    }

    async fn review_progress(&self, name: &str) -> Result<i64> {
        let name = name.to_owned();
        self.readers
            .run(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT position FROM review_progress WHERE name = ?1")?
                    .query_row(params![name], |row| row.get(0))
                    .optional()?
                    .unwrap_or(0))
            })
            .await
    }

    async fn advance_review_progress(&self, name: &str, position: i64) -> Result<()> {
        let name = name.to_owned();
        self.writer
            .run(1, move |tx| {
                tx.prepare_cached(
                    "INSERT INTO review_progress (name, position) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET position = MAX(position, excluded.position)",
                )?
                .execute(params![name, position])?;
                Ok(())
            })
            .await
    }
}
