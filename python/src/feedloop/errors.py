"""Errors the client raises: one type for every answer of the server that is not a success."""

from __future__ import annotations

from typing import Any


class FeedloopError(Exception):
    """An error answer from the feedloop server, or a failure to reach it.

    ``status`` is the HTTP status (``None`` when the server could not be reached); ``code``,
    ``message`` and ``field`` come from the server's JSON error body
    (``{"error": {"code", "message", "field"}}``), so ``field`` names the part of the request that
    was wrong (``"feedback[3].rating.value"``).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        field: str | None = None,
        retry_after_secs: float | None = None,
    ) -> None:
        super().__init__(message if status is None else f"{status} {code}: {message}")
        self.message = message
        self.status = status
        self.code = code
        self.field = field
        self.retry_after_secs = retry_after_secs

    @property
    def retryable(self) -> bool:
        """Whether sending the same request again may succeed: the server was unreachable, busy
        (429, 503), timed out (408, 504) or failed (5xx). A 4xx other than 408 and 429 is the
        request's own fault and fails again."""
        if self.status is None:
            return True
        return self.status in (408, 429) or self.status >= 500

    @classmethod
    def from_response(cls, status: int, body: Any, retry_after: str | None) -> FeedloopError:
        """Builds the error from a status, a decoded body (or ``None``) and ``Retry-After``."""
        code, message, field = "http_error", f"the server answered {status}", None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            code = str(error.get("code", code))
            message = str(error.get("message", message))
            field = error.get("field") if isinstance(error.get("field"), str) else None
        retry_after_secs: float | None = None
        if retry_after is not None:
            try:
                retry_after_secs = max(0.0, float(retry_after))
            except ValueError:
                retry_after_secs = None
        return cls(
            message, status=status, code=code, field=field, retry_after_secs=retry_after_secs
        )
