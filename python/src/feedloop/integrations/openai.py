"""A wrapper of the ``openai`` client that traces chat completions and injects lessons: an
in-process alternative to feedloop's gateway (the app talks to its model provider directly).

>>> from openai import OpenAI
>>> from feedloop import Feedloop
>>> from feedloop.integrations.openai import wrap_openai, last_trace_id
>>> client = wrap_openai(OpenAI(), Feedloop())                      # doctest: +SKIP
>>> reply = client.chat.completions.create(model="gpt-4o-mini", messages=[…],
...                                        feedloop_session_id="chat-42")
>>> trace_id = last_trace_id()                     # for feedback about this answer

Before each call the last user message is looked up with ``POST /api/v1/context``; the block of
the lessons that apply is appended to the system message (or put in front as one), exactly as the
gateway does, and the injection is recorded with the trace so the lessons' effect is measured. A
failed look-up (one try, no retries) never fails the call: it goes out without lessons. The call
is recorded as a span (kind ``llm``) of the trace open in the context, or as a trace of its own;
streamed answers are recorded when the stream ends. Extra keyword arguments of ``create``,
removed before the call: ``feedloop_trace_id``, ``feedloop_session_id``, ``feedloop_user_id``,
``feedloop_metadata``, ``feedloop_tags``, ``feedloop_inject`` (``False`` to skip lessons for
this call).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar, cast

from ..client import AsyncFeedloop, Feedloop
from ..context import InjectedContext, inject_system_block, last_user_text, message_text
from .._ids import new_id
from .._transport import RetryPolicy
from ..errors import FeedloopError
from ..tracing import Span, Trace, current_trace

logger = logging.getLogger("feedloop")

C = TypeVar("C")

TAG = "openai-sdk"

_last_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "feedloop_openai_last_trace_id", default=None
)


def last_trace_id() -> str | None:
    """The id of the trace the last wrapped call in this context was recorded in."""
    return _last_trace_id.get()


def wrap_openai(
    client: C,
    feedloop: Feedloop | AsyncFeedloop,
    *,
    inject_lessons: bool = True,
    session_id: str | None = None,
    user_id: str | None = None,
    environment: str | None = None,
    tags: list[str] | None = None,
    budget_chars: int | None = None,
) -> C:
    """``client`` (an ``openai.OpenAI`` or ``openai.AsyncOpenAI``) with its
    ``chat.completions.create`` traced into ``feedloop`` and, with ``inject_lessons``, given
    the active lessons. The other arguments are defaults for every call's trace."""
    defaults = _Defaults(session_id, user_id, environment, list(tags or []), budget_chars)
    return cast(C, _Client(client, feedloop, inject_lessons, defaults))


class _Defaults:
    def __init__(
        self,
        session_id: str | None,
        user_id: str | None,
        environment: str | None,
        tags: list[str],
        budget_chars: int | None,
    ) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.environment = environment
        self.tags = tags
        self.budget_chars = budget_chars


class _Proxy:
    """Passes every attribute but the ones it overrides to the wrapped object."""

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


class _Client(_Proxy):
    def __init__(
        self, wrapped: Any, feedloop: Feedloop | AsyncFeedloop, inject: bool, defaults: _Defaults
    ) -> None:
        super().__init__(wrapped)
        self.chat = _Chat(wrapped.chat, feedloop, inject, defaults)


class _Chat(_Proxy):
    def __init__(
        self, wrapped: Any, feedloop: Feedloop | AsyncFeedloop, inject: bool, defaults: _Defaults
    ) -> None:
        super().__init__(wrapped)
        self.completions = _Completions(wrapped.completions, feedloop, inject, defaults)


class _Call:
    """One chat completion: the request as changed, and its recording."""

    def __init__(self, feedloop: Feedloop | AsyncFeedloop, defaults: _Defaults, kwargs: Any):
        self.kwargs: dict[str, Any] = dict(kwargs)
        parent = current_trace()
        self.trace_id: str = (
            self.kwargs.pop("feedloop_trace_id", None)
            or (parent.id if parent is not None else None)
            or new_id("tr_")
        )
        self.session_id = self.kwargs.pop("feedloop_session_id", None) or defaults.session_id
        self.user_id = self.kwargs.pop("feedloop_user_id", None) or defaults.user_id
        self.metadata: dict[str, Any] = dict(self.kwargs.pop("feedloop_metadata", None) or {})
        self.tags = [*defaults.tags, *(self.kwargs.pop("feedloop_tags", None) or []), TAG]
        self.inject = self.kwargs.pop("feedloop_inject", True)
        self.defaults = defaults
        self.feedloop = feedloop
        self.messages: list[Any] = list(self.kwargs.get("messages") or [])
        self.query = last_user_text(self.messages)
        self.stream = bool(self.kwargs.get("stream"))
        self.scope: Trace | Span | None = None

    def context_request(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {}
        if self.defaults.environment:
            metadata["environment"] = self.defaults.environment
        if isinstance(self.kwargs.get("model"), str):
            metadata["model_name"] = self.kwargs["model"]
        return {
            "session_id": self.session_id,
            "trace_id": self.trace_id,
            "metadata": metadata or None,
            "budget_chars": self.defaults.budget_chars,
            # One try: when feedloop is down, the model call must not wait for it.
            "retry": RetryPolicy(max_attempts=1),
        }

    def apply(self, context: InjectedContext | None) -> None:
        """Puts the block into the messages and opens the trace or span."""
        if context is not None:
            self.metadata.update(context.trace_metadata())
            if context.block:
                self.messages = inject_system_block(self.messages, context.block)
                self.kwargs["messages"] = self.messages
        parent = current_trace()
        attributes = {"model": self.kwargs.get("model"), "stream": self.stream}
        if parent is not None:
            parent.update(metadata=self.metadata)
            span = parent.span(
                "openai.chat.completions", kind="llm", input=self.messages, **attributes
            )
            self.scope = span
            _last_trace_id.set(parent.id)
            return
        system = next(
            (
                message_text(m.get("content"))
                for m in self.messages
                if isinstance(m, dict) and m.get("role") in ("system", "developer")
            ),
            None,
        )
        trace = self.feedloop.trace(
            id=self.trace_id,
            input=self.query,
            session_id=self.session_id,
            user_id=self.user_id,
            environment=self.defaults.environment,
            context={"system_prompt": system, "messages": _trace_messages(self.messages)},
            model={"name": self.kwargs.get("model"), "provider": "openai"},
            tags=self.tags,
            metadata={**self.metadata, "feedloop.stream": self.stream},
        )
        self.scope = trace
        _last_trace_id.set(trace.id)

    def finish(
        self, output: str | None, model: str | None, usage: Any, error: BaseException | None
    ) -> None:
        scope = self.scope
        if scope is None:
            return
        tokens = _usage(usage)
        if isinstance(scope, Span):
            scope.output = output
            if model:
                scope.set_attribute("response_model", model)
            if tokens:
                scope.set_attribute("usage", tokens)
            scope.end(error)
        else:
            scope.output = output
            fields: dict[str, Any] = {}
            if tokens:
                fields["usage"] = tokens
            if model:
                fields["model"] = {
                    "name": self.kwargs.get("model") or model,
                    "provider": "openai",
                    "version": model,
                }
            scope.update(**fields)
            scope.end(error)

    def finish_response(self, response: Any) -> None:
        output = None
        choices = getattr(response, "choices", None) or []
        if choices:
            message = getattr(choices[0], "message", None)
            output = getattr(message, "content", None)
            tool_calls = getattr(message, "tool_calls", None)
            if output is None and tool_calls:
                output = json.dumps(_dump(tool_calls))
        self.finish(output, getattr(response, "model", None), getattr(response, "usage", None), None)


def _dump(value: Any) -> Any:
    if isinstance(value, list):
        return [_dump(v) for v in value]
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else value


def _usage(usage: Any) -> dict[str, int]:
    if usage is None:
        return {}
    names = {
        "input_tokens": "prompt_tokens",
        "output_tokens": "completion_tokens",
        "total_tokens": "total_tokens",
    }
    out: dict[str, int] = {}
    for ours, theirs in names.items():
        value = usage.get(theirs) if isinstance(usage, dict) else getattr(usage, theirs, None)
        if isinstance(value, int):
            out[ours] = value
    return out


def _trace_messages(messages: list[Any]) -> list[dict[str, str]]:
    out = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message_text(message.get("content"))
        if not content and message.get("tool_calls"):
            content = json.dumps(_dump(message["tool_calls"]))
        out.append({"role": str(message.get("role", "")), "content": content})
    return out


def _context_sync(feedloop: Feedloop, call: _Call) -> InjectedContext | None:
    if not call.inject or call.query is None:
        return None
    try:
        return feedloop.context(call.query, **call.context_request())
    except FeedloopError as error:
        logger.warning("feedloop: no lessons for this call: %s", error)
        return None


async def _context_async(feedloop: Feedloop | AsyncFeedloop, call: _Call) -> InjectedContext | None:
    if not call.inject or call.query is None:
        return None
    try:
        if isinstance(feedloop, AsyncFeedloop):
            return await feedloop.context(call.query, **call.context_request())
        return await asyncio.to_thread(feedloop.context, call.query, **call.context_request())
    except FeedloopError as error:
        logger.warning("feedloop: no lessons for this call: %s", error)
        return None


def _is_async(completions: Any) -> bool:
    """Whether ``completions`` belongs to an asyncio client (``openai.AsyncOpenAI``)."""
    try:
        from openai.resources.chat.completions import AsyncCompletions
    except ImportError:  # pragma: no cover - another openai-shaped client
        AsyncCompletions = ()  # type: ignore[assignment,misc]  # noqa: N806
    if isinstance(completions, AsyncCompletions):
        return True
    return inspect.iscoroutinefunction(inspect.unwrap(completions.create))


class _Completions(_Proxy):
    def __init__(
        self, wrapped: Any, feedloop: Feedloop | AsyncFeedloop, inject: bool, defaults: _Defaults
    ) -> None:
        super().__init__(wrapped)
        self._feedloop = feedloop
        self._inject = inject
        self._defaults = defaults
        self._is_async = _is_async(wrapped)

    def create(self, **kwargs: Any) -> Any:
        """``chat.completions.create``, traced and given the lessons (see the module)."""
        call = _Call(self._feedloop, self._defaults, kwargs)
        call.inject = call.inject and self._inject
        if self._is_async:
            return self._create_async(call)
        if isinstance(self._feedloop, AsyncFeedloop):
            raise TypeError("a blocking openai client needs a blocking feedloop.Feedloop")
        call.apply(_context_sync(self._feedloop, call))
        try:
            response = self._wrapped.create(**call.kwargs)
        except BaseException as error:
            call.finish(None, None, None, error)
            raise
        if call.stream:
            return _Stream(response, call)
        call.finish_response(response)
        return response

    async def _create_async(self, call: _Call) -> Any:
        call.apply(await _context_async(self._feedloop, call))
        try:
            response = await self._wrapped.create(**call.kwargs)
        except BaseException as error:
            call.finish(None, None, None, error)
            raise
        if call.stream:
            return _AsyncStream(response, call)
        call.finish_response(response)
        return response


class _Chunks:
    """What a stream said so far."""

    def __init__(self, call: _Call) -> None:
        self.call = call
        self.parts: list[str] = []
        self.model: str | None = None
        self.usage: Any = None
        self.done = False

    def add(self, chunk: Any) -> None:
        self.model = getattr(chunk, "model", None) or self.model
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        for choice in getattr(chunk, "choices", None) or []:
            delta = getattr(choice, "delta", None)
            text = getattr(delta, "content", None)
            if text and getattr(choice, "index", 0) == 0:
                self.parts.append(text)

    def finish(self, error: BaseException | None = None) -> None:
        if not self.done:
            self.done = True
            self.call.finish("".join(self.parts), self.model, self.usage, error)


class _Stream(_Proxy):
    """A streamed answer, recorded when it is read to the end (or closed)."""

    def __init__(self, wrapped: Any, call: _Call) -> None:
        super().__init__(wrapped)
        self._chunks = _Chunks(call)

    def __iter__(self) -> Iterator[Any]:
        try:
            for chunk in self._wrapped:
                self._chunks.add(chunk)
                yield chunk
        except BaseException as error:
            self._chunks.finish(error)
            raise
        self._chunks.finish()

    def close(self) -> None:
        """Closes the stream and records what was read."""
        self._chunks.finish()
        self._wrapped.close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AsyncStream(_Proxy):
    """A streamed answer of the asyncio client, recorded when it is read to the end."""

    def __init__(self, wrapped: Any, call: _Call) -> None:
        super().__init__(wrapped)
        self._chunks = _Chunks(call)

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for chunk in self._wrapped:
                self._chunks.add(chunk)
                yield chunk
        except BaseException as error:
            self._chunks.finish(error)
            raise
        self._chunks.finish()

    async def close(self) -> None:
        """Closes the stream and records what was read."""
        self._chunks.finish()
        await self._wrapped.close()

    async def __aenter__(self) -> _AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
