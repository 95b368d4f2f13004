//! Datasets: curated examples for fine-tuning, built from traces and their feedback.
//!
//! A [`Dataset`] is named (unique per project) and holds [`DatasetItem`]s: an input (the query),
//! its context (system prompt and earlier messages as stored on the trace), an ideal output (a
//! correction, or an answer people liked) and a rejected output (the answer that was corrected
//! or rated down, or the loser of a pairwise vote), with the categories, annotations and
//! comments people gave, and provenance back to the trace and feedback.
//!
//! Items are never changed or removed, so a **version** is a watermark over the items in the
//! order they were added: creating one freezes the set as it is, and items added later are not
//! in it. A trace contributes at most one item per dataset (one per compared trace for pairwise
//! votes): see [`DatasetItem::provenance_key`].
//!
//! [`items_from_chain`] is the rule that turns a trace and its current feedback into items;
//! [`split_of`] the deterministic train/validation split.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::ValidationError;
use crate::feedback::{Annotation, CorrectionKind, Feedback, FeedbackValue, RatingSign};
use crate::ids::{DatasetItemId, FeedbackId, TraceId};
use crate::trace::{Message, Trace};

/// Longest dataset name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest text of an item field (input, outputs, a message), in bytes.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

/// A named set of items in a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dataset {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

impl Dataset {
    pub fn check(&self) -> Result<(), ValidationError> {
        check_name("name", &self.name)
    }
}

/// A dataset name: 1 to 64 ASCII letters, digits, `_`, `-` or `.`, starting with a letter or a
/// digit, so that it is safe in URL paths and file names.
pub fn check_name(field: &str, name: &str) -> Result<(), ValidationError> {
    let valid_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid_start || !valid_chars || name.len() > MAX_NAME_BYTES {
        return Err(ValidationError::new(
            field,
            format!(
                "must be 1 to {MAX_NAME_BYTES} ascii letters, digits, '_', '-' or '.', starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// How an item came into the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ItemOrigin {
    /// A reviewer's "add to dataset" action.
    Review,
    /// A bulk add from a feedback filter.
    Filter,
    /// Sent explicitly through the API.
    Api,
}

impl ItemOrigin {
    pub const ALL: [ItemOrigin; 3] = [Self::Review, Self::Filter, Self::Api];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Review => "review",
            Self::Filter => "filter",
            Self::Api => "api",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// What the item's outputs were taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ItemSource {
    /// A correction is the ideal output; the corrected answer is rejected.
    Correction,
    /// A pairwise vote: the preferred answer is ideal, the other rejected.
    PairwiseVote,
    /// A rating: a well-rated answer is ideal, a badly rated (or otherwise faulted) one rejected.
    Rating,
    /// Written by a person or a tool as it is.
    #[default]
    Manual,
}

impl ItemSource {
    pub const ALL: [ItemSource; 4] = [
        Self::Correction,
        Self::PairwiseVote,
        Self::Rating,
        Self::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Correction => "correction",
            Self::PairwiseVote => "pairwise_vote",
            Self::Rating => "rating",
            Self::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// What the model saw besides the input: the system prompt and the conversation before it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ItemContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
}

/// Where an item came from and who added it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemProvenance {
    pub origin: ItemOrigin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub trace_id: Option<TraceId>,
    /// The other trace of a pairwise vote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub compared_trace_id: Option<TraceId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub feedback_ids: Vec<FeedbackId>,
    /// Who added the item (a person, a key, a job).
    pub added_by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub added_at: Timestamp,
}

/// One example of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetItem {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: DatasetItemId,
    /// The query.
    pub input: String,
    #[serde(default)]
    pub context: ItemContext,
    /// What the model should answer: a correction, or the preferred answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ideal_output: Option<String>,
    /// What it should not answer: the corrected or badly rated answer, or the losing one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_output: Option<String>,
    #[serde(default)]
    pub source: ItemSource,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<String>,
    pub provenance: ItemProvenance,
}

impl DatasetItem {
    /// Checks the rules that need no other data: an input, at least one output, two different
    /// outputs, texts within bounds.
    pub fn check(&self) -> Result<(), ValidationError> {
        check_text("input", &self.input)?;
        if self.ideal_output.is_none() && self.rejected_output.is_none() {
            return Err(ValidationError::new(
                "ideal_output",
                "an item needs an ideal output, a rejected output or both",
            ));
        }
        if let Some(ideal) = &self.ideal_output {
            check_text("ideal_output", ideal)?;
        }
        if let Some(rejected) = &self.rejected_output {
            check_text("rejected_output", rejected)?;
        }
        if self.ideal_output.is_some() && self.ideal_output == self.rejected_output {
            return Err(ValidationError::new(
                "rejected_output",
                "must differ from ideal_output",
            ));
        }
        if let Some(system) = &self.context.system_prompt {
            check_text("context.system_prompt", system)?;
        }
        for (index, message) in self.context.messages.iter().enumerate() {
            if message.content.len() > MAX_TEXT_BYTES {
                return Err(ValidationError::new(
                    format!("context.messages[{index}].content"),
                    format!("must be at most {MAX_TEXT_BYTES} bytes"),
                ));
            }
        }
        for (index, name) in self.categories.iter().enumerate() {
            crate::taxonomy::check_name(&format!("categories[{index}]"), name)?;
        }
        Ok(())
    }

    /// The identity of the item's provenance: its trace (and compared trace). A dataset holds
    /// one item per key, so adding the same traces again adds nothing. `None` for items that
    /// name no trace; those are told apart by id only.
    pub fn provenance_key(&self) -> Option<String> {
        let trace = self.provenance.trace_id.as_ref()?;
        let compared = self
            .provenance
            .compared_trace_id
            .as_ref()
            .map_or("", |t| t.as_str());
        Some(format!("{}\u{1f}{compared}", trace.as_str()))
    }

    /// A digest of the content (everything but who added it and when), so that re-sending an
    /// id with the same content is a retry and with other content a conflict.
    pub fn content_hash(&self) -> [u8; 32] {
        let mut canonical = self.clone();
        canonical.provenance.added_by.clear();
        canonical.provenance.added_at = Timestamp::UNIX_EPOCH;
        let bytes = serde_json::to_vec(&canonical).expect("items serialise to json");
        sha2::Sha256::digest(&bytes).into()
    }

    /// Whether the item is a preference pair: an ideal and a rejected output.
    pub fn is_pair(&self) -> bool {
        self.ideal_output.is_some() && self.rejected_output.is_some()
    }
}

/// The id of an item derived from its provenance key: `di_` and 24 hex digits of its SHA-256,
/// so that adding the same trace twice names the same item.
pub fn derived_item_id(provenance_key: &str) -> DatasetItemId {
    let digest = sha2::Sha256::digest(provenance_key.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    DatasetItemId::parse("id", format!("di_{hex}")).expect("a derived id is a valid id")
}

/// Who adds items made from feedback, how, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Adder {
    pub origin: ItemOrigin,
    pub added_by: String,
    pub added_at: Timestamp,
}

/// The items a trace's chain makes, given its current (not superseded) feedback, oldest first,
/// and a look-up of the traces its pairwise votes compare it with:
///
/// - a correction that is a full answer or a rewording → ideal output, with the trace's output
///   rejected (a missing fact is not an answer: it goes to the comments);
/// - each pairwise vote (a rating with `compared_to`) → a pair of the two outputs, the
///   preferred one ideal;
/// - otherwise, negative feedback (a negative rating, categories, annotations, a negative
///   signal) → the output rejected; a positive rating and nothing negative → the output ideal.
///
/// Categories, annotations and comments of the trace are carried. A trace without input or
/// output makes nothing.
pub fn items_from_chain<'a>(
    trace: &Trace,
    feedback: &[Feedback],
    compared: impl Fn(&TraceId) -> Option<&'a Trace>,
    adder: &Adder,
) -> Vec<DatasetItem> {
    let (Some(input), Some(output)) = (non_blank(&trace.input), non_blank(&trace.output)) else {
        return Vec::new();
    };
    let mut base = DatasetItem {
        id: derived_item_id(""),
        input: input.to_owned(),
        context: ItemContext {
            system_prompt: trace.context.system_prompt.clone(),
            messages: trace.context.messages.clone(),
        },
        ideal_output: None,
        rejected_output: None,
        source: ItemSource::Rating,
        categories: Vec::new(),
        annotations: Vec::new(),
        comments: Vec::new(),
        provenance: ItemProvenance {
            origin: adder.origin,
            trace_id: Some(trace.id.clone()),
            compared_trace_id: None,
            feedback_ids: Vec::new(),
            added_by: adder.added_by.clone(),
            added_at: adder.added_at,
        },
    };
    carry_labels(&mut base, feedback);

    let mut items = Vec::new();
    for vote in feedback.iter().filter(|f| f.trace_id == trace.id) {
        if let Some(item) = pair_from_vote(&base, output, vote, &compared) {
            items.push(item);
        }
    }
    let single = match best_answer(feedback) {
        Some((correction, id)) => Some(DatasetItem {
            ideal_output: Some(correction.to_owned()),
            rejected_output: Some(output.to_owned()),
            source: ItemSource::Correction,
            ..with_feedback(&base, feedback, Some(id))
        }),
        None if feedback.iter().any(|f| is_plain(f) && f.is_negative()) => Some(DatasetItem {
            rejected_output: Some(output.to_owned()),
            ..with_feedback(&base, feedback, None)
        }),
        None if feedback
            .iter()
            .any(|f| is_plain(f) && f.rating_sign() == Some(RatingSign::Positive)) =>
        {
            Some(DatasetItem {
                ideal_output: Some(output.to_owned()),
                ..with_feedback(&base, feedback, None)
            })
        }
        None => None,
    };
    items.extend(single);
    for item in &mut items {
        let key = item
            .provenance_key()
            .expect("items from a chain name their trace");
        item.id = derived_item_id(&key);
    }
    items
}

/// Feedback that is not a pairwise vote (votes make their own items).
fn is_plain(feedback: &Feedback) -> bool {
    !matches!(&feedback.value, FeedbackValue::Rating(r) if r.compared_to.is_some())
}

/// Categories (of category feedback and annotations), annotations and comments, deduplicated.
fn carry_labels(item: &mut DatasetItem, feedback: &[Feedback]) {
    for f in feedback {
        for category in f.value.categories() {
            if !item.categories.contains(category) {
                item.categories.push(category.clone());
            }
        }
        match &f.value {
            FeedbackValue::Annotation(annotation) => item.annotations.push(annotation.clone()),
            FeedbackValue::Comment(text) => item.comments.push(text.clone()),
            FeedbackValue::Correction(c) if c.kind == CorrectionKind::MissingFact => {
                item.comments.push(format!("missing fact: {}", c.text))
            }
            _ => {}
        }
    }
}

/// `base` with the ids of the feedback that made the item: the plain feedback, and the chosen
/// correction.
fn with_feedback(
    base: &DatasetItem,
    feedback: &[Feedback],
    correction: Option<&FeedbackId>,
) -> DatasetItem {
    let mut item = base.clone();
    item.provenance.feedback_ids = feedback
        .iter()
        .filter(|f| is_plain(f))
        .filter(|f| !matches!(f.value, FeedbackValue::Correction(_)) || Some(&f.id) == correction)
        .map(|f| f.id.clone())
        .collect();
    item
}

/// The latest correction that is a full answer, else the latest rewording, with its id.
fn best_answer(feedback: &[Feedback]) -> Option<(&str, &FeedbackId)> {
    let latest_of = |kind: CorrectionKind| {
        feedback.iter().rev().find_map(|f| match &f.value {
            FeedbackValue::Correction(c) if c.kind == kind && !c.text.trim().is_empty() => {
                Some((c.text.as_str(), &f.id))
            }
            _ => None,
        })
    };
    latest_of(CorrectionKind::Answer).or_else(|| latest_of(CorrectionKind::Rewording))
}

/// The pair a pairwise vote makes, if the vote prefers one side and the other trace has a
/// different output.
fn pair_from_vote<'a>(
    base: &DatasetItem,
    output: &str,
    vote: &Feedback,
    compared: &impl Fn(&TraceId) -> Option<&'a Trace>,
) -> Option<DatasetItem> {
    let FeedbackValue::Rating(rating) = &vote.value else {
        return None;
    };
    let other_id = rating.compared_to.as_ref()?;
    let other = compared(other_id)?;
    let other_output = non_blank(&other.output)?;
    if other_output == output {
        return None;
    }
    let (ideal, rejected) = match rating.sign() {
        RatingSign::Positive => (output, other_output),
        RatingSign::Negative => (other_output, output),
        RatingSign::Neutral => return None,
    };
    let mut item = base.clone();
    item.ideal_output = Some(ideal.to_owned());
    item.rejected_output = Some(rejected.to_owned());
    item.source = ItemSource::PairwiseVote;
    item.provenance.compared_trace_id = Some(other_id.clone());
    item.provenance.feedback_ids = vec![vote.id.clone()];
    Some(item)
}

fn non_blank(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|t| !t.trim().is_empty())
}

/// Which part of an export an item goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Validation,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Validation => "validation",
        }
    }
}

/// The split of the item with id `item_id` under `seed`: a hash of the seed and the id alone,
/// so an item stays on its side whatever else the dataset holds. A share of about
/// `validation_fraction` (0..=1) of the ids goes to validation.
pub fn split_of(seed: u64, item_id: &str, validation_fraction: f64) -> Split {
    let mut hasher = sha2::Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(item_id.as_bytes());
    let digest = hasher.finalize();
    let draw = u64::from_be_bytes(digest[..8].try_into().expect("a digest has 8 bytes"));
    // The top 53 bits as a uniform number in 0..1.
    let uniform = (draw >> 11) as f64 / (1u64 << 53) as f64;
    if uniform < validation_fraction {
        Split::Validation
    } else {
        Split::Train
    }
}

fn check_text(field: &str, text: &str) -> Result<(), ValidationError> {
    if text.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_TEXT_BYTES} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feedback::{Correction, Rating, Source};
    use crate::trace::TracePart;

    fn trace(id: &str, input: &str, output: &str) -> Trace {
        let part = TracePart {
            id: TraceId::parse("id", id).unwrap(),
            input: Some(input.into()),
            output: Some(output.into()),
            ..TracePart::default()
        };
        Trace::from_part(part, Timestamp::UNIX_EPOCH)
    }

    fn feedback(id: &str, trace: &str, value: FeedbackValue) -> Feedback {
        Feedback {
            id: FeedbackId::parse("id", id).unwrap(),
            trace_id: TraceId::parse("trace_id", trace).unwrap(),
            span_id: None,
            session_id: None,
            source: Source::EndUser,
            author: None,
            author_role: None,
            confidence: None,
            metadata: Default::default(),
            created_at: None,
            value,
        }
    }

    fn rating(value: f64, min: f64, compared_to: Option<&str>) -> FeedbackValue {
        FeedbackValue::Rating(Rating {
            value,
            min,
            max: 1.0,
            compared_to: compared_to.map(|t| TraceId::parse("t", t).unwrap()),
        })
    }

    fn adder() -> Adder {
        Adder {
            origin: ItemOrigin::Filter,
            added_by: "key 1".into(),
            added_at: Timestamp::UNIX_EPOCH,
        }
    }

    fn none(_: &TraceId) -> Option<&'static Trace> {
        None
    }

    #[test]
    fn a_correction_is_ideal_and_the_output_rejected_with_labels_carried() {
        let t = trace("t1", "capital of australia?", "Sydney");
        let chain = [
            feedback("f1", "t1", rating(0.0, 0.0, None)),
            feedback(
                "f2",
                "t1",
                FeedbackValue::Category(vec!["factually_incorrect".into()]),
            ),
            feedback(
                "f3",
                "t1",
                FeedbackValue::Correction(Correction {
                    text: "Canberra".into(),
                    kind: CorrectionKind::Answer,
                }),
            ),
            feedback("f4", "t1", FeedbackValue::Comment("wrong city".into())),
        ];
        let items = items_from_chain(&t, &chain, none, &adder());
        assert_eq!(items.len(), 1);
        let item = &items[0];
        assert_eq!(item.ideal_output.as_deref(), Some("Canberra"));
        assert_eq!(item.rejected_output.as_deref(), Some("Sydney"));
        assert_eq!(item.source, ItemSource::Correction);
        assert_eq!(item.categories, vec!["factually_incorrect"]);
        assert_eq!(item.comments, vec!["wrong city"]);
        let ids: Vec<&str> = item
            .provenance
            .feedback_ids
            .iter()
            .map(|f| f.as_str())
            .collect();
        assert_eq!(ids, vec!["f1", "f2", "f3", "f4"]);
        assert!(item.check().is_ok());
        // Deterministic id: the same trace always names the same item.
        assert_eq!(item.id, items_from_chain(&t, &chain, none, &adder())[0].id);
    }

    #[test]
    fn negative_without_correction_rejects_and_positive_is_ideal() {
        let t = trace("t1", "q", "a");
        let down = items_from_chain(
            &t,
            &[feedback("f1", "t1", rating(0.0, 0.0, None))],
            none,
            &adder(),
        );
        assert_eq!(down[0].rejected_output.as_deref(), Some("a"));
        assert_eq!(down[0].ideal_output, None);
        let up = items_from_chain(
            &t,
            &[feedback("f1", "t1", rating(1.0, 0.0, None))],
            none,
            &adder(),
        );
        assert_eq!(up[0].ideal_output.as_deref(), Some("a"));
        assert!(items_from_chain(&t, &[], none, &adder()).is_empty());
        let missing_fact = FeedbackValue::Correction(Correction {
            text: "it closes at 5".into(),
            kind: CorrectionKind::MissingFact,
        });
        let items = items_from_chain(&t, &[feedback("f1", "t1", missing_fact)], none, &adder());
        assert_eq!(items[0].ideal_output, None);
        assert_eq!(items[0].comments, vec!["missing fact: it closes at 5"]);
    }

    #[test]
    fn pairwise_votes_make_pairs_with_the_preferred_answer_ideal() {
        let a = trace("a", "q", "answer a");
        let b = trace("b", "q", "answer b");
        let look_up = |id: &TraceId| (id.as_str() == "b").then_some(&b);
        let prefers_b = [feedback("v1", "a", rating(-1.0, -1.0, Some("b")))];
        let items = items_from_chain(&a, &prefers_b, look_up, &adder());
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].ideal_output.as_deref(), Some("answer b"));
        assert_eq!(items[0].rejected_output.as_deref(), Some("answer a"));
        assert_eq!(items[0].source, ItemSource::PairwiseVote);
        assert_eq!(
            items[0]
                .provenance
                .compared_trace_id
                .as_ref()
                .unwrap()
                .as_str(),
            "b"
        );
        let tie = [feedback("v1", "a", rating(0.0, -1.0, Some("b")))];
        assert!(items_from_chain(&a, &tie, look_up, &adder()).is_empty());
    }

    #[test]
    fn items_need_an_output_and_two_different_ones() {
        let t = trace("t1", "q", "a");
        let mut item = items_from_chain(
            &t,
            &[feedback("f1", "t1", rating(0.0, 0.0, None))],
            none,
            &adder(),
        )
        .remove(0);
        item.ideal_output = Some("a".into());
        assert_eq!(item.check().unwrap_err().field, "rejected_output");
        item.ideal_output = None;
        item.rejected_output = None;
        assert_eq!(item.check().unwrap_err().field, "ideal_output");
        assert!(check_name("name", "support-v2.1").is_ok());
        assert!(check_name("name", "-x").is_err());
        assert!(check_name("name", "a/b").is_err());
        assert!(check_name("name", "").is_err());
    }

    #[test]
    fn the_split_depends_on_seed_and_id_only() {
        let ids: Vec<String> = (0..2_000).map(|i| format!("item-{i}")).collect();
        let split = |seed| -> Vec<Split> { ids.iter().map(|id| split_of(seed, id, 0.2)).collect() };
        assert_eq!(split(7), split(7));
        assert_ne!(split(7), split(8));
        let validation = split(7).iter().filter(|s| **s == Split::Validation).count();
        assert!((300..500).contains(&validation), "{validation}");
        assert_eq!(split_of(7, "x", 0.0), Split::Train);
        assert_eq!(split_of(7, "x", 1.0), Split::Validation);
    }
}
