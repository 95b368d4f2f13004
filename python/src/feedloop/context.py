"""Context injection: the answer of ``POST /api/v1/context`` and putting its block into a chat
prompt, the way feedloop's gateway does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._transport import JSON

#: Roles whose message carries the instructions (``developer`` is the newer name of ``system``).
SYSTEM_ROLES = ("system", "developer")


@dataclass(frozen=True)
class InjectedContext:
    """The lessons that apply to a query and the block to put into the system prompt.

    ``block`` is empty when nothing is to be injected: no lesson applies, or the request is in
    the hold-out (``holdout``: lessons are recorded, not injected, so their effect can be
    measured). Log ``injection_id`` with the trace (metadata ``feedloop.injection_id``;
    :meth:`trace_metadata` gives the entries).
    """

    block: str
    injection_id: str | None
    holdout: bool
    lessons: list[JSON] = field(default_factory=list)
    raw: JSON = field(default_factory=dict)

    @classmethod
    def from_answer(cls, answer: JSON) -> InjectedContext:
        """Reads the server's answer."""
        holdout = bool(answer.get("holdout", False))
        block = answer.get("block") or ""
        return cls(
            block="" if holdout else str(block),
            injection_id=answer.get("injection_id"),
            holdout=holdout,
            lessons=list(answer.get("lessons") or []),
            raw=answer,
        )

    def __str__(self) -> str:
        return self.block

    @property
    def lesson_ids(self) -> list[str]:
        """Ids of the lessons that were chosen (injected or held out)."""
        return [str(applied["lesson"]["id"]) for applied in self.lessons if "lesson" in applied]

    def trace_metadata(self) -> JSON:
        """The trace metadata that lets feedloop measure the lessons' effect."""
        metadata: JSON = {}
        if self.injection_id:
            metadata["feedloop.injection_id"] = self.injection_id
        if self.lessons:
            metadata["feedloop.lessons"] = self.lesson_ids
        if self.holdout:
            metadata["feedloop.holdout"] = True
        return metadata


def message_text(content: Any) -> str:
    """The text of a chat message's content: the string, or its text parts joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        return "\n".join(texts)
    return ""


def last_user_text(messages: list[Any]) -> str | None:
    """The text of the last user message: the query lessons are looked up for."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    return None


def inject_system_block(messages: list[Any], block: str) -> list[Any]:
    """A copy of chat ``messages`` with ``block`` appended to the first system (or developer)
    message after a blank line, or as a new system message in front when there is none; list
    contents get a text part of their own. The input list is left as it is."""
    if not block:
        return list(messages)
    out = [dict(m) if isinstance(m, dict) else m for m in messages]
    for message in out:
        if isinstance(message, dict) and message.get("role") in SYSTEM_ROLES:
            content = message.get("content")
            if isinstance(content, str) and content:
                message["content"] = f"{content}\n\n{block}"
            elif isinstance(content, list):
                message["content"] = [*content, {"type": "text", "text": block}]
            else:
                message["content"] = block
            return out
    return [{"role": "system", "content": block}, *out]
