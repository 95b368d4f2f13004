//! Supersession: a restated judgement (a rating, a choice of categories, a correction) by the
//! same author on the same trace, span and compared trace supersedes the earlier ones; the
//! latest by time stays current whatever the order of arrival.

use feedloop_core::ProjectId;
use feedloop_core::feedback::{Feedback, FeedbackValue, Rating};
use feedloop_core::filter::Filter;
use feedloop_core::trace::{SpanPart, TracePart};
use feedloop_store::Store;
use std::sync::Arc;

use super::fixtures::*;

fn pairwise(id: &str, author: &str, against: &str, value: f64, created: i64) -> Feedback {
    Feedback {
        author: Some(author.to_owned()),
        created_at: Some(at(created)),
        ..feedback(
            id,
            "t1",
            FeedbackValue::Rating(Rating {
                value,
                min: -1.0,
                max: 1.0,
                compared_to: Some(trace_id(against)),
            }),
        )
    }
}

/// Each id and the id that supersedes it, for the feedback on t1.
async fn supersession(store: &dyn Store, project: ProjectId) -> Vec<(String, Option<String>)> {
    let filter = Filter {
        trace_id: Some("t1".into()),
        ..Default::default()
    };
    all_feedback(store, project, &filter)
        .await
        .into_iter()
        .map(|f| {
            let by = f.superseded_by.map(|id| id.into_string());
            (f.feedback.id.into_string(), by)
        })
        .collect()
}

fn pairs(expected: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    expected
        .iter()
        .map(|(id, by)| ((*id).to_owned(), by.map(str::to_owned)))
        .collect()
}

pub async fn restated_judgements_supersede_earlier_ones(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let trace = TracePart {
        spans: vec![(span_id("sp1"), SpanPart::default())],
        ..trace_part("t1", 0)
    };
    ingest_traces(&*store, project, vec![trace], at(1)).await;

    let by = |author: &str, created: i64, item: Feedback| Feedback {
        author: Some(author.to_owned()),
        created_at: Some(at(created)),
        ..item
    };
    let first = vec![
        rating_by("alice-1", "t1", "alice", false, 10),
        rating_by("bob-1", "t1", "bob", true, 15),
        by("alice", 16, feedback("alice-note-1", "t1", comment("meh"))),
        by(
            "alice",
            17,
            feedback("alice-cat-1", "t1", categories(&["too_vague"])),
        ),
        pairwise("alice-vs-a-1", "alice", "ta", -1.0, 18),
        Feedback {
            span_id: Some(span_id("sp1")),
            ..rating_by("alice-span-1", "t1", "alice", false, 19)
        },
        Feedback {
            created_at: Some(at(19)),
            ..feedback("anon-1", "t1", thumbs(false))
        },
    ];
    ingest_feedback(&*store, project, first, at(20)).await;
    let second = vec![
        rating_by("alice-2", "t1", "alice", true, 20),
        by(
            "alice",
            21,
            feedback("alice-note-2", "t1", comment("better")),
        ),
        by(
            "alice",
            22,
            feedback("alice-cat-2", "t1", categories(&["wrong_tone"])),
        ),
        pairwise("alice-vs-b-1", "alice", "tb", 1.0, 23),
        Feedback {
            created_at: Some(at(24)),
            ..feedback("anon-2", "t1", thumbs(true))
        },
    ];
    ingest_feedback(&*store, project, second, at(30)).await;
    // Arrives last but was made first: it is superseded at once, and alice-2 stays current.
    let third = vec![
        rating_by("alice-0", "t1", "alice", true, 5),
        pairwise("alice-vs-a-2", "alice", "ta", 0.0, 31),
    ];
    ingest_feedback(&*store, project, third, at(40)).await;

    let expected = pairs(&[
        ("alice-0", Some("alice-2")),
        ("alice-1", Some("alice-2")),
        ("bob-1", None),
        ("alice-note-1", None),
        ("alice-cat-1", Some("alice-cat-2")),
        ("alice-vs-a-1", Some("alice-vs-a-2")),
        ("alice-span-1", None),
        ("anon-1", None),
        ("alice-2", None),
        ("alice-note-2", None),
        ("alice-cat-2", None),
        ("alice-vs-b-1", None),
        ("anon-2", None),
        ("alice-vs-a-2", None),
    ]);
    let mut actual = supersession(&*store, project).await;
    let mut expected = expected;
    actual.sort();
    expected.sort();
    assert_eq!(actual, expected);
}
