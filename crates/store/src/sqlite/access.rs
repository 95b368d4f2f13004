//! People, memberships, sessions, feedback-token secrets, key rotation and the audit log on
//! SQLite (see [`crate::access`]).

use async_trait::async_trait;
use feedloop_core::auth::UserRole;
use feedloop_core::{ProjectId, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, admin, micros, timestamp};
use crate::access::{Access, AuditEntry, Membership, NewSession, NewUser, StoredSession, User};
use crate::{ApiKey, NewKey, Result, StoreError};

const USER_COLUMNS: &str = "id, email, password_hash, is_admin, created_at";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, String, String, bool, i64)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn to_user(
    (id, email, password_hash, is_admin, created_at): (i64, String, String, bool, i64),
) -> Result<User> {
    Ok(User {
        id,
        email,
        password_hash,
        is_admin,
        created_at: timestamp(created_at)?,
    })
}

fn user_where(
    conn: &Connection,
    condition: &str,
    value: &dyn rusqlite::ToSql,
) -> Result<Option<User>> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE {condition}"
    ))?
    .query_row([value], user_from_row)
    .optional()?
    .map(to_user)
    .transpose()
}

const MEMBERSHIP_SELECT: &str =
    "SELECT m.project_id, p.name, m.user_id, u.email, m.role, m.created_at
     FROM memberships m JOIN projects p ON p.id = m.project_id JOIN users u ON u.id = m.user_id";

type MembershipRow = (i64, String, i64, String, String, i64);

fn membership_from_row(row: &Row<'_>) -> rusqlite::Result<MembershipRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn to_membership(
    (project_id, project_name, user_id, email, role, created_at): MembershipRow,
) -> Result<Membership> {
    Ok(Membership {
        project_id: ProjectId(project_id),
        project_name,
        user_id,
        email,
        role: UserRole::parse(&role)
            .ok_or_else(|| StoreError::Internal(format!("stored member role {role:?}")))?,
        created_at: timestamp(created_at)?,
    })
}

fn memberships_where(
    conn: &Connection,
    condition: &str,
    values: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Membership>> {
    let rows = conn
        .prepare_cached(&format!("{MEMBERSHIP_SELECT} WHERE {condition}"))?
        .query_map(values, membership_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(to_membership).collect()
}

fn rotate_key(
    tx: &Connection,
    project: ProjectId,
    key_id: i64,
    successor: &NewKey,
    now: Timestamp,
) -> Result<ApiKey> {
    let old = admin::list_keys(tx, project)?
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
    admin::revoke_key(tx, project, key_id, now)?;
    let successor = NewKey {
        name: old.name,
        role: old.role,
        allowed_origins: old.allowed_origins,
        ..successor.clone()
    };
    admin::create_key(tx, project, &successor, now)
}

type AuditRow = (i64, i64, String, String, String, String, i64);

fn to_audit((seq, project_id, actor, action, target, details, at): AuditRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq,
        project_id: ProjectId(project_id),
        actor,
        action,
        target,
        details: serde_json::from_str(&details)?,
        at: timestamp(at)?,
    })
}

#[async_trait]
impl Access for SqliteStore {
    async fn count_users(&self) -> Result<u64> {
        self.readers
            .run(|conn| {
                let count: i64 =
                    conn.query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))?;
                Ok(count.max(0) as u64)
            })
            .await
    }

    async fn create_user(&self, user: NewUser, now: Timestamp) -> Result<User> {
        self.writer
            .run(1, move |tx| {
                let id: Option<i64> = tx
                    .prepare_cached(
                        "INSERT INTO users (email, password_hash, is_admin, created_at)
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (email) DO NOTHING RETURNING id",
                    )?
                    .query_row(
                        params![user.email, user.password_hash, user.is_admin, micros(now)],
                        |row| row.get(0),
                    )
                    .optional()?;
                let id = id.ok_or_else(|| StoreError::Conflict {
                    item: None,
                    field: "email".into(),
                    message: format!("a user with email {:?} exists", user.email),
                })?;
                Ok(User {
                    id,
                    email: user.email,
                    password_hash: user.password_hash,
                    is_admin: user.is_admin,
                    created_at: now,
                })
            })
            .await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let email = email.to_owned();
        self.readers
            .run(move |conn| user_where(conn, "email = ?1", &email))
            .await
    }

    async fn user(&self, id: i64) -> Result<Option<User>> {
        self.readers
            .run(move |conn| user_where(conn, "id = ?1", &id))
            .await
    }

    async fn set_membership(
        &self,
        project: ProjectId,
        user_id: i64,
        role: UserRole,
        now: Timestamp,
    ) -> Result<Membership> {
        self.writer
            .run(1, move |tx| {
                if user_where(tx, "id = ?1", &user_id)?.is_none() {
                    return Err(StoreError::NotFound {
                        what: "user",
                        id: user_id.to_string(),
                    });
                }
                if admin::project_by_id(tx, project)?.is_none() {
                    return Err(StoreError::NotFound {
                        what: "project",
                        id: project.to_string(),
                    });
                }
                tx.prepare_cached(
                    "INSERT INTO memberships (project_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
                )?
                .execute(params![project.0, user_id, role.as_str(), micros(now)])?;
                memberships_where(
                    tx,
                    "m.project_id = ?1 AND m.user_id = ?2",
                    &[&project.0, &user_id],
                )?
                .pop()
                .ok_or_else(|| StoreError::Internal("membership vanished after upsert".into()))
            })
            .await
    }

    async fn remove_membership(&self, project: ProjectId, user_id: i64) -> Result<()> {
        self.writer
            .run(1, move |tx| {
                let removed = tx
                    .prepare_cached(
                        "DELETE FROM memberships WHERE project_id = ?1 AND user_id = ?2",
                    )?
                    .execute(params![project.0, user_id])?;
                if removed == 0 {
                    return Err(StoreError::NotFound {
                        what: "member",
                        id: user_id.to_string(),
                    });
                }
                Ok(())
            })
            .await
    }

    async fn memberships_of_user(&self, user_id: i64) -> Result<Vec<Membership>> {
        self.readers
            .run(move |conn| memberships_where(conn, "m.user_id = ?1 ORDER BY p.name", &[&user_id]))
            .await
    }

    async fn project_members(&self, project: ProjectId) -> Result<Vec<Membership>> {
        self.readers
            .run(move |conn| {
                memberships_where(conn, "m.project_id = ?1 ORDER BY u.email", &[&project.0])
            })
            .await
    }

    async fn create_session(&self, session: NewSession, now: Timestamp) -> Result<()> {
        self.writer
            .run(1, move |tx| {
                tx.prepare_cached(
                    "INSERT INTO sessions (hash, user_id, csrf_token, created_at, last_seen_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                )?
                .execute(params![
                    &session.hash[..],
                    session.user_id,
                    session.csrf_token,
                    micros(now),
                    micros(session.expires_at)
                ])?;
                Ok(())
            })
            .await
    }

    async fn session_by_hash(&self, hash: [u8; 32]) -> Result<Option<StoredSession>> {
        self.readers
            .run(move |conn| {
                let row: Option<(i64, i64, String, i64, i64, i64)> = conn
                    .prepare_cached(
                        "SELECT id, user_id, csrf_token, created_at, last_seen_at, expires_at
                         FROM sessions WHERE hash = ?1",
                    )?
                    .query_row([&hash[..]], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                            row.get(5)?,
                        ))
                    })
                    .optional()?;
                row.map(|(id, user_id, csrf_token, created, seen, expires)| {
                    Ok(StoredSession {
                        id,
                        user_id,
                        csrf_token,
                        created_at: timestamp(created)?,
                        last_seen_at: timestamp(seen)?,
                        expires_at: timestamp(expires)?,
                    })
                })
                .transpose()
            })
            .await
    }

    async fn touch_session(&self, id: i64, now: Timestamp) -> Result<()> {
        self.writer
            .run(1, move |tx| {
                tx.prepare_cached("UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1")?
                    .execute(params![id, micros(now)])?;
                Ok(())
            })
            .await
    }

    async fn delete_session(&self, hash: [u8; 32]) -> Result<()> {
        self.writer
            .run(1, move |tx| {
                tx.prepare_cached("DELETE FROM sessions WHERE hash = ?1")?
                    .execute([&hash[..]])?;
                Ok(())
            })
            .await
    }

    async fn token_secret(
        &self,
        project: ProjectId,
        candidate: [u8; 32],
        now: Timestamp,
    ) -> Result<[u8; 32]> {
        self.writer
            .run(1, move |tx| {
                tx.prepare_cached(
                    "INSERT INTO feedback_token_secrets (project_id, secret, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (project_id) DO NOTHING",
                )?
                .execute(params![project.0, &candidate[..], micros(now)])?;
                let secret: Vec<u8> = tx
                    .prepare_cached("SELECT secret FROM feedback_token_secrets WHERE project_id = ?1")?
                    .query_row([project.0], |row| row.get(0))?;
                secret
                    .try_into()
                    .map_err(|_| StoreError::Internal("stored token secret is not 32 bytes".into()))
            })
            .await
    }

    async fn rotate_key(
        &self,
        project: ProjectId,
        key_id: i64,
        successor: NewKey,
        now: Timestamp,
    ) -> Result<ApiKey> {
        self.writer
            .run(1, move |tx| {
                rotate_key(tx, project, key_id, &successor, now)
            })
            .await
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
        let (actor, action, target) = (actor.to_owned(), action.to_owned(), target.to_owned());
        let details = serde_json::to_string(details)?;
        self.writer
            .run(1, move |tx| {
                tx.prepare_cached(
                    "INSERT INTO audit_log (project_id, actor, action, target, details, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    project.0,
                    actor,
                    action,
                    target,
                    details,
                    micros(now)
                ])?;
                Ok(())
            })
            .await
    }

    async fn list_audit(
        &self,
        project: ProjectId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT seq, project_id, actor, action, target, details, at FROM audit_log
                         WHERE project_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
                    )?
                    .query_map(
                        params![project.0, before.unwrap_or(i64::MAX), limit],
                        |row| {
                            Ok((
                                row.get(0)?,
                                row.get(1)?,
                                row.get(2)?,
                                row.get(3)?,
                                row.get(4)?,
                                row.get(5)?,
                                row.get(6)?,
                            ))
                        },
                    )?
                    .collect::<rusqlite::Result<Vec<AuditRow>>>()?;
                rows.into_iter().map(to_audit).collect()
            })
            .await
    }
}
