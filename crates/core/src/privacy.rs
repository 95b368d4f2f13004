//! A project's privacy settings: how personal data in what it ingests is redacted
//! ([`PiiMode`]), and how long its traces and feedback are kept ([`Retention`]).
//!
//! Redaction happens before anything is stored, embedded or logged (see [`redact`]); retention
//! is enforced by a background job that deletes what its [`RetentionCutoffs`] name. Both are
//! off for a project that never stored settings: existing data and clients see what they sent.

pub mod redact;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::pii::PiiMode;

/// The longest retention accepted, in days (100 years): longer is "keep forever", which is
/// what leaving the field out means.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// A project's privacy settings. A project without stored settings has the defaults:
/// nothing redacted, everything kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    /// What ingest does with e-mail addresses, phone numbers, card numbers, IP addresses and
    /// secrets in inputs, outputs, context, spans, comments, corrections, annotations and
    /// signal details: `off` (stored as sent), `mask` (`[EMAIL]`) or `hash` (`[EMAIL:1f0c…]`).
    #[serde(default = "off")]
    pub pii_mode: PiiMode,
    #[serde(flatten)]
    pub retention: Retention,
}

fn off() -> PiiMode {
    PiiMode::Off
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            pii_mode: PiiMode::Off,
            retention: Retention::default(),
        }
    }
}

/// How long a project keeps its data, in days; a field left out keeps that data forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Retention {
    /// Traces (with their spans, vectors, feedback and everything derived from them) are
    /// deleted this many days after they started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_days: Option<u32>,
    /// Feedback is deleted this many days after it was given, even when its trace stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_days: Option<u32>,
    /// Traces that a person gave feedback on (any source but `automatic`) are kept this long
    /// instead of `trace_days`; at least `trace_days`, and only with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_with_feedback_days: Option<u32>,
}

impl Retention {
    /// Each period in 1..=[`MAX_RETENTION_DAYS`]; keeping traces with feedback longer needs a
    /// trace retention to extend and must not shorten it.
    pub fn check(&self) -> Result<(), ValidationError> {
        for (field, days) in [
            ("trace_days", self.trace_days),
            ("feedback_days", self.feedback_days),
            ("keep_with_feedback_days", self.keep_with_feedback_days),
        ] {
            if let Some(days) = days
                && !(1..=MAX_RETENTION_DAYS).contains(&days)
            {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "must be between 1 and {MAX_RETENTION_DAYS} days (leave it out to keep forever)"
                    ),
                ));
            }
        }
        match (self.trace_days, self.keep_with_feedback_days) {
            (None, Some(_)) => Err(ValidationError::new(
                "keep_with_feedback_days",
                "needs trace_days: it keeps traces with feedback longer than trace_days",
            )),
            (Some(trace), Some(keep)) if keep < trace => Err(ValidationError::new(
                "keep_with_feedback_days",
                format!("must be at least trace_days ({trace})"),
            )),
            _ => Ok(()),
        }
    }

    /// Whether anything is ever deleted.
    pub fn is_forever(&self) -> bool {
        self.trace_days.is_none() && self.feedback_days.is_none()
    }

    /// The cut-off times at `now`.
    pub fn cutoffs(&self, now: Timestamp) -> RetentionCutoffs {
        let before = |days: Option<u32>| {
            days.map(|days| {
                now.saturating_sub(SignedDuration::from_hours(i64::from(days) * 24))
                    .unwrap_or(Timestamp::MIN)
            })
        };
        RetentionCutoffs {
            traces_before: before(self.trace_days),
            traces_with_feedback_before: before(self.keep_with_feedback_days),
            feedback_before: before(self.feedback_days),
        }
    }
}

/// What retention deletes at one moment: traces that started before `traces_before` (those a
/// person gave feedback on only before `traces_with_feedback_before`, when set), and feedback
/// created before `feedback_before`. `None` deletes nothing of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionCutoffs {
    pub traces_before: Option<Timestamp>,
    pub traces_with_feedback_before: Option<Timestamp>,
    pub feedback_before: Option<Timestamp>,
}

impl PrivacySettings {
    pub fn check(&self) -> Result<(), ValidationError> {
        self.retention.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retention(trace: Option<u32>, feedback: Option<u32>, keep: Option<u32>) -> Retention {
        Retention {
            trace_days: trace,
            feedback_days: feedback,
            keep_with_feedback_days: keep,
        }
    }

    #[test]
    fn settings_default_to_off_and_forever_and_read_flat_json() {
        let settings: PrivacySettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, PrivacySettings::default());
        assert!(settings.retention.is_forever());
        let settings: PrivacySettings = serde_json::from_str(
            r#"{"pii_mode":"mask","trace_days":30,"keep_with_feedback_days":90}"#,
        )
        .unwrap();
        assert_eq!(settings.pii_mode, PiiMode::Mask);
        assert_eq!(settings.retention, retention(Some(30), None, Some(90)));
        assert_eq!(
            serde_json::to_value(settings).unwrap(),
            serde_json::json!({"pii_mode": "mask", "trace_days": 30, "keep_with_feedback_days": 90})
        );
        assert!(serde_json::from_str::<PrivacySettings>(r#"{"trace_dayz":3}"#).is_err());
    }

    #[test]
    fn retention_rules_name_the_field_at_fault() {
        assert!(retention(Some(30), Some(7), Some(30)).check().is_ok());
        for (bad, field) in [
            (retention(Some(0), None, None), "trace_days"),
            (retention(None, Some(40_000), None), "feedback_days"),
            (retention(None, None, Some(10)), "keep_with_feedback_days"),
            (
                retention(Some(30), None, Some(7)),
                "keep_with_feedback_days",
            ),
        ] {
            assert_eq!(bad.check().unwrap_err().field, field, "{bad:?}");
        }
    }

    #[test]
    fn cutoffs_are_whole_days_before_now() {
        let now: Timestamp = "2026-03-31T12:00:00Z".parse().unwrap();
        let cutoffs = retention(Some(30), Some(1), None).cutoffs(now);
        assert_eq!(
            cutoffs.traces_before,
            Some("2026-03-01T12:00:00Z".parse().unwrap())
        );
        assert_eq!(
            cutoffs.feedback_before,
            Some("2026-03-30T12:00:00Z".parse().unwrap())
        );
        assert_eq!(cutoffs.traces_with_feedback_before, None);
    }
}
