//! From feedback to lessons. A lesson drafted from feedback takes the trace's query as its
//! trigger example, the correction as the example answer, the categories' instruction templates
//! as its instruction, and a comment as a warning when nothing else says what to do.
//!
//! Automatic proposals group negative cases into neighbourhoods (leader clustering: the case
//! with the most neighbours claims them, then the next): two cases are neighbours when their
//! queries are similar or, when both carry corrections, when their fixes are: the correction
//! says what the problem was better than the query does, so it weighs three quarters.

use std::collections::BTreeMap;

use feedloop_core::lesson::{Action, CorrectedExample, LoopSettings, Origin, Provenance, Trigger};
use feedloop_core::{FeedbackId, TraceId};

use crate::matcher::dot;

/// Negative feedback on one trace, gathered for a draft.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub trace_id: TraceId,
    pub feedback_ids: Vec<FeedbackId>,
    /// The trace's input.
    pub query: String,
    pub correction: Option<String>,
    pub categories: Vec<String>,
    pub comment: Option<String>,
    pub fingerprint: Fingerprint,
    /// Members of the trace's problem cluster (see `feedloop-clusters`); 0 when it is in none.
    pub problem_cluster_size: u64,
}

impl Case {
    /// A case of a trace's query with nothing known about it yet.
    pub fn new(trace_id: TraceId, query: String) -> Self {
        Self {
            trace_id,
            feedback_ids: Vec::new(),
            query,
            correction: None,
            categories: Vec::new(),
            comment: None,
            fingerprint: Fingerprint::default(),
            problem_cluster_size: 0,
        }
    }
}

/// What cases (and lessons' examples) are compared by: the vectors of the query and of the
/// correction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fingerprint {
    pub query: Option<Vec<f32>>,
    pub correction: Option<Vec<f32>>,
}

/// A lesson's content before it has an id and times.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub title: String,
    pub trigger: Trigger,
    pub action: Action,
    pub provenance: Provenance,
}

/// How alike two cases are, 0..=1 for normalised vectors.
pub fn similarity(a: &Fingerprint, b: &Fingerprint) -> f32 {
    let query = match (&a.query, &b.query) {
        (Some(x), Some(y)) => dot(x, y),
        _ => 0.0,
    };
    match (&a.correction, &b.correction) {
        (Some(x), Some(y)) => 0.25 * query + 0.75 * dot(x, y),
        _ => query,
    }
}

/// Groups cases into neighbourhoods whose members are all at least `threshold` alike with the
/// group's leader, and keeps those of at least `min_size` cases, or whose leader's problem
/// cluster has that many members: a problem that recurs by meaning deserves a lesson even when
/// the cases at hand are too spread out to make a neighbourhood. Cases in no kept group are
/// left out. Returns indexes into `cases`, leader first.
pub fn cluster(cases: &[Case], threshold: f32, min_size: usize) -> Vec<Vec<usize>> {
    let n = cases.len();
    let near: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| {
                    j == i || similarity(&cases[i].fingerprint, &cases[j].fingerprint) >= threshold
                })
                .collect()
        })
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    // Densest first; ties by position, so the result does not depend on sort stability.
    order.sort_by_key(|&i| (std::cmp::Reverse(near[i].len()), i));
    let mut taken = vec![false; n];
    let mut groups = Vec::new();
    for leader in order {
        if taken[leader] {
            continue;
        }
        let mut members: Vec<usize> = near[leader]
            .iter()
            .copied()
            .filter(|&j| !taken[j])
            .collect();
        let min_size = min_size.max(1);
        if members.len() < min_size && cases[leader].problem_cluster_size < min_size as u64 {
            continue;
        }
        members.sort_by_key(|&j| (j != leader, j));
        for &j in &members {
            taken[j] = true;
        }
        groups.push(members);
    }
    groups
}

/// A draft lesson covering `cases` (the first is the most typical). `None` when the cases say
/// nothing a model could act on (no correction, no category with a template, no comment).
pub fn draft(cases: &[&Case], settings: &LoopSettings, origin: Origin) -> Option<Draft> {
    let lead = cases.first()?;
    let mut examples: Vec<String> = Vec::new();
    for case in cases {
        if !examples.contains(&case.query) {
            examples.push(case.query.clone());
        }
    }
    let example = cases.iter().find_map(|case| {
        case.correction.as_ref().map(|answer| CorrectedExample {
            query: case.query.clone(),
            answer: answer.clone(),
        })
    });
    // Categories by how many cases name them, then by name.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for name in cases.iter().flat_map(|case| &case.categories) {
        *counts.entry(name.as_str()).or_default() += 1;
    }
    let mut categories: Vec<(&str, usize)> = counts.into_iter().collect();
    categories.sort_by_key(|&(name, count)| (std::cmp::Reverse(count), name));
    let instructions: Vec<&str> = categories
        .iter()
        .filter_map(|(name, _)| {
            settings
                .instruction_templates
                .get(*name)
                .map(String::as_str)
        })
        .collect();
    let instruction = (!instructions.is_empty()).then(|| instructions.join(" "));
    let comment = cases.iter().find_map(|case| case.comment.clone());
    let warning = match (&instruction, &example, comment) {
        (None, None, Some(comment)) => Some(format!("Users said of similar answers: {comment}")),
        _ => None,
    };
    if instruction.is_none() && example.is_none() && warning.is_none() {
        return None;
    }
    let mut feedback_ids: Vec<FeedbackId> = Vec::new();
    let mut trace_ids: Vec<TraceId> = Vec::new();
    for case in cases {
        feedback_ids.extend(case.feedback_ids.iter().cloned());
        if !trace_ids.contains(&case.trace_id) {
            trace_ids.push(case.trace_id.clone());
        }
    }
    Some(Draft {
        title: title(&lead.query),
        trigger: Trigger {
            examples,
            ..Trigger::default()
        },
        action: Action {
            instruction,
            example,
            warning,
        },
        provenance: Provenance {
            origin,
            feedback_ids,
            trace_ids,
            ..Provenance::default()
        },
    })
}

/// A title from a query: its first line, cut at a word near 80 characters.
fn title(query: &str) -> String {
    let line = query.lines().next().unwrap_or_default().trim();
    if line.chars().count() <= 80 {
        return line.to_owned();
    }
    let cut: String = line.chars().take(80).collect();
    let at = cut.rfind(' ').filter(|&i| i > 40).unwrap_or(cut.len());
    format!("{}…", &cut[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str, query: [f32; 2], correction: Option<[f32; 2]>) -> Case {
        let mut case = Case::new(TraceId::parse("id", id).unwrap(), format!("query {id}"));
        case.feedback_ids = vec![FeedbackId::parse("id", format!("fb-{id}")).unwrap()];
        case.correction = correction.map(|_| format!("answer {id}"));
        case.fingerprint = Fingerprint {
            query: Some(query.to_vec()),
            correction: correction.map(|c| c.to_vec()),
        };
        case
    }

    #[test]
    fn cases_with_the_same_fix_group_even_when_queries_differ() {
        let (a, b) = ([1.0, 0.0], [0.0, 1.0]);
        let cases = [
            case("1", [1.0, 0.0], Some(a)),
            case("2", [0.8, 0.6], Some(a)),
            case("3", [0.6, 0.8], Some(a)),
            // Near the first queries, but fixed another way.
            case("4", [0.9, 0.436], Some(b)),
            case("5", [-1.0, 0.0], None),
        ];
        let groups = cluster(&cases, 0.7, 2);
        assert_eq!(groups.len(), 1);
        let mut members = groups[0].clone();
        members.sort();
        assert_eq!(members, [0, 1, 2]);
        assert!(cluster(&cases, 0.7, 4).is_empty());
    }

    #[test]
    fn a_lone_case_of_a_recurring_problem_cluster_is_kept() {
        let mut recurring = case("1", [1.0, 0.0], Some([1.0, 0.0]));
        recurring.problem_cluster_size = 3;
        let mut rare = case("2", [0.0, 1.0], Some([0.0, 1.0]));
        rare.problem_cluster_size = 2;
        let cases = [recurring, rare, case("3", [-1.0, 0.0], None)];
        assert_eq!(cluster(&cases, 0.9, 3), [vec![0]]);
        assert_eq!(cluster(&cases, 0.9, 2), [vec![0], vec![1]]);
    }

    #[test]
    fn drafts_take_examples_corrections_templates_and_comments() {
        let settings = LoopSettings::default();
        let mut first = case("1", [1.0, 0.0], Some([1.0, 0.0]));
        first.categories = vec!["too_vague".into()];
        let mut second = case("2", [1.0, 0.0], None);
        second.categories = vec!["too_vague".into(), "incomplete".into()];
        let draft = draft(&[&first, &second], &settings, Origin::Automatic).unwrap();
        assert_eq!(draft.trigger.examples, ["query 1", "query 2"]);
        assert_eq!(draft.action.example.unwrap().answer, "answer 1");
        let instruction = draft.action.instruction.unwrap();
        assert!(instruction.starts_with("Be specific and concrete"));
        assert!(instruction.contains("Answer every part"));
        assert_eq!(draft.provenance.feedback_ids.len(), 2);
        assert_eq!(draft.provenance.origin, Origin::Automatic);

        let mut only_comment = case("3", [1.0, 0.0], None);
        only_comment.comment = Some("it ignored my budget".into());
        let draft = super::draft(&[&only_comment], &settings, Origin::Feedback).unwrap();
        assert_eq!(
            draft.action.warning.unwrap(),
            "Users said of similar answers: it ignored my budget"
        );
        let silent = case("4", [1.0, 0.0], None);
        assert!(super::draft(&[&silent], &settings, Origin::Feedback).is_none());
    }

    #[test]
    fn titles_are_cut_at_a_word() {
        assert_eq!(title("short\nsecond line"), "short");
        let long = "word ".repeat(30);
        let cut = title(&long);
        assert!(cut.ends_with('…') && cut.chars().count() <= 81);
    }
}
