//! Traces: parts merging into one trace, and spans merging by id.

use feedloop_core::filter::Filter;
use feedloop_core::trace::{PartMerge, Span, SpanKind, SpanPart, Status, Trace, TracePart, Usage};
use feedloop_store::{IngestBatch, Outcome, Store};
use serde_json::Value;
use std::sync::Arc;

use super::fixtures::*;

pub async fn trace_parts_merge_into_one_trace(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let first = TracePart {
        session_id: Some("s1".into()),
        user_id: Some("u1".into()),
        input: Some("how do I reset my card pin?".into()),
        tags: ["beta".to_owned()].into(),
        metadata: object([("a", Value::from(1))]),
        spans: vec![(
            span_id("retrieve"),
            SpanPart {
                kind: Some(SpanKind::Retrieval),
                name: Some("search".into()),
                started_at: Some(at(0)),
                ..Default::default()
            },
        )],
        ..trace_part("t1", 0)
    };
    let second = TracePart {
        id: trace_id("t1"),
        output: Some("Open the app and pick Cards, then PIN.".into()),
        usage: Usage {
            input_tokens: Some(10),
            output_tokens: Some(20),
            total_tokens: None,
        },
        tags: ["cards".to_owned()].into(),
        metadata: object([("b", Value::from("x"))]),
        ended_at: Some(at(2)),
        spans: vec![
            (
                span_id("retrieve"),
                SpanPart {
                    output: Some(Value::from("doc 7")),
                    status: Some(Status::Ok),
                    ..Default::default()
                },
            ),
            (
                span_id("generate"),
                SpanPart {
                    kind: Some(SpanKind::Llm),
                    started_at: Some(at(1)),
                    ..Default::default()
                },
            ),
        ],
        ..Default::default()
    };

    let receipt = ingest_traces(&*store, project, vec![first.clone()], at(5)).await;
    assert_eq!(receipt.traces, vec![Outcome::Created]);
    assert!(receipt.feedback.is_empty());
    let receipt = ingest_traces(&*store, project, vec![second.clone()], at(6)).await;
    assert_eq!(receipt.traces, vec![Outcome::Merged]);

    let chain = store
        .trace_chain(project, &trace_id("t1"))
        .await
        .unwrap()
        .unwrap();
    let trace = &chain.trace.trace;
    assert_eq!(trace.input.as_deref(), Some("how do I reset my card pin?"));
    assert_eq!(
        trace.output.as_deref(),
        Some("Open the app and pick Cards, then PIN.")
    );
    assert_eq!(trace.session_id.as_deref(), Some("s1"));
    assert_eq!(trace.user_id.as_deref(), Some("u1"));
    assert_eq!(trace.usage.total_tokens, Some(30));
    assert_eq!(trace.latency_ms, Some(2000.0));
    assert_eq!(trace.tags, ["beta".to_owned(), "cards".to_owned()].into());
    assert_eq!(
        trace.metadata,
        object([("a", Value::from(1)), ("b", Value::from("x"))])
    );
    assert_eq!((trace.started_at, trace.ended_at), (at(0), Some(at(2))));
    assert_eq!((trace.created_at, trace.updated_at), (at(5), at(6)));
    // The whole value is what the domain's own merge makes of the two parts.
    assert_eq!(*trace, merged(&[(&first, at(5)), (&second, at(6))]));

    let span_ids: Vec<&str> = chain.trace.spans.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        span_ids,
        ["retrieve", "generate"],
        "spans merge by id, ordered by start"
    );
    let retrieve = &chain.trace.spans[0];
    assert_eq!(retrieve.kind, SpanKind::Retrieval);
    assert_eq!(retrieve.name.as_deref(), Some("search"));
    assert_eq!(retrieve.output, Value::from("doc 7"));
    assert_eq!(retrieve.status, Status::Ok);
    assert_eq!(chain.trace.spans[1].kind, SpanKind::Llm);
    assert_eq!(chain.trace.spans, merged_spans(&[&first, &second], at(0)));

    // Re-sending a part changes nothing but the time of the last update.
    let receipt = ingest_traces(&*store, project, vec![first.clone()], at(7)).await;
    assert_eq!(receipt.traces, vec![Outcome::Merged]);
    let again = store
        .trace_chain(project, &trace_id("t1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.trace.trace,
        Trace {
            updated_at: at(7),
            ..chain.trace.trace.clone()
        }
    );
    assert_eq!(again.trace.spans, chain.trace.spans);
    let by_tag = Filter {
        tag: Some("beta".into()),
        ..Default::default()
    };
    assert_eq!(
        trace_ids(&all_traces(&*store, project, &by_tag).await),
        ["t1"]
    );
    let stats = store.stats(project).await.unwrap();
    assert_eq!((stats.traces, stats.spans), (1, 2));

    // Two parts of a new trace in one batch: created, then merged.
    let batch = IngestBatch {
        traces: vec![
            TracePart {
                input: Some("hi".into()),
                ..trace_part("t2", 10)
            },
            TracePart {
                output: Some("hello".into()),
                ..trace_part("t2", 10)
            },
        ],
        feedback: vec![],
    };
    let receipt = store.ingest(project, batch, at(11)).await.unwrap();
    assert_eq!(receipt.traces, vec![Outcome::Created, Outcome::Merged]);
    let t2 = store
        .trace_chain(project, &trace_id("t2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t2.trace.trace.input.as_deref(), Some("hi"));
    assert_eq!(t2.trace.trace.output.as_deref(), Some("hello"));
}

/// A span whose input and output are its trace's (an OTLP model call that is its own trace)
/// keeps them when later parts change the trace's, and a span merged later keeps them too.
pub async fn spans_keep_their_text_when_the_traces_changes(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let llm = |input: Option<&str>, output: Option<&str>, name: Option<&str>| SpanPart {
        kind: Some(SpanKind::Llm),
        input: input.map(Value::from),
        output: output.map(Value::from),
        name: name.map(str::to_owned),
        started_at: Some(at(0)),
        ..Default::default()
    };
    let parts = [
        TracePart {
            input: Some("first question".into()),
            output: Some("first answer".into()),
            spans: vec![
                (
                    span_id("call"),
                    llm(Some("first question"), Some("first answer"), None),
                ),
                (
                    span_id("other"),
                    llm(Some("first question"), Some("its own answer"), None),
                ),
            ],
            ..trace_part("t1", 0)
        },
        TracePart {
            input: Some("second question".into()),
            spans: vec![(span_id("call"), llm(None, None, Some("renamed")))],
            ..trace_part("t1", 0)
        },
        TracePart {
            output: Some("second answer".into()),
            spans: vec![(
                span_id("late"),
                llm(Some("second question"), Some("second answer"), None),
            )],
            ..trace_part("t1", 0)
        },
    ];
    let mut all = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        ingest_traces(&*store, project, vec![part.clone()], at(5 + i as i64)).await;
        all.push(part);
        let chain = store
            .trace_chain(project, &trace_id("t1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            chain.trace.spans,
            merged_spans(&all, at(0)),
            "after part {i}"
        );
    }
    let chain = store
        .trace_chain(project, &trace_id("t1"))
        .await
        .unwrap()
        .unwrap();
    let call = &chain.trace.spans[0];
    assert_eq!(call.name.as_deref(), Some("renamed"));
    assert_eq!(
        (&call.input, &call.output),
        (&Value::from("first question"), &Value::from("first answer"))
    );
    let spans = store.spans_of(project, &[trace_id("t1")]).await.unwrap();
    assert_eq!(spans, vec![(trace_id("t1"), chain.trace.spans.clone())]);
}

/// The trace the domain model makes of `parts`, each received at its time.
fn merged(parts: &[(&TracePart, feedloop_core::Timestamp)]) -> Trace {
    let mut parts = parts.iter().map(|(part, now)| {
        let mut part = (*part).clone();
        part.spans.clear();
        (part, *now)
    });
    let (first, now) = parts.next().expect("at least one part");
    let mut trace = Trace::from_part(first, now);
    for (part, now) in parts {
        trace.merge(part, now);
    }
    trace
}

/// The spans the domain model makes of the spans of `parts`, in order of first appearance.
fn merged_spans(parts: &[&TracePart], trace_start: feedloop_core::Timestamp) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for (id, part) in parts.iter().flat_map(|p| p.spans.iter().cloned()) {
        match spans.iter_mut().find(|s| s.id == id) {
            Some(span) => span.merge(part),
            None => spans.push(Span::from_part(id, part, trace_start)),
        }
    }
    spans
}

/// OTLP sends what a child span says about its trace as a fill-gaps part: whichever of the root's
/// part and the child's arrives first, the root's fields win, the child fills the rest, and the
/// time range covers both.
pub async fn fill_gaps_parts_yield_to_replacing_parts_in_either_order(store: Arc<dyn Store>) {
    let root = TracePart {
        input: Some("root question".into()),
        output: Some("root answer".into()),
        session_id: Some("s1".into()),
        metadata: object([("who", Value::from("root"))]),
        status: Some(Status::Ok),
        latency_ms: Some(11_000.0),
        ended_at: Some(at(12)),
        ..trace_part("t", 1)
    };
    let child = TracePart {
        merge: PartMerge::FillGaps,
        input: Some("child question".into()),
        output: Some("child answer".into()),
        model: feedloop_core::trace::ModelInfo {
            name: Some("gpt-4o-mini".into()),
            ..Default::default()
        },
        usage: Usage {
            input_tokens: Some(7),
            output_tokens: Some(3),
            total_tokens: None,
        },
        metadata: object([("who", Value::from("child")), ("extra", Value::from(1))]),
        status: Some(Status::Error),
        ended_at: Some(at(10)),
        ..trace_part("t", 2)
    };
    let mut stored = Vec::new();
    for (name, order) in [
        ("root first", [&root, &child]),
        ("child first", [&child, &root]),
    ] {
        let project = new_project(&*store, name).await;
        for part in order {
            ingest_traces(&*store, project, vec![part.clone()], at(20)).await;
        }
        let chain = store
            .trace_chain(project, &trace_id("t"))
            .await
            .unwrap()
            .unwrap();
        let trace = chain.trace.trace;
        assert_eq!(trace.input.as_deref(), Some("root question"), "{name}");
        assert_eq!(trace.output.as_deref(), Some("root answer"), "{name}");
        assert_eq!(trace.model.name.as_deref(), Some("gpt-4o-mini"), "{name}");
        assert_eq!(trace.usage.total_tokens, Some(10), "{name}");
        assert_eq!(trace.session_id.as_deref(), Some("s1"), "{name}");
        assert_eq!(trace.metadata["who"], "root", "{name}");
        assert_eq!(trace.metadata["extra"], 1, "{name}");
        assert_eq!(trace.status, Status::Ok, "{name}");
        assert_eq!(
            (trace.started_at, trace.ended_at),
            (at(1), Some(at(12))),
            "{name}"
        );
        assert_eq!(trace.latency_ms, Some(11_000.0), "{name}");
        stored.push(trace);
    }
    assert_eq!(stored[0], stored[1], "the order of arrival does not matter");
}

/// OTLP may carry one span twice in an export (a retried batch joined to the next): in the part
/// that creates a trace, the second merges into the first as a later part would.
pub async fn a_span_named_twice_in_the_part_that_creates_its_trace_merges(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let part = TracePart {
        spans: vec![
            (
                span_id("s"),
                SpanPart {
                    kind: Some(SpanKind::Llm),
                    name: Some("first".into()),
                    started_at: Some(at(1)),
                    ..Default::default()
                },
            ),
            (
                span_id("s"),
                SpanPart {
                    output: Some(Value::from("answer")),
                    ..Default::default()
                },
            ),
        ],
        ..trace_part("t", 0)
    };
    ingest_traces(&*store, project, vec![part], at(2)).await;
    let chain = store
        .trace_chain(project, &trace_id("t"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chain.trace.spans.len(), 1);
    let span = &chain.trace.spans[0];
    assert_eq!(span.kind, SpanKind::Llm);
    assert_eq!(span.name.as_deref(), Some("first"));
    assert_eq!(span.output, Value::from("answer"));
}
