"""Adversarial cases on what TrustGate tells people: the notify list and justifications. Refused; nothing changes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.adversarial import refused_unchanged
from tests.support.aws import ALICE, CAROL, World
from tests.support.flows import granted

pytestmark = pytest.mark.functional

POLICY = "/roles/PumpCustomerAccess/policy"


def put_policy(world: World, policy: dict[str, Any]) -> Any:
    return lambda: world.api("PUT", POLICY, CAROL, policy)


def ask(world: World, justification: str) -> Any:
    body = {"role": "PumpCustomerAccess", "duration": "PT1H", "justification": justification}
    return lambda: world.api("POST", "/requests", ALICE, body)


def test_a_policy_with_2000_notify_targets_is_refused(world: World) -> None:
    """The reported flood: 2,000 targets made 661 messages from one request."""
    body = refused_unchanged(
        world, put_policy(world, {"notify": [f"u{i}@x.io" for i in range(2000)]}), 422, "invalid_notify"
    )
    assert "at most 20" in body["error"]["message"]


def test_a_policy_with_one_notify_target_too_many_is_refused(world: World) -> None:
    refused_unchanged(world, put_policy(world, {"notify": [f"u{i}@x.io" for i in range(21)]}), 422, "invalid_notify")


def test_a_notify_target_that_is_neither_an_email_nor_an_arn_is_refused(world: World) -> None:
    body = refused_unchanged(world, put_policy(world, {"notify": ["the whole company"]}), 422, "invalid_notify")
    assert "neither an email address" in body["error"]["message"]


def test_a_wildcard_notify_target_that_would_name_the_shared_channel_is_refused(world: World) -> None:
    refused_unchanged(world, put_policy(world, {"notify": ["*"]}), 422, "invalid_notify")


def test_a_notify_arn_with_a_wildcard_is_refused(world: World) -> None:
    refused_unchanged(world, put_policy(world, {"notify": ["arn:aws:iam::222222222222:user/*"]}), 422, "invalid_notify")


def test_a_notify_target_smuggling_an_email_header_is_refused(world: World) -> None:
    target = "ops@example.com\nBcc: attacker@evil.example"
    refused_unchanged(world, put_policy(world, {"notify": [target]}), 422, "invalid_notify")


def test_a_justification_of_twelve_zero_width_spaces_is_too_short(world: World) -> None:
    body = refused_unchanged(world, ask(world, "\u200b" * 12), 422, "justification_too_short")
    assert "visible characters" in body["error"]["message"]


def test_a_justification_padded_with_invisible_characters_is_too_short(world: World) -> None:
    padding = "\u2060\u202e\u3164\u2800\u00a0\u200d\ufeff" * 10  # word joiner, bidi, fillers, odd spaces
    refused_unchanged(world, ask(world, f"ok{padding}"), 422, "justification_too_short")


def test_a_justification_of_combining_marks_is_too_short(world: World) -> None:
    refused_unchanged(world, ask(world, "x" + "\u0336" * 40), 422, "justification_too_short")


def test_an_extension_with_an_invisible_justification_is_refused(world: World) -> None:
    grant = granted(world)
    refused_unchanged(
        world,
        lambda: world.api(
            "POST",
            f"/requests/{grant['id']}/extend",
            ALICE,
            {"duration": "PT30M", "justification": "\u200b\u200c" * 20},
        ),
        422,
        "justification_too_short",
    )
