//! Implicit signals: what users do rather than what they click. Clients report some (copy,
//! share, dwell, regenerate, …) as feedback of kind `signal`; the server derives others from the
//! session timeline ([`rules`]). Every signal type has a polarity and a weight per project
//! ([`settings`]), and [`satisfaction`] folds a trace's current feedback, explicit and
//! implicit, into one estimate.

pub mod rules;
pub mod satisfaction;
pub mod settings;

pub use rules::DerivedRule;
pub use satisfaction::{Satisfaction, estimate};
pub use settings::{Polarity, RuleSettings, SignalSettings, SignalTypeSettings};

use crate::ValidationError;
use crate::feedback::Signal;

/// Signal types clients report, with the details each may carry (checked by
/// [`check_client_signal`]).
pub const CLIENT_SIGNAL_TYPES: [&str; 8] = [
    "copy",
    "regenerate",
    "edit",
    "share",
    "dwell",
    "abandon",
    "rephrase",
    "frustration",
];

/// Checks a client-reported signal against the project's settings: a built-in type with the
/// details it understands, or a custom type the project declared.
///
/// - `copy`: optional `details.start`/`details.end`, a character range of the output (whole
///   answer when absent); `value` is the number of characters copied when sent.
/// - `edit` (edit after copy): optional `details.edited_text`, the text as the user changed it.
/// - `dwell`: `value` is required, the time spent on the answer in milliseconds (≥ 0).
/// - `abandon`: the page was hidden or closed before the answer finished or before any
///   engagement; optional `details.before_complete` (bool).
pub fn check_client_signal(
    signal: &Signal,
    settings: &SignalSettings,
) -> Result<(), ValidationError> {
    signal.check()?;
    let signal_type = signal.signal_type.as_str();
    if !CLIENT_SIGNAL_TYPES.contains(&signal_type) && !settings.types.contains_key(signal_type) {
        return Err(ValidationError::new(
            "type",
            format!(
                "{signal_type:?} is neither a built-in signal type nor one the project declared (see /api/v1/signals/settings)"
            ),
        ));
    }
    let details = &signal.details;
    match signal_type {
        "copy" => {
            let start = optional_count(details, "start")?;
            let end = optional_count(details, "end")?;
            match (start, end) {
                (None, None) => {}
                (Some(start), Some(end)) if start < end => {}
                (Some(_), Some(_)) => {
                    return Err(ValidationError::new(
                        "details.end",
                        "must be greater than details.start",
                    ));
                }
                (None, Some(_)) => {
                    return Err(ValidationError::new(
                        "details.start",
                        "is required with details.end",
                    ));
                }
                (Some(_), None) => {
                    return Err(ValidationError::new(
                        "details.end",
                        "is required with details.start",
                    ));
                }
            }
            if let Some(value) = signal.value
                && value < 0.0
            {
                return Err(ValidationError::new(
                    "value",
                    "is the number of characters copied and must not be negative",
                ));
            }
        }
        "edit" => {
            if let Some(text) = details.get("edited_text")
                && text.as_str().is_none_or(|t| t.trim().is_empty())
            {
                return Err(ValidationError::new(
                    "details.edited_text",
                    "must be the edited text, a non-empty string",
                ));
            }
        }
        "dwell" => match signal.value {
            Some(ms) if ms >= 0.0 => {}
            Some(_) => {
                return Err(ValidationError::new(
                    "value",
                    "is a dwell time in milliseconds and must not be negative",
                ));
            }
            None => {
                return Err(ValidationError::new(
                    "value",
                    "is required: the dwell time in milliseconds",
                ));
            }
        },
        "abandon" => {
            if let Some(flag) = details.get("before_complete")
                && !flag.is_boolean()
            {
                return Err(ValidationError::new(
                    "details.before_complete",
                    "must be true or false",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether a signal carries a range of the output that the stored output must contain (a
/// `copy` with `details.end`), so the store knows to check it with [`check_copy_range`].
pub fn has_output_range(signal: &Signal) -> bool {
    signal.signal_type == "copy" && signal.details.contains_key("end")
}

/// Checks a copy's character range against the output it was copied from, as inline
/// annotations are checked: the range must lie inside the output. Ranges on traces whose output
/// has not arrived are stored as sent.
pub fn check_copy_range(signal: &Signal, output: &str) -> Result<(), ValidationError> {
    let Some(end) = signal.details.get("end").and_then(|end| end.as_u64()) else {
        return Ok(());
    };
    let output_len = output.chars().count() as u64;
    if end > output_len {
        return Err(ValidationError::new(
            "details.end",
            format!("is outside the output, which is {output_len} characters long"),
        ));
    }
    Ok(())
}

fn optional_count(
    details: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<Option<u64>, ValidationError> {
    match details.get(key) {
        None => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| {
            ValidationError::new(
                format!("details.{key}"),
                "must be a character offset (a whole number ≥ 0)",
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn signal(value: serde_json::Value) -> Signal {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn client_signals_are_checked_by_type() {
        let settings = SignalSettings::default();
        let ok = |v| check_client_signal(&signal(v), &settings).is_ok();
        let field = |v| {
            check_client_signal(&signal(v), &settings)
                .unwrap_err()
                .field
        };
        assert!(ok(json!({"type": "copy"})));
        assert!(ok(
            json!({"type": "copy", "value": 4.0, "details": {"start": 2, "end": 6}})
        ));
        assert_eq!(
            field(json!({"type": "copy", "details": {"start": 6, "end": 2}})),
            "details.end"
        );
        assert_eq!(
            field(json!({"type": "copy", "details": {"end": 2}})),
            "details.start"
        );
        assert_eq!(field(json!({"type": "dwell"})), "value");
        assert_eq!(field(json!({"type": "dwell", "value": -1.0})), "value");
        assert!(ok(json!({"type": "dwell", "value": 1500.0})));
        assert!(ok(
            json!({"type": "edit", "details": {"edited_text": "better"}})
        ));
        assert_eq!(
            field(json!({"type": "edit", "details": {"edited_text": 3}})),
            "details.edited_text"
        );
        assert_eq!(field(json!({"type": "bookmark"})), "type");
    }

    #[test]
    fn declared_custom_types_are_accepted() {
        let mut settings = SignalSettings::default();
        settings.types.insert(
            "bookmark".into(),
            SignalTypeSettings {
                polarity: Polarity::Positive,
                weight: 0.6,
            },
        );
        assert!(check_client_signal(&signal(json!({"type": "bookmark"})), &settings).is_ok());
    }
}
