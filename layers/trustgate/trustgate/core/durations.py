"""ISO 8601 durations (PT2H, P1DT30M) and whole minutes, as the API accepts them."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from trustgate.core.errors import ValidationError

_ISO = re.compile(r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$")


def parse_duration(value: str | int) -> timedelta:
    """Parse `PT1H`, `P1DT2H`, `90` (minutes) or `90m`/`2h` into a positive timedelta."""
    if isinstance(value, bool):
        raise ValidationError("a duration is ISO 8601 (PT1H) or whole minutes (60), not a boolean")
    if isinstance(value, int):
        minutes = value
    else:
        text = value.strip().upper()
        short = re.fullmatch(r"(\d+)\s*([MHD]?)", text)
        if short:
            number, unit = int(short.group(1)), short.group(2) or "M"
            minutes = number * {"M": 1, "H": 60, "D": 1440}[unit]
        else:
            match = _ISO.match(text)
            if not match or text in ("P", "PT"):
                raise ValidationError(
                    f"duration {value!r} is not ISO 8601 (e.g. PT1H, PT30M) or whole minutes (e.g. 60)"
                )
            parts = {k: int(v) for k, v in match.groupdict().items() if v}
            return _positive(_bounded(lambda: timedelta(**parts), value), value)
    return _positive(_bounded(lambda: timedelta(minutes=minutes), value), value)


def _bounded(build: Callable[[], timedelta], original: str | int) -> timedelta:
    """A duration no calendar can hold is bad input (400), not a crash."""
    try:
        delta = build()
    except OverflowError as error:
        raise ValidationError(f"duration {original!r} is far too long; ask for hours, not ages") from error
    if delta > MAX_SENSIBLE:
        raise ValidationError(f"duration {original!r} is far too long; ask for hours, not ages")
    return delta


MAX_SENSIBLE = timedelta(days=3650)  # far beyond any ceiling; keeps date arithmetic from overflowing


def _positive(delta: timedelta, original: str | int) -> timedelta:
    if delta <= timedelta(0):
        raise ValidationError(f"duration {original!r} must be longer than zero")
    return delta


def format_duration(delta: timedelta) -> str:
    """The shortest ISO 8601 form: 90 minutes -> PT1H30M, one day -> P1D."""
    total = int(delta.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{seconds}S" if seconds else "")
    if clock:
        out += "T" + clock
    return out if out != "P" else "PT0S"
