"""How long retries may still go on: a deadline for every retry inside a block (pure; no AWS SDK).

A sync round bounds the IAM retries of all its calls together, and an API call bounds all of its own, so that a
throttled IAM slows them down by a known amount and never past their function's or API Gateway's limit. The
IAM adapter's retry loop (`iam.with_backoff`) reads the deadline; the use cases and the API set it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# Per thread and task: concurrent syncs in one process (as in the tests) do not share one.
_deadline: ContextVar[float] = ContextVar("retry_deadline", default=math.inf)


def retry_deadline() -> float:
    """When retries must stop (`time.monotonic()` seconds); infinity outside any `time_budget`."""
    return _deadline.get()


@contextmanager
def time_budget(seconds: float, clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Inside: no retry pauses past `seconds` from now, whatever the call. A first attempt is always made;
    nested budgets keep the earlier deadline."""
    token = _deadline.set(min(_deadline.get(), clock() + seconds))
    try:
        yield
    finally:
        _deadline.reset(token)
