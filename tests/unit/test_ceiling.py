"""The deployer's ceiling over approval and over the principals a role policy names (`rules.check_within_ceiling`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from trustgate.core.errors import CeilingExceededError, ForbiddenError, RuleViolationError
from trustgate.core.identity import caller_for_arn
from trustgate.core.models import RolePolicy
from trustgate.core.rules import break_glass_max, check_may_break_glass, check_within_ceiling, effective_policy
from trustgate.core.settings import Settings

pytestmark = pytest.mark.unit

ROLE = "arn:aws:iam::111111111111:role/PumpCustomerAccess"
SAML_ROLE = "arn:aws:iam::222222222222:role/SamlEngineers"
SETTINGS = Settings(
    managed_role_arns=[ROLE],
    organization_id="o-exampleorg12",
    allowed_account_ids=["222222222222", "111111111111"],
    identity_center_account_ids=["222222222222"],
    identity_role_arns=[SAML_ROLE],
)
OPEN = Settings(managed_role_arns=[ROLE], organization_id="o-exampleorg12")  # no AllowedAccountIds, no IdC


def refusal(policy: dict[str, Any], settings: Settings = SETTINGS) -> str | None:
    try:
        check_within_ceiling(RolePolicy.model_validate(policy), settings)
    except RuleViolationError as error:
        field = error.field if isinstance(error, CeilingExceededError) else "-"
        return f"{error.code} {field}"
    return None


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({"approvers": ["arn:aws:iam::222222222222:user/bob", "iam:222222222222:dave", "idc:carol"]}, None),
        ({"approvers": ["arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/c"]}, None),
        (
            {"approvers": ["arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/c"]},
            "approvers",
        ),
        ({"approvers": ["arn:aws:sts::222222222222:assumed-role/SamlEngineers/dana"]}, "approvers"),
        (
            {"approvers": ["arn:aws:sts::222222222222:assumed-role/SamlEngineers/dana"], "identity_roles": [SAML_ROLE]},
            None,
        ),
        ({"approvers": ["role:dana"]}, "approvers"),
        ({"approvers": ["role:dana"], "identity_roles": [SAML_ROLE]}, None),
        ({"approvers": ["*"]}, "approvers"),
        ({"admins": ["arn:aws:iam::222222222222:user/*"]}, "admins"),
        ({"admins": ["222222222222"]}, "admins"),
        ({"admins": ["arn:aws:iam::333333333333:user/eve"]}, "admins"),
        ({"admins": ["arn:aws:iam::222222222222:root"]}, "admins"),
        ({"requester_patterns": ["arn:aws:iam::222222222222:user/*", "idc:*@example.com"]}, None),
        ({"requester_patterns": ["arn:aws:iam::22222222222?:user/alice"]}, "requester_patterns"),
        ({"requester_patterns": ["arn:*:iam::222222222222:user/alice"]}, "requester_patterns"),
        ({"requester_patterns": ["arn:aws:s3:::bucket"]}, "requester_patterns"),
        ({"requester_patterns": ["*"]}, "requester_patterns"),
        ({"requester_patterns": ["iam:333333333333:*"]}, "requester_patterns"),
        ({"standing_principals": ["333333333333"]}, "standing_principals"),
        ({"standing_principals": ["arn:aws-cn:iam::222222222222:user/bob"]}, "standing_principals"),
    ],
)
def test_principals_a_policy_names_must_lie_inside_the_ceiling(policy: dict[str, Any], expected: str | None) -> None:
    assert refusal(policy) == (f"exceeds_ceiling {expected}" if expected else None)


def test_without_allowed_accounts_only_literal_accounts_pass_and_identity_center_keys_are_refused() -> None:
    assert refusal({"requester_patterns": ["arn:aws:iam::333333333333:user/*"]}, OPEN) is None
    assert refusal({"requester_patterns": ["arn:aws:iam::*:user/alice"]}, OPEN) == "exceeds_ceiling requester_patterns"
    assert refusal({"approvers": ["idc:carol"]}, OPEN) == "exceeds_ceiling approvers"


def test_the_approval_floor_refuses_explicit_values_below_it_and_raises_unset_ones() -> None:
    floor = SETTINGS.model_copy(update={"min_required_approvals": 2})
    assert refusal({"required_approvals": 1}, floor) == "exceeds_ceiling required_approvals"
    assert refusal({"required_approvals": 3}, floor) is None
    assert refusal({}, floor) is None
    assert effective_policy(ROLE, RolePolicy(), floor).policy.required_approvals == 2


def test_auto_approve_and_self_approval_need_the_deployers_consent_and_are_off_at_run_time_without_it() -> None:
    rule = {"auto_approve": [{"principals": ["arn:aws:iam::222222222222:user/alice"]}]}
    assert refusal(rule) == "exceeds_ceiling auto_approve"
    assert refusal({"allow_self_approval": True}) == "exceeds_ceiling allow_self_approval"
    allowing = SETTINGS.model_copy(update={"allow_auto_approve": True, "allow_self_approval": True})
    assert refusal(rule, allowing) is None
    assert refusal({"auto_approve": [{}]}, allowing) == "invalid_policy -"
    saved = RolePolicy.model_validate({**rule, "allow_self_approval": True})
    assert effective_policy(ROLE, saved, SETTINGS).policy.auto_approve == []
    assert effective_policy(ROLE, saved, SETTINGS).policy.allow_self_approval is False
    assert effective_policy(ROLE, saved, allowing).policy == saved


def test_settings_read_the_ceiling_from_the_environment() -> None:
    env = {"MIN_REQUIRED_APPROVALS": "3", "ALLOW_AUTO_APPROVE": "true", "ALLOW_SELF_APPROVAL": "false"}
    settings = Settings.from_env(env)
    assert (settings.min_required_approvals, settings.allow_auto_approve, settings.allow_self_approval) == (
        3,
        True,
        False,
    )
    defaults = Settings.from_env({})
    assert (defaults.min_required_approvals, defaults.allow_auto_approve, defaults.allow_self_approval) == (
        1,
        False,
        False,
    )


def test_break_glass_needs_the_deployers_consent_names_its_requesters_and_stays_under_its_ceiling() -> None:
    alice = "arn:aws:iam::222222222222:user/alice"
    rule = {"break_glass": {"requesters": [alice], "max_duration": "PT30M"}}
    assert refusal(rule) == "exceeds_ceiling break_glass"
    allowing = SETTINGS.model_copy(
        update={
            "allow_break_glass": True,
            "max_break_glass_duration": timedelta(hours=1),
            "default_approvers": ["arn:aws:iam::222222222222:user/bob"],
        }
    )
    assert refusal(rule, allowing) is None
    assert refusal({"break_glass": {"requesters": [], "max_duration": "PT30M"}}, allowing) == "invalid_policy -"
    too_long = {"break_glass": {"requesters": [alice], "max_duration": "PT2H"}}
    assert refusal(too_long, allowing) == "exceeds_ceiling break_glass.max_duration"
    too_short = {"break_glass": {"requesters": [alice], "max_duration": "PT5M"}}
    assert refusal(too_short, allowing) == "invalid_policy -"
    outside = {"break_glass": {"requesters": ["arn:aws:iam::333333333333:user/*"], "max_duration": "PT30M"}}
    assert refusal(outside, allowing) == "exceeds_ceiling break_glass.requesters"
    saved = RolePolicy.model_validate(rule)
    assert effective_policy(ROLE, saved, SETTINGS).policy.break_glass is None  # off at run time without consent
    assert effective_policy(ROLE, saved, allowing).policy == saved
    with pytest.raises(ValueError, match="max_duration"):
        RolePolicy.model_validate({"break_glass": {"requesters": [alice]}})
    assert Settings.from_env({"ALLOW_BREAK_GLASS": "true", "MAX_BREAK_GLASS_DURATION": "PT45M"}).model_dump(
        include={"allow_break_glass", "max_break_glass_duration"}
    ) == {"allow_break_glass": True, "max_break_glass_duration": timedelta(minutes=45)}


def test_the_break_glass_maximum_is_the_least_of_the_rule_the_ceiling_and_the_roles_maximum() -> None:
    alice = caller_for_arn("arn:aws:iam::222222222222:user/alice", SETTINGS.caller_policy())
    allowing = SETTINGS.model_copy(update={"allow_break_glass": True, "max_break_glass_duration": timedelta(hours=1)})
    policy = RolePolicy.model_validate(
        {"max_duration": "PT20M", "break_glass": {"requesters": [alice.arn], "max_duration": "PT45M"}}
    )
    effective = effective_policy(ROLE, policy, allowing)
    assert break_glass_max(effective, allowing) == timedelta(minutes=20)
    check_may_break_glass(alice, timedelta(minutes=20), effective, allowing)
    with pytest.raises(RuleViolationError, match="PT20M"):
        check_may_break_glass(alice, timedelta(minutes=21), effective, allowing)
    bob = caller_for_arn("arn:aws:iam::222222222222:user/bob", SETTINGS.caller_policy())
    with pytest.raises(ForbiddenError, match=r"break_glass\.requesters"):
        check_may_break_glass(bob, timedelta(minutes=15), effective, allowing)
    assert break_glass_max(effective_policy(ROLE, policy, SETTINGS), SETTINGS) is None


@pytest.mark.parametrize(
    ("approvers", "requesters", "expected"),
    [
        (["arn:aws:iam::222222222222:user/bob"], ["arn:aws:iam::222222222222:user/alice"], None),
        (["arn:aws:iam::222222222222:user/bob"], ["arn:aws:iam::222222222222:user/*"], "invalid_policy -"),
        (["iam:222222222222:bob"], ["arn:aws:iam::222222222222:user/b*"], "invalid_policy -"),
        (["iam:222222222222:bob"], ["222222222222"], "invalid_policy -"),  # a whole account names bob too
        (["idc:bob"], ["arn:aws:iam::222222222222:user/alice"], None),
        (["idc:bob"], ["idc:b*"], "invalid_policy -"),
        # An Identity Center person may sign in through any permission set: a session pattern might be theirs.
        (
            ["idc:bob"],
            ["arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Ops_0123456789abcdef/*"],
            "invalid_policy -",
        ),
        (["arn:aws:iam::222222222222:user/alice", "idc:bob"], ["arn:aws:iam::222222222222:user/alice"], None),
    ],
)
def test_a_break_glass_rule_needs_an_approver_it_cannot_name(
    approvers: list[str], requesters: list[str], expected: str | None
) -> None:
    allowing = SETTINGS.model_copy(update={"allow_break_glass": True})
    policy = {"approvers": approvers, "break_glass": {"requesters": requesters, "max_duration": "PT30M"}}
    assert refusal(policy, allowing) == expected
