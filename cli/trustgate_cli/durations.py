"""Durations as people type them (`1h`, `30m`, `1h30m`, `90`, `PT1H`) turned into the ISO 8601 the API takes."""

from __future__ import annotations

import re
from datetime import timedelta

# Short forms: any of days/hours/minutes in that order, e.g. 2d, 1h30m, 45m. A bare number is minutes.
_SHORT = re.compile(r"(?:(?P<days>\d+)d)?(?:(?P<hours>\d+)h)?(?:(?P<minutes>\d+)m)?", re.IGNORECASE)
_MINUTES = re.compile(r"\d+")
# ISO 8601 without years/months/weeks: those have no fixed length, and nobody asks for access that long.
_ISO = re.compile(
    r"P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?",
    re.IGNORECASE,
)


class DurationError(ValueError):
    """A duration the CLI cannot read."""


def parse_duration(text: str) -> timedelta:
    """Read `1h`, `30m`, `1h30m`, `2d`, `90` (minutes) or ISO 8601 (`PT1H`, `P1DT2H`) as a positive timedelta."""
    value = text.strip()
    if _MINUTES.fullmatch(value):
        delta = timedelta(minutes=int(value))
    else:
        match = _ISO.fullmatch(value) if value[:1] in ("P", "p") else _SHORT.fullmatch(value)
        # Both patterns also match an empty body ("", "P", "PT"): require at least one number.
        if match is None or not any(match.groupdict().values()) or value.upper().endswith("T"):
            raise DurationError(f"duration {text!r} is not like 1h, 30m, 1h30m, 90 (minutes) or PT1H (ISO 8601)")
        delta = timedelta(**{unit: int(number) for unit, number in match.groupdict().items() if number})
    if delta <= timedelta(0):
        raise DurationError(f"duration {text!r} must be longer than zero")
    return delta


def format_iso8601(delta: timedelta) -> str:
    """The shortest ISO 8601 form: 90 minutes -> PT1H30M, one day -> P1D."""
    days, rest = divmod(int(delta.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = "".join(f"{number}{unit}" for number, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if number)
    return "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "")


def to_iso8601(text: str) -> str:
    """Normalise any accepted duration to ISO 8601, e.g. `1h` -> `PT1H`, `90` -> `PT1H30M`."""
    return format_iso8601(parse_duration(text))
