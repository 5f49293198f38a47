"""Adversarial cases on role policies: looser than the deployer's ceiling, principals outside the allowed
accounts, wildcard approvers and admins, a Deny adopted away, a stale write, a policy IAM refuses.

Each is refused, and changes nothing: not the trust policy, not the guard, not a stored item (no policy, no
audit record, no grant revoked).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.adversarial import refused_unchanged
from tests.support.aws import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    MALLORY,
    MANAGEMENT,
    MEMBER,
    ROLE_NAME,
    VENDOR_TRUST,
    World,
    running_world,
)
from tests.support.flows import approve, granted, request_access
from tests.support.iam_faults import iam_refuses_principal

pytestmark = pytest.mark.functional

POLICY = f"/roles/{ROLE_NAME}/policy"
TAKE_OVER = {"adopt_statements": ["PumpOrganizationAccess"]}


def put(world: World, policy: dict[str, Any], **options: Any) -> Callable[[], tuple[int, Any]]:
    return lambda: world.api("PUT", POLICY, CAROL, policy, **options)


def refused_policy(world: World, policy: dict[str, Any], status: int, code: str) -> str:
    """PUT `policy` with an active grant in place: refused, nothing changed. Returns the message."""
    granted(world)
    body = refused_unchanged(world, put(world, policy), status, code)
    return str(body["error"]["message"])


# -- the approval floor -------------------------------------------------------------------------------


def test_an_auto_approve_rule_is_refused_where_the_deployer_does_not_allow_auto_approve(world: World) -> None:
    message = refused_policy(world, {"auto_approve": [{"principals": [ALICE]}]}, 422, "exceeds_ceiling")
    assert "AllowAutoApprove" in message


def test_auto_approving_everyone_is_refused(world: World) -> None:
    refused_policy(world, {"auto_approve": [{}]}, 422, "exceeds_ceiling")


def test_auto_approving_everyone_is_refused_even_where_auto_approve_is_allowed() -> None:
    with running_world({"AllowAutoApprove": "true"}) as world:
        message = refused_policy(world, {"auto_approve": [{"max_duration": "PT1H"}]}, 422, "invalid_policy")
        assert "auto_approve[0].principals" in message


def test_an_auto_approve_rule_for_requesters_outside_the_allowed_accounts_is_refused() -> None:
    with running_world({"AllowAutoApprove": "true"}) as world:
        message = refused_policy(world, {"auto_approve": [{"principals": [MALLORY]}]}, 422, "exceeds_ceiling")
        assert message.startswith("auto_approve[0].principals:")


def test_self_approval_is_refused_where_the_deployer_does_not_allow_it(world: World) -> None:
    message = refused_policy(world, {"allow_self_approval": True}, 422, "exceeds_ceiling")
    assert "AllowSelfApproval" in message


def test_fewer_approvals_than_the_deployers_floor_are_refused() -> None:
    with running_world({"MinRequiredApprovals": "2"}) as world:
        request_id = request_access(world)["id"]
        approve(world, request_id, BOB)
        approve(world, request_id, DAVE)  # the floor holds: two approvals
        world.wait_status(request_id, "active")
        body = refused_unchanged(world, put(world, {"required_approvals": 1}), 422, "exceeds_ceiling")
        assert "required_approvals" in body["error"]["message"]


# -- approvers and admins are persons, named exactly -----------------------------------------------------


def test_a_wildcard_approver_is_refused(world: World) -> None:
    message = refused_policy(world, {"approvers": ["*"]}, 422, "exceeds_ceiling")
    assert message.startswith("approvers:")


def test_a_wildcard_admin_is_refused(world: World) -> None:
    message = refused_policy(world, {"admins": ["*"]}, 422, "exceeds_ceiling")
    assert message.startswith("admins:")


def test_an_approver_naming_a_whole_account_is_refused(world: World) -> None:
    refused_policy(world, {"approvers": [MEMBER]}, 422, "exceeds_ceiling")


def test_an_approver_pattern_over_every_identity_center_session_is_refused(world: World) -> None:
    refused_policy(world, {"approvers": ["arn:aws:sts::*:assumed-role/AWSReservedSSO_*/*"]}, 422, "exceeds_ceiling")


def test_a_session_of_a_role_whose_session_name_its_caller_picks_is_refused_as_approver(world: World) -> None:
    approver = f"arn:aws:sts::{MEMBER}:assumed-role/SharedDeployRole/bob"
    message = refused_policy(world, {"approvers": [approver]}, 422, "exceeds_ceiling")
    assert "names no person" in message


def test_an_approver_outside_the_organization_is_refused(world: World) -> None:
    message = refused_policy(world, {"approvers": [MALLORY]}, 422, "exceeds_ceiling")
    assert "AllowedAccountIds" in message


def test_an_admin_outside_the_organization_is_refused(world: World) -> None:
    message = refused_policy(world, {"admins": [MALLORY]}, 422, "exceeds_ceiling")
    assert "AllowedAccountIds" in message


def test_an_identity_center_approver_is_refused_where_identity_center_is_not_trusted() -> None:
    with running_world({"IdentityCenterAccountIds": ""}) as world:
        refused_policy(world, {"approvers": ["idc:bob"]}, 422, "exceeds_ceiling")


def test_an_identity_role_approver_is_refused_without_identity_roles(world: World) -> None:
    refused_policy(world, {"approvers": ["role:bob"]}, 422, "exceeds_ceiling")


# -- every principal inside the allowed accounts -----------------------------------------------------------


def test_a_standing_principal_outside_the_allowed_accounts_is_refused(world: World) -> None:
    policy = {"mode": "accounts", **TAKE_OVER, "standing_principals": ["999999999999"]}
    refused_policy(world, policy, 422, "exceeds_ceiling")


def test_a_standing_principal_of_another_partition_is_refused(world: World) -> None:
    policy = {"mode": "accounts", **TAKE_OVER, "standing_principals": [f"arn:aws-cn:iam::{MEMBER}:user/bob"]}
    refused_policy(world, policy, 422, "exceeds_ceiling")


def test_a_requester_pattern_with_a_wildcard_account_is_refused(world: World) -> None:
    message = refused_policy(world, {"requester_patterns": ["arn:aws:iam::*:user/*"]}, 422, "exceeds_ceiling")
    assert "literal 12-digit" in message


def test_a_requester_pattern_outside_the_allowed_accounts_is_refused(world: World) -> None:
    refused_policy(world, {"requester_patterns": ["arn:aws:iam::999999999999:user/*"]}, 422, "exceeds_ceiling")


# -- managed modes, concurrency, IAM ---------------------------------------------------------------------


def test_adopting_the_vendors_deny_is_refused(world: World) -> None:
    deny = {
        "Sid": "PumpRequireMfa",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "sts:AssumeRole",
        "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
    }
    document = {**VENDOR_TRUST, "Statement": [*VENDOR_TRUST["Statement"], deny]}
    world.session.client("iam").update_assume_role_policy(RoleName=ROLE_NAME, PolicyDocument=json.dumps(document))
    policy = {"mode": "none", "adopt_statements": ["PumpOrganizationAccess", "PumpRequireMfa"]}
    message = refused_policy(world, policy, 422, "invalid_policy")
    assert "only Allow statements" in message


def test_taking_standing_access_over_without_adopting_the_open_statement_is_refused(world: World) -> None:
    refused_policy(world, {"mode": "none"}, 422, "unadopted_open_statement")


def test_a_write_over_a_policy_changed_since_it_was_read_is_refused(world: World) -> None:
    status, answer = world.api("PUT", POLICY, CAROL, {"require_mfa": True})
    assert status == 200, answer
    granted(world)
    stale = {"If-Match": '"0"'}
    body = refused_unchanged(world, put(world, {"max_duration": "PT1H"}, headers=stale), 412, "precondition_failed")
    assert "version 1" in body["error"]["message"]


def test_a_policy_iam_refuses_is_not_saved_and_revokes_nobody(world: World) -> None:
    ghost = f"arn:aws:iam::{MANAGEMENT}:user/no-such-user"
    granted(world)
    # It would also end alice's grant: requests only from the management account.
    policy = {"mode": "accounts", **TAKE_OVER, "standing_principals": [ghost], "requester_accounts": [MANAGEMENT]}
    with iam_refuses_principal(world, ghost):
        body = refused_unchanged(world, put(world, policy), 422, "iam_refused")
    assert "Invalid principal" in body["error"]["message"]


def test_a_dry_run_with_a_wildcard_approver_is_refused(world: World) -> None:
    granted(world)
    refused_unchanged(world, put(world, {"approvers": ["*"]}, query={"dry_run": "true"}), 422, "exceeds_ceiling")
