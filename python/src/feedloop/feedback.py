"""Bodies of feedback of every kind and of implicit signals, as the API takes them.

Each builder gives the item an id chosen here (unless one is passed) and the time of the
judgement, so that sending it twice stores it once. The clients' methods (``client.rate(…)``,
``client.signal(…)``) build with these and queue the item; pass a body to
``client.post_feedback([…])`` to send it at once instead.
"""

from __future__ import annotations

from typing import Any, TypedDict, Unpack

from ._ids import new_id, now_rfc3339
from ._transport import JSON


class FeedbackFields(TypedDict, total=False):
    """Fields every feedback item may carry besides its payload."""

    #: Client-chosen id (generated when absent).
    id: str
    span_id: str
    session_id: str
    #: ``end_user`` (default), ``reviewer``, ``expert`` or ``automatic``.
    source: str
    author: str
    author_role: str
    #: How sure the source is, 0..1.
    confidence: float
    metadata: JSON
    #: When the judgement was made (RFC 3339); now when absent.
    created_at: str


def _body(trace_id: str, kind: str, payload_key: str, payload: Any, fields: FeedbackFields) -> JSON:
    body: JSON = {key: value for key, value in fields.items() if value is not None}
    body.setdefault("id", new_id("fb_"))
    body.setdefault("created_at", now_rfc3339())
    body["trace_id"] = trace_id
    body["kind"] = kind
    body[payload_key] = payload
    return body


def rating(
    trace_id: str,
    value: float,
    *,
    min: float | None = None,
    max: float | None = None,
    compared_to: str | None = None,
    **fields: Unpack[FeedbackFields],
) -> JSON:
    """A rating: thumbs are ``value`` 0 (down) or 1 (up) on the default scale 0..1; a scale
    sets ``min``/``max`` (1..5); a pairwise preference is -1..1 against ``compared_to``."""
    payload: JSON = {"value": value}
    if min is not None:
        payload["min"] = min
    if max is not None:
        payload["max"] = max
    if compared_to is not None:
        payload["compared_to"] = compared_to
    return _body(trace_id, "rating", "rating", payload, fields)


def category(trace_id: str, categories: list[str], **fields: Unpack[FeedbackFields]) -> JSON:
    """Reasons from the project's taxonomy (``too_vague``, ``factually_incorrect``…)."""
    return _body(trace_id, "category", "categories", list(categories), fields)


def comment(trace_id: str, text: str, **fields: Unpack[FeedbackFields]) -> JSON:
    """Free text about the answer."""
    return _body(trace_id, "comment", "comment", text, fields)


def correction(
    trace_id: str, text: str, *, kind: str | None = None, **fields: Unpack[FeedbackFields]
) -> JSON:
    """A better answer (``kind`` ``answer``, the default), a ``rewording`` or a
    ``missing_fact``."""
    payload: JSON = {"text": text}
    if kind is not None:
        payload["kind"] = kind
    return _body(trace_id, "correction", "correction", payload, fields)


def annotation(
    trace_id: str,
    start: int,
    end: int,
    quote: str,
    *,
    comment: str | None = None,
    tags: list[str] | None = None,
    categories: list[str] | None = None,
    **fields: Unpack[FeedbackFields],
) -> JSON:
    """An inline mark on the output: characters ``start``..``end`` (end exclusive, Unicode code
    points), the ``quote`` they hold, and an optional comment, tags and categories."""
    payload: JSON = {"start": start, "end": end, "quote": quote}
    if comment is not None:
        payload["comment"] = comment
    if tags:
        payload["tags"] = list(tags)
    if categories:
        payload["categories"] = list(categories)
    return _body(trace_id, "annotation", "annotation", payload, fields)


def signal(
    trace_id: str,
    type: str,
    *,
    id: str | None = None,
    span_id: str | None = None,
    session_id: str | None = None,
    author: str | None = None,
    value: float | None = None,
    range: tuple[int, int] | None = None,
    edited_text: str | None = None,
    before_complete: bool | None = None,
    details: JSON | None = None,
    confidence: float | None = None,
    metadata: JSON | None = None,
    created_at: str | None = None,
) -> JSON:
    """An implicit signal (``POST /api/v1/signals``): ``copy`` (optional ``range`` of the
    output), ``regenerate``, ``edit`` (``edited_text``), ``share``, ``dwell`` (``value`` in
    milliseconds), ``abandon`` (``before_complete``), or a custom type the project declared."""
    body: JSON = {
        "id": id or new_id("sg_"),
        "trace_id": trace_id,
        "type": type,
        "created_at": created_at or now_rfc3339(),
    }
    optional: JSON = {
        "span_id": span_id,
        "session_id": session_id,
        "author": author,
        "value": value,
        "edited_text": edited_text,
        "before_complete": before_complete,
        "details": details,
        "confidence": confidence,
        "metadata": metadata,
    }
    body.update({key: v for key, v in optional.items() if v is not None})
    if range is not None:
        body["range"] = {"start": range[0], "end": range[1]}
    return body
