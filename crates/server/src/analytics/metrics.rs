//! The replica's own Prometheus metrics: request latency histograms by route, method and
//! status class, items ingested by route, and (read from the store at scrape time) job lag and
//! webhook delivery totals. `/metrics` (routes/meta.rs) renders them after semantic memory's.
//!
//! A small registry of our own rather than a metrics crate: a handful of series, rendered in
//! the text format, with no global recorder to install in every test.

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use feedloop_core::Timestamp;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::AppState;
use crate::jobs::Job;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

tokio::task_local! {
    /// The matched route of the request being served on this task, so that the ingest path
    /// can count items by route without every caller passing it down.
    static ROUTE: String;
}

/// The route of the request this task serves, or `background` (gateway trace writes, OTLP/gRPC).
pub fn current_route() -> String {
    ROUTE
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "background".to_owned())
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Counts per bucket (not cumulative), then the overflow.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let index = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[index] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// (route, method, status class)
type RequestKey = (String, String, &'static str);

/// The registry; every method is cheap and takes a short lock.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestKey, Histogram>>,
    /// (route, item kind) → items.
    ingested: Mutex<BTreeMap<(String, &'static str), u64>>,
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn observe_request(&self, route: &str, method: &str, status: StatusCode, took: Duration) {
        let mut requests = self
            .requests
            .lock()
            .expect("the metrics lock is never poisoned");
        requests
            .entry((route.to_owned(), method.to_owned(), status_class(status)))
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Counts an ingested batch under the current request's route.
    pub fn count_ingest(&self, traces: usize, spans: usize, feedback: usize) {
        let route = current_route();
        let mut ingested = self
            .ingested
            .lock()
            .expect("the metrics lock is never poisoned");
        for (item, num) in [("traces", traces), ("spans", spans), ("feedback", feedback)] {
            *ingested.entry((route.clone(), item)).or_default() += num as u64;
        }
    }

    /// The registry's series in the text format.
    pub fn render(&self, out: &mut String) {
        let requests = self
            .requests
            .lock()
            .expect("the metrics lock is never poisoned")
            .clone();
        let name = "feedloop_http_request_duration_seconds";
        let _ = write!(
            out,
            "# HELP {name} Time to answer a request (until the response head), by matched route, method and status class.\n# TYPE {name} histogram\n"
        );
        for ((route, method, class), histogram) in &requests {
            let labels = format!(
                "route=\"{}\",method=\"{}\",status=\"{class}\"",
                label(route),
                label(method)
            );
            let mut cumulative = 0;
            for (bound, num) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
                cumulative += num;
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", histogram.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", histogram.count);
        }
        let ingested = self
            .ingested
            .lock()
            .expect("the metrics lock is never poisoned")
            .clone();
        let name = "feedloop_ingested_items_total";
        let _ = write!(
            out,
            "# HELP {name} Traces, spans and feedback items this replica stored (or found already stored), by route.\n# TYPE {name} counter\n"
        );
        for ((route, item), num) in &ingested {
            let _ = writeln!(
                out,
                "{name}{{route=\"{}\",item=\"{item}\"}} {num}",
                label(route)
            );
        }
    }
}

/// Middleware: times every request and labels it with its matched route.
pub async fn track_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = ROUTE.scope(route.clone(), next.run(request)).await;
    state
        .analytics
        .metrics
        .observe_request(&route, &method, response.status(), started.elapsed());
    response
}

/// The series read from the store at scrape time (shared by all replicas): seconds since each
/// job last finished a run, webhook deliveries by status with the failed attempts, review queue
/// sizes and the stored aggregation buckets.
pub async fn render_shared(
    state: &AppState,
    now: Timestamp,
    out: &mut String,
) -> Result<(), feedloop_store::StoreError> {
    let names: Vec<&str> = Job::ALL.iter().map(|job| job.name()).collect();
    let finished = state.store.job_last_finished(&names).await?;
    let name = "feedloop_job_seconds_since_last_run";
    let _ = write!(
        out,
        "# HELP {name} Seconds since the job last finished a run on any replica (absent: never ran).\n# TYPE {name} gauge\n"
    );
    for (job, at) in finished {
        let lag = now.duration_since(at).as_secs_f64().max(0.0);
        let _ = writeln!(out, "{name}{{job=\"{}\"}} {lag}", label(&job));
    }
    let totals = state.store.delivery_totals().await?;
    let name = "feedloop_webhook_deliveries";
    let _ = write!(
        out,
        "# HELP {name} Webhook deliveries by status (failed: given up after the last attempt).\n# TYPE {name} gauge\n"
    );
    for (status, num) in [
        ("pending", totals.pending),
        ("delivered", totals.delivered),
        ("failed", totals.failed),
    ] {
        let _ = writeln!(out, "{name}{{status=\"{status}\"}} {num}");
    }
    let name = "feedloop_review_queue_items";
    let _ = write!(
        out,
        "# HELP {name} Review queue items by project, queue and state (an expired reservation is pending).\n# TYPE {name} gauge\n"
    );
    for size in state.store.queue_sizes(now).await? {
        let _ = writeln!(
            out,
            "{name}{{project=\"{}\",queue=\"{}\",state=\"{}\"}} {}",
            label(&size.project),
            label(&size.queue),
            label(&size.state),
            size.items
        );
    }
    let name = "feedloop_analytics_stored_buckets";
    let _ = write!(
        out,
        "# HELP {name} Closed buckets of feedback aggregations stored for reuse (all projects).\n# TYPE {name} gauge\n{name} {}\n",
        state.store.stored_buckets().await?
    );
    let name = "feedloop_webhook_failed_attempts_total";
    let _ = write!(
        out,
        "# HELP {name} Webhook delivery attempts that failed (an error status, a time-out, no connection).\n# TYPE {name} counter\n{name} {}\n",
        totals.failed_attempts
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let metrics = Metrics::default();
        for millis in [1, 3, 40, 20_000] {
            metrics.observe_request(
                "/api/v1/traces",
                "GET",
                StatusCode::OK,
                Duration::from_millis(millis),
            );
        }
        let mut out = String::new();
        metrics.render(&mut out);
        let line = |le: &str| {
            format!(
                "feedloop_http_request_duration_seconds_bucket{{route=\"/api/v1/traces\",method=\"GET\",status=\"2xx\",le=\"{le}\"}}"
            )
        };
        assert!(out.contains(&format!("{} 1\n", line("0.001"))), "{out}");
        assert!(out.contains(&format!("{} 2\n", line("0.005"))), "{out}");
        assert!(out.contains(&format!("{} 3\n", line("10"))), "{out}");
        assert!(out.contains(&format!("{} 4\n", line("+Inf"))), "{out}");
        assert!(out.contains("_count{route=\"/api/v1/traces\",method=\"GET\",status=\"2xx\"} 4\n"));
    }
}
