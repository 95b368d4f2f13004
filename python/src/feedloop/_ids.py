"""Ids chosen on the client, so that a retried request never stores an item twice."""

from __future__ import annotations

import datetime
import os
import time


def new_id(prefix: str) -> str:
    """A new unique id: ``prefix``, the time in microseconds (hex, so ids sort by creation) and
    64 random bits; printable ASCII, well under the server's 128 bytes."""
    return f"{prefix}{time.time_ns() // 1000:x}{os.urandom(8).hex()}"


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with microseconds, as the server reads timestamps."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
