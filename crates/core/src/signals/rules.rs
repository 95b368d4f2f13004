//! The server-derived rules, as pure functions of consecutive turns of a session.
//!
//! - **regenerate**: the next query is the same text (after [`normalize_query`]) within the
//!   window → negative on the replaced answer, confidence 1.
//! - **rephrase**: the next query is not the same text, means nearly the same (cosine ≥ the
//!   threshold) within the window and does not open like a continuation ("and …", "what
//!   about …", "thanks", see [`is_continuation`]) → negative on the previous answer; the
//!   similarity is both the evidence and the confidence.
//! - **frustration**: the next query says the answer was wrong ("that's wrong", "no, I
//!   meant …", see [`frustration_phrase`]) within the window → negative, confidence 0.9.
//! - **abandon**: the session stays idle for longer than the timeout right after an answer,
//!   and nobody engaged with it (no feedback from a person) → weak negative, confidence 0.3.
//!
//! Findings become feedback of kind `signal`, source `automatic`, author
//! [`DERIVED_AUTHOR`], with a deterministic id ([`derived_feedback_id`]), so deriving twice
//! stores nothing new.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};
use sha2::Digest;

use super::RuleSettings;
use crate::feedback::{Feedback, FeedbackValue, Signal, Source};
use crate::ids::{FeedbackId, TraceId};

/// The author of every derived signal.
pub const DERIVED_AUTHOR: &str = "feedloop:signals";

/// Confidence of a frustration finding: the phrases are explicit but short texts mislead.
const FRUSTRATION_CONFIDENCE: f64 = 0.9;
/// Confidence of an abandonment: people leave satisfied too.
const ABANDON_CONFIDENCE: f64 = 0.3;

/// A server-derived rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DerivedRule {
    Rephrase,
    Frustration,
    Regenerate,
    Abandon,
}

impl DerivedRule {
    pub const ALL: [DerivedRule; 4] = [
        Self::Rephrase,
        Self::Frustration,
        Self::Regenerate,
        Self::Abandon,
    ];

    /// The rule's name, which is also the type of the signals it derives.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rephrase => "rephrase",
            Self::Frustration => "frustration",
            Self::Regenerate => "regenerate",
            Self::Abandon => "abandon",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|rule| rule.as_str() == name)
    }

    /// The prefix of the ids of this rule's signals.
    pub fn id_prefix(self) -> String {
        format!("auto-{}-", self.as_str())
    }

    pub fn enabled(self, rules: &RuleSettings) -> bool {
        match self {
            Self::Rephrase => rules.rephrase_enabled,
            Self::Frustration => rules.frustration_enabled,
            Self::Regenerate => rules.regenerate_enabled,
            Self::Abandon => rules.abandon_enabled,
        }
    }
}

/// One query of a session, as the pair rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Turn<'a> {
    pub trace_id: &'a TraceId,
    pub input: &'a str,
    pub started_at: Timestamp,
}

/// What a rule found about a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: DerivedRule,
    pub confidence: f64,
    /// The signal's value (the similarity of a rephrase).
    pub value: Option<f64>,
    pub evidence: Map<String, Value>,
}

/// Lower case, typographic apostrophes made plain, runs of whitespace made one space, and
/// trailing punctuation dropped: the form in which "the same query" is compared.
pub fn normalize_query(text: &str) -> String {
    let lowered = text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'");
    let words: Vec<&str> = lowered.split_whitespace().collect();
    words
        .join(" ")
        .trim_end_matches(['?', '!', '.', ' '])
        .to_owned()
}

/// Phrases that say the previous answer was wrong or missed the point, matched as whole words
/// in the normalized follow-up.
const FRUSTRATION_PHRASES: [&str; 24] = [
    "that's wrong",
    "that is wrong",
    "thats wrong",
    "this is wrong",
    "wrong answer",
    "that's not right",
    "that is not right",
    "that's incorrect",
    "that is incorrect",
    "not what i asked",
    "not what i meant",
    "not what i wanted",
    "that's not what i",
    "you misunderstood",
    "you didn't understand",
    "you don't understand",
    "no, i meant",
    "no i meant",
    "i said",
    "i already said",
    "i already told you",
    "doesn't answer my question",
    "didn't answer my question",
    "you're wrong",
];

/// Openings that say the user wants the answer again or is annoyed, matched only at the start.
const FRUSTRATION_OPENINGS: [&str; 4] = ["no,", "nope", "wrong", "try again"];

/// The frustration or correction phrase in a follow-up, if any.
pub fn frustration_phrase(follow_up: &str) -> Option<&'static str> {
    let text = normalize_query(follow_up);
    let padded = format!(" {} ", text.replace(['.', '!', '?'], " "));
    FRUSTRATION_PHRASES
        .into_iter()
        .find(|phrase| {
            padded.contains(&format!(" {phrase} ")) || padded.contains(&format!(" {phrase},"))
        })
        .or_else(|| {
            FRUSTRATION_OPENINGS
                .into_iter()
                .find(|opening| text.starts_with(opening) && opening_ends_word(&text, opening))
        })
}

fn opening_ends_word(text: &str, opening: &str) -> bool {
    opening.ends_with(',')
        || text[opening.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric())
}

/// Openings of a follow-up that builds on the answer rather than asking it again.
const CONTINUATION_OPENINGS: [&str; 16] = [
    "and ",
    "also ",
    "what about ",
    "how about ",
    "what if ",
    "then ",
    "so ",
    "thanks",
    "thank you",
    "ok ",
    "okay",
    "great",
    "follow up",
    "follow-up",
    "another question",
    "one more",
];

/// Whether a follow-up opens like a natural continuation of the conversation.
pub fn is_continuation(follow_up: &str) -> bool {
    let text = normalize_query(follow_up);
    CONTINUATION_OPENINGS
        .into_iter()
        .any(|opening| text.starts_with(opening))
}

/// Judges the pair (previous, next) of consecutive queries of one session. `similarity` is the
/// cosine of their embeddings, when both are embedded.
pub fn judge_pair(
    previous: Turn<'_>,
    next: Turn<'_>,
    similarity: Option<f32>,
    rules: &RuleSettings,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let gap = next.started_at.duration_since(previous.started_at);
    if gap < SignedDuration::ZERO {
        return findings;
    }
    let within = |secs: u64| gap <= SignedDuration::from_secs(secs as i64);
    let same_text = normalize_query(previous.input) == normalize_query(next.input);
    let base_evidence = || {
        let mut evidence = Map::new();
        evidence.insert("query".into(), json!(previous.input));
        evidence.insert("follow_up".into(), json!(next.input));
        evidence.insert("follow_up_trace_id".into(), json!(next.trace_id.as_str()));
        evidence.insert("gap_secs".into(), json!(gap.as_secs()));
        evidence
    };
    if rules.regenerate_enabled && same_text && within(rules.regenerate_window_secs) {
        findings.push(Finding {
            rule: DerivedRule::Regenerate,
            confidence: 1.0,
            value: None,
            evidence: base_evidence(),
        });
    }
    if rules.rephrase_enabled
        && !same_text
        && within(rules.rephrase_window_secs)
        && let Some(similarity) = similarity
        && f64::from(similarity) >= rules.rephrase_min_similarity
        && !is_continuation(next.input)
    {
        // Rounded, so that the stored evidence is the same text every time it is derived.
        let similarity = (f64::from(similarity) * 10_000.0).round() / 10_000.0;
        let mut evidence = base_evidence();
        evidence.insert("similarity".into(), json!(similarity));
        findings.push(Finding {
            rule: DerivedRule::Rephrase,
            confidence: similarity.clamp(0.0, 1.0),
            value: Some(similarity),
            evidence,
        });
    }
    if rules.frustration_enabled
        && within(rules.frustration_window_secs)
        && let Some(phrase) = frustration_phrase(next.input)
    {
        let mut evidence = base_evidence();
        evidence.insert("phrase".into(), json!(phrase));
        findings.push(Finding {
            rule: DerivedRule::Frustration,
            confidence: FRUSTRATION_CONFIDENCE,
            value: None,
            evidence,
        });
    }
    findings
}

/// Judges whether the session was abandoned right after `answered_at`: nothing came next within
/// the timeout, nobody engaged with the answer, and the timeout has passed by `now`.
pub fn judge_abandon(
    answered_at: Timestamp,
    next_started_at: Option<Timestamp>,
    engaged: bool,
    now: Timestamp,
    rules: &RuleSettings,
) -> Option<Finding> {
    if !rules.abandon_enabled || engaged {
        return None;
    }
    let timeout = SignedDuration::from_secs(rules.abandon_timeout_secs as i64);
    let idle_until = next_started_at.unwrap_or(now);
    if idle_until.duration_since(answered_at) <= timeout {
        return None;
    }
    let mut evidence = Map::new();
    evidence.insert("answered_at".into(), json!(answered_at.to_string()));
    evidence.insert(
        "next_query_at".into(),
        next_started_at.map_or(Value::Null, |at| json!(at.to_string())),
    );
    Some(Finding {
        rule: DerivedRule::Abandon,
        confidence: ABANDON_CONFIDENCE,
        value: None,
        evidence,
    })
}

/// The id of the signal `rule` derives about `trace_id` (from `evidence_key`, e.g. the
/// follow-up's trace id): the same inputs give the same id.
pub fn derived_feedback_id(
    rule: DerivedRule,
    trace_id: &TraceId,
    evidence_key: &str,
) -> FeedbackId {
    let mut hasher = sha2::Sha256::new();
    for part in [trace_id.as_str(), evidence_key] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    FeedbackId::parse("id", format!("{}{hex}", rule.id_prefix()))
        .expect("a derived id is short printable ascii")
}

/// The feedback a finding becomes: a signal of the rule's type on `trace_id`, at `at` (the
/// time of the evidence, so that deriving again states the same content).
pub fn derived_feedback(
    finding: Finding,
    trace_id: &TraceId,
    session_id: Option<&str>,
    evidence_key: &str,
    at: Timestamp,
) -> Feedback {
    let mut details = Map::new();
    details.insert("rule".into(), json!(finding.rule.as_str()));
    details.insert("evidence".into(), Value::Object(finding.evidence));
    Feedback {
        id: derived_feedback_id(finding.rule, trace_id, evidence_key),
        trace_id: trace_id.clone(),
        span_id: None,
        session_id: session_id.map(str::to_owned),
        source: Source::Automatic,
        author: Some(DERIVED_AUTHOR.to_owned()),
        author_role: None,
        confidence: Some(finding.confidence),
        metadata: Map::new(),
        created_at: Some(at),
        value: FeedbackValue::Signal(Signal {
            signal_type: finding.rule.as_str().to_owned(),
            value: finding.value,
            details,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> TraceId {
        TraceId::parse("id", s).unwrap()
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn frustration_phrases_are_found_as_whole_words() {
        assert_eq!(frustration_phrase("That’s wrong."), Some("that's wrong"));
        assert_eq!(
            frustration_phrase("No, I meant the savings account"),
            Some("no, i meant")
        );
        assert_eq!(frustration_phrase("nope"), Some("nope"));
        assert_eq!(frustration_phrase("Wrong, try again"), Some("wrong"));
        assert_eq!(
            frustration_phrase("Is the wrongful charge refundable?"),
            None
        );
        assert_eq!(frustration_phrase("Nobody told me about fees"), None);
        assert_eq!(frustration_phrase("What did I say about fees"), None);
    }

    #[test]
    fn continuations_are_recognised_by_their_opening() {
        assert!(is_continuation("And what about the fees?"));
        assert!(is_continuation("thanks! how long does it take"));
        assert!(!is_continuation("How do I reset my password"));
    }

    #[test]
    fn pairs_are_judged_by_text_similarity_and_time() {
        let rules = RuleSettings::default();
        let (a, b) = (id("a"), id("b"));
        let first = Turn {
            trace_id: &a,
            input: "How do I reset my password?",
            started_at: at(0),
        };
        let again = Turn {
            trace_id: &b,
            input: "how do I reset my  password",
            started_at: at(30),
        };
        let rules_of = |findings: Vec<Finding>| findings.iter().map(|f| f.rule).collect::<Vec<_>>();
        assert_eq!(
            rules_of(judge_pair(first, again, Some(1.0), &rules)),
            [DerivedRule::Regenerate]
        );
        let reworded = Turn {
            input: "I forgot my password, how can I change it",
            ..again
        };
        assert_eq!(
            rules_of(judge_pair(first, reworded, Some(0.8), &rules)),
            [DerivedRule::Rephrase]
        );
        // Below the threshold: a new question.
        assert!(judge_pair(first, reworded, Some(0.3), &rules).is_empty());
        // Too late: a new visit.
        let later = Turn {
            started_at: at(3_600),
            ..reworded
        };
        assert!(judge_pair(first, later, Some(0.8), &rules).is_empty());
        // A continuation, however similar, is not a rephrase.
        let continued = Turn {
            input: "And how do I reset it on my phone?",
            ..reworded
        };
        assert!(judge_pair(first, continued, Some(0.8), &rules).is_empty());
        let complaint = Turn {
            input: "No, I meant the app password",
            ..reworded
        };
        assert_eq!(
            rules_of(judge_pair(first, complaint, Some(0.4), &rules)),
            [DerivedRule::Frustration]
        );
    }

    #[test]
    fn abandonment_needs_idle_time_and_no_engagement() {
        let rules = RuleSettings::default();
        assert!(judge_abandon(at(0), None, false, at(1_801), &rules).is_some());
        assert!(judge_abandon(at(0), None, false, at(1_799), &rules).is_none());
        assert!(judge_abandon(at(0), None, true, at(5_000), &rules).is_none());
        assert!(judge_abandon(at(0), Some(at(60)), false, at(5_000), &rules).is_none());
        assert!(judge_abandon(at(0), Some(at(2_000)), false, at(5_000), &rules).is_some());
    }

    #[test]
    fn derived_ids_are_deterministic_and_valid() {
        let one = derived_feedback_id(DerivedRule::Rephrase, &id("t1"), "t2");
        assert_eq!(
            one,
            derived_feedback_id(DerivedRule::Rephrase, &id("t1"), "t2")
        );
        assert_ne!(
            one,
            derived_feedback_id(DerivedRule::Rephrase, &id("t1"), "t3")
        );
        assert!(one.as_str().starts_with("auto-rephrase-"));
    }
}
