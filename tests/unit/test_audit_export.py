"""The audit CSV's rows and the media-type choice, as pure functions."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from trustgate.core.audit_export import COLUMNS, audit_csv, prefers_csv
from trustgate.core.models import AuditEvent

AT = datetime(2026, 12, 1, 21, 0, 5, 123456, tzinfo=UTC)


def parsed(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_a_header_row_then_one_row_per_event_with_json_in_its_own_columns() -> None:
    event = AuditEvent(
        id="e1",
        at=AT,
        actor="arn:aws:iam::111122223333:user/carol",
        action="policy.updated",
        role_arn="arn:aws:iam::111122223333:role/R",
        before={"max_duration": "PT1H", "approvers": ["a", "b"]},
        after={"max_duration": 'PT2H, with "quotes"\nand a newline'},
        detail={},
    )
    text = audit_csv([event, event.model_copy(update={"id": "e2", "role_arn": None, "before": None})])
    assert text.endswith("\r\n")
    assert text.count("\r\n") >= 3
    header, first, second = parsed(text)
    assert tuple(header) == COLUMNS
    assert first == [
        "e1",
        "2026-12-01T21:00:05Z",
        "arn:aws:iam::111122223333:user/carol",
        "policy.updated",
        "arn:aws:iam::111122223333:role/R",
        "",
        '{"approvers":["a","b"],"max_duration":"PT1H"}',
        '{"max_duration":"PT2H, with \\"quotes\\"\\nand a newline"}',
        "",
    ]
    assert (second[0], second[4], second[6]) == ("e2", "", "")


def test_no_events_is_the_header_alone() -> None:
    assert parsed(audit_csv([])) == [list(COLUMNS)]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_run_as_a_formula_gets_a_leading_apostrophe(start: str) -> None:
    event = AuditEvent(id="e", at=AT, actor=f"{start}cmd|' /C calc'!A0", action="x")
    actor = parsed(audit_csv([event]))[1][2]
    assert actor == f"'{start}cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("format_asked", "accept", "csv_wanted"),
    [
        ("csv", None, True),
        ("csv", "application/json", True),
        ("json", "text/csv", False),
        (None, "text/csv", True),
        (None, "TEXT/CSV; charset=utf-8", True),
        (None, "application/json;q=0.5, text/csv", True),
        (None, "text/csv, application/json", False),  # a tie keeps JSON
        (None, "text/csv;q=0.4, application/json;q=0.9", False),
        (None, "text/csv;q=0", False),
        (None, "text/csv;q=bogus", False),
        (None, "*/*", False),
        (None, "", False),
        (None, None, False),
    ],
)
def test_csv_is_chosen_by_format_first_then_by_accept(
    format_asked: str | None, accept: str | None, csv_wanted: bool
) -> None:
    assert prefers_csv(format_asked, accept) is csv_wanted
