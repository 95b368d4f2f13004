//! The two ways of sending load, and the tally of what came back.
//!
//! Closed loop ([`closed_loop`]): each of N connections sends its next request when the previous
//! one is answered; this finds the throughput the server sustains. Open loop ([`open_loop`]):
//! requests leave at fixed intervals whatever the answers, so a slow server shows up as latency
//! (and requests in flight), not as a quietly lower rate.

use serde::de::IgnoredAny;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

use super::payload::Generator;
use crate::client::{Client, ClientError};

/// What the requests of a run got back.
#[derive(Debug, Default)]
pub struct Tally {
    pub num_requests: u64,
    /// Records in requests answered 2xx.
    pub acknowledged: u64,
    /// Each request's time from send to the end of the answer, in microseconds.
    pub latencies_us: Vec<u64>,
    /// Open loop only: how late each request left after its scheduled time, in microseconds.
    pub send_lags_us: Vec<u64>,
    /// When each acknowledged request was answered (milliseconds since the start) and how many
    /// records it carried, for throughput over time.
    pub completions: Vec<(u32, u32)>,
    /// Failed requests by HTTP status, or `transport` when no answer came.
    pub errors: BTreeMap<String, u64>,
    /// The first failure, to say why.
    pub first_error: Option<String>,
}

impl Tally {
    fn record(
        &mut self,
        num_records: usize,
        latency: Duration,
        since_start: Duration,
        result: Result<IgnoredAny, ClientError>,
    ) {
        self.num_requests += 1;
        self.latencies_us.push(latency.as_micros() as u64);
        match result {
            Ok(_) => {
                self.acknowledged += num_records as u64;
                self.completions
                    .push((since_start.as_millis() as u32, num_records as u32));
            }
            Err(error) => {
                let key = match &error {
                    ClientError::Api { status, .. } => status.to_string(),
                    ClientError::Transport(_) => "transport".to_owned(),
                };
                *self.errors.entry(key).or_default() += 1;
                if self.first_error.is_none() {
                    let mut message = error.to_string();
                    message.truncate(400);
                    self.first_error = Some(message);
                }
            }
        }
    }

    fn absorb(&mut self, other: Tally) {
        self.num_requests += other.num_requests;
        self.acknowledged += other.acknowledged;
        self.latencies_us.extend(other.latencies_us);
        self.send_lags_us.extend(other.send_lags_us);
        self.completions.extend(other.completions);
        for (key, count) in other.errors {
            *self.errors.entry(key).or_default() += count;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// What every request of a run shares: where to send, and how bodies are made.
pub struct Plan {
    pub client: Client,
    pub path: &'static str,
    /// Records in each body.
    pub records_per_request: usize,
    /// Makes one body; each connection has its own generator.
    pub make_body: fn(&mut Generator, usize) -> Vec<u8>,
    /// Acknowledged records so far, for the progress line.
    pub progress: Arc<AtomicU64>,
}

/// Runs `generators.len()` connections, each sending from `start` until `duration` is over;
/// returns once the last answer is in.
pub async fn closed_loop(
    plan: Plan,
    generators: Vec<Generator>,
    start: Instant,
    duration: Duration,
) -> Tally {
    let plan = Arc::new(plan);
    let deadline = start + duration;
    let connections: Vec<_> = generators
        .into_iter()
        .map(|mut generator| {
            let plan = Arc::clone(&plan);
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let body = (plan.make_body)(&mut generator, plan.records_per_request);
                    let sent = Instant::now();
                    let result = plan.client.post_bytes(plan.path, body).await;
                    if result.is_ok() {
                        plan.progress
                            .fetch_add(plan.records_per_request as u64, Ordering::Relaxed);
                    }
                    let answered = Instant::now();
                    tally.record(
                        plan.records_per_request,
                        answered - sent,
                        answered - start,
                        result,
                    );
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for connection in connections {
        match connection.await {
            Ok(tally) => total.absorb(tally),
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
    total
}

/// Sends `rate` requests a second from `start` for `duration`, each at its scheduled time, with at most
/// `max_in_flight` unanswered (beyond that, sends wait, and the wait shows as send lag).
/// Returns once the last answer is in.
pub async fn open_loop(
    plan: Plan,
    mut generator: Generator,
    start: Instant,
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
) -> Tally {
    let plan = Arc::new(plan);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let in_flight = Arc::new(Semaphore::new(max_in_flight));
    let num_requests = (rate * duration.as_secs_f64()).round() as u64;
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = tokio::time::Instant::from_std(start);
    for index in 0..num_requests {
        let scheduled = start + period.mul_f64(index as f64);
        tokio::time::sleep_until(scheduled).await;
        let permit = Arc::clone(&in_flight)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let body = (plan.make_body)(&mut generator, plan.records_per_request);
        let sent = tokio::time::Instant::now();
        let lag = sent.saturating_duration_since(scheduled);
        let (plan, tally) = (Arc::clone(&plan), Arc::clone(&tally));
        tokio::spawn(async move {
            let result = plan.client.post_bytes(plan.path, body).await;
            let answered = tokio::time::Instant::now();
            if result.is_ok() {
                plan.progress
                    .fetch_add(plan.records_per_request as u64, Ordering::Relaxed);
            }
            let mut tally = tally
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            tally.record(
                plan.records_per_request,
                answered - sent,
                answered - start,
                result,
            );
            tally.send_lags_us.push(lag.as_micros() as u64);
            drop(permit);
        });
    }
    // Every request holds a permit until its answer is tallied.
    let _all = in_flight
        .acquire_many(max_in_flight as u32)
        .await
        .expect("the semaphore is never closed");
    let mut tally = tally
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    std::mem::take(&mut *tally)
}
