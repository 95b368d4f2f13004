//! Analytics on top of the store: comparisons and the detectors that raise alerts
//! ([`detect`]), the webhook outbox's delivery ([`webhooks`]) and the replica's Prometheus
//! metrics ([`metrics`]). [`AnalyticsState`] is what these keep per replica.

pub mod detect;
pub mod metrics;
pub mod webhooks;

use jiff::SignedDuration;
use std::time::Duration;

/// Thresholds of the detectors and the webhook retry policy.
#[derive(Debug, Clone)]
pub struct AnalyticsConfig {
    /// A version's negative rate is a regression when the two-proportion test's p-value is
    /// below this (and the new version's rate is the higher).
    pub regression_alpha: f64,
    /// Traces each version needs before the two are compared.
    pub regression_min_traces: u64,
    /// How far back the regression detector looks for versions and their traffic.
    pub regression_window: SignedDuration,
    /// A negative spike: the last hour's negative rate is above the baseline's with a p-value
    /// below this.
    pub spike_alpha: f64,
    /// Traces the last hour needs before it is compared with its baseline.
    pub spike_min_traces: u64,
    /// The trailing baseline before the last hour.
    pub spike_baseline: SignedDuration,
    /// Attempts of a webhook delivery before it is given up.
    pub webhook_max_attempts: u32,
    /// The first retry's delay; each further retry doubles it, up to `webhook_max_delay`.
    pub webhook_base_delay: SignedDuration,
    pub webhook_max_delay: SignedDuration,
    /// How long one delivery attempt may take.
    pub webhook_timeout: Duration,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            regression_alpha: 0.01,
            regression_min_traces: 200,
            regression_window: SignedDuration::from_hours(7 * 24),
            spike_alpha: 0.01,
            spike_min_traces: 50,
            spike_baseline: SignedDuration::from_hours(24),
            webhook_max_attempts: 8,
            webhook_base_delay: SignedDuration::from_secs(30),
            webhook_max_delay: SignedDuration::from_hours(1),
            webhook_timeout: Duration::from_secs(10),
        }
    }
}

/// What analytics keeps per replica: its settings, the metrics registry and the HTTP client
/// that delivers webhooks.
pub struct AnalyticsState {
    pub config: AnalyticsConfig,
    pub metrics: metrics::Metrics,
    pub(crate) http: reqwest::Client,
}

impl AnalyticsState {
    pub fn new(config: AnalyticsConfig) -> Self {
        // reqwest is built without a default rustls provider (see feedloop_embed::tls).
        feedloop_embed::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(config.webhook_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an http client builds once the tls provider is installed");
        Self {
            config,
            metrics: metrics::Metrics::default(),
            http,
        }
    }
}
