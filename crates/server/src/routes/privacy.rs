//! Privacy: the project's PII and retention settings, running retention now, and erasure of
//! one end user's data with its receipts.

use axum::Json;
use axum::extract::State;
use feedloop_core::auth::Permission;
use feedloop_core::privacy::PrivacySettings;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ProjectKey, ValidatedJson};
use crate::privacy::RetentionReport;
use crate::wire::privacy::{ErasureBody, ErasureReceiptBody, ErasureReceiptList};

/// The project's privacy settings: the PII mode of ingest (`off`, `mask`, `hash`) and the
/// retention periods in days (absent: kept forever).
#[utoipa::path(
    get, path = "/api/v1/privacy/settings", tag = "privacy",
    responses((status = 200, body = PrivacySettings)),
    security(("api_key" = []))
)]
pub async fn get_settings(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<PrivacySettings>, ApiError> {
    let project = key.require(Permission::Read)?;
    Ok(Json(state.store.privacy_settings(project).await?))
}

/// Replaces the project's privacy settings. A new PII mode applies to what is ingested from
/// now on (stored data is not rewritten); retention applies at the next hourly run, or at once
/// through `POST /api/v1/privacy/retention/run`.
#[utoipa::path(
    put, path = "/api/v1/privacy/settings", tag = "privacy",
    request_body = PrivacySettings,
    responses((status = 200, body = PrivacySettings), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn put_settings(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(settings): ValidatedJson<PrivacySettings>,
) -> Result<Json<PrivacySettings>, ApiError> {
    let project = key.require(Permission::Admin)?;
    settings.check()?;
    let before = state.store.privacy_settings(project).await?;
    state
        .store
        .set_privacy_settings(project, &settings, state.clock.now())
        .await?;
    crate::ops::audit(
        &state,
        &key,
        "privacy_settings.set",
        "privacy",
        serde_json::json!({"before": before, "after": settings}),
    )
    .await?;
    Ok(Json(settings))
}

/// Deletes what the project's retention settings say has expired, now, and reports it (the
/// `enforce_retention` job does the same every hour for every project).
#[utoipa::path(
    post, path = "/api/v1/privacy/retention/run", tag = "privacy",
    responses((status = 200, body = RetentionReport)),
    security(("api_key" = []))
)]
pub async fn run_retention(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<RetentionReport>, ApiError> {
    let project = key.require(Permission::Admin)?;
    let report =
        crate::privacy::enforce_retention(state.store.as_ref(), project, state.clock.now()).await?;
    crate::ops::audit(
        &state,
        &key,
        "retention.run",
        "privacy",
        serde_json::json!({"num_traces": report.num_traces, "num_feedback": report.num_feedback}),
    )
    .await?;
    Ok(Json(report))
}

/// Erases everything about one end user: their traces and every trace of a session they took
/// part in (with spans, feedback, signals, vectors and index entries on every replica, review
/// items, cluster membership, lesson injections and provenance links), the feedback they
/// authored, dataset items built from any of it, and webhook events naming it. Returns the
/// receipt, which is also stored (with the SHA-256 of the user id, never the id).
#[utoipa::path(
    post, path = "/api/v1/erasure", tag = "privacy",
    request_body = ErasureBody,
    responses((status = 200, body = ErasureReceiptBody), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn erase(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<ErasureBody>,
) -> Result<Json<ErasureReceiptBody>, ApiError> {
    let project = key.require(Permission::Admin)?;
    crate::privacy::check_user_id(&body.user_id)?;
    let requested_at = state.clock.now();
    let receipt = crate::privacy::erase_user(
        state.store.as_ref(),
        project,
        &body.user_id,
        &key.actor(),
        requested_at,
        state.clock.now(),
    )
    .await?;
    Ok(Json(ErasureReceiptBody::new(receipt, Some(body.user_id))))
}

/// The project's erasure receipts, newest first.
#[utoipa::path(
    get, path = "/api/v1/erasure", tag = "privacy",
    responses((status = 200, body = ErasureReceiptList)),
    security(("api_key" = []))
)]
pub async fn list_erasures(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<ErasureReceiptList>, ApiError> {
    let project = key.require(Permission::Admin)?;
    let receipts = state.store.erasure_receipts(project).await?;
    Ok(Json(ErasureReceiptList {
        receipts: receipts
            .into_iter()
            .map(|receipt| ErasureReceiptBody::new(receipt, None))
            .collect(),
    }))
}
