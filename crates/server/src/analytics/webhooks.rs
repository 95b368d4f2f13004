//! Delivering the webhook outbox: each due delivery is POSTed with its signature, the attempt
//! is logged, and a failed delivery is tried again later (exponential backoff with jitter) until
//! `webhook_max_attempts`, then given up. One pass is one run of the `deliver_webhooks` job,
//! with the job's `now`, so tests move time instead of waiting.
//!
//! The signature header is Stripe's scheme: `X-Feedloop-Signature: t=<unix seconds>,v1=<hex>`
//! where `<hex>` is HMAC-SHA256 with the endpoint's secret over `"<t>.<body>"`. Receivers
//! recompute it, compare in constant time, and reject old `t` to stop replays.

use feedloop_core::Timestamp;
use feedloop_core::events::retry_delay;
use feedloop_store::StoreError;
use feedloop_store::webhooks::{Attempt, DeliveryStatus, DueDelivery};
use futures::StreamExt;
use hmac::{KeyInit, Mac};
use jiff::SignedDuration;
use std::time::Instant;

use crate::AppState;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "x-feedloop-signature";

/// Deliveries sent at once in one pass.
const CONCURRENT_DELIVERIES: usize = 8;

/// Deliveries taken per pass; the next pass takes the rest.
const DELIVERIES_PER_PASS: u32 = 200;

type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body" keyed by the secret>`.
pub fn signature(secret: &str, unix_seconds: i64, body: &str) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("t={unix_seconds},v1={hex}")
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub num_delivered: u64,
    pub num_retrying: u64,
    pub num_given_up: u64,
}

/// Sends every delivery due at `now` and records each attempt.
pub async fn deliver_due(state: &AppState, now: Timestamp) -> Result<DeliveryReport, StoreError> {
    // Claimed for as long as a pass may take: every batch of concurrent sends timing out.
    let config = &state.analytics.config;
    let pass_limit = config
        .webhook_timeout
        .saturating_mul(1 + DELIVERIES_PER_PASS.div_ceil(CONCURRENT_DELIVERIES as u32));
    let lease_until = now
        .saturating_add(SignedDuration::try_from(pass_limit).unwrap_or(SignedDuration::MAX))
        .unwrap_or(now);
    let due = state
        .store
        .claim_due_deliveries(now, lease_until, DELIVERIES_PER_PASS)
        .await?;
    let outcomes: Vec<(DueDelivery, Attempt)> = futures::stream::iter(due)
        .map(|delivery| async move {
            let attempt = send(state, &delivery, now).await;
            (delivery, attempt)
        })
        .buffer_unordered(CONCURRENT_DELIVERIES)
        .collect()
        .await;
    let mut report = DeliveryReport::default();
    for (delivery, attempt) in outcomes {
        let num_attempts = delivery.num_attempts + 1;
        let (status, next) = if attempt.error.is_none() {
            report.num_delivered += 1;
            (DeliveryStatus::Delivered, None)
        } else if num_attempts >= config.webhook_max_attempts {
            report.num_given_up += 1;
            tracing::warn!(
                delivery = delivery.id,
                webhook = delivery.webhook_id,
                num_attempts,
                "webhook delivery given up"
            );
            (DeliveryStatus::Failed, None)
        } else {
            report.num_retrying += 1;
            let delay = retry_delay(
                num_attempts,
                config.webhook_base_delay,
                config.webhook_max_delay,
                rand::random::<f64>(),
            );
            (
                DeliveryStatus::Pending,
                Some(now.saturating_add(delay).unwrap_or(now)),
            )
        };
        state
            .store
            .record_attempt(delivery.id, &attempt, status, next)
            .await?;
    }
    Ok(report)
}

/// One attempt: POST the payload, signed; any 2xx answer delivers it.
async fn send(state: &AppState, delivery: &DueDelivery, now: Timestamp) -> Attempt {
    let started = Instant::now();
    let answer = state
        .analytics
        .http
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header("user-agent", "feedloop-webhooks")
        .header("x-feedloop-event", &delivery.event_type)
        .header("x-feedloop-event-id", &delivery.event_id)
        .header(
            SIGNATURE_HEADER,
            signature(&delivery.secret, now.as_second(), &delivery.payload),
        )
        .body(delivery.payload.clone())
        .send()
        .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let (status_code, error) = match answer {
        Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
        Ok(response) => (
            Some(response.status().as_u16()),
            Some(format!("the receiver answered {}", response.status())),
        ),
        Err(error) if error.is_timeout() => (None, Some("timed out".to_owned())),
        Err(error) if error.is_connect() => (None, Some("cannot connect".to_owned())),
        Err(error) => (None, Some(format!("request failed: {error}"))),
    };
    Attempt {
        at: now,
        status_code,
        error,
        latency_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_pythons_hmac() {
        // hmac.new(b"whsec_test", b'1767225600.{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            signature("whsec_test", 1_767_225_600, "{\"a\":1}"),
            "t=1767225600,v1=6d204545ff126a339c00513d93603299c984074ce1331c3537c3f6c976b49019"
        );
    }
}
