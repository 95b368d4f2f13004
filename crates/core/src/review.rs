//! Review queues: where people look at traces that need a human (moderators, product teams,
//! domain experts), and whatever they decide flows back as feedback, lessons and dataset items.
//!
//! A [`Queue`] has rules: each a filter written like the list query parameters
//! (`{"negative_feedback": "true", "environment": "prod"}`) and a sampling rate. The server
//! parses the filters (this crate does not know the query syntax); here are the pure parts: the
//! queue's own checks, the deterministic sampling draw ([`sampled`]), the item state machine
//! ([`item`]), the triage priority ([`priority`]) and reviewer agreement ([`agreement`]).

pub mod agreement;
pub mod item;
pub mod priority;

use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;

use crate::ValidationError;

pub use item::{ItemAction, ItemState, ReviewItem, TransitionError, Verdict, apply};

/// Most rules one queue holds.
pub const MAX_RULES: usize = 20;
/// Most reviewers one item may need.
pub const MAX_REVIEWERS_REQUIRED: u32 = 10;
/// Reservation length when a queue sets none: long enough to read a conversation and write a
/// correction, short enough that an abandoned reservation frees the item the same hour.
pub const DEFAULT_LOCK_SECS: u32 = 30 * 60;
/// Bounds of a queue's reservation length: one minute to one day.
pub const LOCK_SECS_RANGE: std::ops::RangeInclusive<u32> = 60..=86_400;

/// A rule: the traces that match `filter` (list query parameters as written, parsed by the
/// server) are enqueued, a `sampling_rate` share of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// List query parameters, e.g. `{"negative_feedback": "true", "category": "factually_incorrect"}`.
    pub filter: BTreeMap<String, String>,
    /// The share of matching traces enqueued, 0..=1 (default 1).
    #[serde(default = "full_rate")]
    pub sampling_rate: f64,
}

fn full_rate() -> f64 {
    1.0
}

/// A review queue as stored: its name is its id within the project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Queue {
    /// snake_case, unique in the project.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// How many reviewers must give a verdict on each item (default 1).
    pub reviewers_required: u32,
    /// How long a reservation holds before the item is free again, in seconds.
    pub lock_secs: u32,
    /// Weight 0..=1 of each user role in the triage priority (roles not listed weigh 0).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub role_weights: BTreeMap<String, f64>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: jiff::Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub updated_at: jiff::Timestamp,
}

impl Queue {
    /// Checks what needs no other data (the server checks that rule filters parse).
    pub fn check(&self) -> Result<(), ValidationError> {
        crate::taxonomy::check_name("name", &self.name)?;
        if self.rules.len() > MAX_RULES {
            return Err(ValidationError::new(
                "rules",
                format!("at most {MAX_RULES} rules per queue"),
            ));
        }
        for (index, rule) in self.rules.iter().enumerate() {
            if !(0.0..=1.0).contains(&rule.sampling_rate) {
                return Err(ValidationError::new(
                    format!("rules[{index}].sampling_rate"),
                    "must be within 0..=1",
                ));
            }
        }
        if !(1..=MAX_REVIEWERS_REQUIRED).contains(&self.reviewers_required) {
            return Err(ValidationError::new(
                "reviewers_required",
                format!("must be within 1..={MAX_REVIEWERS_REQUIRED}"),
            ));
        }
        if !LOCK_SECS_RANGE.contains(&self.lock_secs) {
            return Err(ValidationError::new(
                "lock_secs",
                format!(
                    "must be within {}..={}",
                    LOCK_SECS_RANGE.start(),
                    LOCK_SECS_RANGE.end()
                ),
            ));
        }
        for (role, weight) in &self.role_weights {
            if !(0.0..=1.0).contains(weight) {
                return Err(ValidationError::new(
                    format!("role_weights.{role}"),
                    "must be within 0..=1",
                ));
            }
        }
        Ok(())
    }

    /// The reservation length.
    pub fn lock(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_secs(i64::from(self.lock_secs))
    }
}

/// Whether `trace_id` is in the sampled share `rate` of queue `queue`: the first 8 bytes of
/// SHA-256(queue, trace) as a fraction of 2^64, compared with the rate. A pure function of the
/// two names, so a re-run (or another replica) never samples differently, and raising the
/// rate only adds traces.
pub fn sampled(queue: &str, trace_id: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let mut hash = sha2::Sha256::new();
    hash.update(b"feedloop review sample\0");
    hash.update(queue.as_bytes());
    hash.update(b"\0");
    hash.update(trace_id.as_bytes());
    let digest = hash.finalize();
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits are what an f64 holds exactly.
    let draw = (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
    draw < rate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> Queue {
        Queue {
            name: "factual".into(),
            description: None,
            rules: vec![Rule {
                filter: BTreeMap::from([("negative_feedback".into(), "true".into())]),
                sampling_rate: 0.5,
            }],
            reviewers_required: 1,
            lock_secs: DEFAULT_LOCK_SECS,
            role_weights: BTreeMap::new(),
            created_at: jiff::Timestamp::UNIX_EPOCH,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn sampling_is_deterministic_and_close_to_the_rate() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("trace-{i}")).collect();
        let picked = ids.iter().filter(|id| sampled("q", id, 0.3)).count();
        assert!((2_800..3_200).contains(&picked), "{picked}");
        let again = ids.iter().filter(|id| sampled("q", id, 0.3)).count();
        assert_eq!(picked, again);
        // Another queue draws independently.
        let both = ids
            .iter()
            .filter(|id| sampled("q", id, 0.3) && sampled("r", id, 0.3))
            .count();
        assert!((700..1_100).contains(&both), "{both}");
        // A higher rate keeps every trace a lower one picked.
        assert!(
            ids.iter()
                .filter(|id| sampled("q", id, 0.3))
                .all(|id| sampled("q", id, 0.6))
        );
        assert!(ids.iter().all(|id| sampled("q", id, 1.0)));
        assert!(!ids.iter().any(|id| sampled("q", id, 0.0)));
    }

    #[test]
    fn queue_checks_name_the_field() {
        queue().check().unwrap();
        let mut bad = queue();
        bad.name = "Bad Name".into();
        assert_eq!(bad.check().unwrap_err().field, "name");
        let mut bad = queue();
        bad.rules[0].sampling_rate = 1.5;
        assert_eq!(bad.check().unwrap_err().field, "rules[0].sampling_rate");
        let mut bad = queue();
        bad.reviewers_required = 0;
        assert_eq!(bad.check().unwrap_err().field, "reviewers_required");
        let mut bad = queue();
        bad.lock_secs = 5;
        assert_eq!(bad.check().unwrap_err().field, "lock_secs");
        let mut bad = queue();
        bad.role_weights.insert("vip".into(), 2.0);
        assert_eq!(bad.check().unwrap_err().field, "role_weights.vip");
    }
}
