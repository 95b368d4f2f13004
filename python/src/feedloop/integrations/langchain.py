"""LangChain: a callback handler that records runs as feedloop traces, and runnables that put
the lessons for a query into a prompt template (context injection through prompt templates).

>>> from feedloop.integrations.langchain import FeedloopCallbackHandler, with_feedloop_context
>>> handler = FeedloopCallbackHandler(client, session_id="chat-42")          # doctest: +SKIP
>>> chain = with_feedloop_context(prompt, client, query_key="question") | model
>>> chain.invoke({"question": "How do I reset my PIN?"}, config={"callbacks": [handler]})
>>> handler.last_trace_id                                   # for feedback about this answer

A root run (one ``invoke``) becomes a trace whose id is derived from the run id; each run inside
it (chains, chat models, LLMs, tools, retrievers) becomes a span under its parent run, with
input, output, timing and errors. The first chat model's messages become the trace's context,
its model name and token usage the trace's. A run that starts inside an open feedloop trace
(``with client.trace(…)``) adds its spans to that trace instead.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.outputs import LLMResult
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda

from ..client import AsyncFeedloop, Feedloop
from ..context import InjectedContext
from ..tracing import Span, Trace, current_trace, to_json

TAG = "langchain"

#: LangChain message types as chat roles.
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def _message(message: BaseMessage) -> dict[str, str]:
    content = message.content if isinstance(message.content, str) else json.dumps(message.content)
    return {"role": _ROLES.get(message.type, message.type), "content": content}


def _text(value: Any) -> Any:
    """A run's input or output as readable as it gets: a message's text, a rendered prompt, a
    lone string of a dict or a usual key's (``input``, ``question``…); else the value."""
    if isinstance(value, BaseMessage):
        return value.content if isinstance(value.content, str) else to_json(value.content)
    if isinstance(value, PromptValue):
        return value.to_string()
    if isinstance(value, dict):
        strings = [v for v in value.values() if isinstance(v, str)]
        if len(value) == 1 and len(strings) == 1:
            return strings[0]
        for key in ("input", "question", "query", "output", "text"):
            if isinstance(value.get(key), str):
                return value[key]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """A nested value: messages as ``{"role", "content"}``, the rest as it is."""
    if isinstance(value, BaseMessage):
        return _message(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _name(serialized: dict[str, Any] | None, kwargs: dict[str, Any], default: str) -> str:
    if kwargs.get("name"):
        return str(kwargs["name"])
    if serialized:
        if serialized.get("name"):
            return str(serialized["name"])
        ids = serialized.get("id")
        if isinstance(ids, list) and ids:
            return str(ids[-1])
    return default


class _Run:
    def __init__(self, trace: Trace, span: Span, owns_trace: bool) -> None:
        self.trace = trace
        self.span = span
        self.owns_trace = owns_trace


class FeedloopCallbackHandler(BaseCallbackHandler):
    """Records LangChain runs in feedloop (pass it in ``config={"callbacks": [handler]}``).

    ``session_id``, ``user_id``, ``environment``, ``tags`` and ``metadata`` go on every trace it
    makes. :attr:`last_trace_id` is the trace of the last root run, for feedback.
    """

    raise_error = False

    def __init__(
        self,
        client: Feedloop | AsyncFeedloop,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        environment: str | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._client = client
        self._trace_fields: dict[str, Any] = {
            "session_id": session_id,
            "user_id": user_id,
            "environment": environment,
            "tags": [*(tags or []), TAG],
            "metadata": dict(metadata or {}),
        }
        self._runs: dict[UUID, _Run] = {}
        self._lock = threading.Lock()
        self.last_trace_id: str | None = None

    @staticmethod
    def trace_id_for(run_id: UUID) -> str:
        """The feedloop trace id of a root run."""
        return f"lc_{run_id.hex}"

    def _start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str,
        kind: str,
        input: Any,
        metadata: dict[str, Any] | None = None,
    ) -> _Run:
        with self._lock:
            parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
            if parent is not None:
                trace, owns, parent_id = parent.trace, False, parent.span.id
            else:
                open_trace = current_trace()
                if open_trace is not None:
                    trace, owns, parent_id = open_trace, False, None
                else:
                    trace = self._client.trace(
                        id=self.trace_id_for(run_id), input=_text(input), **self._trace_fields
                    )
                    owns, parent_id = True, None
                self.last_trace_id = trace.id
            attributes = {"langchain.run_id": str(run_id)}
            if metadata:
                attributes["langchain.metadata"] = to_json(metadata)
            span = Span(
                trace,
                name,
                kind=kind,
                input=_text(input),
                attributes=attributes,
                id=f"lc_{run_id.hex}",
                parent_id=parent_id,
            )
            run = _Run(trace, span, owns)
            self._runs[run_id] = run
            return run

    def _end(self, run_id: UUID, output: Any = None, error: BaseException | None = None) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is None:
            return
        if output is not None:
            run.span.output = _text(output)
        run.span.end(error)
        if run.owns_trace:
            if output is not None:
                run.trace.output = _text(output)
            run.trace.end(error)

    # Chains.

    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A chain (or any runnable) started."""
        self._start(run_id, parent_run_id, _name(serialized, kwargs, "chain"), "chain", inputs)

    def on_chain_end(
        self,
        outputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A chain ended with ``outputs``."""
        self._end(run_id, outputs)

    def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A chain failed."""
        self._end(run_id, error=error)

    # Models.

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A chat model was called with ``messages``."""
        sent = [_message(m) for m in (messages[0] if messages else [])]
        query = next((m["content"] for m in reversed(sent) if m["role"] == "user"), None)
        run = self._start(
            run_id, parent_run_id, _name(serialized, kwargs, "chat_model"), "llm", sent, metadata
        )
        model = self._model_name(kwargs, metadata)
        if model:
            run.span.set_attribute("model", model)
        if run.trace.get("context") is None:
            system = next((m["content"] for m in sent if m["role"] == "system"), None)
            run.trace.update(
                context={"system_prompt": system, "messages": sent},
                model={"name": model} if model else None,
            )
            if query is not None and (run.owns_trace or run.trace.input is None):
                run.trace.input = query

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A text-completion model was called with ``prompts``."""
        prompt = prompts[0] if len(prompts) == 1 else prompts
        run = self._start(
            run_id, parent_run_id, _name(serialized, kwargs, "llm"), "llm", prompt, metadata
        )
        model = self._model_name(kwargs, metadata)
        if model:
            run.span.set_attribute("model", model)

    @staticmethod
    def _model_name(kwargs: dict[str, Any], metadata: dict[str, Any] | None) -> str | None:
        params = kwargs.get("invocation_params") or {}
        for value in (
            params.get("model"),
            params.get("model_name"),
            (metadata or {}).get("ls_model_name"),
        ):
            if isinstance(value, str) and value:
                return value
        return None

    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """A model answered: its text, and token usage where the model reports it."""
        generations = response.generations[0] if response.generations else []
        text = generations[0].text if generations else None
        usage = self._usage(response)
        with self._lock:
            run = self._runs.get(run_id)
        if run is not None and usage:
            run.span.set_attribute("usage", usage)
            run.trace.update(usage=usage)
        self._end(run_id, text)

    @staticmethod
    def _usage(response: LLMResult) -> dict[str, int]:
        token_usage = (response.llm_output or {}).get("token_usage") or {}
        usage: dict[str, int] = {}
        for ours, theirs in (
            ("input_tokens", "prompt_tokens"),
            ("output_tokens", "completion_tokens"),
            ("total_tokens", "total_tokens"),
        ):
            if isinstance(token_usage.get(theirs), int):
                usage[ours] = token_usage[theirs]
        if usage:
            return usage
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                metadata = getattr(message, "usage_metadata", None)
                if metadata:
                    return {
                        key: int(metadata[key])
                        for key in ("input_tokens", "output_tokens", "total_tokens")
                        if key in metadata
                    }
        return usage

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """A model call failed."""
        self._end(run_id, error=error)

    # Tools and retrievers.

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A tool was called."""
        name = _name(serialized, kwargs, "tool")
        self._start(run_id, parent_run_id, name, "tool", inputs or input_str, metadata)

    def on_tool_end(
        self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        """A tool answered."""
        self._end(run_id, output)

    def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A tool failed."""
        self._end(run_id, error=error)

    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A retriever was asked ``query``."""
        name = _name(serialized, kwargs, "retriever")
        self._start(run_id, parent_run_id, name, "retrieval", query, metadata)

    def on_retriever_end(
        self,
        documents: Sequence[Document],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A retriever found ``documents`` (kept as the span's output and the trace's
        documents)."""
        found = [{"content": d.page_content, "metadata": to_json(d.metadata)} for d in documents]
        with self._lock:
            run = self._runs.get(run_id)
        if run is not None:
            context = dict(run.trace.get("context") or {})
            if "documents" not in context:
                context["documents"] = found
                run.trace.update(context=context)
        self._end(run_id, found)

    def on_retriever_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A retriever failed."""
        self._end(run_id, error=error)


# Context injection.


def _query(inputs: Any, query_key: str) -> str:
    if isinstance(inputs, str):
        return inputs
    if isinstance(inputs, dict) and isinstance(inputs.get(query_key), str):
        return str(inputs[query_key])
    raise ValueError(f"the input has no text under {query_key!r} to look lessons up for")


def _record(context: InjectedContext) -> None:
    trace = current_trace()
    if trace is not None:
        trace.update(metadata=context.trace_metadata())


def feedloop_context(
    client: Feedloop | AsyncFeedloop,
    *,
    query_key: str = "question",
    variable: str = "feedloop_context",
    **context_options: Any,
) -> Runnable[dict[str, Any], dict[str, Any]]:
    """A runnable that adds the lessons' block for ``inputs[query_key]`` to its input dict as
    ``inputs[variable]`` (empty when nothing applies), for a prompt template that uses
    ``{feedloop_context}``. ``context_options`` go to ``client.context`` (``session_id``,
    ``metadata``, ``budget_chars``…)."""

    def add(inputs: dict[str, Any]) -> dict[str, Any]:
        if isinstance(client, AsyncFeedloop):
            raise TypeError("use ainvoke with an AsyncFeedloop client")
        context = client.context(_query(inputs, query_key), **context_options)
        _record(context)
        return {**inputs, variable: context.block}

    async def aadd(inputs: dict[str, Any]) -> dict[str, Any]:
        query = _query(inputs, query_key)
        if isinstance(client, AsyncFeedloop):
            context = await client.context(query, **context_options)
        else:
            import asyncio

            context = await asyncio.to_thread(client.context, query, **context_options)
        _record(context)
        return {**inputs, variable: context.block}

    return RunnableLambda(add, afunc=aadd, name="feedloop_context")


def inject_into_prompt_value(value: PromptValue, block: str) -> PromptValue:
    """A rendered prompt with ``block`` added to its instructions: appended to the first system
    message (after a blank line) or put in front as one; a text prompt gets it in front."""
    if not block:
        return value
    if isinstance(value, ChatPromptValue):
        messages = list(value.messages)
        for index, message in enumerate(messages):
            if isinstance(message, SystemMessage):
                content = message.content
                if isinstance(content, str):
                    new_content: Any = f"{content}\n\n{block}" if content else block
                else:
                    new_content = [*content, {"type": "text", "text": block}]
                messages[index] = message.model_copy(update={"content": new_content})
                return ChatPromptValue(messages=messages)
        return ChatPromptValue(messages=[SystemMessage(content=block), *messages])
    return StringPromptValue(text=f"{block}\n\n{value.to_string()}")


def with_feedloop_context(
    prompt: BasePromptTemplate[Any],
    client: Feedloop | AsyncFeedloop,
    *,
    query_key: str = "question",
    variable: str = "feedloop_context",
    **context_options: Any,
) -> Runnable[dict[str, Any], PromptValue]:
    """``prompt`` with the lessons for ``inputs[query_key]`` injected: through ``{variable}``
    when the template has that variable, or else appended to the rendered system message (as
    feedloop's gateway does). Pipe it into a model: ``with_feedloop_context(prompt, client) |
    model``."""
    add = feedloop_context(client, query_key=query_key, variable=variable, **context_options)
    if variable in prompt.input_variables:
        return add | prompt

    def render(inputs: dict[str, Any]) -> PromptValue:
        block = str(inputs.get(variable) or "")
        rest = {k: v for k, v in inputs.items() if k != variable}
        return inject_into_prompt_value(prompt.invoke(rest), block)

    async def arender(inputs: dict[str, Any]) -> PromptValue:
        block = str(inputs.get(variable) or "")
        rest = {k: v for k, v in inputs.items() if k != variable}
        return inject_into_prompt_value(await prompt.ainvoke(rest), block)

    return add | RunnableLambda(render, afunc=arender, name="feedloop_prompt")
