//! Turning chosen lessons into the block an app puts into its system prompt: one entry per
//! lesson, duplicates dropped, cut to a budget.

use feedloop_core::lesson::Lesson;
use serde::{Deserialize, Serialize};

/// How much of the prompt the lessons may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// Characters of the rendered block (not counting the template around it).
    Chars(usize),
    /// Tokens, estimated as one per four bytes (the usual rule for English with BPE
    /// tokenizers; no tokenizer of the app's model is at hand).
    Tokens(usize),
}

impl Budget {
    pub const DEFAULT: Budget = Budget::Chars(2_000);

    fn allows(self, bytes: usize) -> bool {
        match self {
            Budget::Chars(chars) => bytes <= chars,
            Budget::Tokens(tokens) => bytes.div_ceil(4) <= tokens,
        }
    }
}

/// One lesson as the model reads it.
pub fn entry(lesson: &Lesson) -> String {
    let action = &lesson.action;
    let mut parts = Vec::new();
    if let Some(instruction) = &action.instruction {
        parts.push(instruction.trim().to_owned());
    }
    if let Some(warning) = &action.warning {
        parts.push(format!("Warning: {}", warning.trim()));
    }
    if let Some(example) = &action.example {
        parts.push(format!(
            "Example of a good answer. Question: {} Answer: {}",
            example.query.trim(),
            example.answer.trim()
        ));
    }
    format!("- {}", parts.join("\n  "))
}

/// The rendered block and which of `lessons` (in the given order) made it in. Lessons whose
/// entry repeats an earlier one are dropped; a lesson that does not fit is skipped and smaller
/// ones after it may still fit. `None` when no lesson fits.
pub fn render<'a>(
    lessons: impl IntoIterator<Item = &'a Lesson>,
    template: &str,
    budget: Budget,
) -> (Option<String>, Vec<usize>) {
    let mut entries: Vec<String> = Vec::new();
    let mut included = Vec::new();
    let mut used = 0usize;
    for (index, lesson) in lessons.into_iter().enumerate() {
        let entry = entry(lesson);
        if entries.contains(&entry) {
            continue;
        }
        let cost = entry.len() + usize::from(!entries.is_empty());
        if !budget.allows(used + cost) {
            continue;
        }
        used += cost;
        entries.push(entry);
        included.push(index);
    }
    if entries.is_empty() {
        return (None, included);
    }
    (
        Some(template.replace("{lessons}", &entries.join("\n"))),
        included,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use feedloop_core::LessonId;
    use feedloop_core::Timestamp;
    use feedloop_core::lesson::{Action, CorrectedExample, LessonStatus, Provenance, Trigger};

    fn lesson(id: &str, instruction: &str) -> Lesson {
        Lesson {
            id: LessonId::parse("id", id).unwrap(),
            title: id.into(),
            trigger: Trigger {
                examples: vec!["q".into()],
                ..Trigger::default()
            },
            action: Action {
                instruction: Some(instruction.into()),
                ..Action::default()
            },
            priority: 0,
            status: LessonStatus::Active,
            provenance: Provenance::default(),
            version: 1,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
            updated_by: None,
        }
    }

    #[test]
    fn entries_carry_every_part_of_the_action() {
        let mut full = lesson("a", "Be exact.");
        full.action.warning = Some("Fees changed in May.".into());
        full.action.example = Some(CorrectedExample {
            query: "What does it cost?".into(),
            answer: "2 EUR.".into(),
        });
        assert_eq!(
            entry(&full),
            "- Be exact.\n  Warning: Fees changed in May.\n  Example of a good answer. Question: What does it cost? Answer: 2 EUR."
        );
    }

    #[test]
    fn duplicates_are_dropped_and_the_budget_holds() {
        let lessons = [
            lesson("a", "Be exact."),
            lesson("b", "Be exact."),
            lesson("c", &"x".repeat(100)),
            lesson("d", "Cite the fee table."),
        ];
        let (block, included) = render(&lessons, "Lessons:\n{lessons}", Budget::Chars(60));
        assert_eq!(included, [0, 3]);
        assert_eq!(
            block.unwrap(),
            "Lessons:\n- Be exact.\n- Cite the fee table."
        );
        let (block, included) = render(&lessons, "{lessons}", Budget::Tokens(1));
        assert!(block.is_none() && included.is_empty());
    }
}
