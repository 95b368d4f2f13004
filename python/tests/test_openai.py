"""The ``openai`` wrapper against a loopback upstream: lessons injected into the system message
as the gateway does, every call traced (plain, streamed, failed, inside an open trace, async)."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from conftest import Server
from upstream import ANSWER, Upstream

from feedloop import AsyncFeedloop, Feedloop, new_id
from feedloop.integrations.openai import last_trace_id, wrap_openai

SYSTEM = "You are a bank assistant."
INSTRUCTION = "Tell the user to bring an ID card to the branch."


@pytest.fixture
def server(own_server: Server) -> Server:
    """A server per test: lessons are voted on by the traffic around them, so the traces of
    one test must not outvote the lesson of the next."""
    return own_server


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    fake = Upstream()
    yield fake
    fake.close()


@pytest.fixture
def lesson_query(client: Feedloop) -> str:
    """A query with an active lesson of its own."""
    query = f"How do I reset the PIN of card {new_id('')}?"
    lesson = client.create_lesson(
        "pin", examples=[query], instruction=INSTRUCTION, status="active"
    )
    assert lesson["status"] == "active"
    return query


def sync_openai(upstream: Upstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=upstream.base_url, api_key="k", max_retries=0, timeout=30)


def async_openai(upstream: Upstream) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=upstream.base_url, api_key="k", max_retries=0, timeout=30)


def messages(query: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": query}]


def test_a_call_gets_the_lessons_and_is_traced(
    client: Feedloop, upstream: Upstream, lesson_query: str
) -> None:
    model = wrap_openai(
        sync_openai(upstream),
        client,
        environment="prod",
    )
    session = new_id("s-")
    reply = model.chat.completions.create(
        model="gpt-test", messages=messages(lesson_query), feedloop_session_id=session
    )
    assert reply.choices[0].message.content == ANSWER
    sent = upstream.requests[-1]["messages"]
    assert sent[0]["role"] == "system"
    assert sent[0]["content"].startswith(SYSTEM + "\n\n")
    assert INSTRUCTION in sent[0]["content"]
    assert sent[1] == {"role": "user", "content": lesson_query}
    assert "feedloop_session_id" not in upstream.requests[-1]

    trace_id = last_trace_id()
    assert trace_id is not None
    assert client.flush(30)
    trace = client.get_trace(trace_id)["trace"]
    assert trace["input"] == lesson_query and trace["output"] == ANSWER
    assert trace["session_id"] == session and trace["environment"] == "prod"
    assert trace["model"] == {
        "name": "gpt-test",
        "provider": "openai",
        "version": "gpt-test-2024-08-06",
    }
    assert trace["usage"] == {"input_tokens": 21, "output_tokens": 9, "total_tokens": 30}
    assert INSTRUCTION in trace["context"]["system_prompt"]
    assert trace["metadata"]["feedloop.injection_id"].startswith("inj_")
    assert len(trace["metadata"]["feedloop.lessons"]) == 1
    assert "openai-sdk" in trace["tags"]
    assert trace["status"] == "ok"


def test_a_query_no_lesson_is_about_goes_out_unchanged(
    client: Feedloop, upstream: Upstream
) -> None:
    model = wrap_openai(
        sync_openai(upstream), client
    )
    query = "Which exotic fruits grow in a cold greenhouse?"
    model.chat.completions.create(model="gpt-test", messages=messages(query))
    assert upstream.requests[-1]["messages"] == messages(query)
    assert client.flush(30)
    trace = client.get_trace(str(last_trace_id()))["trace"]
    assert trace["input"] == query
    assert "feedloop.injection_id" not in trace["metadata"]


def test_a_streamed_answer_is_recorded_when_the_stream_ends(
    client: Feedloop, upstream: Upstream, lesson_query: str
) -> None:
    model = wrap_openai(
        sync_openai(upstream), client
    )
    stream = model.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": lesson_query}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == ANSWER
    # Without a system message, the lessons come as one in front.
    sent = upstream.requests[-1]["messages"]
    assert sent[0]["role"] == "system" and INSTRUCTION in sent[0]["content"]
    assert client.flush(30)
    trace = client.get_trace(str(last_trace_id()))["trace"]
    assert trace["output"] == ANSWER
    assert trace["metadata"]["feedloop.stream"] is True


def test_an_upstream_error_is_raised_and_recorded(client: Feedloop, upstream: Upstream) -> None:
    model = wrap_openai(
        sync_openai(upstream), client
    )
    upstream.fail_next = True
    with pytest.raises(openai.InternalServerError):
        model.chat.completions.create(model="gpt-test", messages=messages("hello?"))
    assert client.flush(30)
    trace = client.get_trace(str(last_trace_id()))["trace"]
    assert trace["status"] == "error"
    assert "InternalServerError" in trace["error"]


def test_a_call_inside_an_open_trace_becomes_its_llm_span(
    client: Feedloop, upstream: Upstream, lesson_query: str
) -> None:
    model = wrap_openai(
        sync_openai(upstream), client
    )
    with client.trace(input=lesson_query) as trace:
        with trace.span("retrieve", kind="retrieval"):
            pass
        reply = model.chat.completions.create(model="gpt-test", messages=messages(lesson_query))
        trace.output = reply.choices[0].message.content
    assert last_trace_id() == trace.id
    assert client.flush(30)
    body = client.get_trace(trace.id)["trace"]
    llm = [span for span in body["spans"] if span["kind"] == "llm"]
    assert len(llm) == 1
    assert llm[0]["output"] == ANSWER
    assert INSTRUCTION in llm[0]["input"][0]["content"]
    assert llm[0]["attributes"]["usage"]["total_tokens"] == 30
    assert body["metadata"]["feedloop.injection_id"].startswith("inj_")


async def test_the_async_client_is_wrapped_too(
    server: Server, upstream: Upstream, lesson_query: str
) -> None:
    async with AsyncFeedloop(server.base_url, server.key, flush_on_exit=False) as client:
        model = wrap_openai(
            async_openai(upstream), client
        )
        reply = await model.chat.completions.create(
            model="gpt-test", messages=messages(lesson_query)
        )
        assert reply.choices[0].message.content == ANSWER
        assert INSTRUCTION in upstream.requests[-1]["messages"][0]["content"]
        stream = await model.chat.completions.create(
            model="gpt-test", messages=messages("plain question"), stream=True
        )
        parts = [chunk.choices[0].delta.content or "" async for chunk in stream]
        assert "".join(parts) == ANSWER
        streamed_id = last_trace_id()
        assert await client.aflush(30)
        trace = (await client.get_trace(str(streamed_id)))["trace"]
        assert trace["output"] == ANSWER and trace["input"] == "plain question"


def test_the_call_goes_out_without_lessons_when_feedloop_is_unreachable(
    upstream: Upstream,
) -> None:
    from conftest import free_port

    unreachable = Feedloop(
        f"http://127.0.0.1:{free_port()}", "fl_sk_unused", max_retry_secs=0, flush_on_exit=False
    )
    model = wrap_openai(
        sync_openai(upstream), unreachable
    )
    reply = model.chat.completions.create(model="gpt-test", messages=messages("hello?"))
    assert reply.choices[0].message.content == ANSWER
    assert upstream.requests[-1]["messages"] == messages("hello?")
    assert unreachable.flush(30)
    assert unreachable.queue_stats.failed == 1  # the trace could not be delivered either
    unreachable.close()
