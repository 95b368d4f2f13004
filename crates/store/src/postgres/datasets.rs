//! Datasets, their items and versions on PostgreSQL (see [`crate::datasets`]), with the same
//! rules as `sqlite/datasets.rs`.
//!
//! Item writes and version creation lock the dataset's row (`FOR UPDATE`) and hold it to
//! commit: a version's watermark is read only after every earlier item write committed, and two
//! writers of the same trace cannot both insert it.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use feedloop_core::dataset::{Dataset, DatasetItem};
use feedloop_core::{ProjectId, Timestamp, TraceId};

use super::{PostgresStore, admin, execute, micros, query, query_one, query_opt, timestamp};
use crate::datasets::{
    DatasetSummary, DatasetVersion, Datasets, StoredDatasetItem, dataset_not_found, id_conflict,
    name_conflict, taken_by_other,
};
use crate::embeddings::vector_from_bytes;
use crate::{Outcome, Result, StoreError};

/// The row id of the project's dataset called `name`, locked to commit when `lock`.
async fn dataset_id(
    client: &impl GenericClient,
    project: ProjectId,
    name: &str,
    lock: bool,
) -> Result<i64> {
    let sql = if lock {
        "SELECT id FROM datasets WHERE project_id = $1 AND name = $2 FOR UPDATE"
    } else {
        "SELECT id FROM datasets WHERE project_id = $1 AND name = $2"
    };
    let row = query_opt(client, sql, &[&project.0, &name]).await?;
    match row {
        Some(row) => Ok(row.try_get(0)?),
        None => Err(dataset_not_found(name)),
    }
}

async fn summary(
    client: &impl GenericClient,
    project: ProjectId,
    row_id: i64,
    doc: &str,
) -> Result<DatasetSummary> {
    let dataset: Dataset = serde_json::from_str(doc)?;
    let row = query_one(
        client,
        "SELECT (SELECT COUNT(*) FROM dataset_items WHERE dataset_id = $1 AND project_id = $2),
                (SELECT COALESCE(MAX(version), 0) FROM dataset_versions WHERE dataset_id = $1 AND project_id = $2)",
        &[&row_id, &project.0],
    )
    .await?;
    let (num_items, latest): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    Ok(DatasetSummary {
        dataset,
        num_items: num_items.unsigned_abs(),
        latest_version: u32::try_from(latest).unwrap_or(u32::MAX),
    })
}

fn version_number(number: i64) -> Result<u32> {
    u32::try_from(number)
        .map_err(|_| StoreError::Internal(format!("version {number} out of range")))
}

#[async_trait]
impl Datasets for PostgresStore {
    async fn create_dataset(&self, project: ProjectId, dataset: &Dataset) -> Result<()> {
        let doc = serde_json::to_string(dataset)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if admin::project_by_id(&tx, project).await?.is_none() {
            return Err(StoreError::NotFound {
                what: "project",
                id: project.to_string(),
            });
        }
        let written = execute(
            &tx,
            "INSERT INTO datasets (project_id, name, created_at, doc) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&project.0, &dataset.name, &micros(dataset.created_at), &doc],
        )
        .await?;
        if written == 0 {
            return Err(name_conflict(&dataset.name));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn dataset(&self, project: ProjectId, name: &str) -> Result<Option<DatasetSummary>> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "SELECT id, doc FROM datasets WHERE project_id = $1 AND name = $2",
            &[&project.0, &name],
        )
        .await?;
        match row {
            Some(row) => Ok(Some(
                summary(&client, project, row.try_get(0)?, row.try_get(1)?).await?,
            )),
            None => Ok(None),
        }
    }

    async fn list_datasets(&self, project: ProjectId) -> Result<Vec<DatasetSummary>> {
        let client = self.client().await?;
        let rows = query(
            &client,
            "SELECT id, doc FROM datasets WHERE project_id = $1 ORDER BY name",
            &[&project.0],
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(summary(&client, project, row.try_get(0)?, row.try_get(1)?).await?);
        }
        Ok(out)
    }

    async fn add_dataset_items(
        &self,
        project: ProjectId,
        dataset: &str,
        items: &[DatasetItem],
    ) -> Result<Vec<Outcome>> {
        let prepared = items
            .iter()
            .map(|item| {
                Ok((
                    item.provenance_key(),
                    item.content_hash().to_vec(),
                    serde_json::to_string(item)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let dataset = dataset_id(&tx, project, dataset, true).await?;
        let mut outcomes = Vec::with_capacity(items.len());
        for (index, (item, (key, hash, doc))) in items.iter().zip(&prepared).enumerate() {
            let id = item.id.as_str();
            let written = execute(
                &tx,
                "INSERT INTO dataset_items (project_id, dataset_id, id, provenance_key, content_hash, doc)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&project.0, &dataset, &id, key, hash, doc],
            )
            .await?;
            if written == 1 {
                outcomes.push(Outcome::Created);
                continue;
            }
            let stored = query_opt(
                &tx,
                "SELECT content_hash, provenance_key FROM dataset_items WHERE dataset_id = $1 AND id = $2",
                &[&dataset, &id],
            )
            .await?;
            if let Some(row) = stored {
                let (stored_hash, stored_key): (Vec<u8>, Option<String>) =
                    (row.try_get(0)?, row.try_get(1)?);
                if taken_by_other(&stored_hash, &stored_key, hash, key) {
                    return Err(id_conflict(index, id));
                }
            }
            outcomes.push(Outcome::Duplicate);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn dataset_items(
        &self,
        project: ProjectId,
        dataset: &str,
        after: i64,
        up_to: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredDatasetItem>> {
        let client = self.client().await?;
        let dataset = dataset_id(&client, project, dataset, false).await?;
        let rows = query(
            &client,
            "SELECT seq, doc FROM dataset_items
             WHERE dataset_id = $1 AND project_id = $2 AND seq > $3 AND seq <= $4
             ORDER BY seq LIMIT $5",
            &[
                &dataset,
                &project.0,
                &after,
                &up_to.unwrap_or(i64::MAX),
                &i64::from(limit),
            ],
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredDatasetItem {
                    seq: row.try_get(0)?,
                    item: serde_json::from_str(row.try_get(1)?)?,
                })
            })
            .collect()
    }

    async fn create_dataset_version(
        &self,
        project: ProjectId,
        dataset: &str,
        created_by: Option<&str>,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<DatasetVersion> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let dataset = dataset_id(&tx, project, dataset, true).await?;
        let row = query_one(
            &tx,
            "SELECT COALESCE(MAX(seq), 0)::BIGINT, COUNT(*),
                (SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions WHERE dataset_id = $1)::BIGINT
             FROM dataset_items WHERE dataset_id = $1 AND project_id = $2",
            &[&dataset, &project.0],
        )
        .await?;
        let (item_seq, num_items, number): (i64, i64, i64) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        execute(
            &tx,
            "INSERT INTO dataset_versions
               (dataset_id, version, project_id, item_seq, num_items, created_at, created_by, note)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &dataset,
                &number,
                &project.0,
                &item_seq,
                &num_items,
                &micros(now),
                &created_by,
                &note,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(DatasetVersion {
            number: version_number(number)?,
            item_seq,
            num_items: num_items.unsigned_abs(),
            created_at: now,
            created_by: created_by.map(str::to_owned),
            note: note.map(str::to_owned),
        })
    }

    async fn dataset_versions(
        &self,
        project: ProjectId,
        dataset: &str,
    ) -> Result<Vec<DatasetVersion>> {
        let client = self.client().await?;
        let dataset = dataset_id(&client, project, dataset, false).await?;
        let rows = query(
            &client,
            "SELECT version, item_seq, num_items, created_at, created_by, note FROM dataset_versions
             WHERE dataset_id = $1 AND project_id = $2 ORDER BY version",
            &[&dataset, &project.0],
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DatasetVersion {
                    number: version_number(row.try_get(0)?)?,
                    item_seq: row.try_get(1)?,
                    num_items: row.try_get::<_, i64>(2)?.unsigned_abs(),
                    created_at: timestamp(row.try_get(3)?)?,
                    created_by: row.try_get(4)?,
                    note: row.try_get(5)?,
                })
            })
            .collect()
    }

    async fn vectors_of_traces(
        &self,
        project: ProjectId,
        model: &str,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, Vec<f32>)>> {
        let ids: Vec<&str> = trace_ids.iter().map(|id| id.as_str()).collect();
        let client = self.client().await?;
        let rows = query(
            &client,
            "SELECT t.id, e.vector FROM traces t
             JOIN embeddings e ON e.model = $1 AND e.trace_seq = t.seq AND e.project_id = t.project_id
             WHERE t.project_id = $2 AND t.id = ANY ($3)",
            &[&model, &project.0, &ids],
        )
        .await?;
        rows.iter()
            .map(|row| {
                let id = TraceId::parse("trace_id", row.try_get::<_, String>(0)?)
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
                Ok((id, vector_from_bytes(row.try_get(1)?)?))
            })
            .collect()
    }
}
