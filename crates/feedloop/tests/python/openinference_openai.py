"""OpenInference's instrumentation of the `openai` client, exporting over OTLP/HTTP (protobuf) to
feedloop, while the client calls a stand-in OpenAI upstream on loopback.

Run by the Rust test `otlp_interop_openinference_traces_real_openai_calls`
(crates/feedloop/tests/api/otlp_interop.rs) with FEEDLOOP_OTLP_ENDPOINT (feedloop's base URL),
FEEDLOOP_KEY, FEEDLOOP_UPSTREAM (the stand-in's `…/v1`), FEEDLOOP_SESSION and FEEDLOOP_USER.
Prints, as its last line, {"answer": ...}.
"""

import json
import os

import openai
from openinference.instrumentation import using_attributes
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

provider = TracerProvider(
    resource=Resource.create(
        {
            "service.name": "openinference-app",
            "service.version": "0.9.0",
            "deployment.environment": "staging",
        }
    )
)
provider.add_span_processor(
    SimpleSpanProcessor(
        OTLPSpanExporter(
            endpoint=f"{os.environ['FEEDLOOP_OTLP_ENDPOINT']}/v1/traces",
            headers={"x-api-key": os.environ["FEEDLOOP_KEY"]},
        )
    )
)
OpenAIInstrumentor().instrument(tracer_provider=provider)

client = openai.OpenAI(
    base_url=os.environ["FEEDLOOP_UPSTREAM"], api_key="sk-stand-in", max_retries=0
)
with using_attributes(
    session_id=os.environ["FEEDLOOP_SESSION"],
    user_id=os.environ["FEEDLOOP_USER"],
    metadata={"tenant": "acme"},
    tags=["interop"],
):
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
    )

provider.force_flush()
provider.shutdown()
print(json.dumps({"answer": completion.choices[0].message.content}))
