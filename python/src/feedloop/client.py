"""The clients: :class:`Feedloop` (blocking) and :class:`AsyncFeedloop` (asyncio).

Both log in the background: traces, feedback and signals go into a bounded queue that a worker
thread sends in batches (see :mod:`feedloop._batcher`), so logging never waits for the network,
and a flush at exit sends what is left. Everything else (context, lessons, queues, datasets,
reads) is a direct call: blocking in :class:`Feedloop`, awaitable in :class:`AsyncFeedloop`.
"""

from __future__ import annotations

import asyncio
import atexit
import os
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx

from . import feedback as bodies
from ._api import Endpoints
from ._batcher import Batcher, BatcherStats, DeliveryError
from ._ids import new_id, now_rfc3339
from ._transport import JSON, AsyncTransport, Request, RetryPolicy, SyncTransport
from .context import InjectedContext
from .feedback import FeedbackFields
from .tracing import Span, Trace, current_trace, observe, to_text

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_BASE_URL = "http://127.0.0.1:7700"


def _settings(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    base_url = base_url or os.environ.get("FEEDLOOP_BASE_URL") or DEFAULT_BASE_URL
    api_key = api_key or os.environ.get("FEEDLOOP_API_KEY")
    if not api_key:
        raise ValueError("api_key is required: pass api_key=… or set FEEDLOOP_API_KEY")
    return base_url, api_key


class _Recorder:
    """What both clients share: recording traces and queueing feedback and signals."""

    _batcher: Batcher

    def _start_batcher(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_secs: float,
        max_queue_items: int,
        max_batch_items: int,
        flush_interval_secs: float,
        max_retry_secs: float,
        flush_on_exit: bool,
        shutdown_timeout_secs: float,
    ) -> None:
        transport = SyncTransport(
            base_url, api_key, timeout_secs=timeout_secs, retry=RetryPolicy(max_attempts=1)
        )
        self._batcher = Batcher(
            transport,
            max_queue_items=max_queue_items,
            max_batch_items=max_batch_items,
            flush_interval_secs=flush_interval_secs,
            max_retry_secs=max_retry_secs,
        )
        self._batch_transport = transport
        self._shutdown_timeout_secs = shutdown_timeout_secs
        self._closed = False
        if flush_on_exit:
            atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        self._close_batcher(self._shutdown_timeout_secs)

    def _close_batcher(self, timeout_secs: float | None) -> bool:
        if self._closed:
            return True
        self._closed = True
        atexit.unregister(self._at_exit)
        delivered = self._batcher.close(timeout_secs)
        self._batch_transport.close()
        return delivered

    # Traces.

    def trace(self, *, id: str | None = None, input: Any = None, **fields: Any) -> Trace:
        """A trace to record: use it as a context manager (``with client.trace(input=q) as t:
        … t.output = answer``); it is sent when the block ends, with its spans, its duration and
        the error that left the block, if any. ``fields`` are trace fields (``session_id``,
        ``user_id``, ``environment``, ``context``, ``model``, ``usage``, ``tags``,
        ``metadata``…); ``id`` is generated when absent."""
        return Trace(self._submit_trace, id=id, input=input, **fields)

    def span(self, name: str, *, kind: str = "chain", input: Any = None, **attributes: Any) -> Span:
        """A span of the trace open in this context (``kind``: llm, retrieval, tool, chain,
        embedding, other); use it as a context manager. Raises ``RuntimeError`` outside a
        trace."""
        trace = current_trace()
        if trace is None:
            raise RuntimeError("no feedloop trace is open here: use client.trace() around it")
        return trace.span(name, kind=kind, input=input, **attributes)

    def observe(
        self,
        name: str | None = None,
        *,
        kind: str = "chain",
        capture_input: bool = True,
        capture_output: bool = True,
        **trace_fields: Any,
    ) -> Callable[[F], F]:
        """A decorator that records each call of a function (sync or async): a span of the
        trace open in this context, or a new trace of its own; the arguments become the input,
        the return value the output, an exception the error (and is re-raised)."""
        return observe(
            self._submit_trace,
            name=name,
            kind=kind,
            capture_input=capture_input,
            capture_output=capture_output,
            trace_fields=trace_fields,
        )

    def log_trace(
        self,
        *,
        id: str | None = None,
        input: Any = None,
        output: Any = None,
        spans: list[JSON] | None = None,
        **fields: Any,
    ) -> str:
        """Queues a finished trace given as fields (the API's trace body); returns its id."""
        body: JSON = {key: value for key, value in fields.items() if value is not None}
        if isinstance(body.get("model"), str):
            body["model"] = {"name": body["model"]}
        body["id"] = id or new_id("tr_")
        body.setdefault("started_at", now_rfc3339())
        if input is not None:
            body["input"] = to_text(input)
        if output is not None:
            body["output"] = to_text(output)
        if spans:
            body["spans"] = spans
        self._submit_trace(body)
        return str(body["id"])

    def _submit_trace(self, body: JSON) -> None:
        self._batcher.submit("trace", body)

    # Feedback and signals, queued.

    def log_feedback(self, body: JSON) -> str:
        """Queues a feedback body (see :mod:`feedloop.feedback`); returns its id."""
        if "id" not in body:
            body = {**body, "id": new_id("fb_")}
        self._batcher.submit("feedback", body)
        return str(body["id"])

    def rate(
        self,
        trace_id: str,
        value: float,
        *,
        min: float | None = None,
        max: float | None = None,
        compared_to: str | None = None,
        **fields: Unpack[FeedbackFields],
    ) -> str:
        """Queues a rating (thumbs: 0 down, 1 up; or a scale with ``min``/``max``; or a
        pairwise preference against ``compared_to``); returns the feedback id."""
        body = bodies.rating(trace_id, value, min=min, max=max, compared_to=compared_to, **fields)
        return self.log_feedback(body)

    def categorize(
        self, trace_id: str, categories: list[str], **fields: Unpack[FeedbackFields]
    ) -> str:
        """Queues reasons from the project's taxonomy; returns the feedback id."""
        return self.log_feedback(bodies.category(trace_id, categories, **fields))

    def comment(self, trace_id: str, text: str, **fields: Unpack[FeedbackFields]) -> str:
        """Queues a free-text comment; returns the feedback id."""
        return self.log_feedback(bodies.comment(trace_id, text, **fields))

    def correct(
        self,
        trace_id: str,
        text: str,
        *,
        kind: str | None = None,
        **fields: Unpack[FeedbackFields],
    ) -> str:
        """Queues a correction (``kind``: answer, rewording, missing_fact); returns its id."""
        return self.log_feedback(bodies.correction(trace_id, text, kind=kind, **fields))

    def annotate(
        self,
        trace_id: str,
        start: int,
        end: int,
        quote: str,
        *,
        comment: str | None = None,
        tags: list[str] | None = None,
        categories: list[str] | None = None,
        **fields: Unpack[FeedbackFields],
    ) -> str:
        """Queues an inline annotation of the output (range, quote, comment, tags); returns
        its id."""
        body = bodies.annotation(
            trace_id, start, end, quote, comment=comment, tags=tags, categories=categories, **fields
        )
        return self.log_feedback(body)

    def signal(self, trace_id: str, type: str, **options: Any) -> str:
        """Queues an implicit signal (``copy``, ``regenerate``, ``edit``, ``share``, ``dwell``,
        ``abandon`` or a custom type; options as :func:`feedloop.feedback.signal` takes them);
        returns its id."""
        body = bodies.signal(trace_id, type, **options)
        self._batcher.submit("signal", body)
        return str(body["id"])

    # The queue.

    @property
    def queue_stats(self) -> BatcherStats:
        """Counters of the background queue: sent, dropped, failed, pending."""
        return self._batcher.stats

    @property
    def delivery_errors(self) -> list[DeliveryError]:
        """The last items (up to 100) the server rejected or that could not be delivered."""
        return list(self._batcher.errors)

    def flush(self, timeout_secs: float | None = None) -> bool:
        """Sends everything queued and waits for it (``False`` if ``timeout_secs`` ran out)."""
        return self._batcher.flush(timeout_secs)


class Feedloop(Endpoints[JSON], _Recorder):
    """The blocking client.

    ``Feedloop(base_url="http://127.0.0.1:7700", api_key="fl_sk_…")`` (or ``FEEDLOOP_BASE_URL``
    and ``FEEDLOOP_API_KEY`` from the environment). Direct calls are retried per ``retry``
    where that is safe; queued items (traces, feedback, signals) are retried for up to
    ``max_retry_secs``. At most ``max_queue_items`` wait in memory; past that, new ones are
    dropped and counted (``client.queue_stats.dropped``). The queue is flushed at interpreter exit
    (``flush_on_exit``) and by :meth:`close`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_secs: float = 10.0,
        retry: RetryPolicy | None = None,
        max_queue_items: int = 10_000,
        max_batch_items: int = 100,
        flush_interval_secs: float = 0.5,
        max_retry_secs: float = 300.0,
        flush_on_exit: bool = True,
        shutdown_timeout_secs: float = 10.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        base_url, api_key = _settings(base_url, api_key)
        self.base_url = base_url
        self._transport = SyncTransport(
            base_url,
            api_key,
            timeout_secs=timeout_secs,
            retry=retry or RetryPolicy(),
            http_client=http_client,
        )
        self._start_batcher(
            base_url,
            api_key,
            timeout_secs=timeout_secs,
            max_queue_items=max_queue_items,
            max_batch_items=max_batch_items,
            flush_interval_secs=flush_interval_secs,
            max_retry_secs=max_retry_secs,
            flush_on_exit=flush_on_exit,
            shutdown_timeout_secs=shutdown_timeout_secs,
        )

    def _send(self, request: Request) -> JSON:
        return self._transport.send(request)

    def context(
        self,
        query: str,
        *,
        session_id: str | None = None,
        trace_id: str | None = None,
        metadata: JSON | None = None,
        budget_chars: int | None = None,
        budget_tokens: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> InjectedContext:
        """The lessons for ``query`` and the block to inject into the system prompt
        (``str(context)`` is the block; empty when nothing applies or in the hold-out)."""
        answer = self.get_context(
            query,
            session_id=session_id,
            trace_id=trace_id,
            metadata=metadata,
            budget_chars=budget_chars,
            budget_tokens=budget_tokens,
            retry=retry,
        )
        return InjectedContext.from_answer(answer)

    def close(self, timeout_secs: float | None = None) -> bool:
        """Flushes the queue (up to ``timeout_secs``, default ``shutdown_timeout_secs``) and
        closes the connections; ``True`` when everything queued was handled in time."""
        delivered = self._close_batcher(
            self._shutdown_timeout_secs if timeout_secs is None else timeout_secs
        )
        self._transport.close()
        return delivered

    def __enter__(self) -> Feedloop:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncFeedloop(Endpoints[Awaitable[JSON]], _Recorder):
    """The asyncio client: every API call is awaitable (``await client.get_trace(id)``); traces,
    feedback and signals are queued without waiting, as in :class:`Feedloop` (whose options it
    takes). Close it with ``await client.aclose()`` or ``async with AsyncFeedloop(…)``."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_secs: float = 10.0,
        retry: RetryPolicy | None = None,
        max_queue_items: int = 10_000,
        max_batch_items: int = 100,
        flush_interval_secs: float = 0.5,
        max_retry_secs: float = 300.0,
        flush_on_exit: bool = True,
        shutdown_timeout_secs: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        base_url, api_key = _settings(base_url, api_key)
        self.base_url = base_url
        self._transport = AsyncTransport(
            base_url,
            api_key,
            timeout_secs=timeout_secs,
            retry=retry or RetryPolicy(),
            http_client=http_client,
        )
        self._start_batcher(
            base_url,
            api_key,
            timeout_secs=timeout_secs,
            max_queue_items=max_queue_items,
            max_batch_items=max_batch_items,
            flush_interval_secs=flush_interval_secs,
            max_retry_secs=max_retry_secs,
            flush_on_exit=flush_on_exit,
            shutdown_timeout_secs=shutdown_timeout_secs,
        )

    def _send(self, request: Request) -> Awaitable[JSON]:
        return self._transport.send(request)

    async def context(
        self,
        query: str,
        *,
        session_id: str | None = None,
        trace_id: str | None = None,
        metadata: JSON | None = None,
        budget_chars: int | None = None,
        budget_tokens: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> InjectedContext:
        """The lessons for ``query`` and the block to inject (see :meth:`Feedloop.context`)."""
        answer = await self.get_context(
            query,
            session_id=session_id,
            trace_id=trace_id,
            metadata=metadata,
            budget_chars=budget_chars,
            budget_tokens=budget_tokens,
            retry=retry,
        )
        return InjectedContext.from_answer(answer)

    async def aflush(self, timeout_secs: float | None = None) -> bool:
        """:meth:`flush` without blocking the event loop."""
        return await asyncio.to_thread(self._batcher.flush, timeout_secs)

    async def aclose(self, timeout_secs: float | None = None) -> bool:
        """Flushes the queue (without blocking the event loop) and closes the connections."""
        timeout = self._shutdown_timeout_secs if timeout_secs is None else timeout_secs
        delivered = await asyncio.to_thread(self._close_batcher, timeout)
        await self._transport.aclose()
        return delivered

    async def __aenter__(self) -> AsyncFeedloop:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
