"""Durations as typed on the command line become the ISO 8601 the API takes."""

from __future__ import annotations

import pytest

from trustgate_cli.durations import DurationError, to_iso8601

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("1h", "PT1H"),
        ("30m", "PT30M"),
        ("90", "PT1H30M"),
        ("1h30m", "PT1H30M"),
        ("2H", "PT2H"),
        ("1d", "P1D"),
        ("PT1H", "PT1H"),
        ("pt45m", "PT45M"),
        ("PT90M", "PT1H30M"),
        ("P1DT2H", "P1DT2H"),
        (" 15m ", "PT15M"),
    ],
)
def test_to_iso8601_with_accepted_form(typed: str, sent: str) -> None:
    assert to_iso8601(typed) == sent


@pytest.mark.parametrize(
    "typed", ["", "0", "0h", "PT0M", "P", "PT", "P1DT", "1x", "h", "1.5h", "-30m", "PT1H2", "1m1h"]
)
def test_to_iso8601_with_unreadable_or_empty_form_raises(typed: str) -> None:
    with pytest.raises(DurationError):
        to_iso8601(typed)
