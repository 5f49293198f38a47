"""Text output pieces: the live spinner, capacity, tables, diffs."""

from __future__ import annotations

import io

import pytest

from trustgate_cli.progress import Progress
from trustgate_cli.render import capacity, table, unified_diff

pytestmark = pytest.mark.unit


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_progress_with_terminal_turns_a_spinner_on_one_line() -> None:
    stream, fake = io.StringIO(), FakeTime()
    progress = Progress(stream, live=True, sleep=fake.sleep, clock=fake.clock)

    progress.show("waiting for approval of req-1: 0/1 approvals")
    progress.pause(1.0)
    progress.close()

    text = stream.getvalue()
    assert "\n" not in text
    frames = [chunk[0] for chunk in text.split("\r\x1b[K") if chunk]
    assert frames[:4] == ["|", "/", "-", "\\"]
    assert "waiting for approval of req-1: 0/1 approvals (1s)" in text
    assert text.endswith("\r\x1b[K")


def test_progress_without_terminal_prints_a_line_per_change() -> None:
    stream, fake = io.StringIO(), FakeTime()
    progress = Progress(stream, live=False, sleep=fake.sleep, clock=fake.clock)

    progress.show("0/2 approvals")
    progress.pause(1)
    progress.show("0/2 approvals")
    progress.pause(1)
    progress.show("1/2 approvals")
    progress.pause(40)
    progress.show("1/2 approvals")

    assert stream.getvalue().splitlines() == ["0/2 approvals (0s)", "1/2 approvals (2s)", "1/2 approvals (42s)"]


@pytest.mark.parametrize(
    ("used", "quota", "text"),
    [
        (1234, 2048, "1234 / 2048 characters (60%)"),
        (2048, 2048, "2048 / 2048 characters (100%)"),
        (0, 0, "0 / 0 characters (0%)"),
    ],
)
def test_capacity_with_usage_shows_percent(used: int, quota: int, text: str) -> None:
    assert capacity(used, quota) == text


def test_table_with_multiline_cell_keeps_one_row_per_item() -> None:
    rendered = table([{"a": "x\ny", "b": "z"}], [("A", lambda r: r["a"]), ("LONG TITLE", lambda r: r["b"])])

    assert rendered.splitlines() == ["A    LONG TITLE", "x y  z"]


def test_unified_diff_with_equal_documents_is_empty() -> None:
    assert unified_diff({"a": [1]}, {"a": [1]}, "before", "after") == ""
