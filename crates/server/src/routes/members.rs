//! People of the caller's project: list, add (by email; the account must exist), change a
//! role, remove. Admin only; every change is in the audit log and takes effect on the person's
//! next request, on every replica (memberships are read per request, never cached).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use feedloop_core::Timestamp;
use feedloop_core::auth::{Permission, UserRole};
use feedloop_store::access::Membership;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{Path, ProjectKey, ValidatedJson};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub user_id: i64,
    pub email: String,
    #[schema(value_type = String)]
    pub role: UserRole,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<Membership> for MemberView {
    fn from(membership: Membership) -> Self {
        MemberView {
            user_id: membership.user_id,
            email: membership.email,
            role: membership.role,
            created_at: membership.created_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MembersBody {
    pub members: Vec<MemberView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMemberBody {
    pub email: String,
    /// admin, reviewer or viewer.
    #[schema(value_type = String)]
    pub role: UserRole,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// admin, reviewer or viewer.
    #[schema(value_type = String)]
    pub role: UserRole,
}

/// The project's members.
#[utoipa::path(
    get, path = "/api/v1/members", tag = "people",
    responses((status = 200, body = MembersBody), (status = 403, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_members(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<MembersBody>, ApiError> {
    let project = key.require(Permission::Admin)?;
    let members = state.store.project_members(project).await?;
    Ok(Json(MembersBody {
        members: members.into_iter().map(MemberView::from).collect(),
    }))
}

/// Add a person (who has an account: `feedloop users create`) to the project, or change their
/// role if they are a member.
#[utoipa::path(
    post, path = "/api/v1/members", tag = "people",
    request_body = NewMemberBody,
    responses((status = 200, body = MemberView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn add_member(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<NewMemberBody>,
) -> Result<Json<MemberView>, ApiError> {
    let project = key.require(Permission::Admin)?;
    let email = body.email.trim().to_lowercase();
    let user = state.store.user_by_email(&email).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::UserNotFound,
            format!("no account with email {email:?}; create it with `feedloop users create`"),
        )
        .with_field("email")
    })?;
    set_role(&state, &key, project, user.id, body.role, "member.add").await
}

/// Change a member's role.
#[utoipa::path(
    put, path = "/api/v1/members/{user_id}", tag = "people",
    params(("user_id" = i64, Path)),
    request_body = RoleBody,
    responses((status = 200, body = MemberView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn change_member(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(user_id): Path<i64>,
    ValidatedJson(body): ValidatedJson<RoleBody>,
) -> Result<Json<MemberView>, ApiError> {
    let project = key.require(Permission::Admin)?;
    let members = state.store.project_members(project).await?;
    if !members.iter().any(|m| m.user_id == user_id) {
        return Err(member_not_found(user_id));
    }
    set_role(&state, &key, project, user_id, body.role, "member.change").await
}

/// Remove a member from the project; their sessions lose access to it at once.
#[utoipa::path(
    delete, path = "/api/v1/members/{user_id}", tag = "people",
    params(("user_id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn remove_member(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(user_id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let project = key.require(Permission::Admin)?;
    state.store.remove_membership(project, user_id).await?;
    crate::ops::audit(
        &state,
        &key,
        "member.remove",
        &user_id.to_string(),
        serde_json::json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_role(
    state: &AppState,
    key: &ProjectKey,
    project: feedloop_core::ProjectId,
    user_id: i64,
    role: UserRole,
    action: &str,
) -> Result<Json<MemberView>, ApiError> {
    let membership = state
        .store
        .set_membership(project, user_id, role, state.clock.now())
        .await?;
    crate::ops::audit(
        state,
        key,
        action,
        &user_id.to_string(),
        serde_json::json!({"email": membership.email, "role": role}),
    )
    .await?;
    Ok(Json(membership.into()))
}

fn member_not_found(user_id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::MemberNotFound,
        format!("user {user_id} is not a member of this project"),
    )
}
