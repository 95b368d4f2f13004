//! The result of a run: throughput, latency percentiles, failures, and whether the server stored
//! exactly what it acknowledged. Printed for people (stderr) and as JSON (stdout).

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

use super::load::Tally;

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `micros` (sorted in place); zeros when empty.
    pub fn of_micros(micros: &mut [u64]) -> Self {
        if micros.is_empty() {
            return Self::default();
        }
        micros.sort_unstable();
        let rank = |p: f64| {
            let index = ((p * micros.len() as f64).ceil() as usize).clamp(1, micros.len()) - 1;
            micros[index] as f64 / 1000.0
        };
        let sum: u128 = micros.iter().map(|&m| u128::from(m)).sum();
        Self {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: micros[micros.len() - 1] as f64 / 1000.0,
            mean: sum as f64 / micros.len() as f64 / 1000.0,
        }
    }
}

/// The throughput of one stretch of the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    pub start_secs: f64,
    pub end_secs: f64,
    pub records_per_sec: f64,
}

/// Acknowledged records per second in about six windows of the planned duration (whole
/// seconds); the last window runs to `elapsed_secs`, so it takes the answers that came after
/// the planned end.
pub fn windows(completions: &[(u32, u32)], planned_secs: u64, elapsed_secs: f64) -> Vec<Window> {
    let width = planned_secs.div_ceil(6).max(1);
    let num_windows = planned_secs.div_ceil(width).max(1) as usize;
    let mut records = vec![0u64; num_windows];
    for &(millis, num) in completions {
        let index = (u64::from(millis) / 1000 / width) as usize;
        records[index.min(num_windows - 1)] += u64::from(num);
    }
    records
        .into_iter()
        .enumerate()
        .map(|(index, num)| {
            let start_secs = (index as u64 * width) as f64;
            let end_secs = if index + 1 == num_windows {
                elapsed_secs.max(start_secs + 0.001)
            } else {
                ((index as u64 + 1) * width) as f64
            };
            Window {
                start_secs,
                end_secs,
                records_per_sec: num as f64 / (end_secs - start_secs),
            }
        })
        .collect()
}

/// Everything a run measured; the JSON summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub workload: String,
    pub run_id: String,
    pub seed: u64,
    pub concurrency: usize,
    pub records_per_request: usize,
    /// The open loop's target in requests per second; absent for closed-loop runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    /// From the first send to the last answer.
    pub duration_secs: f64,
    pub requests: u64,
    pub requests_per_sec: f64,
    /// Records in requests answered 2xx.
    pub acknowledged: u64,
    pub records_per_sec: f64,
    /// Throughput over time: does the rate hold as the database grows?
    pub windows: Vec<Window>,
    /// Failed requests by HTTP status (`transport`: no answer).
    pub errors: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Send to end of answer, per request.
    pub latency_ms: Percentiles,
    /// Open loop only: how late requests left after their scheduled time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_lag_ms: Option<Percentiles>,
    /// What `/api/v1/stats` counted (`traces` or `feedback`).
    pub counted: &'static str,
    pub stored_before: u64,
    pub stored_after: u64,
    pub stored_delta: i64,
    /// The stored delta equals the acknowledged count.
    pub verified: bool,
}

/// What a run was, apart from what it measured.
pub struct RunInfo {
    pub workload: String,
    pub run_id: String,
    pub seed: u64,
    pub concurrency: usize,
    pub records_per_request: usize,
    pub planned_duration_secs: u64,
    pub target_rate: Option<f64>,
    pub counted: &'static str,
}

impl Summary {
    pub fn new(
        info: RunInfo,
        mut tally: Tally,
        duration_secs: f64,
        stored_before: u64,
        stored_after: u64,
    ) -> Self {
        let per_sec = |n: u64| {
            if duration_secs > 0.0 {
                n as f64 / duration_secs
            } else {
                0.0
            }
        };
        let stored_delta = stored_after as i64 - stored_before as i64;
        Self {
            workload: info.workload,
            run_id: info.run_id,
            seed: info.seed,
            concurrency: info.concurrency,
            records_per_request: info.records_per_request,
            target_rate: info.target_rate,
            duration_secs,
            requests: tally.num_requests,
            requests_per_sec: per_sec(tally.num_requests),
            acknowledged: tally.acknowledged,
            records_per_sec: per_sec(tally.acknowledged),
            windows: windows(
                &tally.completions,
                info.planned_duration_secs,
                duration_secs,
            ),
            errors: tally.errors,
            first_error: tally.first_error,
            latency_ms: Percentiles::of_micros(&mut tally.latencies_us),
            send_lag_ms: info
                .target_rate
                .map(|_| Percentiles::of_micros(&mut tally.send_lags_us)),
            counted: info.counted,
            stored_before,
            stored_after,
            stored_delta,
            verified: stored_delta == tally.acknowledged as i64,
        }
    }

    /// A few lines for people.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let shape = match self.target_rate {
            Some(rate) => format!("open loop at {rate} requests/s"),
            None => format!(
                "{} connections x {} records per request",
                self.concurrency, self.records_per_request
            ),
        };
        let _ = writeln!(
            out,
            "feedloop bench {} (run {}, seed {}): {shape}, {:.1} s",
            self.workload, self.run_id, self.seed, self.duration_secs
        );
        let failed: u64 = self.errors.values().sum();
        let _ = write!(
            out,
            "  requests   {} ({:.1}/s), {failed} failed",
            self.requests, self.requests_per_sec
        );
        for (status, count) in &self.errors {
            let _ = write!(out, ", {status}: {count}");
        }
        let _ = writeln!(out);
        if let Some(error) = &self.first_error {
            let _ = writeln!(out, "  first error {error}");
        }
        let _ = writeln!(
            out,
            "  records    {} acknowledged ({:.0}/s)",
            self.acknowledged, self.records_per_sec
        );
        let _ = write!(out, "  over time ");
        for window in &self.windows {
            let _ = write!(
                out,
                " {:.0}-{:.0}s: {:.0}/s",
                window.start_secs, window.end_secs, window.records_per_sec
            );
        }
        let _ = writeln!(out);
        let line = |name: &str, p: &Percentiles| {
            format!(
                "  {name:<10} p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  mean {:.2} ms\n",
                p.p50, p.p90, p.p99, p.max, p.mean
            )
        };
        out.push_str(&line("latency", &self.latency_ms));
        if let Some(lag) = &self.send_lag_ms {
            out.push_str(&line("send lag", lag));
        }
        let _ = write!(
            out,
            "  stored     {:+} {} ({} -> {}): {}",
            self.stored_delta,
            self.counted,
            self.stored_before,
            self.stored_after,
            if self.verified {
                "verified, equals the acknowledged count"
            } else {
                "MISMATCH with the acknowledged count"
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut micros: Vec<u64> = (1..=100).rev().map(|ms| ms * 1000).collect();
        let p = Percentiles::of_micros(&mut micros);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(p.mean, 50.5);
        assert_eq!(Percentiles::of_micros(&mut []), Percentiles::default());
        assert_eq!(Percentiles::of_micros(&mut [1500]).p99, 1.5);
    }

    #[test]
    fn a_run_is_verified_only_when_the_stored_delta_equals_the_acknowledged_count() {
        let info = || RunInfo {
            workload: "feedback-batch".into(),
            run_id: "r".into(),
            seed: 1,
            concurrency: 1,
            records_per_request: 10,
            planned_duration_secs: 2,
            target_rate: None,
            counted: "feedback",
        };
        let tally = || Tally {
            num_requests: 2,
            acknowledged: 10,
            latencies_us: vec![1000, 2000],
            completions: vec![(500, 5), (1500, 5)],
            ..Default::default()
        };
        let summary = Summary::new(info(), tally(), 2.0, 5, 15);
        assert!(summary.verified);
        assert_eq!(summary.records_per_sec, 5.0);
        assert!(!Summary::new(info(), tally(), 2.0, 5, 14).verified);
        assert!(summary.human().contains("verified"));
        assert_eq!(summary.windows.len(), 2);
    }

    #[test]
    fn windows_split_the_planned_duration_and_the_last_takes_the_tail() {
        let completions = [
            (0, 10),
            (9_999, 10),
            (10_000, 30),
            (59_000, 60),
            (61_500, 61),
        ];
        let w = windows(&completions, 60, 62.0);
        assert_eq!(w.len(), 6);
        assert_eq!(
            (w[0].start_secs, w[0].end_secs, w[0].records_per_sec),
            (0.0, 10.0, 2.0)
        );
        assert_eq!(w[1].records_per_sec, 3.0);
        assert_eq!((w[5].start_secs, w[5].end_secs), (50.0, 62.0));
        assert_eq!(w[5].records_per_sec, 121.0 / 12.0);
        assert_eq!(windows(&[(2_500, 4)], 3, 3.0)[2].records_per_sec, 4.0);
    }
}
