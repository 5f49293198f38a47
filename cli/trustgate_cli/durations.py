"""Durations as people type them (`2 hours`, `1h30m`, `90`, `PT1H`) turned into the ISO 8601 the API takes, and the
API's ISO 8601 turned back into words (`PT1H30M` -> `1 hour 30 min`)."""

from __future__ import annotations

import re
from datetime import timedelta

# Days, hours and minutes in that order, each as a letter or a word: 2d, 1h30m, 45m, "2 hours", "1 hour 30 minutes",
# "1 day, 2 hours and 5 min". A bare number is minutes.
_UNITS = {"days": r"d|days?", "hours": r"h|hrs?|hours?", "minutes": r"m|mins?|minutes?"}
_SEPARATOR = r"(?:\s*,?\s*(?:and\s+)?)"
_WORDS = re.compile(
    _SEPARATOR.join(rf"(?:(?P<{name}>\d+)\s*(?:{units})(?![a-z]))?" for name, units in _UNITS.items()),
    re.IGNORECASE,
)
_MINUTES = re.compile(r"\d+")
# ISO 8601 without years/months/weeks: those have no fixed length, and nobody asks for access that long.
_ISO = re.compile(
    r"P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?",
    re.IGNORECASE,
)
DURATION_FORMS = "2 hours, 1h30m, 45m, 90 (minutes) or PT1H (ISO 8601)"


class DurationError(ValueError):
    """A duration the CLI cannot read."""


def parse_duration(text: str) -> timedelta:
    """Read `2 hours`, `1h30m`, `2d`, `90` (minutes) or ISO 8601 (`PT1H`, `P1DT2H`) as a positive timedelta."""
    value = text.strip()
    if _MINUTES.fullmatch(value):
        delta = timedelta(minutes=int(value))
    else:
        match = _ISO.fullmatch(value) if value[:1] in ("P", "p") else _WORDS.fullmatch(value)
        # Both patterns also match an empty body ("", "P", "PT"): require at least one number.
        if match is None or not any(match.groupdict().values()) or value.upper().endswith("T"):
            raise DurationError(f"duration {text!r} is not like {DURATION_FORMS}")
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
    """Normalise any accepted duration to ISO 8601, e.g. `2 hours` -> `PT2H`, `90` -> `PT1H30M`."""
    return format_iso8601(parse_duration(text))


def in_words(delta: timedelta) -> str:
    """A duration as people say it: `1 hour`, `1 hour 30 min`, `2 days 3 hours`, `45 min`."""
    days, rest = divmod(int(delta.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        f"{number} {unit}{'' if number == 1 else 's'}" for number, unit in ((days, "day"), (hours, "hour")) if number
    ]
    parts += [f"{minutes} min"] if minutes else []
    parts += [f"{seconds} s"] if seconds else []
    return " ".join(parts) or "0 min"


def duration_in_words(text: object) -> str:
    """The API's ISO 8601 duration (`PT1H`) in words (`1 hour`); anything unreadable as it was given."""
    if not isinstance(text, str) or not text:
        return "" if text is None else str(text)
    try:
        return in_words(parse_duration(text))
    except DurationError:
        return text
