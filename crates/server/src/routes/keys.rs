//! API keys of the caller's project: secret keys (admin, ingest, read) and public keys (feedback
//! and signals only, from allowed origins); create, list, revoke and rotate. Every change is in
//! the audit log.

use axum::Json;
use axum::extract::State;
use feedloop_core::Timestamp;
use feedloop_core::auth::{KeyRole, Permission};
use feedloop_store::ApiKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, ProjectKey, ValidatedJson};

/// A key as listed: never its secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    pub id: i64,
    pub name: String,
    #[schema(value_type = String)]
    pub role: KeyRole,
    pub prefix: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
    /// Where a public key may be used from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
}

impl From<ApiKey> for KeyView {
    fn from(key: ApiKey) -> Self {
        KeyView {
            id: key.id,
            name: key.name,
            role: key.role,
            prefix: key.prefix,
            created_at: key.created_at,
            revoked_at: key.revoked_at,
            allowed_origins: key.allowed_origins,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    pub name: String,
    /// admin, ingest or read (secret keys), or public.
    #[schema(value_type = String)]
    pub role: KeyRole,
    /// For a public key (required, 1 to 20): the origins it may be used from, as browsers send
    /// them (`https://app.example.com`). Not allowed for secret keys.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// A new key and its secret, which is shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    pub key: KeyView,
    pub secret: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeysBody {
    pub keys: Vec<KeyView>,
}

/// The project's keys, revoked ones included.
#[utoipa::path(
    get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, body = KeysBody), (status = 403, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_keys(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<KeysBody>, ApiError> {
    let project = key.require(Permission::Admin)?;
    let keys = state.store.list_keys(project).await?;
    Ok(Json(KeysBody {
        keys: keys.into_iter().map(KeyView::from).collect(),
    }))
}

/// Create a key for the caller's project; the secret is in the answer and nowhere else.
#[utoipa::path(
    post, path = "/api/v1/keys", tag = "keys",
    request_body = NewKeyBody,
    responses((status = 200, body = CreatedKey), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn create_key(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<NewKeyBody>,
) -> Result<Json<CreatedKey>, ApiError> {
    let project = key.require(Permission::Admin)?;
    if body.name.trim().is_empty() || body.name.len() > 128 {
        return Err(feedloop_core::ValidationError::new("name", "must be 1 to 128 bytes").into());
    }
    check_origins(body.role, &body.allowed_origins)?;
    let (secret, record) =
        crate::ops::generate_key_with_origins(body.name, body.role, body.allowed_origins);
    let stored = state
        .store
        .create_key(project, record, state.clock.now())
        .await?;
    crate::ops::audit(
        &state,
        &key,
        "key.create",
        &stored.id.to_string(),
        serde_json::json!({"name": stored.name, "role": stored.role, "allowed_origins": stored.allowed_origins}),
    )
    .await?;
    Ok(Json(CreatedKey {
        key: stored.into(),
        secret,
    }))
}

/// Public keys need origins, each `scheme://host[:port]`; secret keys take none.
fn check_origins(role: KeyRole, origins: &[String]) -> Result<(), ApiError> {
    use feedloop_core::ValidationError;
    if !role.is_public() {
        if origins.is_empty() {
            return Ok(());
        }
        return Err(
            ValidationError::new("allowed_origins", "only public keys have origins").into(),
        );
    }
    if origins.is_empty() || origins.len() > 20 {
        return Err(ValidationError::new(
            "allowed_origins",
            "a public key needs 1 to 20 allowed origins",
        )
        .into());
    }
    for (index, origin) in origins.iter().enumerate() {
        feedloop_core::auth::check_origin(origin).map_err(|message| {
            ValidationError::new(format!("allowed_origins[{index}]"), message)
        })?;
    }
    Ok(())
}

/// Revoke a key of the caller's project; it stops working at once.
#[utoipa::path(
    delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = i64, Path)),
    responses((status = 200, body = KeyView), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(id): Path<i64>,
) -> Result<Json<KeyView>, ApiError> {
    let project = key.require(Permission::Admin)?;
    let revoked = state
        .store
        .revoke_key(project, id, state.clock.now())
        .await?;
    // This replica forgets at once; the others when they follow the change log.
    state.keys.clear();
    crate::ops::audit(
        &state,
        &key,
        "key.revoke",
        &id.to_string(),
        serde_json::json!({}),
    )
    .await?;
    Ok(Json(revoked.into()))
}

/// Rotate a key: the answer is a new key with the same name, role and origins, and its secret;
/// the old secret stops working at once on this replica and within the change-log poll
/// interval on every other.
#[utoipa::path(
    post, path = "/api/v1/keys/{id}/rotate", tag = "keys",
    params(("id" = i64, Path)),
    responses((status = 200, body = CreatedKey), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn rotate_key(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(id): Path<i64>,
) -> Result<Json<CreatedKey>, ApiError> {
    let project = key.require(Permission::Admin)?;
    let old = state
        .store
        .list_keys(project)
        .await?
        .into_iter()
        .find(|stored| stored.id == id)
        .ok_or_else(|| {
            ApiError::new(
                crate::error::ErrorCode::KeyNotFound,
                format!("key {id} not found"),
            )
        })?;
    let (secret, record) =
        crate::ops::generate_key_with_origins(old.name, old.role, old.allowed_origins);
    let rotated = state
        .store
        .rotate_key(project, id, record, state.clock.now())
        .await?;
    state.keys.clear();
    crate::ops::audit(
        &state,
        &key,
        "key.rotate",
        &id.to_string(),
        serde_json::json!({"successor": rotated.id}),
    )
    .await?;
    Ok(Json(CreatedKey {
        key: rotated.into(),
        secret,
    }))
}
