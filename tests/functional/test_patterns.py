"""A role's ticket_pattern is evaluated by RE2 (linear time): no ticket can stall the API (issue 10, section 7)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.aws import ALICE, CAROL, World
from tests.support.flows import JUSTIFICATION

pytestmark = pytest.mark.functional


def set_ticket_pattern(world: World, pattern: str) -> None:
    status, body = world.api("PUT", "/roles/PumpCustomerAccess/policy", CAROL, {"ticket_pattern": pattern})
    assert status == 200, body


def ask(world: World, ticket: str) -> tuple[int, dict[str, Any]]:
    body = {"role": "PumpCustomerAccess", "duration": "PT1H", "justification": JUSTIFICATION, "ticket": ticket}
    status, answer = world.api("POST", "/requests", ALICE, body)
    return status, answer


def test_the_pattern_that_stalled_the_api_answers_a_29_character_ticket_at_once(world: World) -> None:
    # `^(a+)+$` took 16 s on Python's backtracking `re` against this ticket; RE2 answers in one pass.
    set_ticket_pattern(world, "^(a+)+$")
    status, body = ask(world, "a" * 28 + "!")
    assert (status, body["error"]["code"]) == (422, "ticket_invalid")
    status, body = ask(world, "a" * 29)
    assert status == 201, body


def test_tickets_are_judged_with_re2_semantics(world: World) -> None:
    # RE2 syntax Python's `re` cannot compile (\p{Lu}) is accepted, and RE2's \d is ASCII only.
    set_ticket_pattern(world, r"\p{Lu}+-\d+")
    status, body = ask(world, "OPS-١٢")  # Arabic-Indic digits: `re` would have matched them
    assert (status, body["error"]["code"]) == (422, "ticket_invalid")
    status, body = ask(world, "OPS-12")
    assert status == 201, body


def test_an_uncompilable_pattern_is_refused_with_re2s_reason(world: World) -> None:
    status, body = world.api("PUT", "/roles/PumpCustomerAccess/policy", CAROL, {"ticket_pattern": r"(OPS)-\1"})
    assert (status, body["error"]["code"]) == (422, "invalid_pattern")
    assert "ticket_pattern" in body["error"]["message"]
    assert "invalid escape sequence" in body["error"]["message"]  # RE2's own reason
    assert "no backreferences" in body["error"]["message"]  # and how to fix it
