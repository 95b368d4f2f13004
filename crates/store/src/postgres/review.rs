//! Review queues on PostgreSQL (see [`crate::review`]). An item's read-check-write runs in one
//! transaction with the row locked (`FOR UPDATE`); reserving the next item skips rows other
//! transactions hold (`FOR UPDATE SKIP LOCKED`), so reviewers on several replicas never wait
//! for or take the same item. Enqueueing is `INSERT … ON CONFLICT DO NOTHING` on the
//! `(project, queue, trace)` key, so concurrent enqueues of one trace make one item.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use feedloop_core::filter::Filter;
use feedloop_core::review::{ItemAction, ItemState, Queue, ReviewItem, Verdict, apply};
use feedloop_core::{ProjectId, Timestamp, TraceId};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PostgresStore, execute, micros, query, query_opt, timestamp};
use crate::records::trace_id;
use crate::review::{
    Enqueued, ItemChange, ItemCounts, ItemQuery, QueueSize, Review, ReviewEvent, TraceChange,
    item_not_found, queue_not_found, transition_error,
};
use crate::sql_filter::{self, Dialect, Subject};
use crate::{Result, StoreError, StoredTrace};

const ITEM_COLUMNS: &str = "id, priority, doc";

/// An item from its row (`id, priority, doc`): the document, with the id and priority the
/// columns own.
fn item_from_row(row: &Row) -> Result<ReviewItem> {
    let mut item: ReviewItem = serde_json::from_str(row.try_get(2)?)?;
    item.id = row.try_get(0)?;
    item.priority = row.try_get(1)?;
    Ok(item)
}

async fn load_queue(
    client: &impl GenericClient,
    project: ProjectId,
    name: &str,
) -> Result<Option<Queue>> {
    query_opt(
        client,
        "SELECT doc FROM review_queues WHERE project_id = $1 AND name = $2",
        &[&project.0, &name],
    )
    .await?
    .map(|row| Ok(serde_json::from_str(row.try_get(0)?)?))
    .transpose()
}

/// The item, locked until the transaction ends.
async fn lock_item(
    tx: &impl GenericClient,
    project: ProjectId,
    queue: &str,
    item_id: i64,
) -> Result<Option<ReviewItem>> {
    query_opt(
        tx,
        "SELECT id, priority, doc FROM review_items
         WHERE id = $1 AND project_id = $2 AND queue = $3 FOR UPDATE",
        &[&item_id, &project.0, &queue],
    )
    .await?
    .map(|row| item_from_row(&row))
    .transpose()
}

/// Writes an item's document and the columns derived from it, and its new verdicts.
async fn write_item(tx: &impl GenericClient, item: &ReviewItem) -> Result<()> {
    execute(
        tx,
        "UPDATE review_items SET state = $2, assignee = $3, lock_until = $4, num_verdicts = $5,
                updated_at = $6, doc = $7
         WHERE id = $1",
        &[
            &item.id,
            &item.state.as_str(),
            &item.assignee,
            &item.lock_until.map(micros),
            &(item.verdicts.len() as i64),
            &micros(item.updated_at),
            &serde_json::to_string(item)?,
        ],
    )
    .await?;
    let reviewers: Vec<&str> = item.verdicts.iter().map(|v| v.reviewer.as_str()).collect();
    if !reviewers.is_empty() {
        execute(
            tx,
            "INSERT INTO review_verdicts (item_id, reviewer)
             SELECT $1, reviewer FROM unnest($2::text[]) AS reviewer ON CONFLICT DO NOTHING",
            &[&item.id, &reviewers],
        )
        .await?;
    }
    Ok(())
}

async fn record_event(
    tx: &impl GenericClient,
    project: ProjectId,
    item_id: i64,
    author: &str,
    action: &str,
    payload: &serde_json::Value,
    now: Timestamp,
) -> Result<ReviewEvent> {
    let row = super::query_one(
        tx,
        "INSERT INTO review_events (project_id, item_id, at, author, action, payload)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        &[
            &project.0,
            &item_id,
            &micros(now),
            &author,
            &action,
            &payload.to_string(),
        ],
    )
    .await?;
    Ok(ReviewEvent {
        id: row.try_get(0)?,
        item_id,
        at: now,
        author: author.to_owned(),
        action: action.to_owned(),
        payload: payload.clone(),
    })
}

async fn enqueue_one(
    tx: &impl GenericClient,
    project: ProjectId,
    queue: &Queue,
    trace: &TraceId,
    priority: f64,
    author: &str,
    now: Timestamp,
) -> Result<Enqueued> {
    let known = query_opt(
        tx,
        "SELECT 1 FROM traces WHERE project_id = $1 AND id = $2",
        &[&project.0, &trace.as_str()],
    )
    .await?;
    if known.is_none() {
        return Err(StoreError::NotFound {
            what: "trace",
            id: trace.to_string(),
        });
    }
    let inserted = query_opt(
        tx,
        "INSERT INTO review_items (project_id, queue, trace_id, state, priority, num_verdicts, updated_at, doc)
         VALUES ($1, $2, $3, 'pending', $4, 0, $5, '')
         ON CONFLICT (project_id, queue, trace_id) DO NOTHING RETURNING id",
        &[&project.0, &queue.name, &trace.as_str(), &priority, &micros(now)],
    )
    .await?;
    let Some(row) = inserted else {
        // Inserted by someone else, committed (ON CONFLICT waited for it): read it afresh.
        let row = super::query_one(
            tx,
            "SELECT id FROM review_items WHERE project_id = $1 AND queue = $2 AND trace_id = $3",
            &[&project.0, &queue.name, &trace.as_str()],
        )
        .await?;
        return Ok(Enqueued::Existing(row.try_get(0)?));
    };
    let mut item = ReviewItem::new(&queue.name, trace.clone(), queue.reviewers_required, now);
    item.id = row.try_get(0)?;
    item.priority = priority;
    write_item(tx, &item).await?;
    let payload = serde_json::json!({"priority": priority});
    record_event(tx, project, item.id, author, "enqueued", &payload, now).await?;
    Ok(Enqueued::Created(item.id))
}

/// The condition for an item's state at `$3` (the time; see the SQLite twin).
fn state_condition(state: ItemState, placeholder: usize) -> String {
    match state {
        ItemState::Pending => format!(
            " AND (state = 'pending' OR (state = 'in_progress' AND lock_until <= ${placeholder}))"
        ),
        ItemState::InProgress => {
            format!(" AND state = 'in_progress' AND lock_until > ${placeholder}")
        }
        ItemState::Resolved => " AND state = 'resolved'".to_owned(),
        ItemState::Dismissed => " AND state = 'dismissed'".to_owned(),
    }
}

fn event_from_row(row: &Row, item_id: i64) -> Result<ReviewEvent> {
    Ok(ReviewEvent {
        id: row.try_get(0)?,
        item_id,
        at: timestamp(row.try_get(1)?)?,
        author: row.try_get(2)?,
        action: row.try_get(3)?,
        payload: serde_json::from_str(row.try_get(4)?)?,
    })
}

#[async_trait]
impl Review for PostgresStore {
    async fn create_queue(&self, project: ProjectId, queue: &Queue) -> Result<()> {
        let client = self.client().await?;
        let doc = serde_json::to_string(queue)?;
        let project_known = query_opt(
            &client,
            "SELECT 1 FROM projects WHERE id = $1",
            &[&project.0],
        )
        .await?;
        if project_known.is_none() {
            return Err(StoreError::NotFound {
                what: "project",
                id: project.to_string(),
            });
        }
        let inserted = execute(
            &client,
            "INSERT INTO review_queues (project_id, name, updated_at, doc) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&project.0, &queue.name, &micros(queue.updated_at), &doc],
        )
        .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict {
                item: None,
                field: "name".into(),
                message: format!("a queue named {:?} exists", queue.name),
            });
        }
        Ok(())
    }

    async fn update_queue(&self, project: ProjectId, queue: &Queue) -> Result<()> {
        let client = self.client().await?;
        let doc = serde_json::to_string(queue)?;
        let updated = execute(
            &client,
            "UPDATE review_queues SET updated_at = $3, doc = $4 WHERE project_id = $1 AND name = $2",
            &[&project.0, &queue.name, &micros(queue.updated_at), &doc],
        )
        .await?;
        if updated == 0 {
            return Err(queue_not_found(&queue.name));
        }
        Ok(())
    }

    async fn delete_queue(&self, project: ProjectId, name: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let params: &[&(dyn ToSql + Sync)] = &[&project.0, &name];
        let items = "SELECT id FROM review_items WHERE project_id = $1 AND queue = $2";
        execute(
            &tx,
            &format!("DELETE FROM review_events WHERE item_id IN ({items})"),
            params,
        )
        .await?;
        execute(
            &tx,
            &format!("DELETE FROM review_verdicts WHERE item_id IN ({items})"),
            params,
        )
        .await?;
        execute(
            &tx,
            "DELETE FROM review_items WHERE project_id = $1 AND queue = $2",
            params,
        )
        .await?;
        let deleted = execute(
            &tx,
            "DELETE FROM review_queues WHERE project_id = $1 AND name = $2",
            params,
        )
        .await?;
        if deleted == 0 {
            return Err(queue_not_found(name));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn queue(&self, project: ProjectId, name: &str) -> Result<Option<Queue>> {
        let client = self.client().await?;
        load_queue(&client, project, name).await
    }

    async fn list_queues(&self, project: ProjectId) -> Result<Vec<Queue>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT doc FROM review_queues WHERE project_id = $1 ORDER BY name",
            &[&project.0],
        )
        .await?
        .iter()
        .map(|row| Ok(serde_json::from_str(row.try_get(0)?)?))
        .collect()
    }

    async fn enqueue(
        &self,
        project: ProjectId,
        queue: &str,
        traces: &[(TraceId, f64)],
        author: &str,
        now: Timestamp,
    ) -> Result<Vec<Enqueued>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let definition = load_queue(&tx, project, queue)
            .await?
            .ok_or_else(|| queue_not_found(queue))?;
        // In trace order, so that two enqueues sharing traces wait for each other instead of
        // deadlocking; answered in the caller's order.
        let mut order: Vec<usize> = (0..traces.len()).collect();
        order.sort_by(|&a, &b| traces[a].0.cmp(&traces[b].0));
        let mut out = vec![Enqueued::Existing(0); traces.len()];
        for index in order {
            let (trace, priority) = &traces[index];
            out[index] =
                enqueue_one(&tx, project, &definition, trace, *priority, author, now).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn review_item(
        &self,
        project: ProjectId,
        queue: &str,
        item_id: i64,
    ) -> Result<Option<ReviewItem>> {
        let client = self.client().await?;
        query_opt(
            &client,
            "SELECT id, priority, doc FROM review_items WHERE id = $1 AND project_id = $2 AND queue = $3",
            &[&item_id, &project.0, &queue],
        )
        .await?
        .map(|row| item_from_row(&row))
        .transpose()
    }

    async fn review_item_counts(
        &self,
        project: ProjectId,
        queue: &str,
        now: Timestamp,
    ) -> Result<ItemCounts> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT
                   COUNT(*) FILTER (WHERE state = 'pending' OR (state = 'in_progress' AND lock_until <= $3)),
                   COUNT(*) FILTER (WHERE state = 'in_progress' AND lock_until > $3),
                   COUNT(*) FILTER (WHERE state = 'resolved'),
                   COUNT(*) FILTER (WHERE state = 'dismissed')
                 FROM review_items WHERE project_id = $1 AND queue = $2",
                &[&project.0, &queue, &micros(now)],
            )
            .await?;
        let count = |index: usize| -> Result<u64> { Ok(row.try_get::<_, i64>(index)? as u64) };
        Ok(ItemCounts {
            pending: count(0)?,
            in_progress: count(1)?,
            resolved: count(2)?,
            dismissed: count(3)?,
        })
    }

    async fn review_items(
        &self,
        project: ProjectId,
        queue: &str,
        item_query: &ItemQuery,
        now: Timestamp,
    ) -> Result<Vec<ReviewItem>> {
        let client = self.client().await?;
        let now = micros(now);
        let mut sql =
            format!("SELECT {ITEM_COLUMNS} FROM review_items WHERE project_id = $1 AND queue = $2");
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&project.0, &queue];
        if let Some(state) = item_query.state {
            let uses_time = matches!(state, ItemState::Pending | ItemState::InProgress);
            sql.push_str(&state_condition(state, params.len() + 1));
            if uses_time {
                params.push(&now);
            }
        }
        if let Some(assignee) = &item_query.assignee {
            sql.push_str(&format!(" AND assignee = ${}", params.len() + 1));
            params.push(assignee);
        }
        if let Some((priority, id)) = &item_query.after {
            let (p, i) = (params.len() + 1, params.len() + 2);
            sql.push_str(&format!(
                " AND (priority < ${p} OR (priority = ${p} AND id > ${i}))"
            ));
            params.push(priority);
            params.push(id);
        }
        sql.push_str(&format!(
            " ORDER BY priority DESC, id LIMIT {}",
            item_query.limit
        ));
        query(&client, &sql, &params)
            .await?
            .iter()
            .map(item_from_row)
            .collect()
    }

    async fn change_item(
        &self,
        project: ProjectId,
        queue: &str,
        item_id: i64,
        change: &ItemChange,
        now: Timestamp,
    ) -> Result<(ReviewItem, ReviewEvent)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let item = lock_item(&tx, project, queue, item_id)
            .await?
            .ok_or_else(|| item_not_found(item_id))?;
        let item = apply(item, &change.transition, now).map_err(transition_error)?;
        write_item(&tx, &item).await?;
        let event = record_event(
            &tx,
            project,
            item_id,
            &change.author,
            &change.action,
            &change.payload,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok((item, event))
    }

    async fn reserve_next(
        &self,
        project: ProjectId,
        queue: &str,
        reviewer: &str,
        now: Timestamp,
    ) -> Result<Option<ReviewItem>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let definition = load_queue(&tx, project, queue)
            .await?
            .ok_or_else(|| queue_not_found(queue))?;
        let found = query_opt(
            &tx,
            "SELECT id, priority, doc FROM review_items i
             WHERE project_id = $1 AND queue = $2
               AND (state = 'pending' OR (state = 'in_progress' AND lock_until <= $3))
               AND (assignee IS NULL OR assignee = $4)
               AND NOT EXISTS (SELECT 1 FROM review_verdicts v WHERE v.item_id = i.id AND v.reviewer = $4)
             ORDER BY priority DESC, id LIMIT 1
             FOR UPDATE SKIP LOCKED",
            &[&project.0, &queue, &micros(now), &reviewer],
        )
        .await?;
        let Some(row) = found else {
            return Ok(None);
        };
        let item = item_from_row(&row)?;
        let action = ItemAction::Reserve {
            reviewer: reviewer.to_owned(),
            lock: definition.lock(),
        };
        let item = apply(item, &action, now).map_err(transition_error)?;
        write_item(&tx, &item).await?;
        let payload = serde_json::json!({"lock_until": item.lock_until, "next": true});
        record_event(&tx, project, item.id, reviewer, "reserve", &payload, now).await?;
        tx.commit().await?;
        Ok(Some(item))
    }

    async fn item_history(
        &self,
        project: ProjectId,
        queue: &str,
        item_id: i64,
    ) -> Result<Vec<ReviewEvent>> {
        if self.review_item(project, queue, item_id).await?.is_none() {
            return Err(item_not_found(item_id));
        }
        let client = self.client().await?;
        query(
            &client,
            "SELECT id, at, author, action, payload FROM review_events
             WHERE item_id = $1 AND project_id = $2 ORDER BY id",
            &[&item_id, &project.0],
        )
        .await?
        .iter()
        .map(|row| event_from_row(row, item_id))
        .collect()
    }

    async fn queue_verdicts(
        &self,
        project: ProjectId,
        queue: &str,
    ) -> Result<Vec<(i64, Vec<Verdict>)>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT id, priority, doc FROM review_items
             WHERE project_id = $1 AND queue = $2 AND num_verdicts > 0 ORDER BY id",
            &[&project.0, &queue],
        )
        .await?
        .iter()
        .map(|row| {
            let item = item_from_row(row)?;
            Ok((item.id, item.verdicts))
        })
        .collect()
    }

    async fn open_items_of(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<ReviewItem>> {
        let client = self.client().await?;
        let ids: Vec<&str> = trace_ids.iter().map(TraceId::as_str).collect();
        query(
            &client,
            "SELECT id, priority, doc FROM review_items
             WHERE project_id = $1 AND trace_id = ANY ($2) AND state IN ('pending', 'in_progress')
             ORDER BY id",
            &[&project.0, &ids],
        )
        .await?
        .iter()
        .map(item_from_row)
        .collect()
    }

    async fn set_priorities(&self, project: ProjectId, priorities: &[(i64, f64)]) -> Result<()> {
        let client = self.client().await?;
        let (ids, values): (Vec<i64>, Vec<f64>) = priorities.iter().copied().unzip();
        execute(
            &client,
            "UPDATE review_items i SET priority = p.priority
             FROM unnest($2::bigint[], $3::float8[]) AS p (id, priority)
             WHERE i.id = p.id AND i.project_id = $1",
            &[&project.0, &ids, &values],
        )
        .await?;
        Ok(())
    }

    async fn traces_matching(
        &self,
        project: ProjectId,
        filter: &Filter,
        trace_ids: &[TraceId],
    ) -> Result<Vec<TraceId>> {
        let client = self.client().await?;
        let mut c = sql_filter::conditions(Dialect::Postgres, Subject::Traces, project.0, filter);
        let ids: Vec<&str> = trace_ids.iter().map(TraceId::as_str).collect();
        c.push_trace_ids(&ids);
        let sql = format!("SELECT t.id FROM traces t WHERE {}", c.to_sql());
        // Unprepared, like the lists in `read.rs`: the text varies with the filter.
        client
            .query(sql.as_str(), &c.postgres_params())
            .await?
            .iter()
            .map(|row| trace_id(row.try_get(0)?))
            .collect()
    }

    async fn traces_by_id(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<StoredTrace>> {
        let client = self.client().await?;
        let ids: Vec<&str> = trace_ids.iter().map(TraceId::as_str).collect();
        query(
            &client,
            "SELECT seq, doc FROM traces WHERE project_id = $1 AND id = ANY ($2)",
            &[&project.0, &ids],
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

    async fn trace_changes_since(&self, after: i64, limit: u32) -> Result<Vec<TraceChange>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT seq, project_id, id FROM traces WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &i64::from(limit)],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(TraceChange {
                seq: row.try_get(0)?,
                project: ProjectId(row.try_get(1)?),
                trace_id: trace_id(row.try_get(2)?)?,
            })
        })
        .collect()
    }

    async fn queue_sizes(&self, now: Timestamp) -> Result<Vec<QueueSize>> {
        let rows = query(
            &self.client().await?,
            "SELECT p.name, i.queue,
                    CASE WHEN i.state = 'in_progress' AND (i.lock_until IS NULL OR i.lock_until <= $1)
                         THEN 'pending' ELSE i.state END AS item_state,
                    COUNT(*)
             FROM review_items i JOIN projects p ON p.id = i.project_id
             GROUP BY p.name, i.queue, item_state
             ORDER BY p.name, i.queue, item_state",
            &[&micros(now)],
        )
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(QueueSize {
                    project: row.try_get(0)?,
                    queue: row.try_get(1)?,
                    state: row.try_get(2)?,
                    items: row.try_get::<_, i64>(3)? as u64,
                })
            })
            .collect()
    }

    async fn review_progress(&self, name: &str) -> Result<i64> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "SELECT position FROM review_progress WHERE name = $1",
            &[&name],
        )
        .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?.unwrap_or(0))
    }

    async fn advance_review_progress(&self, name: &str, position: i64) -> Result<()> {
        let client = self.client().await?;
        execute(
            &client,
            "INSERT INTO review_progress (name, position) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE
             SET position = GREATEST(review_progress.position, excluded.position)",
            &[&name, &position],
        )
        .await?;
        Ok(())
    }
}
