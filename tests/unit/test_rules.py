"""Rules of a role, table-driven: each case is allowed or refused with its error code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trustgate.errors import CeilingExceededError, ForbiddenError, RuleViolationError, TrustGateError
from trustgate.identity import Caller
from trustgate.models import AccessRequest, AutoApproveRule, RolePolicy
from trustgate.rules import (
    auto_approves,
    check_may_decide,
    check_may_request,
    check_request,
    check_within_ceiling,
    effective_policy,
)
from trustgate.settings import Settings

pytestmark = pytest.mark.unit

ROLE = "arn:aws:iam::111111111111:role/PumpCustomerAccess"
ALICE = Caller("arn:aws:iam::222222222222:user/alice", "222222222222", "AIDAALICE", "user")
BOB = Caller("arn:aws:iam::222222222222:user/bob", "222222222222", "AIDABOB", "user")
MALLORY = Caller("arn:aws:iam::999999999999:user/mallory", "999999999999", "AIDAM", "user")
SETTINGS = Settings(
    managed_role_arns=[ROLE],
    organization_id="o-exampleorg12",
    allowed_account_ids=["222222222222", "111111111111"],
    default_approvers=[BOB.arn],
    max_duration=timedelta(hours=8),
    min_duration=timedelta(minutes=15),
)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("policy", "code"),
    [
        (RolePolicy(), None),
        (RolePolicy(max_duration=4 * H), None),
        (RolePolicy(max_duration=8 * H), None),
        (RolePolicy(max_duration=9 * H), "exceeds_ceiling"),
        (RolePolicy(default_duration=12 * H), "exceeds_ceiling"),
        (RolePolicy(approval_window=25 * H), "exceeds_ceiling"),
        (RolePolicy(max_duration=timedelta(minutes=5)), "invalid_policy"),
        (RolePolicy(default_duration=3 * H, max_duration=2 * H), "invalid_policy"),
        (RolePolicy(requester_accounts=["222222222222"]), None),
        (RolePolicy(requester_accounts=["999999999999"]), "exceeds_ceiling"),
        (RolePolicy(auto_approve=[AutoApproveRule(max_duration=10 * H)]), "exceeds_ceiling"),
    ],
)
def test_role_policy_against_the_ceiling(policy: RolePolicy, code: str | None) -> None:
    if code is None:
        check_within_ceiling(policy, SETTINGS)
    else:
        with pytest.raises(RuleViolationError) as raised:
            check_within_ceiling(policy, SETTINGS)
        assert raised.value.code == code


def test_exceeds_ceiling_names_the_field_and_the_ceiling() -> None:
    with pytest.raises(CeilingExceededError) as raised:
        check_within_ceiling(RolePolicy(max_duration=9 * H), SETTINGS)
    assert raised.value.field == "max_duration"
    assert "PT8H" in raised.value.message


def test_effective_policy_never_exceeds_the_ceiling() -> None:
    effective = effective_policy(ROLE, RolePolicy(), SETTINGS)
    assert effective.max_duration == 8 * H
    assert effective.approvers == (BOB.arn,)
    assert effective.default_duration == H


@pytest.mark.parametrize(
    ("policy", "caller", "allowed"),
    [
        (RolePolicy(), ALICE, True),
        (RolePolicy(), MALLORY, False),
        (RolePolicy(requester_accounts=["222222222222"]), ALICE, True),
        (RolePolicy(requester_accounts=["111111111111"]), ALICE, False),
        (RolePolicy(requester_patterns=["arn:aws:iam::222222222222:user/a*"]), ALICE, True),
        (RolePolicy(requester_patterns=["arn:aws:iam::222222222222:user/b*"]), ALICE, False),
        (RolePolicy(requester_patterns=["222222222222"]), ALICE, True),
    ],
)
def test_who_may_request(policy: RolePolicy, caller: Caller, allowed: bool) -> None:
    effective = effective_policy(ROLE, policy, SETTINGS)
    if allowed:
        check_may_request(caller, effective, SETTINGS)
    else:
        with pytest.raises(ForbiddenError):
            check_may_request(caller, effective, SETTINGS)


@pytest.mark.parametrize(
    ("policy", "duration", "justification", "ticket", "code"),
    [
        (RolePolicy(), H, "rotate the trail bucket", None, None),
        (RolePolicy(), 9 * H, "rotate the trail bucket", None, "duration_too_long"),
        (RolePolicy(max_duration=2 * H), 3 * H, "rotate the trail bucket", None, "duration_too_long"),
        (RolePolicy(), timedelta(minutes=5), "rotate the trail bucket", None, "duration_too_short"),
        (RolePolicy(), H, "too short", None, "justification_too_short"),
        (RolePolicy(justification_min_length=0), H, "x", None, None),
        (RolePolicy(ticket_pattern=r"OPS-\d+"), H, "rotate the trail bucket", None, "ticket_required"),
        (RolePolicy(ticket_pattern=r"OPS-\d+"), H, "rotate the trail bucket", "JIRA-1", "ticket_invalid"),
        (RolePolicy(ticket_pattern=r"OPS-\d+"), H, "rotate the trail bucket", "OPS-42", None),
    ],
)
def test_request_rules(
    policy: RolePolicy, duration: timedelta, justification: str, ticket: str | None, code: str | None
) -> None:
    effective = effective_policy(ROLE, policy, SETTINGS)
    if code is None:
        check_request(duration, justification, ticket, effective)
    else:
        with pytest.raises(RuleViolationError) as raised:
            check_request(duration, justification, ticket, effective)
        assert raised.value.code == code
        assert raised.value.status == 422


def request(**changes: object) -> AccessRequest:
    values: dict[str, object] = {
        "id": "R1",
        "role_arn": ROLE,
        "principal_arn": ALICE.arn,
        "duration": H,
        "justification": "rotate the trail bucket",
        "created_at": datetime(2026, 11, 26, 10, tzinfo=UTC),
        "approvers": [BOB.arn, ALICE.arn],
    }
    return AccessRequest.model_validate(values | changes)


@pytest.mark.parametrize(
    ("approver", "changes", "allowed"),
    [
        (BOB, {}, True),
        (ALICE, {}, False),  # self-approval off by default even when listed as an approver
        (ALICE, {"allow_self_approval": True}, True),
        (MALLORY, {}, False),
    ],
)
def test_who_may_decide(approver: Caller, changes: dict[str, object], allowed: bool) -> None:
    if allowed:
        check_may_decide(approver, request(**changes))
    else:
        with pytest.raises(ForbiddenError):
            check_may_decide(approver, request(**changes))


MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rules", "at", "expected"),
    [
        ([], MONDAY_10, False),
        ([AutoApproveRule()], MONDAY_10, True),
        ([AutoApproveRule(principals=[ALICE.arn])], MONDAY_10, True),
        ([AutoApproveRule(principals=[BOB.arn])], MONDAY_10, False),
        ([AutoApproveRule(max_duration=timedelta(minutes=30))], MONDAY_10, False),
        ([AutoApproveRule(max_duration=2 * H)], MONDAY_10, True),
        ([AutoApproveRule(weekdays=[0, 1, 2, 3, 4], hours_utc=(9, 17))], MONDAY_10, True),
        ([AutoApproveRule(weekdays=[0, 1, 2, 3, 4], hours_utc=(9, 17))], MONDAY_10 + timedelta(hours=8), False),
        ([AutoApproveRule(weekdays=[5, 6])], MONDAY_10, False),
    ],
)
def test_auto_approve_rules(rules: list[AutoApproveRule], at: datetime, expected: bool) -> None:
    assert auto_approves(request(), rules, at) is expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ticket_pattern": "OPS-("}, "regular expression"),
        ({"source_ip_ranges": ["not-an-ip"]}, "CIDR"),
        ({"unknown_field": 1}, "Extra inputs are not permitted"),
        ({"required_approvals": 0}, "greater than or equal to 1"),
        ({"standing_principals": ["*"]}, "12-digit account id"),
        ({"standing_principals": ["arn:aws:iam::222222222222:user/*"]}, "no wildcards"),
        ({"requester_accounts": ["12345"]}, "pattern"),
        ({"requester_principal_tags": {"bad key!": "x"}}, "tag key"),
    ],
)
def test_role_policy_validation_names_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RolePolicy.model_validate(fields)


def test_errors_are_typed_with_status_and_code() -> None:
    assert issubclass(CeilingExceededError, TrustGateError)
    assert CeilingExceededError("x", "y").status == 422
