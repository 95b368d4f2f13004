"""HTTP transport: one request to the feedloop API, with retries, for sync and async callers.

Retries are safe only where a repeated request changes nothing more than the first: every write
the client makes for logging (traces, feedback, signals, mixed batches) carries an id chosen on
the client, and the server stores an id once (a trace part merges into itself; feedback and
signals with the same id and content are no-ops). Such requests are marked ``idempotent`` and are
retried on any failure that may pass. Other writes (creating a lesson, a queue) are retried only
when the server certainly did nothing: the connection was refused, or it answered 429 or 503.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from .errors import FeedloopError

JSON = dict[str, Any]

USER_AGENT = "feedloop-python/0.1.0"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is repeated: exponential backoff from
    ``base_delay_secs`` up to ``max_delay_secs``, with jitter, at most ``max_attempts`` tries in
    all; a ``Retry-After`` from the server is honoured (up to ``max_delay_secs``)."""

    max_attempts: int = 4
    base_delay_secs: float = 0.2
    max_delay_secs: float = 5.0

    def delay(self, attempt: int, error: FeedloopError | None = None) -> float:
        """Seconds to wait before try number ``attempt + 1`` (``attempt`` counts from 1)."""
        if error is not None and error.retry_after_secs is not None:
            return min(error.retry_after_secs, self.max_delay_secs)
        backoff = min(self.max_delay_secs, self.base_delay_secs * 2.0 ** max(0, attempt - 1))
        return backoff * (0.5 + random.random() / 2)


@dataclass(frozen=True)
class Request:
    """One API call: method, path under the base URL, JSON body, query parameters, and whether
    repeating it is harmless."""

    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    idempotent: bool = False
    #: Statuses that are an answer, not an error (``404`` for "not there").
    accept: tuple[int, ...] = field(default_factory=tuple)
    #: This call's own retry policy, instead of the client's.
    retry: RetryPolicy | None = None


def should_retry(request: Request, error: FeedloopError) -> bool:
    """Whether ``error`` allows sending ``request`` again (see the module's note)."""
    if request.idempotent:
        return error.retryable
    if error.status is None:
        return error.code == "connect_error"
    return error.status in (429, 503)


def _transport_error(error: httpx.TransportError) -> FeedloopError:
    code = "connect_error" if isinstance(error, httpx.ConnectError) else "transport_error"
    return FeedloopError(f"cannot reach the feedloop server: {error!r}", code=code)


def _decode(request: Request, response: httpx.Response) -> JSON:
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except ValueError:
            body = None
    if response.is_success or response.status_code in request.accept:
        if body is None and response.content and response.is_success:
            # A text answer (a JSONL export): handed over as it is.
            return {"text": response.text}
        if isinstance(body, dict):
            return body
        return {} if body is None else {"value": body}
    raise FeedloopError.from_response(
        response.status_code, body, response.headers.get("retry-after")
    )


def _headers(api_key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}", "user-agent": USER_AGENT}


def _params(params: dict[str, Any] | None) -> dict[str, str] | None:
    """Query parameters as the server reads them: booleans lowercase, ``None`` left out."""
    if params is None:
        return None
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


class SyncTransport:
    """Sends requests with a blocking ``httpx.Client``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_secs: float,
        retry: RetryPolicy,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.retry = retry
        self._settings = (base_url.rstrip("/"), api_key, timeout_secs)
        self._client = http_client or self._new_client()

    def _new_client(self) -> httpx.Client:
        base_url, api_key, timeout_secs = self._settings
        return httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=timeout_secs)

    def reset_after_fork(self) -> None:
        """In a forked child: a connection pool of its own (the parent's connections are the
        parent's; they are left open for it)."""
        self._client = self._new_client()

    def send(self, request: Request, retry: RetryPolicy | None = None) -> JSON:
        """Sends ``request``, repeating it as ``retry`` (or the transport's policy) allows;
        raises :class:`FeedloopError` with the last failure."""
        policy = retry or request.retry or self.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._client.request(
                    request.method, request.path, json=request.json, params=_params(request.params)
                )
                return _decode(request, response)
            except httpx.TransportError as error:
                failure = _transport_error(error)
            except FeedloopError as error:
                failure = error
            if attempt >= policy.max_attempts or not should_retry(request, failure):
                raise failure
            time.sleep(policy.delay(attempt, failure))

    def close(self) -> None:
        """Closes the connection pool."""
        self._client.close()


class AsyncTransport:
    """Sends requests with an ``httpx.AsyncClient``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_secs: float,
        retry: RetryPolicy,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.retry = retry
        self._client = http_client or httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=_headers(api_key), timeout=timeout_secs
        )

    async def send(self, request: Request, retry: RetryPolicy | None = None) -> JSON:
        """Sends ``request``, repeating it as ``retry`` (or the transport's policy) allows;
        raises :class:`FeedloopError` with the last failure."""
        policy = retry or request.retry or self.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._client.request(
                    request.method, request.path, json=request.json, params=_params(request.params)
                )
                return _decode(request, response)
            except httpx.TransportError as error:
                failure = _transport_error(error)
            except FeedloopError as error:
                failure = error
            if attempt >= policy.max_attempts or not should_retry(request, failure):
                raise failure
            await asyncio.sleep(policy.delay(attempt, failure))

    async def aclose(self) -> None:
        """Closes the connection pool."""
        await self._client.aclose()
