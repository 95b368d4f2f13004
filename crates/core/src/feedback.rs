//! Feedback: one judgement about a trace or a span, of one of six kinds (rating, categories,
//! comment, correction, inline annotation, implicit signal), with the fields every kind shares.
//!
//! Feedback is append-only. A later judgement of the same kind by the same author on the same
//! trace (and span, and compared trace) supersedes the earlier one without erasing it; see
//! [`Feedback::supersession_key`].

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest;

use crate::ValidationError;
use crate::ids::{FeedbackId, SpanId, TraceId};

/// Who gave the feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    EndUser,
    Reviewer,
    Expert,
    Automatic,
}

impl Source {
    pub const ALL: [Source; 4] = [Self::EndUser, Self::Reviewer, Self::Expert, Self::Automatic];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndUser => "end_user",
            Self::Reviewer => "reviewer",
            Self::Expert => "expert",
            Self::Automatic => "automatic",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The six kinds of feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    Rating,
    Category,
    Comment,
    Correction,
    Annotation,
    Signal,
}

impl FeedbackKind {
    pub const ALL: [FeedbackKind; 6] = [
        Self::Rating,
        Self::Category,
        Self::Comment,
        Self::Correction,
        Self::Annotation,
        Self::Signal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rating => "rating",
            Self::Category => "category",
            Self::Comment => "comment",
            Self::Correction => "correction",
            Self::Annotation => "annotation",
            Self::Signal => "signal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether a newer item of this kind replaces the author's earlier one. Comments, annotations
    /// and signals accumulate; a rating, a choice of reasons or a correction is restated.
    pub fn supersedes_earlier(self) -> bool {
        matches!(self, Self::Rating | Self::Category | Self::Correction)
    }
}

/// Whether a rating is good, bad or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RatingSign {
    Negative,
    Neutral,
    Positive,
}

impl RatingSign {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Negative => "negative",
            Self::Neutral => "neutral",
            Self::Positive => "positive",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Negative, Self::Neutral, Self::Positive]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    pub fn as_i64(self) -> i64 {
        match self {
            Self::Negative => -1,
            Self::Neutral => 0,
            Self::Positive => 1,
        }
    }
}

/// A rating on a scale. Binary thumbs are the scale 0..1 (0 = down, 1 = up). A pairwise
/// preference is a rating on -1..1 of this trace against `compared_to` (1 = this one is better).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Rating {
    pub value: f64,
    #[serde(default)]
    pub min: f64,
    #[serde(default = "binary_max")]
    pub max: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub compared_to: Option<TraceId>,
}

fn binary_max() -> f64 {
    1.0
}

impl Rating {
    pub fn check(&self) -> Result<(), ValidationError> {
        for (field, number) in [("value", self.value), ("min", self.min), ("max", self.max)] {
            if !number.is_finite() {
                return Err(ValidationError::new(field, "must be a finite number"));
            }
        }
        if self.min >= self.max {
            return Err(ValidationError::new("min", "must be less than max"));
        }
        if self.value < self.min || self.value > self.max {
            return Err(ValidationError::new(
                "value",
                format!("must be within the scale {}..={}", self.min, self.max),
            ));
        }
        Ok(())
    }

    /// Below the middle of the scale is negative, above it positive.
    pub fn sign(&self) -> RatingSign {
        let middle = (self.min + self.max) / 2.0;
        match self.value.partial_cmp(&middle) {
            Some(std::cmp::Ordering::Less) => RatingSign::Negative,
            Some(std::cmp::Ordering::Greater) => RatingSign::Positive,
            _ => RatingSign::Neutral,
        }
    }
}

/// What a correction corrects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CorrectionKind {
    /// A better answer in full.
    #[default]
    Answer,
    /// The same answer, worded better.
    Rewording,
    /// The fact the answer missed or got wrong.
    MissingFact,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Correction {
    pub text: String,
    #[serde(default)]
    pub kind: CorrectionKind,
}

/// An editor-style mark on the output: a character range (Unicode scalar values, end exclusive)
/// and the quoted text, so that the mark can be found again if the output changes slightly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Annotation {
    pub start: u64,
    pub end: u64,
    pub quote: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

impl Annotation {
    /// Checks the range on its own: non-empty, and as long as the quote.
    pub fn check(&self) -> Result<(), ValidationError> {
        if self.start >= self.end {
            return Err(ValidationError::new("end", "must be greater than start"));
        }
        let quote_len = self.quote.chars().count() as u64;
        if quote_len != self.end - self.start {
            return Err(ValidationError::new(
                "quote",
                format!(
                    "is {quote_len} characters long but the range {}..{} spans {}",
                    self.start,
                    self.end,
                    self.end - self.start
                ),
            ));
        }
        Ok(())
    }

    /// Checks the range against the output it marks: inside it, and quoting it exactly. The
    /// range is checked on its own first ([`Self::check`]), so an inverted one is an error here
    /// too rather than a negative length.
    pub fn check_against(&self, output: &str) -> Result<(), ValidationError> {
        self.check()?;
        let output_len = output.chars().count() as u64;
        if self.end > output_len {
            return Err(ValidationError::new(
                "end",
                format!("is outside the output, which is {output_len} characters long"),
            ));
        }
        let marked: String = output
            .chars()
            .skip(self.start as usize)
            .take((self.end - self.start) as usize)
            .collect();
        if marked != self.quote {
            return Err(ValidationError::new(
                "quote",
                format!(
                    "does not match the output at {}..{}, which reads {marked:?}",
                    self.start, self.end
                ),
            ));
        }
        Ok(())
    }
}

/// Implicit behaviour types with a known meaning; projects may send others (snake_case names).
pub const KNOWN_SIGNAL_TYPES: [&str; 8] = [
    "copy",
    "regenerate",
    "abandon",
    "rephrase",
    "edit",
    "dwell",
    "share",
    "frustration",
];

/// An implicit behaviour event: what the user did, and a value where the type has one (dwell
/// time in milliseconds, the number of characters copied, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Signal {
    #[serde(rename = "type")]
    pub signal_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
}

impl Signal {
    pub fn check(&self) -> Result<(), ValidationError> {
        crate::taxonomy::check_name("type", &self.signal_type)?;
        if let Some(value) = self.value
            && !value.is_finite()
        {
            return Err(ValidationError::new("value", "must be a finite number"));
        }
        Ok(())
    }
}

/// What the feedback says; one variant per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum FeedbackValue {
    Rating(Rating),
    Category(Vec<String>),
    Comment(String),
    Correction(Correction),
    Annotation(Annotation),
    Signal(Signal),
}

impl FeedbackValue {
    pub fn kind(&self) -> FeedbackKind {
        match self {
            Self::Rating(_) => FeedbackKind::Rating,
            Self::Category(_) => FeedbackKind::Category,
            Self::Comment(_) => FeedbackKind::Comment,
            Self::Correction(_) => FeedbackKind::Correction,
            Self::Annotation(_) => FeedbackKind::Annotation,
            Self::Signal(_) => FeedbackKind::Signal,
        }
    }

    /// The taxonomy categories this value names (categories, or an annotation's categories).
    pub fn categories(&self) -> &[String] {
        match self {
            Self::Category(categories) => categories,
            Self::Annotation(annotation) => &annotation.categories,
            Self::Rating(_) | Self::Comment(_) | Self::Correction(_) | Self::Signal(_) => &[],
        }
    }
}

/// One piece of feedback as a client states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub id: FeedbackId,
    pub trace_id: TraceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<SpanId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// When the judgement was made, if the client said; otherwise the arrival time stands in
    /// (kept apart so that a retry without a time has the same content as the first attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(flatten)]
    pub value: FeedbackValue,
}

impl Feedback {
    /// Checks the rules that need no other data: ranges, confidence, names.
    pub fn check(&self) -> Result<(), ValidationError> {
        if let Some(confidence) = self.confidence
            && !(0.0..=1.0).contains(&confidence)
        {
            return Err(ValidationError::new("confidence", "must be within 0..=1"));
        }
        let kind = self.value.kind().as_str();
        match &self.value {
            FeedbackValue::Rating(rating) => rating.check().map_err(|e| e.within(kind)),
            FeedbackValue::Category(categories) => {
                if categories.is_empty() {
                    return Err(ValidationError::new(
                        "categories",
                        "must name at least one category",
                    ));
                }
                check_category_names("categories", categories)
            }
            FeedbackValue::Comment(text) => check_text("comment", text),
            FeedbackValue::Correction(correction) => {
                check_text("text", &correction.text).map_err(|e| e.within(kind))
            }
            FeedbackValue::Annotation(annotation) => annotation
                .check()
                .and_then(|()| check_category_names("categories", &annotation.categories))
                .map_err(|e| e.within(kind)),
            FeedbackValue::Signal(signal) => signal.check().map_err(|e| e.within(kind)),
        }
    }

    /// Feedback with the same key supersedes older feedback with that key; `None` if this
    /// kind accumulates or the author is unknown.
    pub fn supersession_key(&self) -> Option<SupersessionKey<'_>> {
        let kind = self.value.kind();
        if !kind.supersedes_earlier() {
            return None;
        }
        let compared_to = match &self.value {
            FeedbackValue::Rating(rating) => rating.compared_to.as_ref(),
            _ => None,
        };
        Some(SupersessionKey {
            trace_id: &self.trace_id,
            span_id: self.span_id.as_ref(),
            author: self.author.as_deref()?,
            kind,
            compared_to,
        })
    }

    /// A digest of everything the client stated. Re-sending an id with the same digest is a
    /// retry; with another digest, a conflict.
    pub fn content_hash(&self) -> [u8; 32] {
        let canonical = serde_json::to_vec(self).expect("feedback serialises to json");
        sha2::Sha256::digest(&canonical).into()
    }

    /// Whether this says the answer was a problem: a negative rating, a failure category, a
    /// correction, an inline annotation (which marks an error), or an implicit signal whose type
    /// has negative polarity, by the built-in polarities ([`crate::signals::BUILT_IN_TYPES`]:
    /// regenerate, rephrase, frustration, abandon, edit). Comments and other signals say nothing
    /// certain either way. The store marks feedback with [`Self::is_negative_in`] its project's
    /// settings.
    pub fn is_negative(&self) -> bool {
        self.is_negative_given(crate::signals::settings::built_in_is_negative)
    }

    /// [`Self::is_negative`] with the project's signal polarities: a signal is negative when its
    /// type's polarity is negative in `settings` (an undeclared type is not).
    pub fn is_negative_in(&self, settings: &crate::signals::SignalSettings) -> bool {
        self.is_negative_given(|signal_type| settings.is_negative_type(signal_type))
    }

    fn is_negative_given(&self, negative_signal: impl Fn(&str) -> bool) -> bool {
        match &self.value {
            FeedbackValue::Rating(rating) => rating.sign() == RatingSign::Negative,
            FeedbackValue::Category(_)
            | FeedbackValue::Correction(_)
            | FeedbackValue::Annotation(_) => true,
            FeedbackValue::Comment(_) => false,
            FeedbackValue::Signal(signal) => negative_signal(&signal.signal_type),
        }
    }

    /// The signal type, for feedback of kind `signal`.
    pub fn signal_type(&self) -> Option<&str> {
        match &self.value {
            FeedbackValue::Signal(signal) => Some(&signal.signal_type),
            _ => None,
        }
    }

    /// A rating's sign; `None` for other kinds.
    pub fn rating_sign(&self) -> Option<RatingSign> {
        match &self.value {
            FeedbackValue::Rating(rating) => Some(rating.sign()),
            _ => None,
        }
    }
}

/// The identity of a restatable judgement; see [`Feedback::supersession_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupersessionKey<'a> {
    pub trace_id: &'a TraceId,
    pub span_id: Option<&'a SpanId>,
    pub author: &'a str,
    pub kind: FeedbackKind,
    pub compared_to: Option<&'a TraceId>,
}

impl SupersessionKey<'_> {
    /// A 64-bit digest of the key, for storing and indexing (a small integer keeps the index
    /// that holds it narrow; a collision within one trace would only merge two groups).
    pub fn digest(&self) -> i64 {
        let mut hasher = sha2::Sha256::new();
        for part in [
            self.trace_id.as_str(),
            self.span_id.map_or("", |s| s.as_str()),
            self.author,
            self.kind.as_str(),
            self.compared_to.map_or("", |t| t.as_str()),
        ] {
            // Length-prefixed, so that no two keys share a byte string.
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        i64::from_be_bytes(
            digest[..8]
                .try_into()
                .expect("a sha-256 digest has 8 bytes"),
        )
    }
}

fn check_text(field: &str, text: &str) -> Result<(), ValidationError> {
    if text.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    Ok(())
}

fn check_category_names(field: &str, names: &[String]) -> Result<(), ValidationError> {
    for (index, name) in names.iter().enumerate() {
        crate::taxonomy::check_name(&format!("{field}[{index}]"), name)?;
        if names[..index].contains(name) {
            return Err(ValidationError::new(
                format!("{field}[{index}]"),
                "is listed twice",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rating(value: f64, min: f64, max: f64) -> Rating {
        Rating {
            value,
            min,
            max,
            compared_to: None,
        }
    }

    #[test]
    fn rating_sign_follows_the_middle_of_the_scale() {
        assert_eq!(rating(0.0, 0.0, 1.0).sign(), RatingSign::Negative);
        assert_eq!(rating(1.0, 0.0, 1.0).sign(), RatingSign::Positive);
        assert_eq!(rating(3.0, 1.0, 5.0).sign(), RatingSign::Neutral);
        assert_eq!(rating(2.0, 1.0, 5.0).sign(), RatingSign::Negative);
        assert_eq!(rating(0.0, -1.0, 1.0).sign(), RatingSign::Neutral);
    }

    #[test]
    fn rating_outside_its_scale_is_rejected() {
        assert_eq!(rating(6.0, 1.0, 5.0).check().unwrap_err().field, "value");
        assert_eq!(rating(1.0, 5.0, 1.0).check().unwrap_err().field, "min");
        assert_eq!(
            rating(f64::NAN, 0.0, 1.0).check().unwrap_err().field,
            "value"
        );
    }

    fn annotation(start: u64, end: u64, quote: &str) -> Annotation {
        Annotation {
            start,
            end,
            quote: quote.into(),
            comment: None,
            tags: vec![],
            categories: vec![],
        }
    }

    #[test]
    fn annotation_ranges_count_characters_not_bytes() {
        let output = "Prix: 12 € par mois";
        assert!(annotation(6, 10, "12 €").check_against(output).is_ok());
        assert_eq!(
            annotation(6, 10, "12 e")
                .check_against(output)
                .unwrap_err()
                .field,
            "quote"
        );
        assert_eq!(
            annotation(16, 20, "mois")
                .check_against(output)
                .unwrap_err()
                .field,
            "end"
        );
        assert_eq!(annotation(3, 3, "").check().unwrap_err().field, "end");
        assert_eq!(annotation(0, 3, "ab").check().unwrap_err().field, "quote");
    }
}
