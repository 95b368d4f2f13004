"""The asyncio client: awaitable calls, ``async with`` traces, decorated coroutines, context."""

from __future__ import annotations

import asyncio

import pytest
from conftest import Server

from feedloop import AsyncFeedloop, FeedloopError, new_id


async def test_async_client_records_traces_and_answers_calls(server: Server) -> None:
    async with AsyncFeedloop(server.base_url, server.key, flush_on_exit=False) as client:

        @client.observe(kind="retrieval")
        async def retrieve(query: str) -> list[str]:
            await asyncio.sleep(0)
            return [f"doc about {query}"]

        session = new_id("s-")
        async with client.trace(input="How do I close my account?", session_id=session) as trace:
            documents = await retrieve("closing accounts")
            trace.output = f"See {documents[0]}"
        client.rate(trace.id, 1)
        client.signal(trace.id, "share")

        # Concurrent tasks keep their own traces.
        @client.observe(session_id=session)
        async def answer(question: str) -> str:
            await asyncio.sleep(0.01)
            return (await retrieve(question))[0]

        await asyncio.gather(*(answer(f"question {i}") for i in range(5)))
        assert await client.aflush(30)

        chain = await client.get_trace(trace.id)
        assert chain["trace"]["output"] == "See doc about closing accounts"
        (span,) = chain["trace"]["spans"]
        assert span["kind"] == "retrieval" and span["input"] == "closing accounts"
        assert sorted(f["kind"] for f in chain["feedback"]) == ["rating", "signal"]
        listed = await client.list_traces(session_id=session, limit=50, with_spans=True)
        answers = [t for t in listed["items"] if t["id"] != trace.id]
        assert len(answers) == 5
        for item in answers:
            (inner,) = item["spans"]
            assert inner["input"] == item["input"]  # each task's span in its own trace

        context = await client.context("something no lesson is about", budget_tokens=100)
        assert context.block == "" and context.injection_id is None
        with pytest.raises(FeedloopError) as missing:
            await client.get_lesson("no-such-lesson")
        assert missing.value.status == 404
