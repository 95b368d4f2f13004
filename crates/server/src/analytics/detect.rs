//! Comparing the negative rates of two trace sets, and the two detectors built on it: a
//! **regression** (the newest model or prompt version of a family against the version before
//! it) and a **negative spike** (the last hour against the trailing baseline). A detector that
//! finds a significantly worse rate raises an alert with its evidence; the store writes the
//! alert and its webhook event in one transaction, once per condition (its dedupe key).
//!
//! A trace set's negative rate is the share of its traces (by start time) that carry current
//! negative feedback, explicit or implicit (`Feedback::is_negative`).

use feedloop_core::events::{Event, EventType};
use feedloop_core::filter::Filter;
use feedloop_core::stats::{Bucket, Proportion, ZTest, two_proportion_z_test, wilson};
use feedloop_core::{ProjectId, Timestamp};
use feedloop_store::StoreError;
use feedloop_store::analytics::{Alert, NegativeCounts, NewAlert, VersionKind, VersionTraffic};
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::events::outbox_event;

/// What a comparison concludes about `b` against `a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// `b`'s negative rate is significantly higher.
    Worse,
    /// `b`'s negative rate is significantly lower.
    Better,
    NoSignificantDifference,
    /// A side has fewer traces than the minimum.
    InsufficientData,
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SideRate {
    pub num_traces: u64,
    pub num_negative: u64,
    /// The negative rate with its 95 % Wilson interval; absent without traces.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub negative_rate: Option<Proportion>,
}

impl From<NegativeCounts> for SideRate {
    fn from(counts: NegativeCounts) -> Self {
        Self {
            num_traces: counts.num_traces,
            num_negative: counts.num_negative,
            negative_rate: wilson(counts.num_negative, counts.num_traces),
        }
    }
}

/// Two negative rates, their difference (`b − a`), the two-proportion z-test and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Comparison {
    pub a: SideRate,
    pub b: SideRate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z: Option<f64>,
    /// Two-sided p-value of the pooled two-proportion z-test.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    pub alpha: f64,
    pub min_traces: u64,
    pub verdict: Verdict,
}

/// Compares `b` with `a`: a difference is significant when p < `alpha`; either side with
/// fewer than `min_traces` traces gives no verdict.
pub fn compare(a: NegativeCounts, b: NegativeCounts, alpha: f64, min_traces: u64) -> Comparison {
    let test: Option<ZTest> =
        two_proportion_z_test(a.num_negative, a.num_traces, b.num_negative, b.num_traces);
    let (side_a, side_b) = (SideRate::from(a), SideRate::from(b));
    let difference = match (side_a.negative_rate, side_b.negative_rate) {
        (Some(a), Some(b)) => Some(b.rate - a.rate),
        _ => None,
    };
    let verdict = match test {
        _ if a.num_traces < min_traces.max(1) || b.num_traces < min_traces.max(1) => {
            Verdict::InsufficientData
        }
        Some(test) if test.p_value < alpha && test.z > 0.0 => Verdict::Worse,
        Some(test) if test.p_value < alpha && test.z < 0.0 => Verdict::Better,
        _ => Verdict::NoSignificantDifference,
    };
    Comparison {
        a: side_a,
        b: side_b,
        difference,
        z: test.map(|t| t.z),
        p_value: test.map(|t| t.p_value),
        alpha,
        min_traces,
        verdict,
    }
}

/// The newest version of each family (by first trace) with the version that preceded it.
pub fn newest_pairs(traffic: &[VersionTraffic]) -> Vec<(&VersionTraffic, &VersionTraffic)> {
    let mut pairs = Vec::new();
    let mut start = 0;
    while start < traffic.len() {
        let end = traffic[start..]
            .iter()
            .position(|v| v.name != traffic[start].name)
            .map_or(traffic.len(), |offset| start + offset);
        let family = &traffic[start..end];
        let mut by_first: Vec<&VersionTraffic> = family.iter().collect();
        by_first.sort_by(|x, y| (x.first_seen, &x.version).cmp(&(y.first_seen, &y.version)));
        if let [.., previous, newest] = by_first.as_slice() {
            pairs.push((*previous, *newest));
        }
        start = end;
    }
    pairs
}

fn version_filter(
    kind: VersionKind,
    name: &str,
    version: &str,
    from: Timestamp,
    to: Timestamp,
) -> Filter {
    let mut filter = Filter {
        from: Some(from),
        to: Some(to),
        ..Filter::default()
    };
    match kind {
        VersionKind::Model => {
            filter.model = Some(name.to_owned());
            filter.model_version = Some(version.to_owned());
        }
        VersionKind::Prompt => {
            filter.prompt_name = Some(name.to_owned());
            filter.prompt_version = Some(version.to_owned());
        }
    }
    filter
}

/// Raises `alert` (once per dedupe key) with its webhook event of `event_type`.
async fn raise(
    state: &AppState,
    project: ProjectId,
    event_type: EventType,
    alert: NewAlert,
    now: Timestamp,
) -> Result<Option<Alert>, StoreError> {
    let mut data = alert.evidence.clone();
    if let serde_json::Value::Object(fields) = &mut data {
        fields.insert("message".into(), alert.message.clone().into());
        fields.insert("dedupe_key".into(), alert.dedupe_key.clone().into());
    }
    let event = outbox_event(project, &Event::new(event_type, data, now));
    let raised = state
        .store
        .raise_alert(project, &alert, &event, now)
        .await?;
    if let Some(alert) = &raised {
        tracing::warn!(project = project.0, kind = %alert.kind, key = %alert.dedupe_key, "alert raised");
    }
    Ok(raised)
}

/// Compares the newest model and prompt version of every family in the project with the
/// version before it, over the regression window; raises an alert for each that is worse.
pub async fn detect_regressions(
    state: &AppState,
    project: ProjectId,
    now: Timestamp,
) -> Result<Vec<Alert>, StoreError> {
    let config = &state.analytics.config;
    let from = now.saturating_sub(config.regression_window).unwrap_or(now);
    let mut raised = Vec::new();
    for kind in [VersionKind::Model, VersionKind::Prompt] {
        let traffic = state
            .store
            .version_traffic(project, kind, from, now)
            .await?;
        for (previous, newest) in newest_pairs(&traffic) {
            if previous.num_traces < config.regression_min_traces
                || newest.num_traces < config.regression_min_traces
            {
                continue;
            }
            let a = state
                .store
                .negative_counts(
                    project,
                    &version_filter(kind, &previous.name, &previous.version, from, now),
                )
                .await?;
            let b = state
                .store
                .negative_counts(
                    project,
                    &version_filter(kind, &newest.name, &newest.version, from, now),
                )
                .await?;
            let comparison = compare(a, b, config.regression_alpha, config.regression_min_traces);
            if comparison.verdict != Verdict::Worse {
                continue;
            }
            let alert = NewAlert {
                kind: EventType::Regression.as_str().to_owned(),
                dedupe_key: format!(
                    "regression:{}:{}:{}->{}",
                    kind.as_str(),
                    newest.name,
                    previous.version,
                    newest.version
                ),
                message: format!(
                    "{} {} version {} has a higher negative rate than version {}",
                    kind.as_str(),
                    newest.name,
                    newest.version,
                    previous.version
                ),
                evidence: serde_json::json!({
                    "version_kind": kind.as_str(),
                    "name": newest.name,
                    "baseline_version": previous.version,
                    "candidate_version": newest.version,
                    "from": from,
                    "to": now,
                    "comparison": comparison,
                }),
            };
            raised.extend(raise(state, project, EventType::Regression, alert, now).await?);
        }
    }
    Ok(raised)
}

/// Compares the last hour's negative rate with the trailing baseline before it; raises an
/// alert (once per hour) when it is significantly higher.
pub async fn detect_negative_spike(
    state: &AppState,
    project: ProjectId,
    now: Timestamp,
) -> Result<Option<Alert>, StoreError> {
    let config = &state.analytics.config;
    let hour_ago = now
        .saturating_sub(SignedDuration::from_hours(1))
        .unwrap_or(now);
    let baseline_from = hour_ago
        .saturating_sub(config.spike_baseline)
        .unwrap_or(hour_ago);
    let range = |from: Timestamp, to: Timestamp| Filter {
        from: Some(from),
        to: Some(to),
        ..Filter::default()
    };
    let last_hour = state
        .store
        .negative_counts(project, &range(hour_ago, now))
        .await?;
    let baseline = state
        .store
        .negative_counts(project, &range(baseline_from, hour_ago))
        .await?;
    let comparison = compare(
        baseline,
        last_hour,
        config.spike_alpha,
        config.spike_min_traces,
    );
    if comparison.verdict != Verdict::Worse {
        return Ok(None);
    }
    let hour = Bucket::Hour.start_of(now.as_microsecond());
    let hour = Timestamp::from_microsecond(hour).unwrap_or(now);
    let alert = NewAlert {
        kind: EventType::NegativeSpike.as_str().to_owned(),
        dedupe_key: format!("negative_spike:{hour}"),
        message: "the last hour's negative rate is significantly above the trailing baseline"
            .into(),
        evidence: serde_json::json!({
            "window_from": hour_ago,
            "window_to": now,
            "baseline_from": baseline_from,
            "baseline_to": hour_ago,
            "comparison": comparison,
        }),
    };
    raise(state, project, EventType::NegativeSpike, alert, now).await
}

/// One run of the `detect_anomalies` job: both detectors over every project.
pub async fn detect_all(state: &AppState, now: Timestamp) -> Result<usize, StoreError> {
    let mut num_raised = 0;
    for project in state.store.list_projects().await? {
        num_raised += detect_regressions(state, project.id, now).await?.len();
        num_raised += usize::from(
            detect_negative_spike(state, project.id, now)
                .await?
                .is_some(),
        );
    }
    Ok(num_raised)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(num_negative: u64, num_traces: u64) -> NegativeCounts {
        NegativeCounts {
            num_traces,
            num_negative,
        }
    }

    #[test]
    fn verdicts_follow_the_test_and_the_minimum_sample() {
        assert_eq!(
            compare(counts(10, 100), counts(30, 100), 0.01, 50).verdict,
            Verdict::Worse
        );
        assert_eq!(
            compare(counts(30, 100), counts(10, 100), 0.01, 50).verdict,
            Verdict::Better
        );
        assert_eq!(
            compare(counts(10, 100), counts(14, 100), 0.01, 50).verdict,
            Verdict::NoSignificantDifference
        );
        assert_eq!(
            compare(counts(10, 100), counts(30, 40), 0.01, 50).verdict,
            Verdict::InsufficientData
        );
        let comparison = compare(counts(10, 100), counts(30, 100), 0.01, 50);
        assert!((comparison.difference.unwrap() - 0.2).abs() < 1e-12);
    }

    #[test]
    fn the_newest_version_of_each_family_pairs_with_the_one_before() {
        let at = |s: i64| Timestamp::from_second(1_767_225_600 + s).unwrap();
        let version = |name: &str, version: &str, first: i64| VersionTraffic {
            name: name.into(),
            version: version.into(),
            first_seen: at(first),
            last_seen: at(first + 10),
            num_traces: 5,
        };
        let traffic = [
            version("gpt", "1", 0),
            version("gpt", "3", 200),
            version("gpt", "2", 100),
            version("llama", "a", 50),
        ];
        let pairs: Vec<(&str, &str)> = newest_pairs(&traffic)
            .into_iter()
            .map(|(previous, newest)| (previous.version.as_str(), newest.version.as_str()))
            .collect();
        assert_eq!(pairs, [("2", "3")]);
    }
}
