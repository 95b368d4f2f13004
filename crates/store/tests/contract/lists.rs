//! Filters on both lists. One small data set, and each [`Filter`] field checked on its own
//! and in a few combinations, on traces ("has feedback that …") and on feedback ("about a trace
//! that …").

use feedloop_core::ProjectId;
use feedloop_core::feedback::{
    Feedback, FeedbackKind, FeedbackValue, Rating, RatingSign, Signal, Source,
};
use feedloop_core::filter::Filter;
use feedloop_core::trace::{Environment, ModelInfo, PromptRef, TracePart};
use feedloop_store::{IngestBatch, Store};
use serde_json::Value;
use std::sync::Arc;

use super::fixtures::*;

#[allow(clippy::too_many_arguments)]
fn described_trace(
    id: &str,
    started: i64,
    session: Option<&str>,
    user: &str,
    role: Option<&str>,
    model: Option<(&str, &str)>,
    prompt: Option<(&str, &str)>,
    environment: Environment,
) -> TracePart {
    TracePart {
        session_id: session.map(str::to_owned),
        user_id: Some(user.to_owned()),
        user_role: role.map(str::to_owned),
        environment: Some(environment),
        model: model
            .map(|(name, version)| ModelInfo {
                name: Some(name.to_owned()),
                provider: None,
                version: Some(version.to_owned()),
            })
            .unwrap_or_default(),
        context: feedloop_core::trace::Context {
            prompt: prompt.map(|(name, version)| PromptRef {
                name: Some(name.to_owned()),
                version: Some(version.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..trace_part(id, started)
    }
}

/// Four traces and seven feedback items (one about a trace that has not arrived).
///
/// | trace | start | session | user | role   | model           | prompt     | env     | tags        | metadata                     |
/// |-------|-------|---------|------|--------|-----------------|------------|---------|-------------|------------------------------|
/// | t1    | 100   | s1      | u1   | admin  | gpt-4o 2024-08  | support v1 | prod    | beta, cards | app_version 2, region "eu"   |
/// | t2    | 200   | s1      | u2   | member | gpt-4o 2024-11  | support v2 | staging | cards       | app_version "2", region "us" |
/// | t3    | 300   | s2      | u1   | member | claude 3.5      | search v1  | dev     |             | app_version 3, flag true     |
/// | t4    | 400   |         | u3   |        |                 |            | test    |             |                              |
///
/// Feedback, by time: f1 (110, t1, thumbs down, end user, metadata channel "web", build 7),
/// f2 (120, t1, categories too_vague + incomplete, reviewer), f3 (210, t2, thumbs up, end
/// user, channel "mobile", build "7"), f6 (230, t2, correction, reviewer), f4 (310, t3,
/// comment, expert), f5 (320, t3, copy signal, automatic), f7 (500, t9 not arrived, neutral
/// 3 of 1..5, names session s1).
async fn store_data_set(store: &dyn Store) -> ProjectId {
    let project = new_project(store, "alpha").await;
    let traces = vec![
        TracePart {
            tags: ["beta".to_owned(), "cards".to_owned()].into(),
            metadata: object([
                ("app_version", Value::from(2)),
                ("region", Value::from("eu")),
            ]),
            ..described_trace(
                "t1",
                100,
                Some("s1"),
                "u1",
                Some("admin"),
                Some(("gpt-4o", "2024-08")),
                Some(("support", "v1")),
                Environment::Prod,
            )
        },
        TracePart {
            tags: ["cards".to_owned()].into(),
            metadata: object([
                ("app_version", Value::from("2")),
                ("region", Value::from("us")),
            ]),
            ..described_trace(
                "t2",
                200,
                Some("s1"),
                "u2",
                Some("member"),
                Some(("gpt-4o", "2024-11")),
                Some(("support", "v2")),
                Environment::Staging,
            )
        },
        TracePart {
            metadata: object([("app_version", Value::from(3)), ("flag", Value::from(true))]),
            ..described_trace(
                "t3",
                300,
                Some("s2"),
                "u1",
                Some("member"),
                Some(("claude", "3.5")),
                Some(("search", "v1")),
                Environment::Dev,
            )
        },
        described_trace("t4", 400, None, "u3", None, None, None, Environment::Test),
    ];
    let made =
        |id: &str, trace: &str, created: i64, source: Source, value: FeedbackValue| Feedback {
            source,
            created_at: Some(at(created)),
            ..feedback(id, trace, value)
        };
    let items = vec![
        Feedback {
            metadata: object([("channel", Value::from("web")), ("build", Value::from(7))]),
            ..made("f1", "t1", 110, Source::EndUser, thumbs(false))
        },
        made(
            "f2",
            "t1",
            120,
            Source::Reviewer,
            categories(&["too_vague", "incomplete"]),
        ),
        Feedback {
            metadata: object([
                ("channel", Value::from("mobile")),
                ("build", Value::from("7")),
            ]),
            ..made("f3", "t2", 210, Source::EndUser, thumbs(true))
        },
        made("f4", "t3", 310, Source::Expert, comment("too long")),
        made(
            "f5",
            "t3",
            320,
            Source::Automatic,
            FeedbackValue::Signal(Signal {
                signal_type: "copy".into(),
                value: Some(42.0),
                details: Default::default(),
            }),
        ),
        made(
            "f6",
            "t2",
            230,
            Source::Reviewer,
            FeedbackValue::Correction(feedloop_core::feedback::Correction {
                text: "a better answer".into(),
                kind: Default::default(),
            }),
        ),
        Feedback {
            session_id: Some("s1".into()),
            ..made(
                "f7",
                "t9",
                500,
                Source::EndUser,
                FeedbackValue::Rating(Rating {
                    value: 3.0,
                    min: 1.0,
                    max: 5.0,
                    compared_to: None,
                }),
            )
        },
    ];
    let batch = IngestBatch {
        traces,
        feedback: items,
    };
    store.ingest(project, batch, at(1000)).await.unwrap();
    project
}

/// Filters with one field set each, and a few combinations, with the ids each list returns.
struct Case {
    filter: Filter,
    traces: &'static [&'static str],
    feedback: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    let none = Filter::default;
    let meta = |key: &str, value: &str| Filter {
        metadata: vec![(key.to_owned(), value.to_owned())],
        ..none()
    };
    let s = |value: &str| Some(value.to_owned());
    vec![
        Case {
            filter: none(),
            traces: &["t1", "t2", "t3", "t4"],
            feedback: &["f1", "f2", "f3", "f6", "f4", "f5", "f7"],
        },
        // Time ranges: from is inclusive, to is exclusive.
        Case {
            filter: Filter {
                from: Some(at(200)),
                ..none()
            },
            traces: &["t2", "t3", "t4"],
            feedback: &["f3", "f6", "f4", "f5", "f7"],
        },
        Case {
            filter: Filter {
                to: Some(at(300)),
                ..none()
            },
            traces: &["t1", "t2"],
            feedback: &["f1", "f2", "f3", "f6"],
        },
        Case {
            filter: Filter {
                from: Some(at(120)),
                to: Some(at(310)),
                ..none()
            },
            traces: &["t2", "t3"],
            feedback: &["f2", "f3", "f6"],
        },
        Case {
            filter: Filter {
                from: Some(at(501)),
                ..none()
            },
            traces: &[],
            feedback: &[],
        },
        // The feedback list reads the session the item names, else its trace's.
        Case {
            filter: Filter {
                session_id: s("s1"),
                ..none()
            },
            traces: &["t1", "t2"],
            feedback: &["f1", "f2", "f3", "f6", "f7"],
        },
        Case {
            filter: Filter {
                session_id: s("s2"),
                ..none()
            },
            traces: &["t3"],
            feedback: &["f4", "f5"],
        },
        Case {
            filter: Filter {
                user_id: s("u1"),
                ..none()
            },
            traces: &["t1", "t3"],
            feedback: &["f1", "f2", "f4", "f5"],
        },
        Case {
            filter: Filter {
                user_role: s("member"),
                ..none()
            },
            traces: &["t2", "t3"],
            feedback: &["f3", "f6", "f4", "f5"],
        },
        Case {
            filter: Filter {
                model: s("gpt-4o"),
                ..none()
            },
            traces: &["t1", "t2"],
            feedback: &["f1", "f2", "f3", "f6"],
        },
        Case {
            filter: Filter {
                model_version: s("2024-11"),
                ..none()
            },
            traces: &["t2"],
            feedback: &["f3", "f6"],
        },
        Case {
            filter: Filter {
                prompt_name: s("search"),
                ..none()
            },
            traces: &["t3"],
            feedback: &["f4", "f5"],
        },
        Case {
            filter: Filter {
                prompt_version: s("v1"),
                ..none()
            },
            traces: &["t1", "t3"],
            feedback: &["f1", "f2", "f4", "f5"],
        },
        Case {
            filter: Filter {
                environment: Some(Environment::Prod),
                ..none()
            },
            traces: &["t1"],
            feedback: &["f1", "f2"],
        },
        Case {
            filter: Filter {
                environment: Some(Environment::Test),
                ..none()
            },
            traces: &["t4"],
            feedback: &[],
        },
        Case {
            filter: Filter {
                tag: s("cards"),
                ..none()
            },
            traces: &["t1", "t2"],
            feedback: &["f1", "f2", "f3", "f6"],
        },
        Case {
            filter: Filter {
                tag: s("beta"),
                ..none()
            },
            traces: &["t1"],
            feedback: &["f1", "f2"],
        },
        Case {
            filter: Filter {
                trace_id: s("t3"),
                ..none()
            },
            traces: &["t3"],
            feedback: &["f4", "f5"],
        },
        Case {
            filter: Filter {
                trace_id: s("t9"),
                ..none()
            },
            traces: &[],
            feedback: &["f7"],
        },
        // Feedback conditions: on traces they mean "has feedback that …".
        Case {
            filter: Filter {
                feedback_kind: Some(FeedbackKind::Rating),
                ..none()
            },
            traces: &["t1", "t2"],
            feedback: &["f1", "f3", "f7"],
        },
        Case {
            filter: Filter {
                feedback_kind: Some(FeedbackKind::Signal),
                ..none()
            },
            traces: &["t3"],
            feedback: &["f5"],
        },
        Case {
            filter: Filter {
                category: s("incomplete"),
                ..none()
            },
            traces: &["t1"],
            feedback: &["f2"],
        },
        Case {
            filter: Filter {
                category: s("unsafe"),
                ..none()
            },
            traces: &[],
            feedback: &[],
        },
        Case {
            filter: Filter {
                rating: Some(RatingSign::Negative),
                ..none()
            },
            traces: &["t1"],
            feedback: &["f1"],
        },
        Case {
            filter: Filter {
                rating: Some(RatingSign::Positive),
                ..none()
            },
            traces: &["t2"],
            feedback: &["f3"],
        },
        Case {
            filter: Filter {
                rating: Some(RatingSign::Neutral),
                ..none()
            },
            traces: &[],
            feedback: &["f7"],
        },
        Case {
            filter: Filter {
                source: Some(Source::Reviewer),
                ..none()
            },
            traces: &["t1", "t2"],
            feedback: &["f2", "f6"],
        },
        Case {
            filter: Filter {
                source: Some(Source::Automatic),
                ..none()
            },
            traces: &["t3"],
            feedback: &["f5"],
        },
        // Metadata: the trace's on the trace list, the item's own on the feedback list; a
        // value matches both the JSON literal it spells and the string.
        Case {
            filter: meta("app_version", "2"),
            traces: &["t1", "t2"],
            feedback: &[],
        },
        Case {
            filter: meta("app_version", "3"),
            traces: &["t3"],
            feedback: &[],
        },
        Case {
            filter: meta("region", "eu"),
            traces: &["t1"],
            feedback: &[],
        },
        Case {
            filter: meta("flag", "true"),
            traces: &["t3"],
            feedback: &[],
        },
        Case {
            filter: meta("build", "7"),
            traces: &[],
            feedback: &["f1", "f3"],
        },
        Case {
            filter: meta("channel", "web"),
            traces: &[],
            feedback: &["f1"],
        },
        Case {
            filter: Filter {
                metadata: vec![
                    ("app_version".into(), "2".into()),
                    ("region".into(), "us".into()),
                ],
                ..none()
            },
            traces: &["t2"],
            feedback: &[],
        },
        // Combinations are ANDed; feedback conditions must hold for one and the same item.
        Case {
            filter: Filter {
                model: s("gpt-4o"),
                rating: Some(RatingSign::Positive),
                ..none()
            },
            traces: &["t2"],
            feedback: &["f3"],
        },
        Case {
            filter: Filter {
                user_id: s("u1"),
                feedback_kind: Some(FeedbackKind::Comment),
                ..none()
            },
            traces: &["t3"],
            feedback: &["f4"],
        },
        Case {
            filter: Filter {
                feedback_kind: Some(FeedbackKind::Rating),
                source: Some(Source::Reviewer),
                ..none()
            },
            traces: &[],
            feedback: &[],
        },
        Case {
            filter: Filter {
                session_id: s("s1"),
                from: Some(at(200)),
                ..none()
            },
            traces: &["t2"],
            feedback: &["f3", "f6", "f7"],
        },
    ]
}

pub async fn list_traces_matches_every_filter_field(store: Arc<dyn Store>) {
    let project = store_data_set(&*store).await;
    for case in cases() {
        let listed = all_traces(&*store, project, &case.filter).await;
        assert_eq!(
            trace_ids(&listed),
            case.traces,
            "list_traces with {:?}",
            case.filter
        );
        assert!(
            listed.iter().all(|t| t.spans.is_empty()),
            "lists do not load spans"
        );
    }
}

pub async fn list_feedback_matches_every_filter_field(store: Arc<dyn Store>) {
    let project = store_data_set(&*store).await;
    for case in cases() {
        let listed = all_feedback(&*store, project, &case.filter).await;
        assert_eq!(
            feedback_ids(&listed),
            case.feedback,
            "list_feedback with {:?}",
            case.filter
        );
    }
    let unlinked: Vec<String> = all_feedback(&*store, project, &Filter::default())
        .await
        .into_iter()
        .filter(|f| !f.trace_linked)
        .map(|f| f.feedback.id.into_string())
        .collect();
    assert_eq!(unlinked, ["f7"]);
}
