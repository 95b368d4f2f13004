//! Lessons: what feedback teaches, as a fix that applies to similar queries. A lesson has a
//! trigger (example queries whose embeddings define a semantic neighbourhood, a similarity
//! threshold, and a metadata filter), an action (an instruction, a corrected example, a
//! warning), a priority, a status (proposed → active → retired) and its provenance: the
//! feedback and traces it came from, and who approved it. Every change makes a new version;
//! the store keeps them all.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::ValidationError;
use crate::ids::{FeedbackId, LessonId, TraceId};
use crate::trace::Environment;

/// Most example queries one trigger holds.
pub const MAX_EXAMPLES: usize = 200;
/// Longest text of any lesson field, in bytes.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Where a lesson is in its life. Only active lessons are injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LessonStatus {
    #[default]
    Proposed,
    Active,
    Retired,
}

impl LessonStatus {
    pub const ALL: [LessonStatus; 3] = [Self::Proposed, Self::Active, Self::Retired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether a lesson may move from `self` to `next`: forward through the life cycle, and a
    /// retired lesson may be made active again; nothing goes back to proposed.
    pub fn may_become(self, next: LessonStatus) -> bool {
        use LessonStatus::*;
        matches!(
            (self, next),
            (Proposed, Proposed | Active | Retired)
                | (Active, Active | Retired)
                | (Retired, Retired | Active)
        )
    }
}

/// When a lesson applies.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Queries that show the problem; a new query near any of them may get the lesson.
    pub examples: Vec<String>,
    /// Least cosine similarity to an example for the lesson to apply. Without one, feedloop
    /// calibrates it from the lesson's examples and the traffic around them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// Metadata the query must have for the lesson to apply: every field set must equal the
    /// query's, and every tag must be among the query's tags (the same type as the query's
    /// metadata, so the two cannot drift apart).
    #[serde(default, skip_serializing_if = "QueryMetadata::is_empty")]
    pub filter: QueryMetadata,
}

/// What is known about a query when lessons are chosen for it; as a trigger's filter, the same
/// fields are conditions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QueryMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_role: Option<String>,
}

impl QueryMetadata {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether a query with metadata `query` passes this filter; the first condition that
    /// fails is named.
    pub fn check(&self, query: &QueryMetadata) -> Result<(), &'static str> {
        fn same<T: PartialEq>(want: &Option<T>, have: &Option<T>) -> bool {
            want.is_none() || want == have
        }
        let conditions = [
            ("environment", same(&self.environment, &query.environment)),
            ("model_name", same(&self.model_name, &query.model_name)),
            (
                "model_version",
                same(&self.model_version, &query.model_version),
            ),
            ("prompt_name", same(&self.prompt_name, &query.prompt_name)),
            (
                "prompt_version",
                same(&self.prompt_version, &query.prompt_version),
            ),
            ("user_role", same(&self.user_role, &query.user_role)),
            ("tags", self.tags.iter().all(|tag| query.tags.contains(tag))),
        ];
        match conditions.into_iter().find(|(_, holds)| !holds) {
            Some((name, _)) => Err(name),
            None => Ok(()),
        }
    }
}

/// A query and the answer it should have had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CorrectedExample {
    pub query: String,
    pub answer: String,
}

/// What a lesson puts into the prompt: at least one of an instruction, a corrected example and
/// a warning.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Action {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<CorrectedExample>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// How a lesson came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Written by a person through the API.
    #[default]
    Manual,
    /// Made from chosen feedback (`POST /api/v1/lessons/from-feedback`).
    Feedback,
    /// Proposed by feedloop from a cluster of negative feedback.
    Automatic,
}

/// Where a lesson came from and who let it loose.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Provenance {
    #[serde(default)]
    pub origin: Origin,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub feedback_ids: Vec<FeedbackId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub trace_ids: Vec<TraceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub approved_at: Option<Timestamp>,
}

/// A lesson as stored: one version of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lesson {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: LessonId,
    pub title: String,
    pub trigger: Trigger,
    pub action: Action,
    /// Higher first when lessons compete for the budget.
    pub priority: i32,
    pub status: LessonStatus,
    pub provenance: Provenance,
    /// 1 for the first version; every change adds one.
    pub version: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub updated_at: Timestamp,
    /// Who made this version (the key's name, or feedloop itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

impl Lesson {
    /// Checks the rules that need no other data.
    pub fn check(&self) -> Result<(), ValidationError> {
        check_text("title", &self.title)?;
        check_trigger(&self.trigger).map_err(|e| e.within("trigger"))?;
        check_action(&self.action).map_err(|e| e.within("action"))?;
        if !(-1000..=1000).contains(&self.priority) {
            return Err(ValidationError::new(
                "priority",
                "must be within -1000..=1000",
            ));
        }
        Ok(())
    }
}

/// How a project runs its loop. Stored whole; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct LoopSettings {
    /// Share of context requests held out: their lessons are recorded, not injected.
    pub holdout_fraction: f64,
    /// Seeds the hold-out draw, which is a hash of the seed and the request's session (or its
    /// injection id), so one session stays in or out of the hold-out throughout.
    pub holdout_seed: u64,
    /// Proposed lessons become active without approval.
    pub auto_activate: bool,
    /// Instruction per feedback category, used when a lesson is made from feedback.
    pub instruction_templates: BTreeMap<String, String>,
    /// The block put into the system prompt; `{lessons}` is replaced by the rendered lessons.
    pub context_template: String,
    /// When several negative feedback items fall in one neighbourhood, propose a lesson.
    pub proposals: ProposalSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ProposalSettings {
    pub enabled: bool,
    /// Least number of negative feedback items in one neighbourhood.
    pub min_feedback: u32,
    /// Least cosine similarity between the queries of one neighbourhood.
    pub similarity: f32,
    /// How far back feedback counts, in hours.
    pub window_hours: u32,
}

impl Default for ProposalSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            min_feedback: 3,
            similarity: 0.6,
            window_hours: 24 * 7,
        }
    }
}

impl Default for LoopSettings {
    fn default() -> Self {
        let templates = [
            (
                "factually_incorrect",
                "Check every fact against the provided context; say so when unsure instead of guessing.",
            ),
            (
                "too_vague",
                "Be specific and concrete: give exact steps, figures and names rather than general advice.",
            ),
            (
                "wrong_tone",
                "Match the user's tone: courteous, direct, and free of filler.",
            ),
            (
                "incomplete",
                "Answer every part of the question; list what the user must do from start to finish.",
            ),
            (
                "misunderstood_intent",
                "Make sure you answer what the user actually asked; if the request is ambiguous, ask.",
            ),
            (
                "outdated",
                "Use only current information; mention when details may have changed.",
            ),
            (
                "unsafe",
                "Refuse unsafe requests and point to a safe alternative.",
            ),
            (
                "formatting",
                "Format the answer for reading: short paragraphs, lists for steps.",
            ),
        ];
        Self {
            holdout_fraction: 0.1,
            holdout_seed: 0,
            auto_activate: false,
            instruction_templates: templates
                .into_iter()
                .map(|(name, text)| (name.to_owned(), text.to_owned()))
                .collect(),
            context_template:
                "Lessons learned from earlier feedback on similar requests:\n\n{lessons}".into(),
            proposals: ProposalSettings::default(),
        }
    }
}

impl LoopSettings {
    pub fn check(&self) -> Result<(), ValidationError> {
        if !(0.0..=0.5).contains(&self.holdout_fraction) {
            return Err(ValidationError::new(
                "holdout_fraction",
                "must be within 0..=0.5",
            ));
        }
        if !self.context_template.contains("{lessons}") {
            return Err(ValidationError::new(
                "context_template",
                "must contain {lessons}",
            ));
        }
        if !(0.0..=1.0).contains(&self.proposals.similarity) {
            return Err(ValidationError::new(
                "proposals.similarity",
                "must be within 0..=1",
            ));
        }
        if self.proposals.min_feedback == 0 {
            return Err(ValidationError::new(
                "proposals.min_feedback",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// One lesson chosen for a query, with its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InjectedLesson {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub lesson_id: LessonId,
    pub version: u32,
    pub score: f32,
}

fn check_trigger(trigger: &Trigger) -> Result<(), ValidationError> {
    if trigger.examples.is_empty() {
        return Err(ValidationError::new(
            "examples",
            "must hold at least one example query",
        ));
    }
    if trigger.examples.len() > MAX_EXAMPLES {
        return Err(ValidationError::new(
            "examples",
            format!("must hold at most {MAX_EXAMPLES} examples"),
        ));
    }
    for (index, example) in trigger.examples.iter().enumerate() {
        check_text(&format!("examples[{index}]"), example)?;
    }
    if let Some(threshold) = trigger.threshold
        && !(0.0..=1.0).contains(&threshold)
    {
        return Err(ValidationError::new("threshold", "must be within 0..=1"));
    }
    for (index, tag) in trigger.filter.tags.iter().enumerate() {
        check_text(&format!("filter.tags[{index}]"), tag)?;
    }
    Ok(())
}

fn check_action(action: &Action) -> Result<(), ValidationError> {
    if action.instruction.is_none() && action.example.is_none() && action.warning.is_none() {
        return Err(ValidationError::new(
            "",
            "must have an instruction, an example or a warning",
        ));
    }
    if let Some(instruction) = &action.instruction {
        check_text("instruction", instruction)?;
    }
    if let Some(example) = &action.example {
        check_text("example.query", &example.query)?;
        check_text("example.answer", &example.answer)?;
    }
    if let Some(warning) = &action.warning {
        check_text("warning", warning)?;
    }
    Ok(())
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

    fn lesson() -> Lesson {
        Lesson {
            id: LessonId::parse("id", "ls-1").unwrap(),
            title: "Card arrival times".into(),
            trigger: Trigger {
                examples: vec!["when will my card arrive?".into()],
                ..Trigger::default()
            },
            action: Action {
                instruction: Some("Give the delivery window in working days.".into()),
                ..Action::default()
            },
            priority: 0,
            status: LessonStatus::Proposed,
            provenance: Provenance::default(),
            version: 1,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
            updated_by: None,
        }
    }

    #[test]
    fn a_lesson_needs_an_example_and_an_action() {
        assert!(lesson().check().is_ok());
        let mut no_examples = lesson();
        no_examples.trigger.examples.clear();
        assert_eq!(no_examples.check().unwrap_err().field, "trigger.examples");
        let mut blank = lesson();
        blank.trigger.examples = vec!["ok".into(), "  ".into()];
        assert_eq!(blank.check().unwrap_err().field, "trigger.examples[1]");
        let mut no_action = lesson();
        no_action.action = Action::default();
        assert_eq!(no_action.check().unwrap_err().field, "action");
        let mut threshold = lesson();
        threshold.trigger.threshold = Some(1.5);
        assert_eq!(threshold.check().unwrap_err().field, "trigger.threshold");
    }

    #[test]
    fn status_moves_forward_and_retired_may_return() {
        use LessonStatus::*;
        assert!(Proposed.may_become(Active));
        assert!(Active.may_become(Retired));
        assert!(Retired.may_become(Active));
        assert!(!Active.may_become(Proposed));
        assert!(!Retired.may_become(Proposed));
    }

    #[test]
    fn filters_name_the_condition_that_fails() {
        let filter = QueryMetadata {
            environment: Some(Environment::Prod),
            tags: vec!["billing".into()],
            ..QueryMetadata::default()
        };
        let mut query = QueryMetadata {
            environment: Some(Environment::Prod),
            tags: vec!["billing".into(), "vip".into()],
            ..QueryMetadata::default()
        };
        assert_eq!(filter.check(&query), Ok(()));
        query.tags.clear();
        assert_eq!(filter.check(&query), Err("tags"));
        query.environment = Some(Environment::Dev);
        assert_eq!(filter.check(&query), Err("environment"));
        assert_eq!(QueryMetadata::default().check(&query), Ok(()));
    }
}
