//! Projects, keys and taxonomy on PostgreSQL: the small tables that configure a project. Writes
//! run in the caller's transaction.

use deadpool_postgres::GenericClient;
use feedloop_core::auth::KeyRole;
use feedloop_core::taxonomy::{Category, DEFAULT_CATEGORIES};
use feedloop_core::{ProjectId, Timestamp};
use tokio_postgres::Row;

use super::{execute, micros, query, query_opt, timestamp};
use crate::coordination::ChangeTopic;
use crate::{ApiKey, NewKey, Project, Result, StoreError};

/// The advisory lock that serialises appends to the change log (see [`log_change`]). The
/// two-key form keeps it apart from the one-key locks of migrations and supersession.
const CHANGE_LOG_LOCK: (i32, i32) = (0x6665_6564, 1); // "feed", 1

pub async fn create_project(
    tx: &impl GenericClient,
    name: &str,
    now: Timestamp,
) -> Result<Project> {
    let inserted = query_opt(
        tx,
        "INSERT INTO projects (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id",
        &[&name, &micros(now)],
    )
    .await?;
    let Some(row) = inserted else {
        return Err(StoreError::Conflict {
            item: None,
            field: "name".into(),
            message: format!("a project named {name:?} exists"),
        });
    };
    let id = ProjectId(row.try_get(0)?);
    let (names, descriptions): (Vec<&str>, Vec<&str>) = DEFAULT_CATEGORIES.iter().copied().unzip();
    execute(
        tx,
        "INSERT INTO categories (project_id, name, description, created_at)
         SELECT $1, name, description, $4 FROM unnest($2::text[], $3::text[]) AS d (name, description)",
        &[&id.0, &names, &descriptions, &micros(now)],
    )
    .await?;
    Ok(Project {
        id,
        name: name.to_owned(),
        created_at: now,
    })
}

fn to_project(row: &Row) -> Result<Project> {
    Ok(Project {
        id: ProjectId(row.try_get(0)?),
        name: row.try_get(1)?,
        created_at: timestamp(row.try_get(2)?)?,
    })
}

pub async fn project_by_id(conn: &impl GenericClient, id: ProjectId) -> Result<Option<Project>> {
    query_opt(
        conn,
        "SELECT id, name, created_at FROM projects WHERE id = $1",
        &[&id.0],
    )
    .await?
    .as_ref()
    .map(to_project)
    .transpose()
}

pub async fn project_by_name(conn: &impl GenericClient, name: &str) -> Result<Option<Project>> {
    query_opt(
        conn,
        "SELECT id, name, created_at FROM projects WHERE name = $1",
        &[&name],
    )
    .await?
    .as_ref()
    .map(to_project)
    .transpose()
}

pub async fn list_projects(conn: &impl GenericClient) -> Result<Vec<Project>> {
    query(
        conn,
        "SELECT id, name, created_at FROM projects ORDER BY id",
        &[],
    )
    .await?
    .iter()
    .map(to_project)
    .collect()
}

const KEY_COLUMNS: &str =
    "id, project_id, name, role, prefix, created_at, revoked_at, allowed_origins";

fn to_key(row: &Row) -> Result<ApiKey> {
    let role: String = row.try_get(3)?;
    Ok(ApiKey {
        id: row.try_get(0)?,
        project_id: ProjectId(row.try_get(1)?),
        name: row.try_get(2)?,
        role: KeyRole::parse(&role)
            .ok_or_else(|| StoreError::Internal(format!("stored key role {role:?}")))?,
        prefix: row.try_get(4)?,
        created_at: timestamp(row.try_get(5)?)?,
        revoked_at: row
            .try_get::<_, Option<i64>>(6)?
            .map(timestamp)
            .transpose()?,
        allowed_origins: serde_json::from_str(row.try_get(7)?)?,
    })
}

/// Appends to the change log, in the caller's transaction (see [`crate::coordination`]).
///
/// Followers read the log by sequence number, so a change must never become visible after a
/// change with a higher number: an identity value is taken at insert but becomes visible at
/// commit, and two transactions could commit in the other order. The advisory lock, held until
/// the transaction ends, makes appends one at a time, so sequence order is commit order. These
/// writes are rare (keys and taxonomy), so the lock costs nothing that matters.
pub(super) async fn log_change(
    tx: &impl GenericClient,
    project: ProjectId,
    topic: ChangeTopic,
    now: Timestamp,
) -> Result<()> {
    execute(
        tx,
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&CHANGE_LOG_LOCK.0, &CHANGE_LOG_LOCK.1],
    )
    .await?;
    execute(
        tx,
        "INSERT INTO change_log (project_id, topic, at) VALUES ($1, $2, $3)",
        &[&project.0, &topic.as_str(), &micros(now)],
    )
    .await?;
    Ok(())
}

pub async fn create_key(
    tx: &impl GenericClient,
    project: ProjectId,
    key: &NewKey,
    now: Timestamp,
) -> Result<ApiKey> {
    if project_by_id(tx, project).await?.is_none() {
        return Err(StoreError::NotFound {
            what: "project",
            id: project.to_string(),
        });
    }
    let row = super::query_one(
        tx,
        "INSERT INTO api_keys (project_id, name, role, prefix, hash, created_at, allowed_origins)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[
            &project.0,
            &key.name,
            &key.role.as_str(),
            &key.prefix,
            &&key.hash[..],
            &micros(now),
            &serde_json::to_string(&key.allowed_origins)?,
        ],
    )
    .await?;
    log_change(tx, project, ChangeTopic::Keys, now).await?;
    Ok(ApiKey {
        id: row.try_get(0)?,
        project_id: project,
        name: key.name.clone(),
        role: key.role,
        prefix: key.prefix.clone(),
        created_at: now,
        revoked_at: None,
        allowed_origins: key.allowed_origins.clone(),
    })
}

pub async fn revoke_key(
    tx: &impl GenericClient,
    project: ProjectId,
    key_id: i64,
    now: Timestamp,
) -> Result<ApiKey> {
    let revoked = execute(
        tx,
        "UPDATE api_keys SET revoked_at = $3 WHERE project_id = $1 AND id = $2 AND revoked_at IS NULL",
        &[&project.0, &key_id, &micros(now)],
    )
    .await?;
    if revoked > 0 {
        log_change(tx, project, ChangeTopic::Keys, now).await?;
    }
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE project_id = $1 AND id = $2");
    query_opt(tx, &sql, &[&project.0, &key_id])
        .await?
        .as_ref()
        .map(to_key)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound {
            what: "key",
            id: key_id.to_string(),
        })
}

pub async fn key_by_hash(conn: &impl GenericClient, hash: &[u8; 32]) -> Result<Option<ApiKey>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1");
    query_opt(conn, &sql, &[&&hash[..]])
        .await?
        .as_ref()
        .map(to_key)
        .transpose()
}

pub async fn list_keys(conn: &impl GenericClient, project: ProjectId) -> Result<Vec<ApiKey>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE project_id = $1 ORDER BY id");
    query(conn, &sql, &[&project.0])
        .await?
        .iter()
        .map(to_key)
        .collect()
}

const CATEGORY_COLUMNS: &str = "name, description, created_at, retired_at";

fn to_category(row: &Row) -> Result<Category> {
    Ok(Category {
        name: row.try_get(0)?,
        description: row.try_get(1)?,
        created_at: timestamp(row.try_get(2)?)?,
        retired_at: row
            .try_get::<_, Option<i64>>(3)?
            .map(timestamp)
            .transpose()?,
    })
}

async fn category(
    conn: &impl GenericClient,
    project: ProjectId,
    name: &str,
) -> Result<Option<Category>> {
    let sql =
        format!("SELECT {CATEGORY_COLUMNS} FROM categories WHERE project_id = $1 AND name = $2");
    query_opt(conn, &sql, &[&project.0, &name])
        .await?
        .as_ref()
        .map(to_category)
        .transpose()
}

pub async fn taxonomy(conn: &impl GenericClient, project: ProjectId) -> Result<Vec<Category>> {
    let sql =
        format!("SELECT {CATEGORY_COLUMNS} FROM categories WHERE project_id = $1 ORDER BY name");
    query(conn, &sql, &[&project.0])
        .await?
        .iter()
        .map(to_category)
        .collect()
}

/// The names feedback may pick now.
pub async fn active_category_names(
    conn: &impl GenericClient,
    project: ProjectId,
) -> Result<Vec<String>> {
    query(
        conn,
        "SELECT name FROM categories WHERE project_id = $1 AND retired_at IS NULL",
        &[&project.0],
    )
    .await?
    .iter()
    .map(|row| Ok(row.try_get(0)?))
    .collect()
}

pub async fn add_category(
    tx: &impl GenericClient,
    project: ProjectId,
    name: &str,
    description: Option<&str>,
    now: Timestamp,
) -> Result<Category> {
    let sql = format!(
        "INSERT INTO categories (project_id, name, description, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (project_id, name) DO UPDATE
         SET retired_at = NULL, description = COALESCE(excluded.description, categories.description)
         RETURNING {CATEGORY_COLUMNS}"
    );
    let row = super::query_one(tx, &sql, &[&project.0, &name, &description, &micros(now)]).await?;
    log_change(tx, project, ChangeTopic::Taxonomy, now).await?;
    to_category(&row)
}

pub async fn retire_category(
    tx: &impl GenericClient,
    project: ProjectId,
    name: &str,
    now: Timestamp,
) -> Result<Category> {
    let retired = execute(
        tx,
        "UPDATE categories SET retired_at = $3 WHERE project_id = $1 AND name = $2 AND retired_at IS NULL",
        &[&project.0, &name, &micros(now)],
    )
    .await?;
    if retired > 0 {
        log_change(tx, project, ChangeTopic::Taxonomy, now).await?;
    }
    category(tx, project, name)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "category",
            id: name.to_owned(),
        })
}
