//! Datasets, their items and versions on SQLite (see [`crate::datasets`]). The one writer
//! thread serialises item writes and version creation.

use async_trait::async_trait;
use feedloop_core::dataset::{Dataset, DatasetItem};
use feedloop_core::{ProjectId, Timestamp, TraceId};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, micros, timestamp};
use crate::datasets::{
    DatasetSummary, DatasetVersion, Datasets, StoredDatasetItem, dataset_not_found, id_conflict,
    name_conflict, taken_by_other,
};
use crate::embeddings::vector_from_bytes;
use crate::{Outcome, Result, StoreError};

/// The row id of the project's dataset called `name`.
fn dataset_id(conn: &Connection, project: ProjectId, name: &str) -> Result<i64> {
    conn.prepare_cached("SELECT id FROM datasets WHERE project_id = ?1 AND name = ?2")?
        .query_row(params![project.0, name], |row| row.get(0))
        .optional()?
        .ok_or_else(|| dataset_not_found(name))
}

fn summary(
    conn: &Connection,
    project: ProjectId,
    row_id: i64,
    doc: &str,
) -> Result<DatasetSummary> {
    let dataset: Dataset = serde_json::from_str(doc)?;
    let (num_items, latest_version): (i64, i64) = conn
        .prepare_cached(
            "SELECT (SELECT COUNT(*) FROM dataset_items WHERE dataset_id = ?1 AND project_id = ?2),
                    (SELECT COALESCE(MAX(version), 0) FROM dataset_versions WHERE dataset_id = ?1 AND project_id = ?2)",
        )?
        .query_row(params![row_id, project.0], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(DatasetSummary {
        dataset,
        num_items: num_items.unsigned_abs(),
        latest_version: u32::try_from(latest_version).unwrap_or(u32::MAX),
    })
}

fn add_items(
    conn: &Connection,
    project: ProjectId,
    name: &str,
    items: &[(DatasetItem, Option<String>, [u8; 32], String)],
) -> Result<Vec<Outcome>> {
    let dataset = dataset_id(conn, project, name)?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO dataset_items (project_id, dataset_id, id, provenance_key, content_hash, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
    )?;
    let mut by_id = conn.prepare_cached(
        "SELECT content_hash, provenance_key FROM dataset_items WHERE dataset_id = ?1 AND id = ?2",
    )?;
    let mut outcomes = Vec::with_capacity(items.len());
    for (index, (item, key, hash, doc)) in items.iter().enumerate() {
        let id = item.id.as_str();
        let written = insert.execute(params![project.0, dataset, id, key, &hash[..], doc])?;
        if written == 1 {
            outcomes.push(Outcome::Created);
            continue;
        }
        let stored: Option<(Vec<u8>, Option<String>)> = by_id
            .query_row(params![dataset, id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        match stored {
            Some((stored_hash, stored_key))
                if taken_by_other(&stored_hash, &stored_key, hash, key) =>
            {
                return Err(id_conflict(index, id));
            }
            _ => outcomes.push(Outcome::Duplicate),
        }
    }
    Ok(outcomes)
}

fn versions(conn: &Connection, project: ProjectId, dataset: i64) -> Result<Vec<DatasetVersion>> {
    let rows = conn
        .prepare_cached(
            "SELECT version, item_seq, num_items, created_at, created_by, note FROM dataset_versions
             WHERE dataset_id = ?1 AND project_id = ?2 ORDER BY version",
        )?
        .query_map(params![dataset, project.0], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(
            |(number, item_seq, num_items, created_at, created_by, note)| {
                Ok(DatasetVersion {
                    number: u32::try_from(number).map_err(|_| {
                        StoreError::Internal(format!("version {number} out of range"))
                    })?,
                    item_seq,
                    num_items: num_items.unsigned_abs(),
                    created_at: timestamp(created_at)?,
                    created_by,
                    note,
                })
            },
        )
        .collect()
}

#[async_trait]
impl Datasets for SqliteStore {
    async fn create_dataset(&self, project: ProjectId, dataset: &Dataset) -> Result<()> {
        let doc = serde_json::to_string(dataset)?;
        let (name, created_at) = (dataset.name.clone(), micros(dataset.created_at));
        self.writer
            .run(1, move |tx| {
                let exists: Option<i64> = tx
                    .prepare_cached("SELECT id FROM projects WHERE id = ?1")?
                    .query_row(params![project.0], |row| row.get(0))
                    .optional()?;
                if exists.is_none() {
                    return Err(StoreError::NotFound {
                        what: "project",
                        id: project.to_string(),
                    });
                }
                let written = tx
                    .prepare_cached(
                        "INSERT INTO datasets (project_id, name, created_at, doc) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![project.0, name, created_at, doc])?;
                if written == 0 {
                    return Err(name_conflict(&name));
                }
                Ok(())
            })
            .await
    }

    async fn dataset(&self, project: ProjectId, name: &str) -> Result<Option<DatasetSummary>> {
        let name = name.to_owned();
        self.readers
            .run(move |conn| {
                let row: Option<(i64, String)> = conn
                    .prepare_cached(
                        "SELECT id, doc FROM datasets WHERE project_id = ?1 AND name = ?2",
                    )?
                    .query_row(params![project.0, name], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()?;
                row.map(|(id, doc)| summary(conn, project, id, &doc))
                    .transpose()
            })
            .await
    }

    async fn list_datasets(&self, project: ProjectId) -> Result<Vec<DatasetSummary>> {
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT id, doc FROM datasets WHERE project_id = ?1 ORDER BY name",
                    )?
                    .query_map(params![project.0], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.iter()
                    .map(|(id, doc)| summary(conn, project, *id, doc))
                    .collect()
            })
            .await
    }

    async fn add_dataset_items(
        &self,
        project: ProjectId,
        dataset: &str,
        items: &[DatasetItem],
    ) -> Result<Vec<Outcome>> {
        // Serialising and hashing happen here, beside the writer thread.
        let prepared = items
            .iter()
            .map(|item| {
                Ok((
                    item.clone(),
                    item.provenance_key(),
                    item.content_hash(),
                    serde_json::to_string(item)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let name = dataset.to_owned();
        self.writer
            .run(prepared.len().max(1), move |tx| {
                add_items(tx, project, &name, &prepared)
            })
            .await
    }

    async fn dataset_items(
        &self,
        project: ProjectId,
        dataset: &str,
        after: i64,
        up_to: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredDatasetItem>> {
        let name = dataset.to_owned();
        self.readers
            .run(move |conn| {
                let dataset = dataset_id(conn, project, &name)?;
                let rows = conn
                    .prepare_cached(
                        "SELECT seq, doc FROM dataset_items
                         WHERE dataset_id = ?1 AND project_id = ?2 AND seq > ?3 AND seq <= ?4
                         ORDER BY seq LIMIT ?5",
                    )?
                    .query_map(
                        params![dataset, project.0, after, up_to.unwrap_or(i64::MAX), limit],
                        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(seq, doc)| {
                        Ok(StoredDatasetItem {
                            seq,
                            item: serde_json::from_str(&doc)?,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn create_dataset_version(
        &self,
        project: ProjectId,
        dataset: &str,
        created_by: Option<&str>,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<DatasetVersion> {
        let (name, created_by, note) = (
            dataset.to_owned(),
            created_by.map(str::to_owned),
            note.map(str::to_owned),
        );
        self.writer
            .run(1, move |tx| {
                let dataset = dataset_id(tx, project, &name)?;
                let (item_seq, num_items, number): (i64, i64, i64) = tx
                    .prepare_cached(
                        "SELECT COALESCE(MAX(seq), 0), COUNT(*),
                            (SELECT COALESCE(MAX(version), 0) + 1 FROM dataset_versions WHERE dataset_id = ?1)
                         FROM dataset_items WHERE dataset_id = ?1 AND project_id = ?2",
                    )?
                    .query_row(params![dataset, project.0], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })?;
                tx.prepare_cached(
                    "INSERT INTO dataset_versions
                       (dataset_id, version, project_id, item_seq, num_items, created_at, created_by, note)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    dataset,
                    number,
                    project.0,
                    item_seq,
                    num_items,
                    micros(now),
                    created_by,
                    note
                ])?;
                Ok(DatasetVersion {
                    number: u32::try_from(number)
                        .map_err(|_| StoreError::Internal(format!("version {number} out of range")))?,
                    item_seq,
                    num_items: num_items.unsigned_abs(),
                    created_at: now,
                    created_by,
                    note,
                })
            })
            .await
    }

    async fn dataset_versions(
        &self,
        project: ProjectId,
        dataset: &str,
    ) -> Result<Vec<DatasetVersion>> {
        let name = dataset.to_owned();
        self.readers
            .run(move |conn| {
                let dataset = dataset_id(conn, project, &name)?;
                versions(conn, project, dataset)
            })
            .await
    }

    async fn vectors_of_traces(
        &self,
        project: ProjectId,
        model: &str,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, Vec<f32>)>> {
        let (model, trace_ids) = (model.to_owned(), trace_ids.to_vec());
        self.readers
            .run(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT e.vector FROM traces t
                     JOIN embeddings e ON e.model = ?1 AND e.trace_seq = t.seq AND e.project_id = t.project_id
                     WHERE t.project_id = ?2 AND t.id = ?3",
                )?;
                let mut out = Vec::with_capacity(trace_ids.len());
                for id in trace_ids {
                    let bytes: Option<Vec<u8>> = statement
                        .query_row(params![model, project.0, id.as_str()], |row| row.get(0))
                        .optional()?;
                    if let Some(bytes) = bytes {
                        out.push((id, vector_from_bytes(&bytes)?));
                    }
                }
                Ok(out)
            })
            .await
    }
}
