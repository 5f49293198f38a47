"""Progress while `request --wait` polls: a live spinner on a terminal, plain lines in logs and pipes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

_FRAMES = "|/-\\"
_FRAME_SECONDS = 0.125
# In a log, repeat an unchanged status this often so a reader can tell the wait is alive.
_HEARTBEAT_SECONDS = 30.0


class Progress:
    """Shows what a wait is waiting for, on stderr so stdout stays parseable."""

    def __init__(
        self,
        stream: TextIO,
        *,
        live: bool,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._live = live
        self._sleep = sleep
        self._clock = clock
        self._started = clock()
        self._text = ""
        self._frame = 0
        self._last_line: tuple[str, float] | None = None
        self._drawn = False

    def show(self, text: str) -> None:
        """Set what is being waited for; on a terminal redraw the spinner line, otherwise print it when it changes."""
        self._text = text
        elapsed = self._clock() - self._started
        if self._live:
            self._draw(elapsed)
        elif (
            self._last_line is None or self._last_line[0] != text or elapsed - self._last_line[1] >= _HEARTBEAT_SECONDS
        ):
            self._stream.write(f"{text} ({elapsed:.0f}s)\n")
            self._stream.flush()
            self._last_line = (text, elapsed)

    def pause(self, seconds: float) -> None:
        """Wait `seconds`; on a terminal keep the spinner turning meanwhile."""
        if not self._live:
            self._sleep(seconds)
            return
        end = self._clock() + seconds
        while (left := end - self._clock()) > 0:
            self._sleep(min(_FRAME_SECONDS, left))
            self._frame += 1
            self._draw(self._clock() - self._started)

    def close(self) -> None:
        """Clear the spinner line so what follows starts on a clean line."""
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._drawn = False

    def _draw(self, elapsed: float) -> None:
        frame = _FRAMES[self._frame % len(_FRAMES)]
        self._stream.write(f"\r\x1b[K{frame} {self._text} ({elapsed:.0f}s)")
        self._stream.flush()
        self._drawn = True
