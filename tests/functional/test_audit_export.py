"""GET /audit as CSV: negotiated by `?format=csv` or `Accept`, one event per row, paged by the `Link` header."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.aws import ALICE, CAROL, ROLE_ARN, World
from tests.support.flows import granted, request_access
from trustgate.core.clock import parse_rfc3339
from trustgate_local.world import api_event

pytestmark = pytest.mark.functional

HEADER = ["id", "at", "actor", "action", "role_arn", "request_id", "before", "after", "detail"]


def get_audit(world: World, query: dict[str, str], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The API function's whole answer to GET /audit (status, headers, body), as API Gateway gets it."""
    return dict(world.invoke("ApiFunction", api_event("GET", "/audit", CAROL, None, query, headers)))


def header(answer: dict[str, Any], name: str) -> str | None:
    """A response header as API Gateway merges them (multiValueHeaders wins)."""
    values = (answer.get("multiValueHeaders") or {}).get(name) or []
    return values[-1] if values else (answer.get("headers") or {}).get(name)


def rows(answer: dict[str, Any]) -> list[dict[str, str]]:
    assert answer["statusCode"] == 200, answer["body"]
    assert header(answer, "Content-Type") == "text/csv; charset=utf-8"
    table = list(csv.reader(io.StringIO(answer["body"], newline="")))
    assert table[0] == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in table[1:]]


def next_link(answer: dict[str, Any]) -> dict[str, list[str]] | None:
    link = header(answer, "Link")
    if link is None:
        return None
    match = re.fullmatch(r'<(audit\?[^>]*)>; rel="next"', link)
    assert match, link
    return parse_qs(urlsplit(match[1]).query)


def test_format_csv_answers_the_same_events_as_json_one_per_row(world: World) -> None:
    request_id = granted(world)["id"]
    as_json = world.api("GET", "/audit", CAROL, query={"role": "PumpCustomerAccess"})[1]["items"]

    exported = rows(get_audit(world, {"role": "PumpCustomerAccess", "format": "csv"}))

    assert [row["id"] for row in exported] == [event["id"] for event in as_json]
    for row, event in zip(exported, as_json, strict=True):
        assert row["at"] == event["at"]
        assert (row["actor"], row["action"]) == (event["actor"], event["action"])
        assert (row["role_arn"], row["request_id"]) == (event["role_arn"] or "", event["request_id"] or "")
        for part in ("before", "after"):  # JSON in its own column, the same document
            assert (json.loads(row[part]) if row[part] else None) == event[part]
        assert (json.loads(row["detail"]) if row["detail"] else {}) == event["detail"]
    created = next(row for row in exported if row["action"] == "request.created")
    assert (created["request_id"], created["actor"], created["role_arn"]) == (request_id, ALICE, ROLE_ARN)


def test_accept_text_csv_negotiates_csv_and_format_json_overrides_it(world: World) -> None:
    request_access(world)
    assert rows(get_audit(world, {}, {"Accept": "text/csv"}))
    assert rows(get_audit(world, {}, {"Accept": "application/json;q=0.5, text/csv"}))
    for query, accept in (({"format": "json"}, "text/csv"), ({}, "text/csv, application/json"), ({}, "*/*")):
        answer = get_audit(world, query, {"Accept": accept})
        assert header(answer, "Content-Type") == "application/json", (query, accept)
        assert json.loads(answer["body"])["items"]


def test_csv_pages_follow_the_link_header_to_the_end_without_gaps(world: World) -> None:
    for _ in range(2):  # one open request per person per role: cancel each before the next
        assert world.api("POST", f"/requests/{request_access(world)['id']}/cancel", ALICE)[0] == 200
    everything = [e["id"] for e in world.api("GET", "/audit", CAROL, query={"limit": "200"})[1]["items"]]
    assert len(everything) >= 3

    seen: list[str] = []
    query: dict[str, str] = {"format": "csv", "limit": "1", "since": "P1D"}
    while True:
        answer = get_audit(world, query)
        assert header(answer, "Vary") == "Accept"
        page = rows(answer)
        assert len(page) == 1
        seen += [row["id"] for row in page]
        following = next_link(answer)
        if following is None:
            break
        assert following["format"] == ["csv"]
        assert following["limit"] == ["1"]
        # The age asked for is passed on as the time it meant: later pages keep the first page's window.
        assert parse_rfc3339(following["since"][0]) <= world.deps.clock.now() - timedelta(days=1)
        query = {name: values[0] for name, values in following.items()}
    assert seen == everything


def test_a_csv_cell_a_spreadsheet_would_run_is_written_inert(world: World) -> None:
    """A justification is free text: inside the JSON column it cannot start a cell, so nothing runs."""
    request_access(world, justification='=HYPERLINK("https://evil.example","x") rotate the key')
    exported = rows(get_audit(world, {"format": "csv"}))
    created = next(row for row in exported if row["action"] == "request.created")
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in exported for cell in row.values())
    assert "HYPERLINK" in created["detail"] or "HYPERLINK" in created["after"]


def test_refusals_stay_json_errors_and_a_bad_format_is_400(world: World) -> None:
    answer = get_audit(world, {"format": "xml"})
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["error"]["code"] == "invalid_input"
    assert "format" in json.loads(answer["body"])["error"]["message"]
    status, body = world.api("GET", "/audit", ALICE, query={"format": "csv"})
    assert (status, body["error"]["code"]) == (403, "forbidden")


def test_openapi_documents_both_media_types_of_get_audit(world: World) -> None:
    document = world.api("GET", "/openapi.json", ALICE)[1]
    operation = document["paths"]["/audit"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert "format" in [parameter["name"] for parameter in operation["parameters"]]
