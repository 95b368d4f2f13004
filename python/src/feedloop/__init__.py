"""feedloop: the Python client of feedloop, the self-hosted feedback loop for LLM products.

>>> from feedloop import Feedloop
>>> client = Feedloop(base_url="http://127.0.0.1:7700", api_key="fl_sk_…")
>>> with client.trace(input=question, session_id="s-1") as trace:   # doctest: +SKIP
...     context = client.context(question)             # lessons learned, as a prompt block
...     answer = call_model(system_prompt + str(context), question)
...     trace.output = answer
>>> client.rate(trace.id, 0)                           # thumbs down, sent in the background

Integrations: :mod:`feedloop.integrations.openai` (a wrapper of the ``openai`` client that traces
calls and injects lessons) and :mod:`feedloop.integrations.langchain` (a callback handler and a
runnable that puts context into a prompt template).
"""

from ._batcher import BatcherStats, DeliveryError
from ._ids import new_id
from ._transport import RetryPolicy
from .client import AsyncFeedloop, Feedloop
from .context import InjectedContext, inject_system_block
from .errors import FeedloopError
from .tracing import Span, Trace, current_span, current_trace

__all__ = [
    "AsyncFeedloop",
    "BatcherStats",
    "DeliveryError",
    "Feedloop",
    "FeedloopError",
    "InjectedContext",
    "RetryPolicy",
    "Span",
    "Trace",
    "current_span",
    "current_trace",
    "inject_system_block",
    "new_id",
]

__version__ = "0.1.0"
