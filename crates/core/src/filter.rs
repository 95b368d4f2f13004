//! Filters and pages for listing traces and feedback. One [`Filter`] serves both lists: on
//! traces, feedback conditions mean "has feedback that …"; on feedback, trace conditions mean
//! "about a trace that …".

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;

use crate::ValidationError;
use crate::feedback::{FeedbackKind, RatingSign, Source};
use crate::trace::Environment;

/// Conditions that all must hold (AND). An empty filter matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Inclusive lower bound of the item's time (a trace's start, a feedback's creation).
    pub from: Option<Timestamp>,
    /// Exclusive upper bound of the item's time.
    pub to: Option<Timestamp>,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub user_role: Option<String>,
    pub model: Option<String>,
    pub model_version: Option<String>,
    pub prompt_name: Option<String>,
    pub prompt_version: Option<String>,
    pub environment: Option<Environment>,
    pub tag: Option<String>,
    pub trace_id: Option<String>,
    pub feedback_kind: Option<FeedbackKind>,
    pub category: Option<String>,
    pub rating: Option<RatingSign>,
    pub source: Option<Source>,
    /// Has current (not superseded) negative feedback, explicit or implicit; see
    /// [`crate::feedback::Feedback::is_negative`].
    pub negative_feedback: bool,
    /// The trace's satisfaction estimate is below this (-1..1); traces without an estimate do
    /// not match. See [`crate::signals::satisfaction`].
    pub satisfaction_below: Option<f64>,
    /// The trace's satisfaction estimate is above this.
    pub satisfaction_above: Option<f64>,
    /// Metadata key = value pairs; values compare as text.
    pub metadata: Vec<(String, String)>,
}

/// Checks a metadata key used in a filter: letters, digits, `_`, `-` and `.` only.
pub fn check_metadata_key(field: &str, key: &str) -> Result<(), ValidationError> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "metadata keys in filters use letters, digits, '_', '-' and '.'",
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Newest first.
    #[default]
    Desc,
    Asc,
}

/// Largest page size.
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// Page size when none is asked for.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;

/// A position in a list: the time and the store's sequence number of the last item returned.
/// Items are ordered by (time, sequence), so a cursor stays valid as new items arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub time_micros: i64,
    pub seq: i64,
}

impl Cursor {
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.time_micros, self.seq))
    }

    pub fn decode(field: &str, text: &str) -> Result<Self, ValidationError> {
        let invalid = || ValidationError::new(field, "is not a cursor returned by this list");
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (time, seq) = text.split_once(':').ok_or_else(invalid)?;
        Ok(Cursor {
            time_micros: time.parse().map_err(|_| invalid())?,
            seq: seq.parse().map_err(|_| invalid())?,
        })
    }
}

/// Which page of a list to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
    pub order: Order,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_PAGE_LIMIT,
            after: None,
            order: Order::Desc,
        }
    }
}

/// One page of a list, and the cursor of the next page if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            time_micros: 1_700_000_000_000_000,
            seq: 42,
        };
        assert_eq!(Cursor::decode("cursor", &cursor.encode()).unwrap(), cursor);
        assert_eq!(
            Cursor::decode("cursor", "not a cursor").unwrap_err().field,
            "cursor"
        );
        assert!(Cursor::decode("cursor", &URL_SAFE_NO_PAD.encode("1:x")).is_err());
    }

    #[test]
    fn metadata_keys_are_restricted() {
        assert!(check_metadata_key("k", "app.version").is_ok());
        assert!(check_metadata_key("k", "a'b").is_err());
    }
}
