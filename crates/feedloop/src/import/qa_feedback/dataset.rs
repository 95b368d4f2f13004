//! The file format of qa-feedback: one JSON array of [`QaRecord`]s. Unknown error types,
//! missing-information types and preference values are parse errors, so the mapping never has
//! to guess.

use serde::Deserialize;

use super::ERROR_CATEGORIES;

/// One item of a `*_feedback.json` file.
#[derive(Debug, Clone, Deserialize)]
pub struct QaRecord {
    pub question: String,
    /// Each passage is `[title, sentence, sentence, …]`.
    pub passages: Vec<Vec<String>>,
    /// The reference answer.
    pub gold: String,
    #[serde(rename = "prediction 1")]
    pub prediction_1: String,
    #[serde(rename = "prediction 2")]
    pub prediction_2: String,
    #[serde(rename = "prediction 3")]
    pub prediction_3: String,
    #[serde(rename = "prediction 4")]
    pub prediction_4: String,
    /// Fine-grained feedback on prediction 1.
    pub feedback: QaFeedback,
    /// Preferences for the pairs 1v2, 1v3, 1v4, 2v3, 2v4, 3v4.
    pub preference: [Preference; 6],
}

/// The annotator's fine-grained feedback on prediction 1.
#[derive(Debug, Clone, Deserialize)]
pub struct QaFeedback {
    pub errors: Vec<ErrorSpan>,
    #[serde(rename = "missing-info")]
    pub missing_info: Vec<MissingInfo>,
    /// Prediction 1 after the annotator's edits; empty when they deleted all of it.
    #[serde(rename = "corrected-prediction")]
    pub corrected_prediction: String,
}

/// A marked error: characters `start..end` of prediction 1.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorSpan {
    #[serde(rename = "error type")]
    pub error_type: ErrorType,
    /// The repeated text (redundant), or the contradicted passage sentence as JSON (wrong
    /// grounding); empty for the other types.
    #[serde(default)]
    pub explanation: String,
    pub start: u64,
    pub end: u64,
}

/// The kinds of error span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ErrorType {
    Irrelevant,
    /// A fact inconsistent with the passages ("inconsistent fact" in the paper).
    #[serde(rename = "Wrong-Grounding")]
    WrongGrounding,
    Unverifiable,
    Redundant,
    Incoherent,
}

impl ErrorType {
    /// The taxonomy category, one of [`ERROR_CATEGORIES`].
    pub fn category(self) -> &'static str {
        match self {
            Self::Irrelevant => ERROR_CATEGORIES[0],
            Self::WrongGrounding => ERROR_CATEGORIES[1],
            Self::Unverifiable => ERROR_CATEGORIES[2],
            Self::Redundant => ERROR_CATEGORIES[3],
            Self::Incoherent => ERROR_CATEGORIES[4],
        }
    }
}

/// Information prediction 1 should have given, and where the passages state it.
#[derive(Debug, Clone, Deserialize)]
pub struct MissingInfo {
    #[serde(rename = "error type")]
    pub error_type: MissingType,
    /// 1-based passage number.
    pub passage_id: usize,
    /// Indexes into the passage list (0 is the title, 1 the first sentence).
    pub sentence_id: Vec<usize>,
}

/// How important the missing information is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MissingType {
    #[serde(rename = "Missing-Answer")]
    Answer,
    #[serde(rename = "Missing-Major-Auxiliary")]
    MajorAuxiliary,
    #[serde(rename = "Missing-Minor-Auxiliary")]
    MinorAuxiliary,
}

impl MissingType {
    /// The snake_case name kept in the comment's metadata.
    pub fn name(self) -> &'static str {
        match self {
            Self::Answer => "missing_answer",
            Self::MajorAuxiliary => "missing_major_auxiliary",
            Self::MinorAuxiliary => "missing_minor_auxiliary",
        }
    }

    /// How a comment names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Answer => "Missing answer",
            Self::MajorAuxiliary => "Missing major auxiliary information",
            Self::MinorAuxiliary => "Missing minor auxiliary information",
        }
    }
}

/// Which answer of a pair the annotator preferred (`0`, `1`, `2` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u8")]
pub enum Preference {
    Neither,
    First,
    Second,
}

impl TryFrom<u8> for Preference {
    type Error = String;

    fn try_from(value: u8) -> Result<Self, String> {
        match value {
            0 => Ok(Self::Neither),
            1 => Ok(Self::First),
            2 => Ok(Self::Second),
            other => Err(format!("preference must be 0, 1 or 2, found {other}")),
        }
    }
}

impl Preference {
    /// The rating of the first answer against the second.
    pub fn rating_value(self) -> f64 {
        match self {
            Self::Neither => 0.0,
            Self::First => 1.0,
            Self::Second => -1.0,
        }
    }
}
