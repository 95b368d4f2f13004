"""The HTTP API's endpoints, written once for the blocking and the asyncio client.

Each method builds a :class:`Request` and hands it to ``_send``, which the blocking client
answers with the decoded JSON and the asyncio client with an awaitable of it. Answers are the
server's JSON objects as they are (the OpenAPI document at ``/api/v1/openapi.json`` describes
each); a list comes as an object too (``{"items": […], "next_cursor": …}``,
``{"lessons": […]}``).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar
from urllib.parse import quote

from ._transport import JSON, Request, RetryPolicy

R = TypeVar("R")


def _path(prefix: str, *parts: str) -> str:
    """``prefix`` followed by ``parts``, each escaped as one path segment."""
    return "/".join([prefix, *(quote(part, safe="") for part in parts)])


def _without_none(**fields: Any) -> JSON:
    return {key: value for key, value in fields.items() if value is not None}


class Endpoints(Generic[R]):
    """Every API call; ``R`` is what a call returns (the JSON object, or an awaitable of it)."""

    def _send(self, request: Request) -> R:
        raise NotImplementedError

    # Ingest (direct: the answer carries one receipt per item).

    def post_traces(self, traces: list[JSON]) -> R:
        """Sends traces (or parts of traces) now: ``{"items": [{"id", "status"}]}``."""
        return self._send(Request("POST", "/api/v1/traces", traces, idempotent=True))

    def post_feedback(self, feedback: list[JSON]) -> R:
        """Sends feedback items now (bodies as :mod:`feedloop.feedback` builds them)."""
        return self._send(Request("POST", "/api/v1/feedback", feedback, idempotent=True))

    def post_signals(self, signals: list[JSON]) -> R:
        """Sends implicit signals now (bodies as :func:`feedloop.feedback.signal` builds them)."""
        return self._send(Request("POST", "/api/v1/signals", signals, idempotent=True))

    def ingest(self, traces: list[JSON], feedback: list[JSON]) -> R:
        """Sends traces and feedback in one transaction:
        ``{"traces": [receipt…], "feedback": [receipt…]}``."""
        body = {"traces": traces, "feedback": feedback}
        return self._send(Request("POST", "/api/v1/ingest", body, idempotent=True))

    # Reads.

    def get_trace(self, trace_id: str) -> R:
        """A trace with its spans, feedback and session neighbours."""
        return self._send(Request("GET", _path("/api/v1/traces", trace_id), idempotent=True))

    def list_traces(self, **filters: Any) -> R:
        """One page of traces: ``limit``, ``cursor``, ``order``, ``with_spans`` and the list
        filters (``session_id``, ``environment``, ``negative_feedback``, ``meta.<key>``…; pass
        keys with dots as ``**{"meta.plan": "pro"}``)."""
        return self._send(Request("GET", "/api/v1/traces", params=filters, idempotent=True))

    def list_feedback(self, **filters: Any) -> R:
        """One page of feedback, with the same filters as :meth:`list_traces`."""
        return self._send(Request("GET", "/api/v1/feedback", params=filters, idempotent=True))

    def get_session(self, session_id: str) -> R:
        """A session's traces in order with their feedback, and its timeline."""
        return self._send(Request("GET", _path("/api/v1/sessions", session_id), idempotent=True))

    def search(
        self,
        text: str | None = None,
        *,
        trace_id: str | None = None,
        k: int | None = None,
        problems_only: bool | None = None,
        filter: dict[str, str] | None = None,
    ) -> R:
        """Traces nearest in meaning to ``text`` (or to the trace ``trace_id``)."""
        body = _without_none(
            text=text, trace_id=trace_id, k=k, problems_only=problems_only, filter=filter
        )
        return self._send(Request("POST", "/api/v1/search", body, idempotent=True))

    def stats(self) -> R:
        """Counts of the project's traces, feedback and more."""
        return self._send(Request("GET", "/api/v1/stats", idempotent=True))

    def project(self) -> R:
        """The key's project and role."""
        return self._send(Request("GET", "/api/v1/project", idempotent=True))

    # Context.

    def get_context(
        self,
        query: str,
        *,
        session_id: str | None = None,
        trace_id: str | None = None,
        metadata: JSON | None = None,
        budget_chars: int | None = None,
        budget_tokens: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> R:
        """The raw answer of ``POST /api/v1/context``: the lessons for ``query`` and the block to
        inject. ``metadata`` is the query's metadata (``environment``, ``model_name``,
        ``prompt_name``, ``tags``…), which lessons' filters match against. ``retry`` replaces
        the client's retry policy for this call (one attempt, say, on a latency-critical
        path)."""
        budget: JSON | None = None
        if budget_chars is not None:
            budget = {"chars": budget_chars}
        elif budget_tokens is not None:
            budget = {"tokens": budget_tokens}
        body = _without_none(
            query=query, session_id=session_id, trace_id=trace_id, metadata=metadata, budget=budget
        )
        return self._send(
            Request("POST", "/api/v1/context", body, idempotent=True, retry=retry)
        )

    # Lessons.

    def create_lesson(
        self,
        title: str,
        *,
        examples: list[str],
        instruction: str | None = None,
        example: JSON | None = None,
        warning: str | None = None,
        threshold: float | None = None,
        filter: JSON | None = None,
        priority: int | None = None,
        status: str | None = None,
        id: str | None = None,
    ) -> R:
        """Creates a lesson: it applies to queries near ``examples`` (and matching ``filter``)
        and injects ``instruction``, a corrected ``example`` (``{"query", "answer"}``) and/or a
        ``warning``. ``status`` is ``proposed`` (default) or ``active``."""
        trigger = _without_none(examples=examples, threshold=threshold, filter=filter)
        action = _without_none(instruction=instruction, example=example, warning=warning)
        body = _without_none(
            id=id, title=title, trigger=trigger, action=action, priority=priority, status=status
        )
        return self._send(Request("POST", "/api/v1/lessons", body))

    def get_lesson(self, lesson_id: str) -> R:
        """One lesson, its current version."""
        return self._send(Request("GET", _path("/api/v1/lessons", lesson_id), idempotent=True))

    def list_lessons(self, *, status: str | None = None, limit: int | None = None) -> R:
        """The project's lessons: ``{"lessons": […]}``."""
        params = _without_none(status=status, limit=limit)
        return self._send(Request("GET", "/api/v1/lessons", params=params, idempotent=True))

    def update_lesson(self, lesson_id: str, version: int, **changes: Any) -> R:
        """Changes a lesson (``title``, ``trigger``, ``action``, ``priority``, ``status``) based on
        its ``version``; a lesson changed since answers 409 and stays as it is."""
        body = {"version": version, **changes}
        return self._send(Request("PATCH", _path("/api/v1/lessons", lesson_id), body))

    def activate_lesson(self, lesson_id: str, version: int) -> R:
        """Approves a lesson: it is injected from now on."""
        return self.update_lesson(lesson_id, version, status="active")

    def retire_lesson(self, lesson_id: str, version: int) -> R:
        """Retires a lesson: it is no longer injected."""
        return self.update_lesson(lesson_id, version, status="retired")

    def lesson_versions(self, lesson_id: str) -> R:
        """Every version of a lesson: ``{"lessons": […]}``."""
        path = _path("/api/v1/lessons", lesson_id, "versions")
        return self._send(Request("GET", path, idempotent=True))

    def lesson_effect(self, lesson_id: str) -> R:
        """A lesson's measured effect: treated against held-out traces."""
        path = _path("/api/v1/lessons", lesson_id, "effect")
        return self._send(Request("GET", path, idempotent=True))

    def lesson_from_feedback(
        self,
        trace_ids: list[str],
        *,
        feedback_ids: list[str] | None = None,
        title: str | None = None,
        priority: int | None = None,
    ) -> R:
        """A proposed lesson made from the feedback on ``trace_ids``."""
        body = _without_none(
            trace_ids=trace_ids, feedback_ids=feedback_ids, title=title, priority=priority
        )
        return self._send(Request("POST", "/api/v1/lessons/from-feedback", body))

    def propose_lessons(self) -> R:
        """Runs the automatic lesson proposals now."""
        return self._send(Request("POST", "/api/v1/lessons/propose", {}))

    # Review queues.

    def create_queue(
        self,
        name: str,
        *,
        rules: list[JSON] | None = None,
        description: str | None = None,
        lock_secs: int | None = None,
        reviewers_required: int | None = None,
    ) -> R:
        """Creates a review queue; each rule is ``{"filter": {list filters}, "sampling_rate"}``."""
        body = _without_none(
            name=name,
            rules=rules,
            description=description,
            lock_secs=lock_secs,
            reviewers_required=reviewers_required,
        )
        return self._send(Request("POST", "/api/v1/queues", body))

    def list_queues(self) -> R:
        """The project's queues: ``{"queues": […]}``."""
        return self._send(Request("GET", "/api/v1/queues", idempotent=True))

    def get_queue(self, name: str) -> R:
        """One queue with its rules and counts."""
        return self._send(Request("GET", _path("/api/v1/queues", name), idempotent=True))

    def delete_queue(self, name: str) -> R:
        """Deletes a queue and its items."""
        return self._send(Request("DELETE", _path("/api/v1/queues", name), idempotent=True))

    def enqueue(self, queue: str, trace_ids: list[str], *, author: str) -> R:
        """Puts traces into a queue by hand (those already in it stay as they are)."""
        body = {"trace_ids": trace_ids, "author": author}
        path = _path("/api/v1/queues", queue, "items")
        return self._send(Request("POST", path, body, idempotent=True))

    def list_queue_items(
        self,
        queue: str,
        *,
        state: str | None = None,
        assignee: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> R:
        """A queue's items by priority: ``{"items": […], "next_cursor"}``."""
        params = _without_none(state=state, assignee=assignee, limit=limit, cursor=cursor)
        path = _path("/api/v1/queues", queue, "items")
        return self._send(Request("GET", path, params=params, idempotent=True))

    def reserve(self, queue: str, reviewer: str) -> R:
        """Reserves the highest-priority item for ``reviewer``: ``{"item": … or None}``."""
        path = _path("/api/v1/queues", queue, "reserve")
        return self._send(Request("POST", path, {"reviewer": reviewer}))

    def act(self, queue: str, item_id: int | str, action: str, *, author: str, **fields: Any) -> R:
        """One action on a queue item (``resolve``, ``dismiss``, ``label``, ``correct``,
        ``promote``, ``add_to_dataset``…) with that action's fields."""
        path = _path("/api/v1/queues", queue, "items", str(item_id), "actions")
        return self._send(Request("POST", path, {"action": action, "author": author, **fields}))

    def item_history(self, queue: str, item_id: int | str) -> R:
        """Every action on an item, with author and time."""
        path = _path("/api/v1/queues", queue, "items", str(item_id), "history")
        return self._send(Request("GET", path, idempotent=True))

    # Datasets.

    def create_dataset(
        self, name: str, *, description: str | None = None, author: str | None = None
    ) -> R:
        """Creates a dataset."""
        body = _without_none(name=name, description=description, author=author)
        return self._send(Request("POST", "/api/v1/datasets", body))

    def list_datasets(self) -> R:
        """The project's datasets: ``{"datasets": […]}``."""
        return self._send(Request("GET", "/api/v1/datasets", idempotent=True))

    def get_dataset(self, name: str) -> R:
        """One dataset with its counts."""
        return self._send(Request("GET", _path("/api/v1/datasets", name), idempotent=True))

    def add_dataset_items(
        self, name: str, items: list[JSON], *, author: str | None = None
    ) -> R:
        """Adds items (``{"input", "ideal_output", "rejected_output", "trace_id"…}``), all or
        nothing. An item with an ``id`` (or a ``trace_id``) is added once however often sent."""
        body = _without_none(items=items, author=author)
        path = _path("/api/v1/datasets", name, "items")
        return self._send(Request("POST", path, body, idempotent=True))

    def list_dataset_items(
        self,
        name: str,
        *,
        version: int | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> R:
        """One page of a dataset's items (of a frozen ``version``, or as they are now)."""
        params = _without_none(version=version, limit=limit, after=after)
        path = _path("/api/v1/datasets", name, "items")
        return self._send(Request("GET", path, params=params, idempotent=True))

    def add_dataset_items_from_feedback(
        self, name: str, filter: dict[str, Any], *, max_traces: int | None = None
    ) -> R:
        """Adds the traces that match a feedback ``filter`` (list filters), in bulk."""
        body = _without_none(filter=filter, max_traces=max_traces)
        path = _path("/api/v1/datasets", name, "items", "from-feedback")
        return self._send(Request("POST", path, body, idempotent=True))

    def create_dataset_version(self, name: str, *, note: str | None = None) -> R:
        """Freezes the dataset's items as a new version."""
        path = _path("/api/v1/datasets", name, "versions")
        return self._send(Request("POST", path, _without_none(note=note)))

    def export_dataset(self, name: str, *, format: str = "openai", **options: Any) -> R:
        """A dataset exported (``format``: ``openai``, ``sft``, ``preference``, ``csv``; options
        ``version``, ``split``, ``seed``, ``dedup``, ``pii``…): ``{"text": the file}``."""
        path = _path("/api/v1/datasets", name, "export")
        params = {"format": format, **options}
        return self._send(Request("GET", path, params=params, idempotent=True))
