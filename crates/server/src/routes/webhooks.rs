//! Webhook endpoints of the project (create, list, delete) and the delivery log. Payloads,
//! signing and retries are described in `analytics::webhooks` and the README.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use feedloop_core::ValidationError;
use feedloop_core::auth::Permission;
use feedloop_store::webhooks::NewWebhook;
use rand::Rng;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, ProjectKey, ValidatedJson};
use crate::query::{bad, parse_pairs};
use crate::wire::analytics::{DeliveryList, NewWebhookBody, WebhookList, WebhookView};

fn check(body: &NewWebhookBody) -> Result<(), ValidationError> {
    let url = reqwest::Url::parse(&body.url)
        .map_err(|e| ValidationError::new("url", format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ValidationError::new(
            "url",
            "must be an http or https URL with a host",
        ));
    }
    if body.event_types.is_empty() {
        return Err(ValidationError::new(
            "event_types",
            "name at least one event type",
        ));
    }
    if let Some(secret) = &body.secret
        && !(16..=256).contains(&secret.chars().count())
    {
        return Err(ValidationError::new(
            "secret",
            "must be 16..=256 characters",
        ));
    }
    Ok(())
}

/// A new signing secret: `whsec_` and 32 random bytes in hex.
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("whsec_{hex}")
}

/// Adds an endpoint. The answer carries its signing secret, which is not shown again.
#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body = NewWebhookBody,
    responses(
        (status = 201, body = WebhookView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<NewWebhookBody>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let project = key.require(Permission::Admin)?;
    check(&body)?;
    let mut event_types: Vec<String> = body
        .event_types
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    event_types.sort();
    event_types.dedup();
    let webhook = NewWebhook {
        url: body.url,
        secret: body.secret.unwrap_or_else(new_secret),
        event_types,
        description: body.description,
    };
    let created = state
        .store
        .create_webhook(project, &webhook, state.clock.now())
        .await?;
    crate::ops::audit(
        &state,
        &key,
        "webhook.create",
        &created.id.to_string(),
        serde_json::json!({"url": created.url, "event_types": created.event_types}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(WebhookView::new(created, true))))
}

/// The project's endpoints (without their secrets).
#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList), (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<WebhookList>, ApiError> {
    let project = key.require(Permission::Read)?;
    let webhooks = state.store.list_webhooks(project).await?;
    Ok(Json(WebhookList {
        webhooks: webhooks
            .into_iter()
            .map(|webhook| WebhookView::new(webhook, false))
            .collect(),
    }))
}

/// Removes an endpoint; its pending deliveries are given up.
#[utoipa::path(
    delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path)),
    responses(
        (status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let project = key.require(Permission::Admin)?;
    state
        .store
        .delete_webhook(project, id, state.clock.now())
        .await?;
    crate::ops::audit(
        &state,
        &key,
        "webhook.delete",
        &id.to_string(),
        serde_json::json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The delivery log, newest first: each delivery's event, status, next attempt and every
/// attempt (time, status code, error, latency). `webhook_id` narrows it to one endpoint;
/// `limit` is 1..=1000 (default 100).
#[utoipa::path(
    get, path = "/api/v1/webhooks/deliveries", tag = "webhooks",
    params(
        ("webhook_id" = Option<i64>, Query),
        ("limit" = Option<u32>, Query, description = "1..=1000, default 100")
    ),
    responses((status = 200, body = DeliveryList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn deliveries(
    State(state): State<AppState>,
    key: ProjectKey,
    RawQuery(raw): RawQuery,
) -> Result<Json<DeliveryList>, ApiError> {
    let project = key.require(Permission::Read)?;
    let (mut webhook_id, mut limit) = (None, 100);
    for (key, value) in parse_pairs(raw.as_deref())? {
        match key.as_str() {
            "webhook_id" => {
                webhook_id = Some(
                    value
                        .parse()
                        .map_err(|_| bad("webhook_id", "must be an integer"))?,
                )
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=1_000).contains(n))
                    .ok_or_else(|| bad("limit", "must be an integer in 1..=1000"))?
            }
            _ => return Err(bad(&key, "unknown parameter")),
        }
    }
    let deliveries = state
        .store
        .list_deliveries(project, webhook_id, limit)
        .await?;
    Ok(Json(DeliveryList {
        deliveries: deliveries.into_iter().map(Into::into).collect(),
    }))
}
