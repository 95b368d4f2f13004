//! The project's feedback taxonomy.

use axum::Json;
use axum::extract::State;
use feedloop_core::Timestamp;
use feedloop_core::auth::Permission;
use feedloop_core::taxonomy::{Category, check_name};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, ProjectKey, ValidatedJson};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CategoryView {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether feedback may pick it now.
    pub active: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub retired_at: Option<Timestamp>,
}

impl From<Category> for CategoryView {
    fn from(category: Category) -> Self {
        CategoryView {
            active: category.is_active(),
            name: category.name,
            description: category.description,
            created_at: category.created_at,
            retired_at: category.retired_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaxonomyBody {
    pub categories: Vec<CategoryView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCategoryBody {
    /// snake_case ascii, starting with a letter.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// The project's categories, retired ones included (`active: false`). Any caller may read them,
/// public keys and feedback tokens included: the feedback widget offers them as reasons.
#[utoipa::path(
    get, path = "/api/v1/taxonomy", tag = "taxonomy",
    responses((status = 200, body = TaxonomyBody)),
    security(("api_key" = []))
)]
pub async fn get_taxonomy(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<TaxonomyBody>, ApiError> {
    let project = if key.allows(Permission::Feedback) {
        key.project
    } else {
        key.require(Permission::Read)?
    };
    let categories = state.store.taxonomy(project).await?;
    Ok(Json(TaxonomyBody {
        categories: categories.into_iter().map(CategoryView::from).collect(),
    }))
}

/// Add a category (or reactivate a retired one). Adding an existing category is a no-op.
#[utoipa::path(
    post, path = "/api/v1/taxonomy/categories", tag = "taxonomy",
    request_body = NewCategoryBody,
    responses((status = 200, body = CategoryView), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn add_category(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<NewCategoryBody>,
) -> Result<Json<CategoryView>, ApiError> {
    let project = key.require(Permission::Admin)?;
    check_name("name", &body.name)?;
    let now = state.clock.now();
    let category = state
        .store
        .add_category(project, &body.name, body.description.as_deref(), now)
        .await?;
    crate::ops::audit(
        &state,
        &key,
        "taxonomy.add",
        &body.name,
        serde_json::json!({"description": body.description}),
    )
    .await?;
    Ok(Json(category.into()))
}

/// Retire a category: new feedback may no longer pick it; stored feedback keeps it.
#[utoipa::path(
    delete, path = "/api/v1/taxonomy/categories/{name}", tag = "taxonomy",
    params(("name" = String, Path)),
    responses((status = 200, body = CategoryView), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn retire_category(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
) -> Result<Json<CategoryView>, ApiError> {
    let project = key.require(Permission::Admin)?;
    let category = state
        .store
        .retire_category(project, &name, state.clock.now())
        .await?;
    crate::ops::audit(
        &state,
        &key,
        "taxonomy.retire",
        &name,
        serde_json::json!({}),
    )
    .await?;
    Ok(Json(category.into()))
}
