//! The mapping, one attribute family at a time, on exports built by hand.

use feedloop_core::feedback::{FeedbackValue, Source};
use feedloop_core::trace::{Environment, PartMerge, SpanKind, Status};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status as OtlpStatus,
};
use serde_json::json;

use super::*;

const TRACE: [u8; 16] = [0xab; 16];
const T0: u64 = 1_780_000_000_000_000_000;

fn text(value: &str) -> any_value::Value {
    any_value::Value::StringValue(value.into())
}

fn int(value: i64) -> any_value::Value {
    any_value::Value::IntValue(value)
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn attrs(pairs: &[(&str, any_value::Value)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| kv(k, v.clone())).collect()
}

fn span(id: u8, parent: Option<u8>, name: &str, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        start_time_unix_nano: T0 + u64::from(id) * 1_000_000,
        end_time_unix_nano: T0 + 2_000_000_000,
        attributes,
        status: Some(OtlpStatus {
            message: String::new(),
            code: 1,
        }),
        ..Default::default()
    }
}

fn export(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn only_part(mapped: &MappedExport) -> &TracePart {
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    assert_eq!(mapped.traces.len(), 1, "{:?}", mapped.traces);
    &mapped.traces[0]
}

fn trace_hex() -> String {
    "ab".repeat(16)
}

#[test]
fn genai_current_names_give_the_trace_and_resource_facts() {
    let mapped = map_export(export(
        attrs(&[
            ("service.name", text("support-bot")),
            ("service.version", text("2.4.1")),
            ("deployment.environment.name", text("production")),
        ]),
        vec![span(
            1,
            None,
            "chat gpt-4o-mini",
            attrs(&[
                ("gen_ai.operation.name", text("chat")),
                ("gen_ai.provider.name", text("openai")),
                ("gen_ai.request.model", text("gpt-4o-mini")),
                ("gen_ai.response.model", text("gpt-4o-mini-2024-07-18")),
                ("gen_ai.response.id", text("chatcmpl-1")),
                (
                    "gen_ai.request.temperature",
                    any_value::Value::DoubleValue(0.2),
                ),
                (
                    "gen_ai.system_instructions",
                    text(r#"[{"type":"text","content":"You are a bank assistant."}]"#),
                ),
                (
                    "gen_ai.input.messages",
                    text(
                        r#"[{"role":"user","parts":[{"type":"text","content":"What is the card fee?"}]}]"#,
                    ),
                ),
                (
                    "gen_ai.output.messages",
                    text(
                        r#"[{"role":"assistant","parts":[{"type":"text","content":"It is free."}],"finish_reason":"stop"}]"#,
                    ),
                ),
                (
                    "gen_ai.response.finish_reasons",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(text("stop")),
                        }],
                    }),
                ),
                ("gen_ai.usage.input_tokens", int(12)),
                ("gen_ai.usage.output_tokens", int(4)),
                ("gen_ai.conversation.id", text("conv-9")),
            ]),
        )],
    ));
    let part = only_part(&mapped);
    assert_eq!(part.id.as_str(), trace_hex());
    assert_eq!(part.merge, PartMerge::Replace);
    assert_eq!(part.input.as_deref(), Some("What is the card fee?"));
    assert_eq!(part.output.as_deref(), Some("It is free."));
    assert_eq!(
        part.context.system_prompt.as_deref(),
        Some("You are a bank assistant.")
    );
    assert_eq!(part.model.name.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(
        part.model.version.as_deref(),
        Some("gpt-4o-mini-2024-07-18")
    );
    assert_eq!(part.model.provider.as_deref(), Some("openai"));
    assert_eq!(
        (part.usage.input_tokens, part.usage.output_tokens),
        (Some(12), Some(4))
    );
    assert_eq!(part.session_id.as_deref(), Some("conv-9"));
    assert_eq!(part.environment, Some(Environment::Prod));
    assert_eq!(part.latency_ms, Some(1999.0));
    assert_eq!(part.status, Some(Status::Ok));
    // Known but not a trace field, and resource attributes: metadata.
    assert_eq!(part.metadata["gen_ai.response.id"], "chatcmpl-1");
    assert_eq!(part.metadata["gen_ai.request.temperature"], 0.2);
    assert_eq!(
        part.metadata["gen_ai.response.finish_reasons"],
        json!(["stop"])
    );
    assert_eq!(part.metadata["service.version"], "2.4.1");
    assert_eq!(part.metadata["service.name"], "support-bot");
    assert!(!part.metadata.contains_key("gen_ai.input.messages"));
    let (span_id, span) = &part.spans[0];
    assert_eq!(span_id.as_str(), "0101010101010101");
    assert_eq!(span.kind, Some(SpanKind::Llm));
    assert_eq!(
        span.input.as_ref().unwrap()[1]["content"],
        "What is the card fee?"
    );
    assert_eq!(span.output.as_ref().unwrap()[0]["content"], "It is free.");
    assert!(!span.attributes.contains_key("gen_ai.input.messages"));
    assert_eq!(span.attributes["gen_ai.request.model"], "gpt-4o-mini");
}

#[test]
fn genai_deprecated_names_still_count() {
    let mapped = map_export(export(
        attrs(&[("deployment.environment", text("staging"))]),
        vec![span(
            1,
            None,
            "chat",
            attrs(&[
                ("gen_ai.system", text("anthropic")),
                ("gen_ai.request.model", text("claude-3-5-haiku")),
                ("gen_ai.usage.prompt_tokens", int(30)),
                ("gen_ai.usage.completion_tokens", int(7)),
            ]),
        )],
    ));
    let part = only_part(&mapped);
    assert_eq!(part.spans[0].1.kind, Some(SpanKind::Llm));
    assert_eq!(part.model.provider.as_deref(), Some("anthropic"));
    assert_eq!(
        (part.usage.input_tokens, part.usage.output_tokens),
        (Some(30), Some(7))
    );
    assert_eq!(part.environment, Some(Environment::Staging));
    assert!(!part.metadata.contains_key("gen_ai.usage.prompt_tokens"));
}

#[test]
fn an_environment_without_a_feedloop_name_stays_as_metadata() {
    let mapped = map_export(export(
        attrs(&[("deployment.environment", text("bench"))]),
        vec![span(1, None, "x", vec![])],
    ));
    let part = only_part(&mapped);
    assert_eq!(part.environment, None);
    assert_eq!(part.metadata["deployment.environment"], "bench");
}

#[test]
fn openllmetry_flattened_prompts_and_completions() {
    let mapped = map_export(export(
        vec![],
        vec![span(
            1,
            None,
            "openai.chat",
            attrs(&[
                ("llm.request.type", text("chat")),
                ("gen_ai.system", text("OpenAI")),
                ("gen_ai.request.model", text("gpt-4o")),
                ("gen_ai.prompt.0.role", text("system")),
                ("gen_ai.prompt.0.content", text("Answer in French.")),
                ("gen_ai.prompt.1.role", text("user")),
                ("gen_ai.prompt.1.content", text("Where is Lyon?")),
                ("gen_ai.completion.0.role", text("assistant")),
                ("gen_ai.completion.0.content", text("En France.")),
                ("gen_ai.completion.0.finish_reason", text("stop")),
                ("llm.usage.total_tokens", int(21)),
            ]),
        )],
    ));
    let part = only_part(&mapped);
    assert_eq!(part.input.as_deref(), Some("Where is Lyon?"));
    assert_eq!(part.output.as_deref(), Some("En France."));
    assert_eq!(
        part.context.system_prompt.as_deref(),
        Some("Answer in French.")
    );
    assert_eq!(part.context.messages.len(), 2);
    assert_eq!(part.usage.total_tokens, Some(21));
    let span = &part.spans[0].1;
    assert!(
        span.attributes
            .keys()
            .all(|k| !k.starts_with("gen_ai.prompt."))
    );
    assert_eq!(span.input.as_ref().unwrap()[1]["content"], "Where is Lyon?");
}

#[test]
fn openinference_llm_attributes() {
    let mapped = map_export(export(
        vec![],
        vec![span(
            1,
            None,
            "ChatCompletion",
            attrs(&[
                ("openinference.span.kind", text("LLM")),
                (
                    "input.value",
                    text(r#"{"messages":[{"role":"user","content":"hi"}]}"#),
                ),
                ("input.mime_type", text("application/json")),
                ("output.value", text("Hello!")),
                ("output.mime_type", text("text/plain")),
                ("llm.model_name", text("gpt-4o-mini")),
                ("llm.provider", text("openai")),
                ("llm.input_messages.0.message.role", text("system")),
                ("llm.input_messages.0.message.content", text("Be kind.")),
                ("llm.input_messages.1.message.role", text("user")),
                (
                    "llm.input_messages.1.message.contents.0.message_content.type",
                    text("text"),
                ),
                (
                    "llm.input_messages.1.message.contents.0.message_content.text",
                    text("hi there"),
                ),
                ("llm.output_messages.0.message.role", text("assistant")),
                ("llm.output_messages.0.message.content", text("Hello!")),
                ("llm.token_count.prompt", int(5)),
                ("llm.token_count.completion", int(2)),
                ("llm.token_count.total", int(7)),
                ("llm.invocation_parameters", text(r#"{"temperature":0}"#)),
                ("llm.prompt_template.template", text("Say {x}")),
                ("llm.prompt_template.version", text("v3")),
                ("llm.prompt_template.variables", text(r#"{"x":"hi"}"#)),
                ("session.id", text("s-1")),
                ("user.id", text("u-1")),
                (
                    "tag.tags",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(text("beta")),
                        }],
                    }),
                ),
                ("metadata", text(r#"{"app":"bot","tier":2}"#)),
                ("vendor.custom", text("kept")),
            ]),
        )],
    ));
    let part = only_part(&mapped);
    assert_eq!(part.input.as_deref(), Some("hi there"));
    assert_eq!(part.output.as_deref(), Some("Hello!"));
    assert_eq!(part.context.system_prompt.as_deref(), Some("Be kind."));
    assert_eq!(part.model.name.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(part.model.provider.as_deref(), Some("openai"));
    assert_eq!(part.usage.total_tokens, Some(7));
    assert_eq!(part.session_id.as_deref(), Some("s-1"));
    assert_eq!(part.user_id.as_deref(), Some("u-1"));
    assert_eq!(part.tags, ["beta".to_owned()].into());
    assert_eq!(part.metadata["app"], "bot");
    assert_eq!(part.metadata["tier"], 2);
    assert_eq!(part.metadata["vendor.custom"], "kept");
    assert_eq!(
        part.metadata["llm.invocation_parameters"],
        r#"{"temperature":0}"#
    );
    let prompt = part.context.prompt.as_ref().unwrap();
    assert_eq!(prompt.template.as_deref(), Some("Say {x}"));
    assert_eq!(prompt.version.as_deref(), Some("v3"));
    assert_eq!(prompt.variables["x"], "hi");
    let span = &part.spans[0].1;
    // The JSON input is kept parsed; the messages stay as attributes since they were not used
    // as the span's input.
    assert_eq!(span.input.as_ref().unwrap()["messages"][0]["content"], "hi");
    assert_eq!(span.output.as_ref().unwrap(), "Hello!");
    assert!(!span.attributes.contains_key("input.value"));
    assert_eq!(span.attributes["vendor.custom"], "kept");
    assert_eq!(span.attributes["llm.token_count.total"], 7);
}

#[test]
fn a_multi_span_trace_takes_its_query_from_the_root_and_context_from_the_children() {
    let mapped = map_export(export(
        vec![],
        vec![
            span(
                1,
                None,
                "agent",
                attrs(&[
                    ("openinference.span.kind", text("AGENT")),
                    ("input.value", text("What does the policy say?")),
                    ("output.value", text("Refunds within 30 days.")),
                    ("session.id", text("s-2")),
                ]),
            ),
            span(
                2,
                Some(1),
                "retrieve",
                attrs(&[
                    ("openinference.span.kind", text("RETRIEVER")),
                    ("retrieval.documents.0.document.id", text("doc-1")),
                    (
                        "retrieval.documents.0.document.content",
                        text("Refunds: 30 days."),
                    ),
                    (
                        "retrieval.documents.0.document.score",
                        any_value::Value::DoubleValue(0.9),
                    ),
                    (
                        "retrieval.documents.1.document.content",
                        text("Shipping: 5 days."),
                    ),
                ]),
            ),
            span(
                3,
                Some(1),
                "lookup_order",
                attrs(&[
                    ("openinference.span.kind", text("TOOL")),
                    ("tool.name", text("lookup_order")),
                    ("input.value", text(r#"{"order":7}"#)),
                    ("output.value", text("shipped")),
                ]),
            ),
            span(
                4,
                Some(1),
                "llm",
                attrs(&[
                    ("openinference.span.kind", text("LLM")),
                    ("llm.model_name", text("gpt-4o")),
                    ("llm.input_messages.0.message.role", text("system")),
                    (
                        "llm.input_messages.0.message.content",
                        text("Cite the policy."),
                    ),
                    ("llm.input_messages.1.message.role", text("user")),
                    (
                        "llm.input_messages.1.message.content",
                        text("policy question + docs"),
                    ),
                    ("llm.output_messages.0.message.content", text("draft")),
                    ("llm.token_count.prompt", int(100)),
                    ("llm.token_count.completion", int(10)),
                ]),
            ),
        ],
    ));
    assert!(mapped.rejected.is_empty());
    assert_eq!(mapped.traces.len(), 2, "the root's part and the children's");
    let (root, children) = (&mapped.traces[0], &mapped.traces[1]);
    assert_eq!(root.merge, PartMerge::Replace);
    assert_eq!(root.input.as_deref(), Some("What does the policy say?"));
    assert_eq!(root.output.as_deref(), Some("Refunds within 30 days."));
    assert_eq!(root.session_id.as_deref(), Some("s-2"));
    assert_eq!(root.spans.len(), 4, "every span is kept");
    assert_eq!(mapped.spans_per_part, [4, 0]);
    assert_eq!(children.merge, PartMerge::FillGaps);
    assert_eq!(children.input.as_deref(), Some("policy question + docs"));
    assert_eq!(
        children.context.system_prompt.as_deref(),
        Some("Cite the policy.")
    );
    assert_eq!(children.model.name.as_deref(), Some("gpt-4o"));
    assert_eq!(children.usage.input_tokens, Some(100));
    let documents: Vec<&str> = children
        .context
        .documents
        .iter()
        .map(|d| d.content.as_str())
        .collect();
    assert_eq!(documents, ["Refunds: 30 days.", "Shipping: 5 days."]);
    assert_eq!(children.context.documents[0].score, Some(0.9));
    let tool = &children.context.tool_results[0];
    assert_eq!(
        (tool.name.as_str(), tool.output.as_str()),
        ("lookup_order", "shipped")
    );
    assert_eq!(tool.arguments, json!({"order": 7}));
    let kinds: Vec<_> = root.spans.iter().map(|(_, s)| s.kind.unwrap()).collect();
    assert_eq!(
        kinds,
        [
            SpanKind::Chain,
            SpanKind::Retrieval,
            SpanKind::Tool,
            SpanKind::Llm
        ]
    );
    assert_eq!(
        root.spans[1].1.parent_id.as_ref().map(|p| p.as_str()),
        Some("0101010101010101")
    );
}

#[test]
fn malformed_spans_are_rejected_with_a_reason_and_the_rest_is_kept() {
    let mut short_id = span(1, None, "bad", vec![]);
    short_id.trace_id = vec![1, 2, 3];
    let mut backwards = span(2, None, "bad", vec![]);
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1;
    let mut no_start = span(3, None, "bad", vec![]);
    no_start.start_time_unix_nano = 0;
    let good = span(4, None, "good", vec![]);
    let mapped = map_export(export(vec![], vec![short_id, backwards, no_start, good]));
    assert_eq!(mapped.num_spans, 4);
    assert_eq!(mapped.rejected.num_spans, 3);
    let message = mapped.rejected.message();
    assert!(
        message.contains("spans[0]: trace_id must be 16 bytes, got 3"),
        "{message}"
    );
    assert!(
        message.contains("spans[1]: end_time_unix_nano is before"),
        "{message}"
    );
    assert!(
        message.contains("spans[2]: start_time_unix_nano is missing"),
        "{message}"
    );
    assert_eq!(mapped.traces.len(), 1);
    assert_eq!(mapped.traces[0].spans[0].1.name.as_deref(), Some("good"));
}

#[test]
fn openinference_annotations_on_an_evaluator_span_become_feedback_on_its_target() {
    let target_trace = [0xcd; 16];
    let mut evaluator = span(
        9,
        None,
        "evaluate",
        attrs(&[
            ("openinference.span.kind", text("EVALUATOR")),
            ("annotations.0.annotation.name", text("correctness")),
            ("annotations.0.annotation.label", text("incorrect")),
            (
                "annotations.0.annotation.explanation",
                text("The fee is wrong."),
            ),
            ("annotations.0.annotation.annotator_kind", text("LLM")),
            ("annotations.1.annotation.name", text("tone")),
            (
                "annotations.1.annotation.score",
                any_value::Value::DoubleValue(0.8),
            ),
            ("annotations.1.annotation.annotator_kind", text("HUMAN")),
        ]),
    );
    evaluator.links = vec![Link {
        trace_id: target_trace.to_vec(),
        span_id: vec![7; 8],
        ..Default::default()
    }];
    let mapped = map_export(export(vec![], vec![evaluator]));
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    let feedback = &mapped.feedback;
    assert_eq!(feedback.len(), 3, "{feedback:?}");
    assert_eq!(feedback[0].trace_id.as_str(), "cd".repeat(16));
    assert_eq!(
        feedback[0].span_id.as_ref().map(|s| s.as_str()),
        Some("0707070707070707")
    );
    assert_eq!(feedback[0].author.as_deref(), Some("correctness"));
    assert_eq!(feedback[0].source, Source::Automatic);
    assert!(matches!(&feedback[0].value, FeedbackValue::Rating(r) if r.value == 0.0));
    assert!(feedback[0].is_negative());
    assert!(matches!(&feedback[1].value, FeedbackValue::Comment(c) if c == "The fee is wrong."));
    assert_eq!(feedback[2].source, Source::Reviewer);
    assert!(matches!(&feedback[2].value, FeedbackValue::Rating(r) if r.value == 0.8));
    assert_eq!(
        feedback[0].id.as_str(),
        "otlp-0909090909090909-annotation-0"
    );
    // The annotations are feedback, not the evaluator trace's metadata.
    assert!(
        !mapped.traces[0]
            .metadata
            .contains_key("annotations.0.annotation.name")
    );
}

#[test]
fn a_genai_evaluation_event_becomes_feedback_on_its_span() {
    let mut judged = span(
        1,
        None,
        "chat",
        attrs(&[("gen_ai.operation.name", text("chat"))]),
    );
    judged.events = vec![Event {
        time_unix_nano: T0 + 3_000_000_000,
        name: "gen_ai.evaluation.result".into(),
        attributes: attrs(&[
            ("gen_ai.evaluation.name", text("relevance")),
            (
                "gen_ai.evaluation.score.value",
                any_value::Value::DoubleValue(0.25),
            ),
            ("gen_ai.evaluation.score.label", text("low")),
            ("gen_ai.evaluation.explanation", text("Off topic.")),
        ]),
        ..Default::default()
    }];
    let mapped = map_export(export(vec![], vec![judged]));
    let feedback = &mapped.feedback;
    assert_eq!(feedback.len(), 2);
    assert_eq!(feedback[0].trace_id.as_str(), trace_hex());
    assert_eq!(
        feedback[0].span_id.as_ref().map(|s| s.as_str()),
        Some("0101010101010101")
    );
    assert!(matches!(&feedback[0].value, FeedbackValue::Rating(r) if r.value == 0.25));
    assert_eq!(feedback[0].metadata["evaluation.label"], "low");
    assert_eq!(feedback[0].author.as_deref(), Some("relevance"));
    assert!(feedback[0].created_at.is_some());
    assert!(matches!(&feedback[1].value, FeedbackValue::Comment(c) if c == "Off topic."));
}

#[test]
fn an_evaluation_with_nothing_to_say_is_reported() {
    let mut judged = span(1, None, "chat", vec![]);
    judged.events = vec![Event {
        name: "gen_ai.evaluation.result".into(),
        attributes: attrs(&[("gen_ai.evaluation.name", text("empty"))]),
        ..Default::default()
    }];
    let mapped = map_export(export(vec![], vec![judged]));
    assert!(mapped.feedback.is_empty());
    assert_eq!(mapped.rejected.num_spans, 0);
    assert!(mapped.rejected.message().contains("needs a score"));
    assert_eq!(mapped.traces.len(), 1, "the span itself is kept");
}

#[test]
fn spans_without_their_root_fill_gaps_only() {
    let child = span(
        2,
        Some(1),
        "chat",
        attrs(&[
            ("gen_ai.operation.name", text("chat")),
            ("gen_ai.request.model", text("m")),
            ("gen_ai.usage.input_tokens", int(3)),
        ]),
    );
    let mut second_call = child.clone();
    second_call.span_id = vec![3; 8];
    let mapped = map_export(export(vec![], vec![child, second_call]));
    let part = only_part(&mapped);
    assert_eq!(part.merge, PartMerge::FillGaps);
    assert_eq!(
        part.usage.input_tokens,
        Some(6),
        "summed over the model calls"
    );
    assert_eq!(part.spans.len(), 2);
}
