//! Filters on both lists. One small data set, and each [`Filter`] field checked on its own
//! and in a few combinations, on traces ("has feedback that …") and on feedback ("about a trace
//! that …").

use feedloop_core::ProjectId;
use feedloop_core::feedback::{
    Correction, CorrectionKind, Feedback, FeedbackKind, FeedbackValue, Rating, RatingSign, Signal,
    Source,
};
use feedloop_core::filter::Filter;
use feedloop_core::trace::{Context, Environment, ModelInfo, PromptRef, TracePart};
use feedloop_store::{IngestBatch, Store};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::fixtures::*;

fn model(name: &str, version: &str) -> ModelInfo {
    ModelInfo {
        name: text(name),
        provider: None,
        version: text(version),
    }
}

fn prompt(name: &str, version: &str) -> Context {
    Context {
        prompt: Some(PromptRef {
            name: text(name),
            version: text(version),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tags(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// Feedback made at `created` by `source`.
fn made(id: &str, trace: &str, created: i64, source: Source, value: FeedbackValue) -> Feedback {
    Feedback {
        source,
        created_at: Some(at(created)),
        ..feedback(id, trace, value)
    }
}

/// Four traces and seven feedback items, one of them about a trace that has not arrived.
///
/// Traces (start, session, user, role, model, prompt, environment, tags, metadata):
/// - t1: 100, s1, u1, admin, gpt-4o 2024-08, support v1, prod, beta + cards,
///   app_version 2 and region "eu"
/// - t2: 200, s1, u2, member, gpt-4o 2024-11, support v2, staging, cards,
///   app_version "2" and region "us"
/// - t3: 300, s2, u1, member, claude 3.5, search v1, dev, no tags, app_version 3 and flag true
/// - t4: 400, no session, u3, no role, no model, no prompt, test, nothing else
///
/// Feedback by time (time, trace, value, source, metadata):
/// - f1: 110, t1, thumbs down, end user, channel "web" and build 7
/// - f2: 120, t1, categories too_vague + incomplete, reviewer
/// - f3: 210, t2, thumbs up, end user, channel "mobile" and build "7"
/// - f6: 230, t2, correction, reviewer
/// - f4: 310, t3, comment, expert
/// - f5: 320, t3, copy signal, automatic
/// - f7: 500, t9 (not arrived), neutral 3 of 1..5, end user, names session s1
async fn store_data_set(store: &dyn Store) -> ProjectId {
    let project = new_project(store, "alpha").await;
    let traces = vec![
        TracePart {
            session_id: text("s1"),
            user_id: text("u1"),
            user_role: text("admin"),
            model: model("gpt-4o", "2024-08"),
            context: prompt("support", "v1"),
            environment: Some(Environment::Prod),
            tags: tags(&["beta", "cards"]),
            metadata: object([
                ("app_version", Value::from(2)),
                ("region", Value::from("eu")),
            ]),
            ..trace_part("t1", 100)
        },
        TracePart {
            session_id: text("s1"),
            user_id: text("u2"),
            user_role: text("member"),
            model: model("gpt-4o", "2024-11"),
            context: prompt("support", "v2"),
            environment: Some(Environment::Staging),
            tags: tags(&["cards"]),
            metadata: object([
                ("app_version", Value::from("2")),
                ("region", Value::from("us")),
            ]),
            ..trace_part("t2", 200)
        },
        TracePart {
            session_id: text("s2"),
            user_id: text("u1"),
            user_role: text("member"),
            model: model("claude", "3.5"),
            context: prompt("search", "v1"),
            environment: Some(Environment::Dev),
            metadata: object([("app_version", Value::from(3)), ("flag", Value::from(true))]),
            ..trace_part("t3", 300)
        },
        TracePart {
            user_id: text("u3"),
            environment: Some(Environment::Test),
            ..trace_part("t4", 400)
        },
    ];
    let signal = FeedbackValue::Signal(Signal {
        signal_type: "copy".into(),
        value: Some(42.0),
        details: Default::default(),
    });
    let correction = FeedbackValue::Correction(Correction {
        text: "a better answer".into(),
        kind: CorrectionKind::Answer,
    });
    let neutral = FeedbackValue::Rating(Rating {
        value: 3.0,
        min: 1.0,
        max: 5.0,
        compared_to: None,
    });
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
        made("f5", "t3", 320, Source::Automatic, signal),
        made("f6", "t2", 230, Source::Reviewer, correction),
        Feedback {
            session_id: text("s1"),
            ..made("f7", "t9", 500, Source::EndUser, neutral)
        },
    ];
    let batch = IngestBatch {
        traces,
        feedback: items,
    };
    store.ingest(project, batch, at(1000)).await.unwrap();
    project
}

/// A filter, and the ids that the trace list and the feedback list return for it.
type Case = (Filter, &'static [&'static str], &'static [&'static str]);

/// A filter with the fields that `set` sets.
fn with(set: impl FnOnce(&mut Filter)) -> Filter {
    let mut filter = Filter::default();
    set(&mut filter);
    filter
}

fn text(value: &str) -> Option<String> {
    Some(value.to_owned())
}

fn metadata(pairs: &[(&str, &str)]) -> Filter {
    with(|f| {
        f.metadata = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    })
}

/// Each filter field on its own, and a few combinations.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    vec![
        (Filter::default(), &["t1", "t2", "t3", "t4"], &["f1", "f2", "f3", "f6", "f4", "f5", "f7"]),
        // Time ranges: from is inclusive, to is exclusive.
        (with(|f| f.from = Some(at(200))), &["t2", "t3", "t4"], &["f3", "f6", "f4", "f5", "f7"]),
        (with(|f| f.to = Some(at(300))), &["t1", "t2"], &["f1", "f2", "f3", "f6"]),
        (with(|f| (f.from, f.to) = (Some(at(120)), Some(at(310)))), &["t2", "t3"], &["f2", "f3", "f6"]),
        (with(|f| f.from = Some(at(501))), &[], &[]),
        // The feedback list reads the session the item names, else its trace's.
        (with(|f| f.session_id = text("s1")), &["t1", "t2"], &["f1", "f2", "f3", "f6", "f7"]),
        (with(|f| f.session_id = text("s2")), &["t3"], &["f4", "f5"]),
        (with(|f| f.user_id = text("u1")), &["t1", "t3"], &["f1", "f2", "f4", "f5"]),
        (with(|f| f.user_role = text("member")), &["t2", "t3"], &["f3", "f6", "f4", "f5"]),
        (with(|f| f.model = text("gpt-4o")), &["t1", "t2"], &["f1", "f2", "f3", "f6"]),
        (with(|f| f.model_version = text("2024-11")), &["t2"], &["f3", "f6"]),
        (with(|f| f.prompt_name = text("search")), &["t3"], &["f4", "f5"]),
        (with(|f| f.prompt_version = text("v1")), &["t1", "t3"], &["f1", "f2", "f4", "f5"]),
        (with(|f| f.environment = Some(Environment::Prod)), &["t1"], &["f1", "f2"]),
        (with(|f| f.environment = Some(Environment::Test)), &["t4"], &[]),
        (with(|f| f.tag = text("cards")), &["t1", "t2"], &["f1", "f2", "f3", "f6"]),
        (with(|f| f.tag = text("beta")), &["t1"], &["f1", "f2"]),
        (with(|f| f.trace_id = text("t3")), &["t3"], &["f4", "f5"]),
        (with(|f| f.trace_id = text("t9")), &[], &["f7"]),
        // Feedback conditions: on the trace list they mean "has feedback that …".
        (with(|f| f.feedback_kind = Some(FeedbackKind::Rating)), &["t1", "t2"], &["f1", "f3", "f7"]),
        (with(|f| f.feedback_kind = Some(FeedbackKind::Signal)), &["t3"], &["f5"]),
        (with(|f| f.category = text("incomplete")), &["t1"], &["f2"]),
        (with(|f| f.category = text("unsafe")), &[], &[]),
        (with(|f| f.rating = Some(RatingSign::Negative)), &["t1"], &["f1"]),
        (with(|f| f.rating = Some(RatingSign::Positive)), &["t2"], &["f3"]),
        (with(|f| f.rating = Some(RatingSign::Neutral)), &[], &["f7"]),
        (with(|f| f.source = Some(Source::Reviewer)), &["t1", "t2"], &["f2", "f6"]),
        (with(|f| f.source = Some(Source::Automatic)), &["t3"], &["f5"]),
        // Metadata: the trace's on the trace list, the item's own on the feedback list. A value
        // matches both the JSON literal it spells (2, true) and the string ("2").
        (metadata(&[("app_version", "2")]), &["t1", "t2"], &[]),
        (metadata(&[("app_version", "3")]), &["t3"], &[]),
        (metadata(&[("region", "eu")]), &["t1"], &[]),
        (metadata(&[("flag", "true")]), &["t3"], &[]),
        (metadata(&[("app_version", "2"), ("region", "us")]), &["t2"], &[]),
        (metadata(&[("build", "7")]), &[], &["f1", "f3"]),
        (metadata(&[("channel", "web")]), &[], &["f1"]),
        // Conditions are ANDed; feedback conditions must hold for one and the same item.
        (with(|f| (f.model, f.rating) = (text("gpt-4o"), Some(RatingSign::Positive))), &["t2"], &["f3"]),
        (with(|f| (f.user_id, f.feedback_kind) = (text("u1"), Some(FeedbackKind::Comment))), &["t3"], &["f4"]),
        (with(|f| (f.feedback_kind, f.source) = (Some(FeedbackKind::Rating), Some(Source::Reviewer))), &[], &[]),
        (with(|f| (f.session_id, f.from) = (text("s1"), Some(at(200)))), &["t2"], &["f3", "f6", "f7"]),
    ]
}

pub async fn list_traces_matches_every_filter_field(store: Arc<dyn Store>) {
    let project = store_data_set(&*store).await;
    for (filter, traces, _) in cases() {
        let listed = all_traces(&*store, project, &filter).await;
        assert_eq!(trace_ids(&listed), traces, "list_traces with {filter:?}");
        assert!(
            listed.iter().all(|t| t.spans.is_empty()),
            "lists do not load spans"
        );
    }
}

pub async fn list_feedback_matches_every_filter_field(store: Arc<dyn Store>) {
    let project = store_data_set(&*store).await;
    for (filter, _, feedback) in cases() {
        let listed = all_feedback(&*store, project, &filter).await;
        assert_eq!(
            feedback_ids(&listed),
            feedback,
            "list_feedback with {filter:?}"
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
