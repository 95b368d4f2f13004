"""Recording traces and spans in the application: context managers and a decorator that capture
input, output, timing and errors, and hand the finished trace to the client's batcher.

A trace is sent once, when it ends, with all its spans: one request per trace (batched with
others), and nothing half-written on the server if the process dies in the middle. The current
trace and span live in context variables, so nested calls (``with`` blocks, decorated functions,
the ``openai`` wrapper, the LangChain handler) attach their spans to the right parent, in threads
and in asyncio tasks alike.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from ._ids import new_id, now_rfc3339
from ._transport import JSON

F = TypeVar("F", bound=Callable[..., Any])

#: Receives the body of a finished trace (``POST /api/v1/traces`` form).
Sink = Callable[[JSON], None]

_current_trace: contextvars.ContextVar[Trace | None] = contextvars.ContextVar(
    "feedloop_trace", default=None
)
_current_span: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "feedloop_span", default=None
)

SPAN_KINDS = ("llm", "retrieval", "tool", "chain", "embedding", "other")


def current_trace() -> Trace | None:
    """The trace being recorded in this context (thread or task), if any."""
    return _current_trace.get()


def current_span() -> Span | None:
    """The innermost span being recorded in this context, if any."""
    return _current_span.get()


def to_text(value: Any) -> str | None:
    """A trace's input or output as the server keeps it: text as it is, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(to_json(value), ensure_ascii=False)


def to_json(value: Any) -> Any:
    """``value`` made JSON-safe: objects JSON cannot hold become their ``repr``."""
    try:
        return json.loads(json.dumps(value, default=_fallback, ensure_ascii=False))
    except (TypeError, ValueError):
        return repr(value)


def _fallback(value: Any) -> Any:
    for method in ("model_dump", "dict", "to_dict"):
        dump = getattr(value, method, None)
        if callable(dump):
            try:
                return dump()
            except Exception:  # noqa: BLE001 - any failure falls back to repr
                break
    return repr(value)


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class Span:
    """One step inside a trace (an LLM call, a retrieval, a tool call). Use it as a context
    manager (``with trace.span("search", kind="retrieval") as span:``), or call :meth:`end`."""

    def __init__(
        self,
        trace: Trace,
        name: str,
        *,
        kind: str = "chain",
        input: Any = None,
        attributes: JSON | None = None,
        id: str | None = None,
        parent_id: str | None = None,
    ) -> None:
        if kind not in SPAN_KINDS:
            raise ValueError(f"kind must be one of {', '.join(SPAN_KINDS)}, not {kind!r}")
        self.trace = trace
        self.id = id or new_id("sp_")
        self.parent_id = parent_id
        self.name = name
        self.kind = kind
        self.input = input
        self.output: Any = None
        self.attributes: JSON = dict(attributes or {})
        self.status = "ok"
        self.status_message: str | None = None
        self.started_at = now_rfc3339()
        self.ended_at: str | None = None
        self._started = time.perf_counter()
        self._token: contextvars.Token[Span | None] | None = None

    def set_output(self, output: Any) -> None:
        """Records what the step produced."""
        self.output = output

    def set_attribute(self, key: str, value: Any) -> None:
        """Keeps one attribute with the span (model, parameters, counts…)."""
        self.attributes[key] = value

    def end(self, error: BaseException | str | None = None) -> None:
        """Ends the span now (once); an error marks it failed with the error's text."""
        if self.ended_at is not None:
            return
        if error is not None:
            self.status = "error"
            self.status_message = error if isinstance(error, str) else _error_text(error)
        self.ended_at = now_rfc3339()
        self.attributes.setdefault(
            "duration_ms", round((time.perf_counter() - self._started) * 1000, 3)
        )
        self.trace._add_span(self)

    def to_body(self) -> JSON:
        """The span as the API takes it."""
        body: JSON = {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "started_at": self.started_at,
        }
        if self.parent_id is not None:
            body["parent_id"] = self.parent_id
        if self.input is not None:
            body["input"] = to_json(self.input)
        if self.output is not None:
            body["output"] = to_json(self.output)
        if self.attributes:
            body["attributes"] = to_json(self.attributes)
        if self.status_message is not None:
            body["status_message"] = self.status_message
        if self.ended_at is not None:
            body["ended_at"] = self.ended_at
        return body

    def __enter__(self) -> Span:
        self._token = _current_span.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _current_span.reset(self._token)
            self._token = None
        self.end(exc)

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class Trace:
    """One interaction, recorded until it ends and then sent (in the background) with its spans.

    Use it as a context manager (``with client.trace(input=query) as trace:``): an exception
    leaving the block marks the trace failed and is re-raised; the block's duration becomes
    ``latency_ms``. Set ``trace.output`` (and anything else with :meth:`update`) inside it. The
    trace's ``id`` is known from the start, so feedback can refer to it at once.
    """

    def __init__(self, sink: Sink, *, id: str | None = None, input: Any = None, **fields: Any):
        self.id = id or new_id("tr_")
        self.input = input
        self.output: Any = None
        self._sink = sink
        self._fields: JSON = {}
        self._spans: list[Span] = []
        self.started_at = now_rfc3339()
        self._started = time.perf_counter()
        self._ended = False
        self._token: contextvars.Token[Trace | None] | None = None
        self._span_token: contextvars.Token[Span | None] | None = None
        self.update(**fields)

    def update(self, **fields: Any) -> None:
        """Sets fields of the trace (``session_id``, ``user_id``, ``user_role``, ``environment``,
        ``context``, ``model`` (a name or ``{"name", "provider", "version"}``), ``usage``,
        ``cost_usd``, ``tags``, ``metadata``, ``output``…). Metadata merges key by key and tags
        add up; other fields replace."""
        for key, value in fields.items():
            if value is None:
                continue
            if key == "output":
                self.output = value
            elif key == "input":
                self.input = value
            elif key == "metadata":
                self._fields.setdefault("metadata", {}).update(value)
            elif key == "tags":
                tags = self._fields.setdefault("tags", [])
                tags.extend(tag for tag in value if tag not in tags)
            elif key == "model" and isinstance(value, str):
                self._fields["model"] = {"name": value}
            else:
                self._fields[key] = value

    def get(self, field: str) -> Any:
        """The value of a field set so far (``None`` when unset)."""
        if field in ("input", "output"):
            return getattr(self, field)
        return self._fields.get(field)

    def set_metadata(self, key: str, value: Any) -> None:
        """Keeps one metadata entry with the trace."""
        self.update(metadata={key: value})

    def span(
        self, name: str, *, kind: str = "chain", input: Any = None, **attributes: Any
    ) -> Span:
        """A new span of this trace, child of the span open in this context (if it belongs to
        this trace). Use it as a context manager, or call its ``end``."""
        parent = _current_span.get()
        parent_id = parent.id if parent is not None and parent.trace is self else None
        return Span(self, name, kind=kind, input=input, attributes=attributes, parent_id=parent_id)

    def _add_span(self, span: Span) -> None:
        self._spans.append(span)

    @property
    def spans(self) -> list[Span]:
        """The spans ended so far."""
        return list(self._spans)

    def end(self, error: BaseException | str | None = None) -> None:
        """Ends the trace (once) and hands it to the client to send; an error marks it failed."""
        if self._ended:
            return
        self._ended = True
        if error is not None:
            self._fields["status"] = "error"
            self._fields["error"] = error if isinstance(error, str) else _error_text(error)
        else:
            self._fields.setdefault("status", "ok")
        self._fields.setdefault("latency_ms", round((time.perf_counter() - self._started) * 1000, 3))
        self._sink(self.to_body(ended_at=now_rfc3339()))

    def to_body(self, ended_at: str | None = None) -> JSON:
        """The trace as the API takes it."""
        body: JSON = {"id": self.id, "started_at": self.started_at, **to_json(self._fields)}
        if self.input is not None:
            body["input"] = to_text(self.input)
        if self.output is not None:
            body["output"] = to_text(self.output)
        if ended_at is not None:
            body["ended_at"] = ended_at
        if self._spans:
            body["spans"] = [span.to_body() for span in self._spans]
        return body

    def __enter__(self) -> Trace:
        self._token = _current_trace.set(self)
        # Spans of an enclosing trace are not this trace's parents.
        self._span_token = _current_span.set(None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._span_token is not None:
            _current_span.reset(self._span_token)
            self._span_token = None
        if self._token is not None:
            _current_trace.reset(self._token)
            self._token = None
        self.end(exc)

    async def __aenter__(self) -> Trace:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def _call_input(function: Callable[..., Any], args: tuple[Any, ...], kwargs: JSON) -> Any:
    """The arguments of a call by name (``self`` and ``cls`` left out); a single text argument
    as itself."""
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}
    except (TypeError, ValueError):
        arguments = {"args": list(args), "kwargs": kwargs}
    if len(arguments) == 1:
        (only,) = arguments.values()
        if isinstance(only, str):
            return only
    return arguments


def observe(
    sink: Sink,
    *,
    name: str | None = None,
    kind: str = "chain",
    capture_input: bool = True,
    capture_output: bool = True,
    trace_fields: JSON | None = None,
) -> Callable[[F], F]:
    """The decorator behind :meth:`feedloop.Feedloop.observe` (``sink`` receives finished
    traces)."""

    def decorate(function: F) -> F:
        label: str = name or str(getattr(function, "__qualname__", repr(function)))

        def opened(args: tuple[Any, ...], kwargs: JSON) -> Trace | Span:
            captured = _call_input(function, args, kwargs) if capture_input else None
            trace = _current_trace.get()
            if trace is not None:
                return trace.span(label, kind=kind, input=captured)
            fields = dict(trace_fields or {})
            fields.setdefault("metadata", {})
            fields["metadata"] = {**fields["metadata"], "feedloop.function": label}
            return Trace(sink, input=captured, **fields)

        def record(scope: Trace | Span, result: Any) -> None:
            if capture_output:
                scope.output = result

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with opened(args, kwargs) as scope:
                    result = await function(*args, **kwargs)
                    record(scope, result)
                    return result

            return cast(F, async_wrapper)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with opened(args, kwargs) as scope:
                result = function(*args, **kwargs)
                record(scope, result)
                return result

        return cast(F, wrapper)

    return decorate
