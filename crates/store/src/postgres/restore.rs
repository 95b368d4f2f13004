//! Verbatim writes for copying stores, on PostgreSQL (see [`crate::restore`]). Each call is one
//! transaction; rows that exist are left alone, so a copy can run again.

use async_trait::async_trait;
use feedloop_core::lesson::Lesson;
use feedloop_core::taxonomy::Category;
use feedloop_core::{InjectionId, ProjectId, Timestamp};

use super::lessons;
use super::{PostgresStore, admin, execute, micros, query_one, query_opt, rows};
use crate::lessons::Injection;
use crate::restore::{KeyRecord, Restore};
use crate::{Result, StoreError, StoredFeedback, StoredTrace};

#[async_trait]
impl Restore for PostgresStore {
    async fn restore_project(&self, name: &str, created_at: Timestamp) -> Result<ProjectId> {
        let client = self.client().await?;
        execute(
            &client,
            "INSERT INTO projects (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &micros(created_at)],
        )
        .await?;
        let row = query_one(&client, "SELECT id FROM projects WHERE name = $1", &[&name]).await?;
        Ok(ProjectId(row.try_get(0)?))
    }

    async fn key_records(&self, project: ProjectId) -> Result<Vec<KeyRecord>> {
        let client = self.client().await?;
        let keys = admin::list_keys(&client, project).await?;
        let mut records = Vec::with_capacity(keys.len());
        for key in keys {
            let row = query_one(
                &client,
                "SELECT hash FROM api_keys WHERE id = $1",
                &[&key.id],
            )
            .await?;
            let hash: &[u8] = row.try_get(0)?;
            let hash = hash
                .try_into()
                .map_err(|_| StoreError::Internal("stored key hash is not 32 bytes".into()))?;
            records.push(KeyRecord { key, hash });
        }
        Ok(records)
    }

    async fn restore_keys(&self, project: ProjectId, keys: Vec<KeyRecord>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for KeyRecord { key, hash } in &keys {
            execute(
                &tx,
                "INSERT INTO api_keys (project_id, name, role, prefix, hash, created_at, revoked_at, allowed_origins)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (hash) DO NOTHING",
                &[
                    &project.0,
                    &key.name,
                    &key.role.as_str(),
                    &key.prefix,
                    &&hash[..],
                    &micros(key.created_at),
                    &key.revoked_at.map(micros),
                    &serde_json::to_string(&key.allowed_origins)?,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn restore_categories(
        &self,
        project: ProjectId,
        categories: Vec<Category>,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for category in &categories {
            execute(
                &tx,
                "INSERT INTO categories (project_id, name, description, created_at, retired_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id, name) DO NOTHING",
                &[
                    &project.0,
                    &category.name,
                    &category.description,
                    &micros(category.created_at),
                    &category.retired_at.map(micros),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn restore_traces(&self, project: ProjectId, traces: Vec<StoredTrace>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for stored in &traces {
            let exists = query_opt(
                &tx,
                "SELECT seq FROM traces WHERE project_id = $1 AND id = $2",
                &[&project.0, &stored.trace.id.as_str()],
            )
            .await?;
            if exists.is_some() {
                continue;
            }
            // `None` only if another writer stored the trace meanwhile: it is left alone too.
            if rows::write_trace_row(&tx, project, &stored.trace, None)
                .await?
                .is_none()
            {
                continue;
            }
            for span in &stored.spans {
                rows::write_span_row(&tx, project, &stored.trace.id, span).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn restore_feedback(
        &self,
        project: ProjectId,
        feedback: Vec<StoredFeedback>,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for stored in &feedback {
            rows::insert_feedback_row(
                &tx,
                project,
                &stored.feedback,
                stored.received_at,
                stored.superseded_by.as_ref(),
                stored.negative,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn restore_lesson(&self, project: ProjectId, versions: Vec<Lesson>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lessons::restore_lesson(&tx, project, &versions).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn injections_after(
        &self,
        project: ProjectId,
        after: Option<InjectionId>,
        limit: usize,
    ) -> Result<Vec<Injection>> {
        let client = self.client().await?;
        lessons::injections_after(&client, project, after.as_ref(), limit).await
    }

    async fn restore_injections(
        &self,
        project: ProjectId,
        injections: Vec<Injection>,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for injection in &injections {
            lessons::restore_injection(&tx, project, injection).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
