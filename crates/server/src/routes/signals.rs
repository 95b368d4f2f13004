//! Implicit signals: client-reported signals, the project's signal settings, and recomputing
//! derived signals after thresholds changed.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use feedloop_core::auth::Permission;
use feedloop_core::signals::{DerivedRule, SignalSettings};
use feedloop_signals::SignalReport;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{OneOrMany, ProjectKey, ValidatedJson};
use crate::routes::ingest::{IngestLists, ingest_one_or_many};
use crate::wire::signal::signal_body_field;
use crate::wire::{OneOrManyBody, ReceiptOrBatch, RecomputeBody, SignalBody};

/// Report one implicit signal (an object) or a batch (an array): copy (whole answer or a
/// `range`), regenerate, edit after copy (`edited_text`), share, dwell (`value` in ms), abandon,
/// or a custom type the project declared. Stored as feedback of kind `signal` from the end
/// user; the same id with the same content is a no-op, with other content a 409.
///
/// Beacons (`navigator.sendBeacon`, which cannot set headers) send a public key or a feedback
/// token as `?key=` and the JSON as `text/plain`; a secret key there is refused.
#[utoipa::path(
    post, path = "/api/v1/signals", tag = "signals",
    params(("key" = Option<String>, Query, description = "beacons only: a public key (fl_pk_) or a feedback token (fl_ft_); then the body may be text/plain")),
    request_body(content = OneOrManyBody<SignalBody>, description = "one signal, or a JSON array of signals"),
    responses(
        (status = 200, description = "stored: one receipt for an object, `{items}` for an array", body = ReceiptOrBatch),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn post_signals(
    State(state): State<AppState>,
    key: ProjectKey,
    body: OneOrMany<SignalBody>,
) -> Result<Response, ApiError> {
    let project = key.require(Permission::Feedback)?;
    body.check_each(|item, field| key.may_write_about(&item.trace_id, field))?;
    fn split(signals: Vec<SignalBody>) -> IngestLists {
        let feedback = signals
            .into_iter()
            .map(SignalBody::into_feedback_body)
            .collect();
        (vec![], feedback)
    }
    ingest_one_or_many(&state, project, body, split, |receipt| receipt.feedback)
        .await
        .map_err(|mut error| {
            // Name the field as this body spells it (`type`, `range.start`), not as feedback does.
            if let Some(field) = error.field.take() {
                let mapped = signal_body_field(&field);
                error.message = error.message.replacen(&field, &mapped, 1);
                error.field = Some(mapped);
            }
            error
        })
}

/// The project's signal settings: polarity and weight of every signal type (built-in and
/// declared custom types), the weight of explicit feedback, and the derived rules' thresholds.
#[utoipa::path(
    get, path = "/api/v1/signals/settings", tag = "signals",
    responses((status = 200, body = SignalSettings)),
    security(("api_key" = []))
)]
pub async fn get_settings(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<SignalSettings>, ApiError> {
    let project = key.require(Permission::Read)?;
    Ok(Json(state.store.signal_settings(project).await?))
}

/// Replaces the project's signal settings. Built-in types left out keep their defaults; any
/// other name in `types` declares a custom type (and leaving one out retires it for new
/// signals). Satisfaction estimates are recomputed by the next job run; derived signals stay
/// as they are until `POST /api/v1/signals/recompute`.
#[utoipa::path(
    put, path = "/api/v1/signals/settings", tag = "signals",
    request_body = SignalSettings,
    responses((status = 200, body = SignalSettings), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn put_settings(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(mut settings): ValidatedJson<SignalSettings>,
) -> Result<Json<SignalSettings>, ApiError> {
    let project = key.require(Permission::Admin)?;
    settings.fill_built_in_types();
    settings.check()?;
    state
        .store
        .set_signal_settings(project, &settings, state.clock.now())
        .await?;
    state.signals.reset_estimates().await?;
    crate::ops::audit(
        &state,
        &key,
        "signal_settings.set",
        "signals",
        serde_json::to_value(&settings).unwrap_or_default(),
    )
    .await?;
    Ok(Json(settings))
}

/// Deletes the project's derived signals of the given rules (all when none are named) and
/// derives them again over the whole history with the current settings; satisfaction
/// estimates follow. For use after thresholds changed.
#[utoipa::path(
    post, path = "/api/v1/signals/recompute", tag = "signals",
    request_body = RecomputeBody,
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn recompute(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<RecomputeBody>,
) -> Result<Json<SignalReport>, ApiError> {
    let project = key.require(Permission::Admin)?;
    let rules = match body.rules {
        None => DerivedRule::ALL.to_vec(),
        Some(names) => names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                DerivedRule::parse(name).ok_or_else(|| {
                    ApiError::invalid(feedloop_core::ValidationError::new(
                        format!("rules[{index}]"),
                        format!(
                            "{name:?} is not a derived rule: use rephrase, frustration, regenerate or abandon"
                        ),
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let report = state
        .signals
        .recompute(project, &rules, state.clock.now())
        .await?;
    let rule_names: Vec<String> = rules.iter().map(|rule| format!("{rule:?}")).collect();
    crate::ops::audit(
        &state,
        &key,
        "signals.recompute",
        "derived signals",
        serde_json::json!({"rules": rule_names}),
    )
    .await?;
    Ok(Json(report))
}
