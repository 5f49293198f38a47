"""Wait for something to become true: the one polling loop the local stack, the demo and the tests share."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until[T](
    probe: Callable[[], T | None],
    what: str,
    timeout: float = 30,
    interval: float = 0.05,
    error: type[Exception] = AssertionError,
) -> T:
    """Call `probe` until it returns something truthy; raise `error` naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise error(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
