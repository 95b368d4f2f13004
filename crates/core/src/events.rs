//! Events that feedloop announces to webhooks: their types, the JSON payload every endpoint
//! receives, and the retry schedule of a delivery. Signing and sending are the server's.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::ProjectId;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// The last hour's negative rate is significantly above its trailing baseline.
    NegativeSpike,
    /// A new model or prompt version has a significantly higher negative rate than the one
    /// before it.
    Regression,
    /// A new problem cluster formed.
    NewCluster,
    /// A review queue received an item.
    ReviewItemCreated,
    /// The loop proposed a lesson.
    LessonProposed,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        Self::NegativeSpike,
        Self::Regression,
        Self::NewCluster,
        Self::ReviewItemCreated,
        Self::LessonProposed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NegativeSpike => "negative_spike",
            Self::Regression => "regression",
            Self::NewCluster => "new_cluster",
            Self::ReviewItemCreated => "review_item_created",
            Self::LessonProposed => "lesson_proposed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// An event to announce: its type, what it is about (`data`, specific to the type) and when it
/// happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_type: EventType,
    pub data: serde_json::Value,
    pub created_at: Timestamp,
}

impl Event {
    pub fn new(event_type: EventType, data: serde_json::Value, created_at: Timestamp) -> Self {
        Self {
            event_type,
            data,
            created_at,
        }
    }
}

/// The body every endpoint receives, exactly as signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventPayload {
    /// The event's id (`evt_…`): the same on every retry, so receivers can drop duplicates.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When it happened (RFC 3339, UTC).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
    /// The project's id.
    pub project: i64,
    /// What the event is about; its shape depends on the type.
    pub data: serde_json::Value,
}

impl EventPayload {
    pub fn new(id: String, project: ProjectId, event: &Event) -> Self {
        Self {
            id,
            event_type: event.event_type,
            created_at: event.created_at,
            project: project.0,
            data: event.data.clone(),
        }
    }
}

/// When to try a delivery again after `num_attempts` failed attempts: `base × 2^(n−1)`, at
/// most `max`, then scaled by `0.5 + jitter / 2` ("equal jitter", `jitter` in 0..1 from the
/// caller), so that receivers coming back from an outage are not hit by every retry at once.
pub fn retry_delay(
    num_attempts: u32,
    base: SignedDuration,
    max: SignedDuration,
    jitter: f64,
) -> SignedDuration {
    let exponent = num_attempts.saturating_sub(1).min(30);
    let full = (base.as_secs_f64() * f64::from(1u32 << exponent)).min(max.as_secs_f64());
    SignedDuration::from_secs_f64(full * (0.5 + jitter.clamp(0.0, 1.0) / 2.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_cap_with_jitter_halving_at_most() {
        let (base, max) = (
            SignedDuration::from_secs(10),
            SignedDuration::from_secs(300),
        );
        let full: Vec<i64> = (1..=7)
            .map(|n| retry_delay(n, base, max, 1.0).as_secs())
            .collect();
        assert_eq!(full, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(retry_delay(3, base, max, 0.0).as_secs(), 20);
        assert_eq!(retry_delay(3, base, max, 0.5).as_secs(), 30);
    }

    #[test]
    fn payloads_serialise_with_the_documented_fields() {
        let at = Timestamp::from_second(1_767_225_600).unwrap();
        let event = Event::new(
            EventType::Regression,
            serde_json::json!({"p_value": 0.01}),
            at,
        );
        let payload = EventPayload::new("evt_1".into(), ProjectId(3), &event);
        let json = serde_json::to_value(&payload).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "evt_1", "type": "regression", "created_at": "2026-01-01T00:00:00Z",
                "project": 3, "data": {"p_value": 0.01}
            })
        );
        assert_eq!(
            EventType::parse("lesson_proposed"),
            Some(EventType::LessonProposed)
        );
    }
}
