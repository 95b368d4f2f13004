"""The real `openai` client against feedloop's gateway, streaming and not.

Run by the Rust test `gateway_the_openai_python_client_works_through_it` (crates/feedloop/tests/
api/gateway.rs), which starts the server and a stand-in upstream that answers "You said: <the
last user message>". Asserts the replies and prints, as its last line, the JSON
{"trace_id": ..., "stream_trace_id": ...} of the x-feedloop-trace-id headers it saw, so the Rust
test can check the stored traces.
"""

import json
import os

import openai

client = openai.OpenAI(
    base_url=os.environ["FEEDLOOP_GATEWAY_URL"],
    api_key=os.environ["FEEDLOOP_KEY"],
    max_retries=0,
)

raw = client.chat.completions.with_raw_response.create(
    model="gpt-test",
    messages=[
        {"role": "system", "content": "You are the bank's assistant."},
        {"role": "user", "content": "What is my balance?"},
    ],
)
trace_id = raw.headers.get("x-feedloop-trace-id")
completion = raw.parse()
assert trace_id and trace_id.startswith("tr_"), trace_id
assert completion.choices[0].message.content == "You said: What is my balance?", completion
assert completion.usage.total_tokens == 18, completion.usage

raw = client.chat.completions.with_raw_response.create(
    model="gpt-test",
    messages=[{"role": "user", "content": "Stream the answer, please"}],
    stream=True,
    stream_options={"include_usage": True},
    extra_headers={"x-feedloop-session-id": "py-session"},
)
stream_trace_id = raw.headers.get("x-feedloop-trace-id")
assert stream_trace_id and stream_trace_id != trace_id, stream_trace_id
text = ""
usage = None
num_chunks = 0
for chunk in raw.parse():
    num_chunks += 1
    if chunk.choices and chunk.choices[0].delta.content:
        text += chunk.choices[0].delta.content
    if chunk.usage:
        usage = chunk.usage
assert text == "You said: Stream the answer, please", text
assert num_chunks > 3, num_chunks
assert usage is not None and usage.total_tokens == 16, usage

# Errors come back in OpenAI's shape, so the client raises its own exception types.
try:
    openai.OpenAI(
        base_url=os.environ["FEEDLOOP_GATEWAY_URL"], api_key="fl_sk_wrong", max_retries=0
    ).chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("an unknown key was accepted")
except openai.AuthenticationError as error:
    assert error.status_code == 401, error

print(json.dumps({"trace_id": trace_id, "stream_trace_id": stream_trace_id}))
