"""Background batching: traces, feedback and signals queue in memory and a worker thread sends
them in batches, retrying until the server takes them.

Memory is bounded: at most ``max_queue_items`` items wait (plus one batch in flight); past that,
new items are dropped and counted, so a dead server never grows the application's memory
without limit. Every item carries an id chosen on the client, so a batch sent twice (the first
answer was lost) stores each item once. A batch the server rejects because of one item (its error
names ``traces[3]``, ``feedback[0]`` or ``[2]``) is sent again without that item; the rejected
item is counted in ``failed`` and kept in ``errors``.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Literal

from ._transport import JSON, Request, RetryPolicy, SyncTransport
from .errors import FeedloopError

logger = logging.getLogger("feedloop")

Kind = Literal["trace", "feedback", "signal"]

#: One attempt per call: the batcher does its own waiting between attempts.
_ONE_ATTEMPT = RetryPolicy(max_attempts=1)

_ITEM_FIELD = re.compile(r"^(traces|feedback)?\[(\d+)\]")


@dataclass
class BatcherStats:
    """Counts since the client started: items the server stored (``sent``), items refused
    because the queue was full (``dropped``), items the server rejected or that could not be
    delivered within ``max_retry_secs`` (``failed``), items still waiting (``pending``), and
    batches sent again after a failed attempt (``retries``)."""

    sent: int = 0
    dropped: int = 0
    failed: int = 0
    pending: int = 0
    retries: int = 0


@dataclass(frozen=True)
class DeliveryError:
    """An item that was given up, and why."""

    kind: Kind
    body: JSON
    error: FeedloopError


class Batcher:
    """The queue and its worker thread. Use it through a client (:class:`feedloop.Feedloop`)."""

    def __init__(
        self,
        transport: SyncTransport,
        *,
        max_queue_items: int = 10_000,
        max_batch_items: int = 100,
        flush_interval_secs: float = 0.5,
        max_retry_secs: float = 300.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if max_queue_items < 1 or max_batch_items < 1:
            raise ValueError("max_queue_items and max_batch_items must be at least 1")
        self._transport = transport
        self._max_queue_items = max_queue_items
        self._max_batch_items = max_batch_items
        self._flush_interval_secs = flush_interval_secs
        self._max_retry_secs = max_retry_secs
        self._retry = retry or RetryPolicy(base_delay_secs=0.1, max_delay_secs=2.0)
        self._queue: collections.deque[tuple[Kind, JSON]] = collections.deque()
        self._in_flight = 0
        self._flush_waiters = 0
        self._closing = False
        self._cond = threading.Condition()
        self._stats = BatcherStats()
        #: The last 100 items given up, oldest first.
        self.errors: collections.deque[DeliveryError] = collections.deque(maxlen=100)
        self._thread = self._start_worker()
        # A forked child (a pre-forking web server's worker) has the queue but not the thread.
        this = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _restart_in_child(this))

    def _start_worker(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="feedloop-batcher", daemon=True)
        thread.start()
        return thread

    def _after_fork(self) -> None:
        """In a forked child: fresh lock, connections and counters, an empty queue (the parent
        sends its own items), and a worker of its own."""
        self._cond = threading.Condition()
        self._transport.reset_after_fork()
        self._queue.clear()
        self._stats = BatcherStats()
        self.errors.clear()
        self._in_flight = 0
        self._flush_waiters = 0
        if not self._closing:
            self._thread = self._start_worker()

    @property
    def stats(self) -> BatcherStats:
        """A snapshot of the counters."""
        with self._cond:
            return BatcherStats(
                sent=self._stats.sent,
                dropped=self._stats.dropped,
                failed=self._stats.failed,
                pending=len(self._queue) + self._in_flight,
                retries=self._stats.retries,
            )

    @property
    def max_queue_items(self) -> int:
        """The most items that wait in memory (besides one batch in flight)."""
        return self._max_queue_items

    def submit(self, kind: Kind, body: JSON) -> bool:
        """Queues one item; ``False`` (and the item counted as dropped) when the queue is full or
        the batcher is closed."""
        with self._cond:
            if self._closing or len(self._queue) >= self._max_queue_items:
                self._stats.dropped += 1
                if self._stats.dropped == 1 or self._stats.dropped % 1000 == 0:
                    logger.warning(
                        "feedloop: queue full, %d items dropped so far", self._stats.dropped
                    )
                return False
            self._queue.append((kind, body))
            # The worker waits for a first item, then for a full batch or the interval.
            if len(self._queue) in (1, self._max_batch_items):
                self._cond.notify_all()
            return True

    def flush(self, timeout_secs: float | None = None) -> bool:
        """Sends everything queued now and waits until it is delivered or given up; ``False``
        when ``timeout_secs`` passed first."""
        deadline = None if timeout_secs is None else time.monotonic() + timeout_secs
        with self._cond:
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                while self._queue or self._in_flight:
                    if not self._thread.is_alive():
                        return False
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining if remaining is not None else 0.5)
                return True
            finally:
                self._flush_waiters -= 1

    def close(self, timeout_secs: float | None = 10.0) -> bool:
        """Flushes (up to ``timeout_secs``), then stops the worker; later items are dropped.
        ``True`` when everything queued was delivered or given up in time."""
        delivered = self.flush(timeout_secs)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if delivered:
            self._thread.join(timeout=1.0)
        return delivered

    # The worker.

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                deadline = time.monotonic() + self._flush_interval_secs
                while (
                    len(self._queue) < self._max_batch_items
                    and not self._flush_waiters
                    and not self._closing
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch = [
                    self._queue.popleft()
                    for _ in range(min(self._max_batch_items, len(self._queue)))
                ]
                self._in_flight = len(batch)
            try:
                self._send(batch)
            except Exception:  # pragma: no cover - a bug must not kill the worker
                logger.exception("feedloop: unexpected error while sending a batch")
                self._give_up(batch, FeedloopError("internal error in the batcher"))
            with self._cond:
                self._in_flight = 0
                self._cond.notify_all()

    def _send(self, batch: list[tuple[Kind, JSON]]) -> None:
        ingest = [item for item in batch if item[0] != "signal"]
        signals = [item for item in batch if item[0] == "signal"]
        if ingest:
            self._deliver(ingest)
        if signals:
            self._deliver(signals)

    @staticmethod
    def _request(items: list[tuple[Kind, JSON]]) -> Request:
        if items[0][0] == "signal":
            return Request("POST", "/api/v1/signals", [body for _, body in items], idempotent=True)
        traces = [body for kind, body in items if kind == "trace"]
        feedback = [body for kind, body in items if kind == "feedback"]
        return Request(
            "POST", "/api/v1/ingest", {"traces": traces, "feedback": feedback}, idempotent=True
        )

    @staticmethod
    def _culprit(items: list[tuple[Kind, JSON]], field: str | None) -> int | None:
        """The position in ``items`` of the item an error's field names, if it names one."""
        match = _ITEM_FIELD.match(field or "")
        if match is None:
            return None
        index = int(match.group(2))
        wanted: Kind | None = {"traces": "trace", "feedback": "feedback", None: None}[
            match.group(1)
        ]
        seen = 0
        for position, (kind, _) in enumerate(items):
            if wanted is None or kind == wanted:
                if seen == index:
                    return position
                seen += 1
        return None

    def _deliver(self, items: list[tuple[Kind, JSON]]) -> None:
        deadline = time.monotonic() + self._max_retry_secs
        attempt = 0
        while items:
            try:
                self._transport.send(self._request(items), retry=_ONE_ATTEMPT)
            except FeedloopError as error:
                if error.retryable:
                    attempt += 1
                    delay = self._retry.delay(attempt, error)
                    if time.monotonic() + delay > deadline:
                        logger.warning("feedloop: giving up a batch after retries: %s", error)
                        self._give_up(items, error)
                        return
                    logger.debug("feedloop: batch failed (%s), retrying in %.2fs", error, delay)
                    time.sleep(delay)
                    with self._cond:
                        self._stats.retries += 1
                    continue
                if error.status == 413 and len(items) > 1:
                    half = len(items) // 2
                    self._deliver(items[:half])
                    self._deliver(items[half:])
                    return
                culprit = self._culprit(items, error.field)
                if culprit is None:
                    logger.warning("feedloop: the server rejected a batch: %s", error)
                    self._give_up(items, error)
                    return
                logger.warning("feedloop: the server rejected an item: %s", error)
                self._give_up([items[culprit]], error)
                items = items[:culprit] + items[culprit + 1 :]
                continue
            with self._cond:
                self._stats.sent += len(items)
            return

    def _give_up(self, items: list[tuple[Kind, JSON]], error: FeedloopError) -> None:
        with self._cond:
            self._stats.failed += len(items)
            for kind, body in items:
                self.errors.append(DeliveryError(kind, body, error))


def _restart_in_child(batcher: weakref.ref[Batcher]) -> None:
    alive = batcher()
    if alive is not None:
        alive._after_fork()
