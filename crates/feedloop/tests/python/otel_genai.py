"""The OpenTelemetry Python SDK with its OTLP exporter (HTTP/protobuf or gRPC, gzip) sending
spans that follow the GenAI semantic conventions to feedloop.

Run by the Rust test `otlp_interop_*` (crates/feedloop/tests/api/otlp_interop.rs) as
`otel_genai.py http|grpc`, with FEEDLOOP_OTLP_ENDPOINT (the base URL for HTTP, host:port for
gRPC), FEEDLOOP_KEY, FEEDLOOP_SESSION and FEEDLOOP_USER. An agent span holds a chat span and a
tool span, as an instrumented agent would send them: children end (and are exported) first.
Then sends the same spans with an unknown key. Prints, as its last line,
{"trace_id": "<32 hex digits>", "bad_key_result": "FAILURE"}.
"""

import json
import os
import sys

protocol = sys.argv[1]
endpoint = os.environ["FEEDLOOP_OTLP_ENDPOINT"]
key = os.environ["FEEDLOOP_KEY"]
session = os.environ["FEEDLOOP_SESSION"]
user = os.environ["FEEDLOOP_USER"]
os.environ["OTEL_EXPORTER_OTLP_COMPRESSION"] = "gzip"

from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402

from opentelemetry.sdk.trace.export import SpanProcessor  # noqa: E402


def make_exporter(secret):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=endpoint, insecure=True, headers=(("authorization", f"Bearer {secret}"),)
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(
        endpoint=f"{endpoint}/v1/traces", headers={"Authorization": f"Bearer {secret}"}
    )


class Keep(SpanProcessor):
    """Keeps the finished spans, to send them once more with a wrong key."""

    def __init__(self):
        self.spans = []

    def on_end(self, span):
        self.spans.append(span)


exporter = make_exporter(key)
kept = Keep()

provider = TracerProvider(
    resource=Resource.create(
        {
            "service.name": "interop-app",
            "service.version": "3.1.4",
            "deployment.environment.name": "production",
        }
    )
)
provider.add_span_processor(SimpleSpanProcessor(exporter))
provider.add_span_processor(kept)
tracer = provider.get_tracer("feedloop.interop")

with tracer.start_as_current_span("invoke_agent support") as agent:
    agent.set_attributes(
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support",
            "gen_ai.conversation.id": session,
            "user.id": user,
        }
    )
    with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as chat:
        chat.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.response.id": "chatcmpl-interop",
                "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.request.temperature": 0.2,
                "gen_ai.system_instructions": json.dumps(
                    [{"type": "text", "content": "You are the bank's assistant."}]
                ),
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "How do I block my card?"}]}]
                ),
                "gen_ai.output.messages": json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": "Open Cards and tap Block."}],
                            "finish_reason": "stop",
                        }
                    ]
                ),
                "gen_ai.usage.input_tokens": 42,
                "gen_ai.usage.output_tokens": 8,
            }
        )
    with tracer.start_as_current_span("execute_tool block_card") as tool:
        tool.set_attributes(
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "block_card",
                "gen_ai.tool.call.id": "call-1",
                "gen_ai.tool.call.arguments": json.dumps({"card": "1234"}),
                "gen_ai.tool.call.result": "blocked",
            }
        )
    trace_id = format(agent.get_span_context().trace_id, "032x")

provider.force_flush()
provider.shutdown()
# The same spans with a key feedloop does not know: refused, not retried.
bad_key_result = make_exporter("fl_sk_not_a_key").export(kept.spans)
print(json.dumps({"trace_id": trace_id, "bad_key_result": bad_key_result.name}))
