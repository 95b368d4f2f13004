"""Every client call against the real server: traces and spans (context managers, decorator),
every feedback kind and signal, direct ingest, reads, context, lessons, queues, datasets and
errors."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import Server

from feedloop import Feedloop, FeedloopError, new_id

PIN_QUERY = "How do I reset my PIN?"
PIN_INSTRUCTION = "Tell the user to visit a branch with an ID card."


def stored(client: Feedloop, trace_id: str) -> dict[str, Any]:
    assert client.flush(30), "the queue did not drain"
    chain: dict[str, Any] = client.get_trace(trace_id)
    return chain


def test_trace_context_manager_records_input_output_timing_and_nested_spans(
    client: Feedloop,
) -> None:
    session = new_id("s-")
    with client.trace(
        input="What is the card fee?",
        session_id=session,
        model="gpt-test",
        environment="prod",
        tags=["sdk"],
        metadata={"plan": "pro"},
        context={"system_prompt": "You are a bank assistant."},
    ) as trace:
        with trace.span("retrieve", kind="retrieval", input={"k": 3}) as retrieval:
            with client.span("rerank", kind="tool") as rerank:
                rerank.output = ["doc-2", "doc-1"]
            retrieval.set_output(["doc-1", "doc-2"])
        trace.output = "The fee is 2 %."
        trace.update(usage={"input_tokens": 12, "output_tokens": 5})

    body = stored(client, trace.id)["trace"]
    assert body["input"] == "What is the card fee?"
    assert body["output"] == "The fee is 2 %."
    assert body["session_id"] == session
    assert body["status"] == "ok"
    assert body["model"]["name"] == "gpt-test"
    assert body["environment"] == "prod"
    assert body["tags"] == ["sdk"]
    assert body["metadata"] == {"plan": "pro"}
    assert body["usage"]["input_tokens"] == 12
    assert body["context"]["system_prompt"] == "You are a bank assistant."
    assert body["latency_ms"] >= 0 and body["ended_at"] >= body["started_at"]
    spans = {span["name"]: span for span in body["spans"]}
    assert set(spans) == {"retrieve", "rerank"}
    assert spans["retrieve"]["kind"] == "retrieval"
    assert spans["retrieve"]["input"] == {"k": 3}
    assert spans["retrieve"]["output"] == ["doc-1", "doc-2"]
    assert "parent_id" not in spans["retrieve"]
    assert spans["rerank"]["parent_id"] == spans["retrieve"]["id"]
    assert spans["rerank"]["kind"] == "tool"


def test_an_exception_marks_the_trace_and_span_failed_and_is_raised_again(
    client: Feedloop,
) -> None:
    with pytest.raises(ValueError, match="no such account"):
        with client.trace(input="balance?") as trace:
            with client.span("lookup", kind="tool"):
                raise ValueError("no such account")
    body = stored(client, trace.id)["trace"]
    assert body["status"] == "error"
    assert body["error"] == "ValueError: no such account"
    (span,) = body["spans"]
    assert span["status"] == "error"
    assert span["status_message"] == "ValueError: no such account"


def test_a_span_outside_a_trace_is_refused(client: Feedloop) -> None:
    with pytest.raises(RuntimeError, match="no feedloop trace is open"):
        client.span("orphan")


def test_the_decorator_traces_calls_and_nests_them_as_spans(client: Feedloop) -> None:
    @client.observe(kind="retrieval")
    def retrieve(query: str, k: int = 2) -> list[str]:
        return [f"doc about {query}"] * k

    @client.observe(name="answer", session_id="decorated")
    def answer(question: str) -> str:
        documents = retrieve(question)
        return f"{question} -> {len(documents)} documents"

    @client.observe()
    def failing(question: str) -> str:
        raise KeyError(question)

    assert answer("fees") == "fees -> 2 documents"
    with pytest.raises(KeyError):
        failing("oops")
    assert client.flush(30)
    traces = client.list_traces(session_id="decorated", limit=10)["items"]
    (trace,) = [t for t in traces if t["input"] == "fees"]
    assert trace["output"] == "fees -> 2 documents"
    assert trace["metadata"]["feedloop.function"] == "answer"
    (span,) = trace["spans"] if "spans" in trace else client.get_trace(trace["id"])["trace"]["spans"]
    assert span["kind"] == "retrieval"
    assert span["input"] == {"query": "fees", "k": 2}
    assert span["output"] == ["doc about fees", "doc about fees"]
    failed = client.list_traces(**{"meta.feedloop.function": failing.__qualname__})["items"]
    assert [t["status"] for t in failed] == ["error"]
    assert failed[0]["error"] == "KeyError: 'oops'"


def test_every_feedback_kind_and_signal_is_stored(client: Feedloop) -> None:
    trace_id = client.log_trace(input="What is the fee?", output="The fee is 2 %.")
    ids = {
        "rating": client.rate(trace_id, 0, author="ann", confidence=0.9),
        "scale": client.rate(trace_id, 4, min=1, max=5, author="bob"),
        "category": client.categorize(trace_id, ["factually_incorrect", "too_vague"]),
        "comment": client.comment(trace_id, "it ignored my budget", metadata={"page": "chat"}),
        "correction": client.correct(trace_id, "There is no fee.", kind="answer", source="expert"),
        "annotation": client.annotate(
            trace_id, 11, 14, "2 %", comment="wrong", tags=["figure"], source="reviewer"
        ),
    }
    signals = {
        "copy": client.signal(trace_id, "copy", range=(0, 7)),
        "dwell": client.signal(trace_id, "dwell", value=12500),
        "regenerate": client.signal(trace_id, "regenerate"),
        "edit": client.signal(trace_id, "edit", edited_text="The fee is 0 %."),
    }
    assert client.flush(30)
    items = {f["id"]: f for f in client.list_feedback(trace_id=trace_id, limit=100)["items"]}
    assert set(items) == set(ids.values()) | set(signals.values())
    assert items[ids["rating"]]["rating"]["value"] == 0
    assert items[ids["rating"]]["author"] == "ann" and items[ids["rating"]]["confidence"] == 0.9
    assert items[ids["scale"]]["rating"]["max"] == 5
    assert items[ids["category"]]["categories"] == ["factually_incorrect", "too_vague"]
    assert items[ids["comment"]]["comment"] == "it ignored my budget"
    assert items[ids["comment"]]["metadata"] == {"page": "chat"}
    assert items[ids["correction"]]["correction"]["text"] == "There is no fee."
    assert items[ids["correction"]]["source"] == "expert"
    assert items[ids["annotation"]]["annotation"]["quote"] == "2 %"
    assert items[ids["annotation"]]["annotation"]["tags"] == ["figure"]
    assert items[signals["copy"]]["signal"]["details"] == {"start": 0, "end": 7}
    assert items[signals["dwell"]]["signal"]["value"] == 12500
    assert items[signals["regenerate"]]["signal"]["type"] == "regenerate"
    assert items[signals["edit"]]["signal"]["details"]["edited_text"] == "The fee is 0 %."
    assert {f["kind"] for f in items.values()} == {
        "rating",
        "category",
        "comment",
        "correction",
        "annotation",
        "signal",
    }


def test_direct_ingest_calls_answer_with_receipts_and_dedupe_by_id(client: Feedloop) -> None:
    from feedloop import feedback

    trace = {"id": new_id("tr_"), "input": "q", "output": "a"}
    assert client.post_traces([trace])["items"] == [{"id": trace["id"], "status": "created"}]
    assert client.post_traces([trace])["items"][0]["status"] == "merged"
    comment = feedback.comment(trace["id"], "fine")
    assert client.post_feedback([comment])["items"][0]["status"] == "created"
    assert client.post_feedback([comment])["items"][0]["status"] == "duplicate"
    copy = feedback.signal(trace["id"], "copy")
    assert client.post_signals([copy])["items"][0]["status"] == "created"
    assert client.post_signals([copy])["items"][0]["status"] == "duplicate"
    second = {"id": new_id("tr_"), "input": "q2"}
    rating = feedback.rating(second["id"], 1)
    receipt = client.ingest([second], [rating])
    assert receipt == {
        "traces": [{"id": second["id"], "status": "created"}],
        "feedback": [{"id": rating["id"], "status": "created"}],
    }
    assert len(client.list_feedback(trace_id=trace["id"])["items"]) == 2


def test_bad_input_raises_an_error_naming_the_field(client: Feedloop) -> None:
    from feedloop import feedback

    with pytest.raises(FeedloopError) as caught:
        client.post_feedback([feedback.rating(new_id("tr_"), 7)])
    assert caught.value.status in (400, 422)
    assert caught.value.code == "invalid_value"
    assert caught.value.field == "[0].rating.value"
    assert not caught.value.retryable
    with pytest.raises(FeedloopError) as missing:
        client.get_trace("no-such-trace")
    assert missing.value.status == 404


def test_reads_sessions_search_stats_and_project(client: Feedloop) -> None:
    session = new_id("s-")
    first = client.log_trace(input="How much is a new card?", session_id=session, output="5 EUR")
    second = client.log_trace(input="And express delivery?", session_id=session, output="10 EUR")
    client.rate(second, 0)
    assert client.flush(30)
    page = client.list_traces(session_id=session, order="asc", limit=1)
    assert [t["id"] for t in page["items"]] == [first]
    rest = client.list_traces(session_id=session, order="asc", cursor=page["next_cursor"])
    assert [t["id"] for t in rest["items"]] == [second]
    negative = client.list_traces(session_id=session, negative_feedback=True)
    assert [t["id"] for t in negative["items"]] == [second]
    timeline = client.get_session(session)
    assert [entry["trace"]["id"] for entry in timeline["traces"]] == [first, second]
    assert client.stats()["traces"]["total"] >= 2
    assert client.project()["role"] == "admin"
    deadline = time.monotonic() + 60
    while True:  # traces are embedded in the background
        results = client.search("How much is a new card?", k=3)["results"]
        if any(r["trace"]["id"] == first for r in results):
            break
        assert time.monotonic() < deadline, "the trace was never found by search"
        time.sleep(0.2)
    similar = client.search(trace_id=first, k=3, filter={"session_id": session})["results"]
    assert second in [r["trace"]["id"] for r in similar]


def test_context_and_the_life_of_a_lesson(server: Server, client: Feedloop) -> None:
    query = f"{PIN_QUERY} {new_id('')}"  # a lesson of this test's own
    lesson = client.create_lesson(
        "pin reset", examples=[query], instruction=PIN_INSTRUCTION, priority=2
    )
    assert lesson["status"] == "proposed" and lesson["version"] == 1
    assert client.get_lesson(lesson["id"])["title"] == "pin reset"
    proposed = client.list_lessons(status="proposed")["lessons"]
    assert lesson["id"] in [item["id"] for item in proposed]
    assert client.context(query).block == ""  # proposed lessons are not injected

    active = client.activate_lesson(lesson["id"], lesson["version"])
    assert active["status"] == "active" and active["version"] == 2
    context = client.context(query, session_id="s-ctx", budget_chars=2000)
    assert PIN_INSTRUCTION in context.block and PIN_INSTRUCTION in str(context)
    assert context.injection_id is not None and not context.holdout
    assert lesson["id"] in context.lesson_ids
    assert context.trace_metadata()["feedloop.injection_id"] == context.injection_id
    unrelated = client.context("What are the opening hours of the zoo on Sunday?")
    assert lesson["id"] not in unrelated.lesson_ids

    with pytest.raises(FeedloopError) as stale:
        client.update_lesson(lesson["id"], 1, title="stale")
    assert stale.value.status == 409
    changed = client.update_lesson(lesson["id"], 2, title="pin reset, in branch")
    assert changed["version"] == 3
    versions = client.lesson_versions(lesson["id"])["lessons"]
    assert sorted(v["version"] for v in versions) == [1, 2, 3]
    effect = client.lesson_effect(lesson["id"])
    assert effect["lesson_id"] == lesson["id"] and effect["impressions"] >= 1
    retired = client.retire_lesson(lesson["id"], 3)
    assert retired["status"] == "retired"
    assert lesson["id"] not in client.context(query).lesson_ids

    trace_id = client.log_trace(input="What is the card fee?", output="2 %")
    client.categorize(trace_id, ["factually_incorrect"])
    client.correct(trace_id, "There is no fee.")
    assert client.flush(30)
    made = client.lesson_from_feedback([trace_id], title="card fee")
    assert made["status"] == "proposed"
    assert made["trigger"]["examples"] == ["What is the card fee?"]
    assert isinstance(client.propose_lessons()["proposed"], list)


def test_review_queues(client: Feedloop) -> None:
    name = f"q_{new_id('')}"
    trace_id = client.log_trace(input="Is my card blocked?", output="Yes.")
    client.rate(trace_id, 0)
    assert client.flush(30)
    queue = client.create_queue(name, rules=[{"filter": {"trace_id": trace_id}}], lock_secs=120)
    assert queue["name"] == name
    assert name in [q["name"] for q in client.list_queues()["queues"]]
    assert client.get_queue(name)["name"] == name
    client.enqueue(name, [trace_id], author="ann")
    items = client.list_queue_items(name, state="pending")["items"]
    assert [item["trace_id"] for item in items] == [trace_id]
    reserved = client.reserve(name, "ann")["item"]
    assert reserved["trace_id"] == trace_id
    client.act(name, reserved["id"], "correct", author="ann", correction={"text": "No."})
    client.act(name, reserved["id"], "resolve", author="ann")
    history = client.item_history(name, reserved["id"])
    actions = [entry["action"] for entry in history["events"]]
    assert "correct" in actions and "resolve" in actions
    assert client.list_queue_items(name, state="resolved")["items"][0]["trace_id"] == trace_id
    client.delete_queue(name)
    assert name not in [q["name"] for q in client.list_queues()["queues"]]


def test_datasets(client: Feedloop) -> None:
    name = f"ds-{new_id('')}"
    trace_id = client.log_trace(input="What is the card fee?", output="2 %", tags=[name])
    client.correct(trace_id, "There is no fee.")
    assert client.flush(30)
    assert client.create_dataset(name, description="support")["name"] == name
    assert name in [d["name"] for d in client.list_datasets()["datasets"]]
    receipt = client.add_dataset_items(
        name, [{"id": "manual-1", "input": "Hi", "ideal_output": "Hello!"}]
    )
    assert receipt["items"][0]["status"] == "created"
    again = client.add_dataset_items(
        name, [{"id": "manual-1", "input": "Hi", "ideal_output": "Hello!"}]
    )
    assert again["items"][0]["status"] == "duplicate"
    client.add_dataset_items_from_feedback(name, {"tag": name, "negative_feedback": "true"})
    items = client.list_dataset_items(name)["items"]
    assert {item["input"] for item in items} == {"Hi", "What is the card fee?"}
    version = client.create_dataset_version(name, note="first cut")
    assert version["version"] == 1
    assert client.get_dataset(name)["name"] == name
    exported = client.export_dataset(name, version=1, validation_fraction=0)["text"]
    lines = [line for line in exported.splitlines() if line]
    assert len(lines) == 2 and all('"messages"' in line for line in lines)


def test_every_kind_sent_twice_is_stored_once(client: Feedloop) -> None:
    """The server dedupes every feedback kind and signal by the id the SDK chose: what makes
    the batcher's retries safe."""
    from feedloop import feedback as build

    trace_id = new_id("tr_")
    client.post_traces([{"id": trace_id, "input": "q", "output": "The fee is 2 %."}])
    items = [
        build.rating(trace_id, 0),
        build.rating(trace_id, 3, min=1, max=5),
        build.rating(trace_id, -1, min=-1, max=1, compared_to="another-trace"),
        build.category(trace_id, ["too_vague"]),
        build.comment(trace_id, "vague"),
        build.correction(trace_id, "There is no fee.", kind="rewording"),
        build.annotation(trace_id, 11, 14, "2 %", comment="wrong", categories=["outdated"]),
    ]
    signals = [
        build.signal(trace_id, "copy", range=(0, 3), details={"button": "copy"}),
        build.signal(trace_id, "dwell", value=10_000),
        build.signal(trace_id, "edit", edited_text="The fee is 0 %."),
        build.signal(trace_id, "abandon", before_complete=True),
    ]
    for expected in ("created", "duplicate"):
        assert {r["status"] for r in client.post_feedback(items)["items"]} == {expected}
        assert {r["status"] for r in client.post_signals(signals)["items"]} == {expected}
    stored = client.list_feedback(trace_id=trace_id, limit=100)["items"]
    assert sorted(f["id"] for f in stored) == sorted(b["id"] for b in items + signals)
