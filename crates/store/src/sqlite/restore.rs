//! Verbatim writes for copying stores (see [`crate::restore`]).

use async_trait::async_trait;
use feedloop_core::lesson::Lesson;
use feedloop_core::taxonomy::Category;
use feedloop_core::{InjectionId, ProjectId, Timestamp};
use rusqlite::{Connection, params};

use super::lessons::{self, LessonWrite};
use super::{SqliteStore, admin, ingest, micros};
use crate::lessons::Injection;
use crate::restore::{KeyRecord, Restore};
use crate::{Result, StoreError, StoredFeedback, StoredTrace};

#[async_trait]
impl Restore for SqliteStore {
    async fn restore_project(&self, name: &str, created_at: Timestamp) -> Result<ProjectId> {
        let name = name.to_owned();
        self.writer
            .run(1, move |tx| {
                tx.execute(
                    "INSERT INTO projects (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                    params![name, micros(created_at)],
                )?;
                Ok(ProjectId(tx.query_row("SELECT id FROM projects WHERE name = ?1", [&name], |row| row.get(0))?))
            })
            .await
    }

    async fn key_records(&self, project: ProjectId) -> Result<Vec<KeyRecord>> {
        self.readers
            .run(move |conn| {
                let keys = admin::list_keys(conn, project)?;
                keys.into_iter()
                    .map(|key| {
                        let hash: Vec<u8> = conn.query_row(
                            "SELECT hash FROM api_keys WHERE id = ?1",
                            [key.id],
                            |row| row.get(0),
                        )?;
                        let hash = hash.try_into().map_err(|_| {
                            StoreError::Internal("stored key hash is not 32 bytes".into())
                        })?;
                        Ok(KeyRecord { key, hash })
                    })
                    .collect()
            })
            .await
    }

    async fn restore_keys(&self, project: ProjectId, keys: Vec<KeyRecord>) -> Result<()> {
        self.writer
            .run(keys.len(), move |tx| {
                for KeyRecord { key, hash } in &keys {
                    tx.execute(
                        "INSERT INTO api_keys (project_id, name, role, prefix, hash, created_at, revoked_at, allowed_origins)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (hash) DO NOTHING",
                        params![
                            project.0,
                            key.name,
                            key.role.as_str(),
                            key.prefix,
                            &hash[..],
                            micros(key.created_at),
                            key.revoked_at.map(micros),
                            serde_json::to_string(&key.allowed_origins)?
                        ],
                    )?;
                }
                Ok(())
            })
            .await
    }

    async fn restore_categories(
        &self,
        project: ProjectId,
        categories: Vec<Category>,
    ) -> Result<()> {
        self.writer
            .run(categories.len(), move |tx| {
                for category in &categories {
                    tx.execute(
                        "INSERT INTO categories (project_id, name, description, created_at, retired_at)
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (project_id, name) DO NOTHING",
                        params![
                            project.0,
                            category.name,
                            category.description,
                            micros(category.created_at),
                            category.retired_at.map(micros)
                        ],
                    )?;
                }
                Ok(())
            })
            .await
    }

    async fn restore_traces(&self, project: ProjectId, traces: Vec<StoredTrace>) -> Result<()> {
        self.writer
            .run(traces.len(), move |tx| {
                for stored in &traces {
                    restore_trace(tx, project, stored)?;
                }
                Ok(())
            })
            .await
    }

    async fn restore_feedback(
        &self,
        project: ProjectId,
        feedback: Vec<StoredFeedback>,
    ) -> Result<()> {
        let prepared = feedback
            .into_iter()
            .map(|stored| {
                let mut prepared = ingest::PreparedFeedback::new(stored.feedback)?;
                prepared.negative = stored.negative;
                Ok((prepared, stored.received_at, stored.superseded_by))
            })
            .collect::<Result<Vec<_>>>()?;
        self.writer
            .run(prepared.len(), move |tx| {
                for (feedback, received_at, superseded_by) in &prepared {
                    ingest::insert_feedback_row(
                        tx,
                        project,
                        feedback,
                        feedback.negative,
                        *received_at,
                        superseded_by.as_ref(),
                    )?;
                }
                Ok(())
            })
            .await
    }

    async fn restore_lesson(&self, project: ProjectId, versions: Vec<Lesson>) -> Result<()> {
        let writes = versions
            .iter()
            .map(LessonWrite::new)
            .collect::<Result<Vec<_>>>()?;
        self.writer
            .run(writes.len(), move |tx| {
                lessons::restore_lesson(tx, project, &writes)
            })
            .await
    }

    async fn injections_after(
        &self,
        project: ProjectId,
        after: Option<InjectionId>,
        limit: usize,
    ) -> Result<Vec<Injection>> {
        self.readers
            .run(move |conn| lessons::injections_after(conn, project, after.as_ref(), limit))
            .await
    }

    async fn restore_injections(
        &self,
        project: ProjectId,
        injections: Vec<Injection>,
    ) -> Result<()> {
        let docs = injections
            .iter()
            .map(|injection| Ok(serde_json::to_string(&injection.lessons)?))
            .collect::<Result<Vec<String>>>()?;
        self.writer
            .run(injections.len(), move |tx| {
                injections
                    .iter()
                    .zip(&docs)
                    .try_for_each(|(injection, doc)| {
                        lessons::restore_injection(tx, project, injection, doc)
                    })
            })
            .await
    }
}

fn restore_trace(tx: &Connection, project: ProjectId, stored: &StoredTrace) -> Result<()> {
    let inserted = ingest::write_trace_row(
        tx,
        project,
        &stored.trace,
        &serde_json::to_string(&stored.trace)?,
        None,
    )?;
    let Some(seq) = inserted else {
        return Ok(());
    };
    for span in &stored.spans {
        ingest::write_span_row(tx, project, seq, &stored.trace, span.clone())?;
    }
    Ok(())
}
