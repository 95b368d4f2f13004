//! API keys of the caller's project.

use axum::Json;
use axum::extract::{Path, State};
use feedloop_core::Timestamp;
use feedloop_core::auth::{KeyRole, Permission};
use feedloop_store::ApiKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ProjectKey, ValidatedJson};

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
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    pub name: String,
    /// admin, ingest or read.
    #[schema(value_type = String)]
    pub role: KeyRole,
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
    let (secret, record) = crate::ops::generate_key(body.name, body.role);
    let stored = state
        .store
        .create_key(project, record, state.clock.now())
        .await?;
    Ok(Json(CreatedKey {
        key: stored.into(),
        secret,
    }))
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
    Ok(Json(revoked.into()))
}
