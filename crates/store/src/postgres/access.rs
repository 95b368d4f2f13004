//! People, memberships, sessions, feedback-token secrets, key rotation and the audit log on
//! PostgreSQL (see [`crate::access`]).

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use feedloop_core::auth::UserRole;
use feedloop_core::{ProjectId, Timestamp};
use tokio_postgres::Row;

use super::{PostgresStore, admin, execute, micros, query, query_one, query_opt, timestamp};
use crate::access::{Access, AuditEntry, Membership, NewSession, NewUser, StoredSession, User};
use crate::{ApiKey, NewKey, Result, StoreError};

const USER_COLUMNS: &str = "id, email, password_hash, is_admin, created_at";

fn to_user(row: &Row) -> Result<User> {
    Ok(User {
        id: row.try_get(0)?,
        email: row.try_get(1)?,
        password_hash: row.try_get(2)?,
        is_admin: row.try_get(3)?,
        created_at: timestamp(row.try_get(4)?)?,
    })
}

const MEMBERSHIP_SELECT: &str =
    "SELECT m.project_id, p.name, m.user_id, u.email, m.role, m.created_at
     FROM memberships m JOIN projects p ON p.id = m.project_id JOIN users u ON u.id = m.user_id";

fn to_membership(row: &Row) -> Result<Membership> {
    let role: String = row.try_get(4)?;
    Ok(Membership {
        project_id: ProjectId(row.try_get(0)?),
        project_name: row.try_get(1)?,
        user_id: row.try_get(2)?,
        email: row.try_get(3)?,
        role: UserRole::parse(&role)
            .ok_or_else(|| StoreError::Internal(format!("stored member role {role:?}")))?,
        created_at: timestamp(row.try_get(5)?)?,
    })
}

async fn user_by_id(conn: &impl GenericClient, id: i64) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    query_opt(conn, &sql, &[&id])
        .await?
        .as_ref()
        .map(to_user)
        .transpose()
}

async fn rotate_key(
    tx: &impl GenericClient,
    project: ProjectId,
    key_id: i64,
    successor: &NewKey,
    now: Timestamp,
) -> Result<ApiKey> {
    let old = admin::list_keys(tx, project)
        .await?
        .into_iter()
        .find(|key| key.id == key_id)
        .ok_or_else(|| StoreError::NotFound {
            what: "key",
            id: key_id.to_string(),
        })?;
    if old.revoked_at.is_some() {
        return Err(StoreError::Conflict {
            item: None,
            field: "id".into(),
            message: format!("key {key_id} is revoked; create a new key instead"),
        });
    }
    admin::revoke_key(tx, project, key_id, now).await?;
    let successor = NewKey {
        name: old.name,
        role: old.role,
        allowed_origins: old.allowed_origins,
        ..successor.clone()
    };
    admin::create_key(tx, project, &successor, now).await
}

#[async_trait]
impl Access for PostgresStore {
    async fn count_users(&self) -> Result<u64> {
        let row = query_one(&self.client().await?, "SELECT COUNT(*) FROM users", &[]).await?;
        Ok(row.try_get::<_, i64>(0)?.max(0) as u64)
    }

    async fn create_user(&self, user: NewUser, now: Timestamp) -> Result<User> {
        let row = query_opt(
            &self.client().await?,
            "INSERT INTO users (email, password_hash, is_admin, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO NOTHING RETURNING id",
            &[
                &user.email,
                &user.password_hash,
                &user.is_admin,
                &micros(now),
            ],
        )
        .await?
        .ok_or_else(|| StoreError::Conflict {
            item: None,
            field: "email".into(),
            message: format!("a user with email {:?} exists", user.email),
        })?;
        Ok(User {
            id: row.try_get(0)?,
            email: user.email,
            password_hash: user.password_hash,
            is_admin: user.is_admin,
            created_at: now,
        })
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        query_opt(&self.client().await?, &sql, &[&email])
            .await?
            .as_ref()
            .map(to_user)
            .transpose()
    }

    async fn user(&self, id: i64) -> Result<Option<User>> {
        user_by_id(&self.client().await?, id).await
    }

    async fn set_membership(
        &self,
        project: ProjectId,
        user_id: i64,
        role: UserRole,
        now: Timestamp,
    ) -> Result<Membership> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if user_by_id(&tx, user_id).await?.is_none() {
            return Err(StoreError::NotFound {
                what: "user",
                id: user_id.to_string(),
            });
        }
        if admin::project_by_id(&tx, project).await?.is_none() {
            return Err(StoreError::NotFound {
                what: "project",
                id: project.to_string(),
            });
        }
        execute(
            &tx,
            "INSERT INTO memberships (project_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
            &[&project.0, &user_id, &role.as_str(), &micros(now)],
        )
        .await?;
        let sql = format!("{MEMBERSHIP_SELECT} WHERE m.project_id = $1 AND m.user_id = $2");
        let membership = to_membership(&query_one(&tx, &sql, &[&project.0, &user_id]).await?)?;
        tx.commit().await?;
        Ok(membership)
    }

    async fn remove_membership(&self, project: ProjectId, user_id: i64) -> Result<()> {
        let removed = execute(
            &self.client().await?,
            "DELETE FROM memberships WHERE project_id = $1 AND user_id = $2",
            &[&project.0, &user_id],
        )
        .await?;
        if removed == 0 {
            return Err(StoreError::NotFound {
                what: "member",
                id: user_id.to_string(),
            });
        }
        Ok(())
    }

    async fn memberships_of_user(&self, user_id: i64) -> Result<Vec<Membership>> {
        let sql = format!("{MEMBERSHIP_SELECT} WHERE m.user_id = $1 ORDER BY p.name");
        query(&self.client().await?, &sql, &[&user_id])
            .await?
            .iter()
            .map(to_membership)
            .collect()
    }

    async fn project_members(&self, project: ProjectId) -> Result<Vec<Membership>> {
        let sql = format!("{MEMBERSHIP_SELECT} WHERE m.project_id = $1 ORDER BY u.email");
        query(&self.client().await?, &sql, &[&project.0])
            .await?
            .iter()
            .map(to_membership)
            .collect()
    }

    async fn create_session(&self, session: NewSession, now: Timestamp) -> Result<()> {
        execute(
            &self.client().await?,
            "INSERT INTO sessions (hash, user_id, csrf_token, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $4, $5)",
            &[
                &&session.hash[..],
                &session.user_id,
                &session.csrf_token,
                &micros(now),
                &micros(session.expires_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn session_by_hash(&self, hash: [u8; 32]) -> Result<Option<StoredSession>> {
        let row = query_opt(
            &self.client().await?,
            "SELECT id, user_id, csrf_token, created_at, last_seen_at, expires_at
             FROM sessions WHERE hash = $1",
            &[&&hash[..]],
        )
        .await?;
        row.map(|row| {
            Ok(StoredSession {
                id: row.try_get(0)?,
                user_id: row.try_get(1)?,
                csrf_token: row.try_get(2)?,
                created_at: timestamp(row.try_get(3)?)?,
                last_seen_at: timestamp(row.try_get(4)?)?,
                expires_at: timestamp(row.try_get(5)?)?,
            })
        })
        .transpose()
    }

    async fn touch_session(&self, id: i64, now: Timestamp) -> Result<()> {
        execute(
            &self.client().await?,
            "UPDATE sessions SET last_seen_at = $2 WHERE id = $1",
            &[&id, &micros(now)],
        )
        .await?;
        Ok(())
    }

    async fn delete_session(&self, hash: [u8; 32]) -> Result<()> {
        execute(
            &self.client().await?,
            "DELETE FROM sessions WHERE hash = $1",
            &[&&hash[..]],
        )
        .await?;
        Ok(())
    }

    async fn token_secret(
        &self,
        project: ProjectId,
        candidate: [u8; 32],
        now: Timestamp,
    ) -> Result<[u8; 32]> {
        let client = self.client().await?;
        execute(
            &client,
            "INSERT INTO feedback_token_secrets (project_id, secret, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (project_id) DO NOTHING",
            &[&project.0, &&candidate[..], &micros(now)],
        )
        .await?;
        let row = query_one(
            &client,
            "SELECT secret FROM feedback_token_secrets WHERE project_id = $1",
            &[&project.0],
        )
        .await?;
        let secret: Vec<u8> = row.try_get(0)?;
        secret
            .try_into()
            .map_err(|_| StoreError::Internal("stored token secret is not 32 bytes".into()))
    }

    async fn rotate_key(
        &self,
        project: ProjectId,
        key_id: i64,
        successor: NewKey,
        now: Timestamp,
    ) -> Result<ApiKey> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let key = rotate_key(&tx, project, key_id, &successor, now).await?;
        tx.commit().await?;
        Ok(key)
    }

    async fn record_audit(
        &self,
        project: ProjectId,
        actor: &str,
        action: &str,
        target: &str,
        details: &serde_json::Value,
        now: Timestamp,
    ) -> Result<()> {
        execute(
            &self.client().await?,
            "INSERT INTO audit_log (project_id, actor, action, target, details, at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &project.0,
                &actor,
                &action,
                &target,
                &serde_json::to_string(details)?,
                &micros(now),
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_audit(
        &self,
        project: ProjectId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let rows = query(
            &self.client().await?,
            "SELECT seq, project_id, actor, action, target, details, at FROM audit_log
             WHERE project_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
            &[&project.0, &before.unwrap_or(i64::MAX), &i64::from(limit)],
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    seq: row.try_get(0)?,
                    project_id: ProjectId(row.try_get(1)?),
                    actor: row.try_get(2)?,
                    action: row.try_get(3)?,
                    target: row.try_get(4)?,
                    details: serde_json::from_str(row.try_get(5)?)?,
                    at: timestamp(row.try_get(6)?)?,
                })
            })
            .collect()
    }
}
