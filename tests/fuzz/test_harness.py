"""The fuzz runner's own checks: what it must report, it reports (a green fuzz run means something)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.fuzz.conftest import Fuzz
from tests.fuzz.harness import ADMIN, OUTSIDER, REQUESTER, signed_json
from tests.fuzz.test_api_fuzz import OWN
from trustgate_local.server import LocalStack

pytestmark = pytest.mark.fuzz


def test_a_change_during_a_refused_call_is_reported(fuzz: Fuzz) -> None:
    # GIVEN a refused call (no such role) during which the table changes, as if the API had written
    table = fuzz.local.session.client("dynamodb")
    stray = {"pk": {"S": "FUZZ#stray"}, "sk": {"S": "FUZZ"}}

    def write_during_the_call(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        table.put_item(TableName=fuzz.local.stack.refs["Table"], Item=stray)

    fuzz.session.hooks["response"].append(write_during_the_call)
    case = OWN["/roles/{role}"]["GET"].Case(path_parameters={"role": "NoSuchRole"})
    try:
        # WHEN the runner sends it
        fuzz.run(case, ADMIN)
    finally:
        fuzz.session.hooks["response"].remove(write_during_the_call)
        table.delete_item(TableName=fuzz.local.stack.refs["Table"], Key=stray)

    # THEN it reports the change, naming the operation, the caller and what changed
    found = list(fuzz.findings)
    fuzz.findings.items.clear()  # reported here, not a failure of the API
    assert [(f.kind, f.operation, f.caller, f.detail) for f in found] == [
        ("state changed after a 4xx", "GET /roles/{role}", "admin", "the table (added FUZZ x1)")
    ], found
    assert 400 <= found[0].status < 500


def test_signed_requests_reach_the_api_and_outsiders_do_not(fuzz_stack: LocalStack) -> None:
    """The signing the fuzz cases use is the one the gateway verifies (a 403 for everyone would hide all)."""
    status, body = signed_json(fuzz_stack, REQUESTER, "GET", "/requests?mine=true&status=pending")
    assert status == 200, body
    status, body = signed_json(fuzz_stack, OUTSIDER, "GET", "/requests?mine=true")
    assert status == 403, body
    # a query that needs encoding (a space, a plus, a slash) is signed as the gateway canonicalises it: the
    # API answers (whatever it thinks of the value), not the gateway's signature check
    status, body = signed_json(fuzz_stack, ADMIN, "GET", "/audit?actor=a%20b%2Bc%2Fd&limit=5")
    assert status in (200, 400), body
    assert "signature" not in str(body).lower(), body
