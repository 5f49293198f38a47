"""A pending request judged by the role policy in force (pure rules): who decides, what counts, what conforms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trustgate.core.errors import ApproverRemovedError, ForbiddenError, OwnRequestError, RequestNonconformingError
from trustgate.core.identity import Caller
from trustgate.core.models import AccessRequest, Approval, AutoApproveRule, RolePolicy
from trustgate.core.rules import (
    EffectivePolicy,
    approval_shortfall,
    check_decidable,
    check_may_decide,
    counted_approvals,
    effective_policy,
    nonconforming_reason,
)
from trustgate.core.settings import Settings

pytestmark = pytest.mark.unit

ROLE = "arn:aws:iam::111111111111:role/PumpCustomerAccess"
ALICE = Caller("arn:aws:iam::222222222222:user/alice", "222222222222", None, "user")
BOB = Caller("arn:aws:iam::222222222222:user/bob", "222222222222", None, "user")
DAVE = Caller("arn:aws:iam::222222222222:user/dave", "222222222222", None, "user")
ERIN = Caller("arn:aws:iam::222222222222:user/erin", "222222222222", None, "user")
SETTINGS = Settings(
    managed_role_arns=[ROLE],
    organization_id="o-exampleorg12",
    allowed_account_ids=["222222222222", "111111111111"],
    default_approvers=[BOB.arn, DAVE.arn],
    max_duration=timedelta(hours=8),
    allow_auto_approve=True,
    allow_self_approval=True,
)
H = timedelta(hours=1)
MADE = datetime(2026, 11, 26, 10, tzinfo=UTC)
NOW = MADE + timedelta(minutes=10)


def request(**changes: object) -> AccessRequest:
    values: dict[str, object] = {
        "id": "R1",
        "role_arn": ROLE,
        "principal_arn": ALICE.arn,
        "duration": 4 * H,
        "justification": "rotate the trail bucket",
        "created_at": MADE,
        "approvers": [BOB.arn, DAVE.arn],
    }
    return AccessRequest.model_validate(values | changes)


def now_in_force(**fields: object) -> EffectivePolicy:
    return effective_policy(ROLE, RolePolicy.model_validate(fields), SETTINGS)


def approved_by(*approvers: Caller) -> list[Approval]:
    return [Approval(approver_arn=a.arn, decision="approve", at=MADE + timedelta(minutes=1)) for a in approvers]


def test_an_approver_removed_since_the_request_was_made_may_not_decide_it() -> None:
    with pytest.raises(ApproverRemovedError) as raised:
        check_may_decide(BOB, request(), now_in_force(approvers=[DAVE.arn, ERIN.arn]))
    assert raised.value.code == "approver_removed"
    assert "no longer an approver of PumpCustomerAccess" in raised.value.message


def test_an_approver_added_since_may_decide_and_a_stranger_still_may_not() -> None:
    effective = now_in_force(approvers=[DAVE.arn, ERIN.arn])
    assert check_may_decide(ERIN, request(), effective).key == "iam:222222222222:erin"
    with pytest.raises(ForbiddenError) as raised:
        check_may_decide(
            Caller("arn:aws:iam::222222222222:user/zed", "222222222222", None, "user"), request(), effective
        )
    assert raised.value.code == "forbidden"


@pytest.mark.parametrize(("snapshot", "in_force"), [(False, True), (True, False)])
def test_self_approval_needs_both_the_snapshot_and_the_policy_in_force(snapshot: bool, in_force: bool) -> None:
    pending = request(approvers=[ALICE.arn, BOB.arn], allow_self_approval=snapshot)
    effective = now_in_force(approvers=[ALICE.arn, BOB.arn], allow_self_approval=in_force)
    with pytest.raises(OwnRequestError):
        check_may_decide(ALICE, pending, effective)


def test_a_duration_above_the_new_maximum_refuses_an_approval_but_not_a_deny() -> None:
    effective = now_in_force(max_duration="PT2H")
    with pytest.raises(RequestNonconformingError) as raised:
        check_decidable(request(), BOB, NOW, effective, SETTINGS)
    assert "more than the role's maximum of PT2H now" in raised.value.message
    check_decidable(request(), BOB, NOW, effective, SETTINGS, approving=False)


def test_a_requester_the_policy_no_longer_allows_does_not_conform() -> None:
    why = nonconforming_reason(request(), now_in_force(requester_accounts=["111111111111"]), SETTINGS)
    assert why is not None
    assert "requester_accounts" in why
    assert nonconforming_reason(request(), now_in_force(), SETTINGS) is None


def test_only_approvals_by_persons_who_may_still_decide_count() -> None:
    pending = request(approvals=approved_by(BOB, DAVE))
    effective = now_in_force(approvers=[DAVE.arn, ERIN.arn], required_approvals=2)
    assert [a.approver_arn for a in counted_approvals(pending, effective, SETTINGS)] == [DAVE.arn]
    why = approval_shortfall(pending.model_copy(update={"decided_at": NOW}), effective, SETTINGS, NOW)
    assert why == (
        "it has 1 of the 2 approvals the role requires now (1 given by approvers the policy no longer names do not count)"
    )


def test_a_higher_quorum_in_force_is_a_shortfall_at_grant() -> None:
    pending = request(approvals=approved_by(BOB), decided_at=NOW)
    assert approval_shortfall(pending, now_in_force(), SETTINGS, NOW) is None
    assert approval_shortfall(pending, now_in_force(required_approvals=2), SETTINGS, NOW) == (
        "it has 1 of the 2 approvals the role requires now"
    )


def test_an_auto_approval_stands_only_while_a_rule_in_force_approves_it() -> None:
    rule = AutoApproveRule(principals=[ALICE.arn], max_duration=4 * H)
    pending = request(auto_approved=True, decided_at=NOW)
    assert approval_shortfall(pending, now_in_force(auto_approve=[rule.model_dump()]), SETTINGS, NOW) is None
    assert approval_shortfall(pending, now_in_force(), SETTINGS, NOW) == (
        "no auto-approve rule of the role approves it any more"
    )
