//! The `Access` part of the store: people and what they may do. User accounts (an argon2 hash of
//! the password, never the password), memberships (a role per person per project), web sessions
//! (the SHA-256 of the cookie, never the cookie), each project's feedback-token secret, key
//! rotation, and the audit log of administrative actions.
//!
//! Nothing here is cached by a replica: sessions and memberships are read on every request, so
//! a logout or a removed member takes effect at once everywhere.

use async_trait::async_trait;
use feedloop_core::auth::UserRole;
use feedloop_core::{ProjectId, Timestamp};

use crate::{ApiKey, NewKey, Result};

/// An account to create. `email` is stored as given (callers lowercase it).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    /// A PHC string (`$argon2id$…`).
    pub password_hash: String,
    /// A server admin is an admin of every project.
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: Timestamp,
}

/// A person's role in a project.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    pub project_id: ProjectId,
    pub project_name: String,
    pub user_id: i64,
    pub email: String,
    pub role: UserRole,
    pub created_at: Timestamp,
}

/// A session to store: the hash of its cookie value.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub hash: [u8; 32],
    pub user_id: i64,
    /// Sent back by the UI in `X-CSRF-Token` on every state-changing request.
    pub csrf_token: String,
    /// The absolute end of the session, however active it is.
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    pub id: i64,
    pub user_id: i64,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
}

/// One administrative action.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Increasing; the list cursor.
    pub seq: i64,
    pub project_id: ProjectId,
    /// Who did it: `key 3`, `user 7`.
    pub actor: String,
    /// What was done: `key.create`, `member.remove`, `taxonomy.add`…
    pub action: String,
    /// What it was done to: a key id, an email, a category name.
    pub target: String,
    /// A JSON object with the particulars.
    pub details: serde_json::Value,
    pub at: Timestamp,
}

#[async_trait]
pub trait Access: Send + Sync {
    async fn count_users(&self) -> Result<u64>;

    /// Fails with a conflict on `email` if the address is taken.
    async fn create_user(&self, user: NewUser, now: Timestamp) -> Result<User>;

    async fn user_by_email(&self, email: &str) -> Result<Option<User>>;

    async fn user(&self, id: i64) -> Result<Option<User>>;

    /// Gives the user `role` in the project (adding or changing the membership).
    async fn set_membership(
        &self,
        project: ProjectId,
        user_id: i64,
        role: UserRole,
        now: Timestamp,
    ) -> Result<Membership>;

    /// Fails with `NotFound("member")` when the user is no member.
    async fn remove_membership(&self, project: ProjectId, user_id: i64) -> Result<()>;

    async fn memberships_of_user(&self, user_id: i64) -> Result<Vec<Membership>>;

    async fn project_members(&self, project: ProjectId) -> Result<Vec<Membership>>;

    async fn create_session(&self, session: NewSession, now: Timestamp) -> Result<()>;

    async fn session_by_hash(&self, hash: [u8; 32]) -> Result<Option<StoredSession>>;

    /// Records activity, which the idle expiry counts from.
    async fn touch_session(&self, id: i64, now: Timestamp) -> Result<()>;

    /// Ends a session; ending one that is gone is not an error.
    async fn delete_session(&self, hash: [u8; 32]) -> Result<()>;

    /// The project's feedback-token secret: the stored one, or `candidate` stored now if there is
    /// none yet (the first replica to ask wins; every replica gets the same answer).
    async fn token_secret(
        &self,
        project: ProjectId,
        candidate: [u8; 32],
        now: Timestamp,
    ) -> Result<[u8; 32]>;

    /// Revokes a key and creates its successor (same name, role and origins, the new secret's
    /// hash) in one transaction, appending to the change log so every replica drops the old
    /// one. Fails with `NotFound("key")` for an unknown key and a conflict for a revoked one.
    async fn rotate_key(
        &self,
        project: ProjectId,
        key_id: i64,
        successor: NewKey,
        now: Timestamp,
    ) -> Result<ApiKey>;

    async fn record_audit(
        &self,
        project: ProjectId,
        actor: &str,
        action: &str,
        target: &str,
        details: &serde_json::Value,
        now: Timestamp,
    ) -> Result<()>;

    /// The project's audit log, newest first, before the `before` sequence number if given.
    async fn list_audit(
        &self,
        project: ProjectId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;
}
