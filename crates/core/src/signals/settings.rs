//! A project's signal settings: the polarity and weight of every signal type (built-in and
//! declared custom types), the weight of explicit feedback, and the thresholds of the derived
//! rules. Stored whole; every field has a default, so a project without settings uses
//! [`SignalSettings::default`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::ValidationError;

/// Which way a signal points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    Positive,
    Negative,
    Neutral,
}

impl Polarity {
    pub fn sign(self) -> f64 {
        match self {
            Self::Positive => 1.0,
            Self::Negative => -1.0,
            Self::Neutral => 0.0,
        }
    }
}

/// How one signal type counts towards satisfaction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignalTypeSettings {
    pub polarity: Polarity,
    /// 0..=10; an explicit rating counts `explicit_weight`.
    pub weight: f64,
}

/// Thresholds of the server-derived rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct RuleSettings {
    pub rephrase_enabled: bool,
    /// Least cosine similarity of two consecutive queries of a session for a rephrase; chosen
    /// on Banking77 (see the rephrase evaluation in crates/signals/tests).
    pub rephrase_min_similarity: f64,
    /// Longest gap between the two queries' start times, in seconds.
    pub rephrase_window_secs: u64,
    pub frustration_enabled: bool,
    /// Longest gap between an answer and a follow-up that complains about it, in seconds.
    pub frustration_window_secs: u64,
    pub regenerate_enabled: bool,
    /// Longest gap between a query and the same query again, in seconds.
    pub regenerate_window_secs: u64,
    pub abandon_enabled: bool,
    /// How long a session must stay idle after an answer, with no engagement, to count as
    /// abandoned, in seconds.
    pub abandon_timeout_secs: u64,
}

impl Default for RuleSettings {
    fn default() -> Self {
        Self {
            rephrase_enabled: true,
            rephrase_min_similarity: DEFAULT_REPHRASE_MIN_SIMILARITY,
            rephrase_window_secs: 600,
            frustration_enabled: true,
            frustration_window_secs: 600,
            regenerate_enabled: true,
            regenerate_window_secs: 600,
            abandon_enabled: true,
            abandon_timeout_secs: 1_800,
        }
    }
}

/// The default rephrase threshold (cosine of all-MiniLM-L6-v2 vectors). On Banking77 pairs
/// (crates/signals/tests/rephrase_banking77.rs) it gave precision 0.95, recall 0.64, F1 0.76;
/// 0.4 gives the best F1 (0.87) but precision 0.88, and a false rephrase blames a good answer.
pub const DEFAULT_REPHRASE_MIN_SIMILARITY: f64 = 0.55;

/// Longest window a rule accepts: a day.
const MAX_WINDOW_SECS: u64 = 86_400;

/// A project's signal settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct SignalSettings {
    /// Every signal type: the built-in ones (always present; left out = their defaults) and
    /// the custom types the project declares (any other snake_case name). Clients may only
    /// send built-in or declared types.
    pub types: BTreeMap<String, SignalTypeSettings>,
    /// Weight of explicit feedback: a rating counts its position on the scale (-1..1) times
    /// this; a category, correction or annotation counts -1 times this.
    pub explicit_weight: f64,
    pub rules: RuleSettings,
}

/// The built-in types with their default polarity and weight. Copy and share say the answer
/// was used; dwell says it was read (scaled by time, see `satisfaction`); edit (after copy)
/// says it needed changing; regenerate, rephrase and frustration say it missed; abandon is
/// weak on its own.
pub const BUILT_IN_TYPES: [(&str, Polarity, f64); 8] = [
    ("copy", Polarity::Positive, 0.5),
    ("share", Polarity::Positive, 0.7),
    ("dwell", Polarity::Positive, 0.2),
    ("edit", Polarity::Negative, 0.3),
    ("regenerate", Polarity::Negative, 1.0),
    ("rephrase", Polarity::Negative, 0.8),
    ("frustration", Polarity::Negative, 1.0),
    ("abandon", Polarity::Negative, 0.5),
];

/// Whether a signal type is negative by the built-in defaults (what [`SignalSettings::default`]
/// says, without building it).
pub fn built_in_is_negative(name: &str) -> bool {
    BUILT_IN_TYPES
        .iter()
        .any(|(built_in, polarity, _)| *built_in == name && *polarity == Polarity::Negative)
}

impl Default for SignalSettings {
    fn default() -> Self {
        let mut settings = Self {
            types: BTreeMap::new(),
            explicit_weight: 2.0,
            rules: RuleSettings::default(),
        };
        settings.fill_built_in_types();
        settings
    }
}

impl SignalSettings {
    /// Adds the built-in types left out, with their defaults. Call after reading settings a
    /// client sent.
    pub fn fill_built_in_types(&mut self) {
        for (name, polarity, weight) in BUILT_IN_TYPES {
            self.types
                .entry(name.to_owned())
                .or_insert(SignalTypeSettings { polarity, weight });
        }
    }

    /// Whether `name` is a type the project declared rather than a built-in one.
    pub fn is_custom(&self, name: &str) -> bool {
        !BUILT_IN_TYPES
            .iter()
            .any(|(built_in, _, _)| *built_in == name)
            && self.types.contains_key(name)
    }

    /// Whether signals of this type mark their trace as a problem (negative polarity).
    pub fn is_negative_type(&self, name: &str) -> bool {
        self.of(name)
            .is_some_and(|type_settings| type_settings.polarity == Polarity::Negative)
    }

    /// The polarity and weight of a type; `None` for a type neither built in nor declared.
    pub fn of(&self, name: &str) -> Option<SignalTypeSettings> {
        self.types.get(name).copied()
    }

    pub fn check(&self) -> Result<(), ValidationError> {
        for (name, type_settings) in &self.types {
            let field = format!("types.{name}");
            crate::taxonomy::check_name(&field, name)?;
            check_weight(&format!("{field}.weight"), type_settings.weight)?;
        }
        check_weight("explicit_weight", self.explicit_weight)?;
        let rules = &self.rules;
        let similarity = rules.rephrase_min_similarity;
        if !similarity.is_finite() || !(0.0..=1.0).contains(&similarity) {
            return Err(ValidationError::new(
                "rules.rephrase_min_similarity",
                "must be within 0..=1",
            ));
        }
        for (field, secs) in [
            ("rules.rephrase_window_secs", rules.rephrase_window_secs),
            (
                "rules.frustration_window_secs",
                rules.frustration_window_secs,
            ),
            ("rules.regenerate_window_secs", rules.regenerate_window_secs),
            ("rules.abandon_timeout_secs", rules.abandon_timeout_secs),
        ] {
            if secs == 0 || secs > MAX_WINDOW_SECS {
                return Err(ValidationError::new(
                    field,
                    format!("must be within 1..={MAX_WINDOW_SECS} seconds"),
                ));
            }
        }
        Ok(())
    }
}

fn check_weight(field: &str, weight: f64) -> Result<(), ValidationError> {
    if !weight.is_finite() || !(0.0..=10.0).contains(&weight) {
        return Err(ValidationError::new(field, "must be within 0..=10"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_a_client_sends_keep_the_built_in_types() {
        let mut settings: SignalSettings = serde_json::from_str(
            r#"{"types": {"copy": {"polarity": "positive", "weight": 1.5},
                          "bookmark": {"polarity": "positive", "weight": 0.4}}}"#,
        )
        .unwrap();
        settings.fill_built_in_types();
        assert_eq!(settings.of("copy").unwrap().weight, 1.5);
        assert_eq!(
            settings.of("regenerate").unwrap().polarity,
            Polarity::Negative
        );
        assert!(settings.is_custom("bookmark"));
        assert!(!settings.is_custom("copy"));
        assert!(settings.check().is_ok());
    }

    #[test]
    fn bad_settings_name_the_field() {
        let mut settings = SignalSettings::default();
        settings.rules.rephrase_min_similarity = 1.5;
        assert_eq!(
            settings.check().unwrap_err().field,
            "rules.rephrase_min_similarity"
        );
        let mut settings = SignalSettings::default();
        settings.types.insert(
            "Bad-Name".into(),
            SignalTypeSettings {
                polarity: Polarity::Positive,
                weight: 1.0,
            },
        );
        assert_eq!(settings.check().unwrap_err().field, "types.Bad-Name");
        let mut settings = SignalSettings::default();
        settings.types.get_mut("copy").unwrap().weight = -1.0;
        assert_eq!(settings.check().unwrap_err().field, "types.copy.weight");
        let mut settings = SignalSettings::default();
        settings.rules.abandon_timeout_secs = 0;
        assert_eq!(
            settings.check().unwrap_err().field,
            "rules.abandon_timeout_secs"
        );
    }
}
