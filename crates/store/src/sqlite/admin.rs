//! Projects, keys and taxonomy: the small tables that configure a project.

use feedloop_core::ProjectId;
use feedloop_core::Timestamp;
use feedloop_core::auth::KeyRole;
use feedloop_core::taxonomy::{Category, DEFAULT_CATEGORIES};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{micros, timestamp};
use crate::coordination::ChangeTopic;
use crate::{ApiKey, NewKey, Project, Result, StoreError};

pub fn create_project(tx: &Connection, name: &str, now: Timestamp) -> Result<Project> {
    let inserted = tx.execute(
        "INSERT INTO projects (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        params![name, micros(now)],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict {
            item: None,
            field: "name".into(),
            message: format!("a project named {name:?} exists"),
        });
    }
    let id = ProjectId(tx.last_insert_rowid());
    for (category, description) in DEFAULT_CATEGORIES {
        tx.execute(
            "INSERT INTO categories (project_id, name, description, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![id.0, category, description, micros(now)],
        )?;
    }
    Ok(Project {
        id,
        name: name.to_owned(),
        created_at: now,
    })
}

fn project_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn to_project((id, name, created_at): (i64, String, i64)) -> Result<Project> {
    Ok(Project {
        id: ProjectId(id),
        name,
        created_at: timestamp(created_at)?,
    })
}

pub fn project_by_id(conn: &Connection, id: ProjectId) -> Result<Option<Project>> {
    conn.prepare_cached("SELECT id, name, created_at FROM projects WHERE id = ?1")?
        .query_row([id.0], project_from_row)
        .optional()?
        .map(to_project)
        .transpose()
}

pub fn project_by_name(conn: &Connection, name: &str) -> Result<Option<Project>> {
    conn.prepare_cached("SELECT id, name, created_at FROM projects WHERE name = ?1")?
        .query_row([name], project_from_row)
        .optional()?
        .map(to_project)
        .transpose()
}

pub fn list_projects(conn: &Connection) -> Result<Vec<Project>> {
    let rows = conn
        .prepare_cached("SELECT id, name, created_at FROM projects ORDER BY id")?
        .query_map([], project_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(to_project).collect()
}

const KEY_COLUMNS: &str =
    "id, project_id, name, role, prefix, created_at, revoked_at, allowed_origins";

type KeyRow = (i64, i64, String, String, String, i64, Option<i64>, String);

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

fn to_key(
    (id, project_id, name, role, prefix, created_at, revoked_at, origins): KeyRow,
) -> Result<ApiKey> {
    Ok(ApiKey {
        id,
        project_id: ProjectId(project_id),
        name,
        role: KeyRole::parse(&role)
            .ok_or_else(|| StoreError::Internal(format!("stored key role {role:?}")))?,
        prefix,
        created_at: timestamp(created_at)?,
        revoked_at: revoked_at.map(timestamp).transpose()?,
        allowed_origins: serde_json::from_str(&origins)?,
    })
}

/// Appends to the change log, in the caller's transaction (see [`crate::coordination`]).
pub(super) fn log_change(
    tx: &Connection,
    project: ProjectId,
    topic: ChangeTopic,
    now: Timestamp,
) -> Result<()> {
    tx.prepare_cached("INSERT INTO change_log (project_id, topic, at) VALUES (?1, ?2, ?3)")?
        .execute(params![project.0, topic.as_str(), micros(now)])?;
    Ok(())
}

pub fn create_key(
    tx: &Connection,
    project: ProjectId,
    key: &NewKey,
    now: Timestamp,
) -> Result<ApiKey> {
    if project_by_id(tx, project)?.is_none() {
        return Err(StoreError::NotFound {
            what: "project",
            id: project.to_string(),
        });
    }
    tx.execute(
        "INSERT INTO api_keys (project_id, name, role, prefix, hash, created_at, allowed_origins)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            project.0,
            key.name,
            key.role.as_str(),
            key.prefix,
            &key.hash[..],
            micros(now),
            serde_json::to_string(&key.allowed_origins)?
        ],
    )?;
    let id = tx.last_insert_rowid();
    log_change(tx, project, ChangeTopic::Keys, now)?;
    Ok(ApiKey {
        id,
        project_id: project,
        name: key.name.clone(),
        role: key.role,
        prefix: key.prefix.clone(),
        created_at: now,
        revoked_at: None,
        allowed_origins: key.allowed_origins.clone(),
    })
}

pub fn revoke_key(
    tx: &Connection,
    project: ProjectId,
    key_id: i64,
    now: Timestamp,
) -> Result<ApiKey> {
    let revoked = tx.execute(
        "UPDATE api_keys SET revoked_at = ?3 WHERE project_id = ?1 AND id = ?2 AND revoked_at IS NULL",
        params![project.0, key_id, micros(now)],
    )?;
    if revoked > 0 {
        log_change(tx, project, ChangeTopic::Keys, now)?;
    }
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE project_id = ?1 AND id = ?2");
    tx.query_row(&sql, params![project.0, key_id], key_from_row)
        .optional()?
        .map(to_key)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound {
            what: "key",
            id: key_id.to_string(),
        })
}

pub fn key_by_hash(conn: &Connection, hash: &[u8; 32]) -> Result<Option<ApiKey>> {
    conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = ?1"
    ))?
    .query_row([&hash[..]], key_from_row)
    .optional()?
    .map(to_key)
    .transpose()
}

pub fn list_keys(conn: &Connection, project: ProjectId) -> Result<Vec<ApiKey>> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE project_id = ?1 ORDER BY id"
        ))?
        .query_map([project.0], key_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(to_key).collect()
}

type CategoryRow = (String, Option<String>, i64, Option<i64>);

fn category_from_row(row: &Row<'_>) -> rusqlite::Result<CategoryRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_category((name, description, created_at, retired_at): CategoryRow) -> Result<Category> {
    Ok(Category {
        name,
        description,
        created_at: timestamp(created_at)?,
        retired_at: retired_at.map(timestamp).transpose()?,
    })
}

fn category(conn: &Connection, project: ProjectId, name: &str) -> Result<Option<Category>> {
    conn.prepare_cached(
        "SELECT name, description, created_at, retired_at FROM categories WHERE project_id = ?1 AND name = ?2",
    )?
    .query_row(params![project.0, name], category_from_row)
    .optional()?
    .map(to_category)
    .transpose()
}

pub fn taxonomy(conn: &Connection, project: ProjectId) -> Result<Vec<Category>> {
    let rows = conn
        .prepare_cached(
            "SELECT name, description, created_at, retired_at FROM categories WHERE project_id = ?1 ORDER BY name",
        )?
        .query_map([project.0], category_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(to_category).collect()
}

/// The names feedback may pick now.
pub fn active_category_names(conn: &Connection, project: ProjectId) -> Result<Vec<String>> {
    Ok(conn
        .prepare_cached("SELECT name FROM categories WHERE project_id = ?1 AND retired_at IS NULL")?
        .query_map([project.0], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?)
}

pub fn add_category(
    tx: &Connection,
    project: ProjectId,
    name: &str,
    description: Option<&str>,
    now: Timestamp,
) -> Result<Category> {
    tx.execute(
        "INSERT INTO categories (project_id, name, description, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project_id, name) DO UPDATE
         SET retired_at = NULL, description = COALESCE(excluded.description, categories.description)",
        params![project.0, name, description, micros(now)],
    )?;
    log_change(tx, project, ChangeTopic::Taxonomy, now)?;
    category(tx, project, name)?
        .ok_or_else(|| StoreError::Internal("category vanished after insert".into()))
}

pub fn retire_category(
    tx: &Connection,
    project: ProjectId,
    name: &str,
    now: Timestamp,
) -> Result<Category> {
    let retired = tx.execute(
        "UPDATE categories SET retired_at = ?3 WHERE project_id = ?1 AND name = ?2 AND retired_at IS NULL",
        params![project.0, name, micros(now)],
    )?;
    if retired > 0 {
        log_change(tx, project, ChangeTopic::Taxonomy, now)?;
    }
    category(tx, project, name)?.ok_or_else(|| StoreError::NotFound {
        what: "category",
        id: name.to_owned(),
    })
}
