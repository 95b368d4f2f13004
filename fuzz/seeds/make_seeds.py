"""Writes the hand-made seed inputs of the fuzz targets into fuzz/corpus/<target>/seed-*.

Run once with the test virtualenv's python (it has the OpenTelemetry protobuf classes):
    ~/.cache/feedloop/venv/bin/python fuzz/seeds/make_seeds.py
The fuzzer grows the corpora from these; `cargo fuzz cmin` keeps them small.
"""

import gzip
import json
import pathlib
import struct

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

CORPUS = pathlib.Path(__file__).resolve().parent.parent / "corpus"
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
ROOT, CHILD, EVAL = (bytes.fromhex(h) for h in ("eee19b7ec3c1b174", "eee19b7ec3c1b173", "eee19b7ec3c1b175"))
NANOS = 1_764_400_000_000_000_000


def value(v):
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[value(x) for x in v]))
    return AnyValue(string_value=v)


def attrs(d):
    return [KeyValue(key=k, value=value(v)) for k, v in d.items()]


def genai_request():
    root = Span(
        trace_id=TRACE_ID, span_id=ROOT, name="chat gpt-4o", kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=NANOS, end_time_unix_nano=NANOS + 1_500_000_000,
        attributes=attrs({
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 30,
            "gen_ai.request.temperature": 0.2, "gen_ai.conversation.id": "s-1",
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "When will my card arrive? mail me at a@b.co"}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "In 3 to 5 working days."}], "finish_reason": "stop"}]),
            "enduser.id": "u-1", "gen_ai.response.finish_reasons": ["stop"],
        }),
        events=[Span.Event(time_unix_nano=NANOS + 2_000_000_000, name="gen_ai.evaluation.result", attributes=attrs({
            "gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.25,
            "gen_ai.evaluation.score.label": "fail", "gen_ai.evaluation.explanation": "off topic"}))],
        status=Status(code=Status.STATUS_CODE_OK),
    )
    child = Span(
        trace_id=TRACE_ID, span_id=CHILD, parent_span_id=ROOT, name="retrieve", kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=NANOS + 1, end_time_unix_nano=NANOS + 500_000_000,
        attributes=attrs({"openinference.span.kind": "RETRIEVER", "input.value": "card delivery",
                          "retrieval.documents.0.document.content": "Cards ship in 3-5 days.",
                          "retrieval.documents.0.document.id": "doc-1"}),
    )
    evaluator = Span(
        trace_id=TRACE_ID, span_id=EVAL, parent_span_id=ROOT, name="evaluate",
        start_time_unix_nano=NANOS + 3, end_time_unix_nano=NANOS + 4,
        attributes=attrs({"openinference.span.kind": "EVALUATOR",
                          "annotations.0.annotation.name": "helpful", "annotations.0.annotation.label": "pass",
                          "annotations.0.annotation.score": 1.0, "annotations.0.annotation.explanation": "fine"}),
    )
    oi = Span(
        trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"), span_id=bytes.fromhex("b7ad6b7169203331"),
        name="ChatCompletion", start_time_unix_nano=NANOS, end_time_unix_nano=NANOS + 10,
        attributes=attrs({"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                          "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "hi",
                          "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "hello",
                          "llm.token_count.prompt": 3, "llm.token_count.completion": 2,
                          "llm.prompt_template.template": "say {x}", "llm.prompt_template.variables": "{\"x\": \"hi\"}",
                          "session.id": "s-2", "user.id": "u-2", "metadata": "{\"app\": \"web\"}", "tag.tags": ["beta"]}),
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
    )
    resource = Resource(attributes=attrs({"service.name": "support-bot", "deployment.environment.name": "prod",
                                          "service.version": "1.4.2"}))
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource, scope_spans=[
        ScopeSpans(spans=[root, child, evaluator, oi])])])


def otlp_json(request):
    """OTLP/JSON: hex ids, string-encoded 64-bit integers, lowerCamelCase names."""
    from google.protobuf.json_format import MessageToDict

    body = MessageToDict(request)

    def fix(node):
        if isinstance(node, dict):
            for k, v in list(node.items()):
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                    import base64
                    node[k] = base64.b64decode(v).hex()
                else:
                    fix(v)
        elif isinstance(node, list):
            for x in node:
                fix(x)

    fix(body)
    return json.dumps(body).encode()


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"seed-{name}").write_bytes(data)


def main():
    request = genai_request()
    write("otlp_protobuf", "genai", request.SerializeToString())
    write("otlp_protobuf", "genai-gzip", gzip.compress(request.SerializeToString()))
    write("otlp_protobuf", "empty", b"")
    write("otlp_json", "genai", otlp_json(request))
    write("otlp_json", "genai-gzip", gzip.compress(otlp_json(request)))
    write("otlp_json", "empty-object", b"{}")

    feedback = [
        {"id": "fb-1", "trace_id": "t-1", "kind": "rating", "rating": {"value": 0.2, "min": 0, "max": 1}, "source": "expert", "confidence": 0.9},
        {"trace_id": "t-1", "categories": ["too_vague", "wrong_facts"], "metadata": {"app": "web", "n": 2}},
        {"trace_id": "t-1", "span_id": "sp-1", "comment": "call me on +1 415 555 0100", "author": "ana", "created_at": "2026-11-29T12:00:00Z"},
        {"trace_id": "t-1", "correction": {"text": "In 2 days.", "kind": "rewrite"}},
        {"trace_id": "t-1", "annotation": {"start": 3, "end": 9, "quote": "3 to 5", "comment": "vague", "tags": ["x"], "categories": ["too_vague"]}},
        {"trace_id": "t-1", "signal": {"type": "regenerate", "value": 1, "details": {"email": "a@b.co"}}},
    ]
    for index, item in enumerate(feedback):
        write("feedback_body", f"kind-{index}", json.dumps(item).encode())
    write("feedback_body", "array", json.dumps(feedback).encode())

    trace = {
        "id": "t-1", "session_id": "s-1", "user_id": "u-1", "input": "When will my card arrive?",
        "output": "In 3 to 5 working days, a@b.co", "model": {"name": "gpt-4o", "version": "2024-08-06", "provider": "openai"},
        "environment": "prod", "tags": ["cards"], "metadata": {"app": "web"}, "latency_ms": 1200.5, "cost_usd": 0.001,
        "started_at": "2026-11-29T12:00:00Z", "ended_at": "2026-11-29T12:00:01Z",
        "usage": {"input_tokens": 12, "output_tokens": 30},
        "context": {"system_prompt": "Be brief.", "messages": [{"role": "user", "content": "hi"}],
                    "documents": [{"id": "d-1", "content": "Cards ship in 3-5 days.", "title": "Shipping"}]},
        "spans": [{"id": "sp-1", "name": "llm", "kind": "llm", "input": {"q": "x"}, "output": "y", "parent_id": None}],
    }
    write("trace_body", "full", json.dumps(trace).encode())
    write("trace_body", "array", json.dumps([{"id": "t-2", "input": "a"}, {"id": "t-2", "output": "b"}]).encode())
    write("trace_body", "minimal", b"{}")

    write("ingest_body", "mixed", json.dumps({"traces": [trace], "feedback": feedback}).encode())
    write("ingest_body", "empty", b"{}")

    queries = [
        "from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z&session_id=s&kind=rating&rating=negative&source=expert",
        "environment=prod&meta.app.version=2&limit=10&order=asc&tag=beta&with_spans=true",
        "negative_feedback=true&satisfaction_below=0.5&satisfaction_above=-0.5&cursor=MTc2NDQwMDAwMDAwMDAwMDoxMg",
        "model=gpt-4o&model_version=1&prompt_name=p&prompt_version=2&user_id=u&user_role=admin&trace_id=t&category=c",
    ]
    for index, query in enumerate(queries):
        write("filter", f"query-{index}", query.encode())

    def annotation(mode, seen, start, end, text):
        return bytes([mode, seen]) + struct.pack("<QQ", start, end) + text.encode()

    write("annotation_ranges", "derived-quote", annotation(1, 0, 3, 9, "In 3 to 5 days, mail a@b.co"))
    write("annotation_ranges", "over-email", annotation(2, 0, 21, 27, "In 3 to 5 days, mail a@b.co now"))
    write("annotation_ranges", "stored", annotation(1, 1, 0, 6, "a@b.co wrote\0a@b.co"))
    write("annotation_ranges", "unknown", annotation(1, 2, 5, 11, "\0a@b.co"))
    write("annotation_ranges", "multibyte", annotation(0, 0, 6, 10, "price 12 € today"))


if __name__ == "__main__":
    main()
