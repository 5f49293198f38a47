"""Adversarial cases on patterns (issue 10, section 7): refused, and nothing changes.

Admin-supplied patterns are evaluated by RE2 in linear time; what RE2 cannot compile, and ARN patterns that
are not plain bounded ASCII, are refused when the policy is saved.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from tests.support.adversarial import refused_unchanged
from tests.support.aws import ALICE, CAROL, MEMBER, World
from tests.support.flows import JUSTIFICATION

pytestmark = pytest.mark.functional

POLICY = "/roles/PumpCustomerAccess/policy"


def put_policy(world: World, policy: Mapping[str, object]) -> tuple[int, object]:
    return world.api("PUT", POLICY, CAROL, policy)


def test_a_ticket_pattern_re2_cannot_compile_is_refused(world: World) -> None:
    body = refused_unchanged(world, lambda: put_policy(world, {"ticket_pattern": "OPS-("}), 422, "invalid_pattern")
    assert "missing )" in body["error"]["message"]


def test_a_backreference_ticket_pattern_is_refused(world: World) -> None:
    refused_unchanged(world, lambda: put_policy(world, {"ticket_pattern": r"^(\d+)-\1$"}), 422, "invalid_pattern")


def test_a_lookahead_ticket_pattern_is_refused(world: World) -> None:
    refused_unchanged(world, lambda: put_policy(world, {"ticket_pattern": r"^(?=.*\d)OPS-.*$"}), 422, "invalid_pattern")


def test_an_overlong_ticket_pattern_is_refused(world: World) -> None:
    pattern = "(a|b)" * 41  # 205 characters: past the 200 allowed
    body = refused_unchanged(world, lambda: put_policy(world, {"ticket_pattern": pattern}), 422, "invalid_pattern")
    assert "at most 200" in body["error"]["message"]


def test_a_huge_repetition_ticket_pattern_is_refused(world: World) -> None:
    refused_unchanged(world, lambda: put_policy(world, {"ticket_pattern": "(a{1000}){1000}"}), 422, "invalid_pattern")


def test_a_catastrophic_backtracking_ticket_cannot_stall_a_request(world: World) -> None:
    status, body = put_policy(world, {"ticket_pattern": "^(a+)+$"})
    assert status == 200, body
    attack = {"role": "PumpCustomerAccess", "justification": JUSTIFICATION, "ticket": "a" * 28 + "!"}
    refused_unchanged(world, lambda: world.api("POST", "/requests", ALICE, attack), 422, "ticket_invalid")


def test_a_non_ascii_requester_pattern_is_refused(world: World) -> None:
    pattern = f"arn:aws:iam::{MEMBER}:user/alïce"
    refused_unchanged(world, lambda: put_policy(world, {"requester_patterns": [pattern]}), 422, "invalid_pattern")


def test_a_requester_pattern_with_a_trailing_newline_is_refused(world: World) -> None:
    pattern = f"arn:aws:iam::{MEMBER}:user/*\n"
    refused_unchanged(world, lambda: put_policy(world, {"requester_patterns": [pattern]}), 422, "invalid_pattern")


def test_an_overlong_requester_pattern_is_refused(world: World) -> None:
    pattern = f"arn:aws:iam::{MEMBER}:user/" + "*a" * 1100
    refused_unchanged(world, lambda: put_policy(world, {"requester_patterns": [pattern]}), 422, "invalid_pattern")


def test_a_standing_principal_arn_with_a_trailing_newline_is_refused(world: World) -> None:
    policy = {"mode": "accounts", "standing_principals": [f"arn:aws:iam::{MEMBER}:user/alice\n"]}
    refused_unchanged(world, lambda: put_policy(world, policy), 400, "invalid_input")


def test_a_non_ascii_standing_principal_arn_is_refused(world: World) -> None:
    policy = {"mode": "accounts", "standing_principals": [f"arn:aws:iam::{MEMBER}:user/alïce"]}
    refused_unchanged(world, lambda: put_policy(world, policy), 400, "invalid_input")


def test_an_identity_role_arn_with_a_trailing_newline_is_refused(world: World) -> None:
    policy = {"identity_roles": [f"arn:aws:iam::{MEMBER}:role/SamlUsers\n"]}
    refused_unchanged(world, lambda: put_policy(world, policy), 400, "invalid_input")


def test_a_principal_tag_key_with_a_line_break_is_refused(world: World) -> None:
    policy = {"requester_principal_tags": {"team\nx": "ops"}}
    refused_unchanged(world, lambda: put_policy(world, policy), 400, "invalid_input")
