"""Admins tighten a role themselves, within the vendor's ceiling (issue: admin restrictions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.support.aws import ALICE, BOB, CAROL, DAVE, MALLORY, MEMBER, ORG_ID, ROLE_ARN, VENDOR_TRUST, World
from tests.support.flows import JUSTIFICATION, granted, request_access
from trustgate.core.trust_policy import BASELINE_SID, NOBODY, grant_expiry_in, is_managed, statements_of

pytestmark = pytest.mark.functional

LOCKED_DOWN = {
    "mode": "none",
    "adopt_statements": ["PumpOrganizationAccess"],
    "require_mfa": True,
    "approvers": [BOB, DAVE],
    "required_approvals": 2,
}


def put(
    world: World, policy: Mapping[str, object], caller: str = CAROL, dry_run: bool = False
) -> tuple[int, dict[str, Any]]:
    query = {"dry_run": "true"} if dry_run else None
    status, body = world.api("PUT", "/roles/PumpCustomerAccess/policy", caller, policy, query=query)
    return status, body


def test_the_seed_scenario_from_organization_wide_to_just_in_time_with_two_approvers(world: World) -> None:
    # GIVEN the vendor's default: the whole organization may assume the role
    assert world.trust_policy() == VENDOR_TRUST
    # WHEN carol restricts it to just-in-time only, with MFA and two approvers
    status, body = put(world, LOCKED_DOWN)
    assert status == 200, body
    assert body["dry_run"] is False
    # THEN nobody has standing access any more: the open statement is gone
    assert world.trust_policy() == {"Version": "2012-10-17", "Statement": [NOBODY]}
    assert body["trust_policy_after"] == world.trust_policy()
    # AND alice's request needs bob AND dave
    request_id = request_access(world)["id"]
    assert world.api("GET", f"/requests/{request_id}", ALICE)[1]["required_approvals"] == 2
    world.wait_for_task_token(request_id)
    status, after_bob = world.api("POST", f"/requests/{request_id}/approve", BOB)
    assert (status, after_bob["status"], len(after_bob["approvals"])) == (200, "pending", 1)
    status, _ = world.api("POST", f"/requests/{request_id}/approve", BOB)
    assert status == 409  # the same approver does not count twice
    status, after_dave = world.api("POST", f"/requests/{request_id}/approve", DAVE)
    assert (status, len(after_dave["approvals"])) == (200, 2)
    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"  # granted and synced
    # AND the grant statement carries the MFA condition
    (grant,) = [s for s in statements_of(world.trust_policy()) if is_managed(s)]
    assert grant["Principal"] == {"AWS": ALICE}
    assert grant["Condition"]["Bool"] == {"aws:MultiFactorAuthPresent": "true"}
    # AND mallory, outside the organization, is refused
    status, body = world.api(
        "POST", "/requests", MALLORY, {"role": "PumpCustomerAccess", "justification": JUSTIFICATION}
    )
    assert status == 403


def test_a_looser_than_ceiling_policy_is_refused_naming_the_ceiling(world: World) -> None:
    status, body = put(world, {"max_duration": "PT24H"})
    assert (status, body["error"]["code"]) == (422, "exceeds_ceiling")
    assert "max_duration" in body["error"]["message"]
    assert "PT12H" in body["error"]["message"]
    assert world.api("GET", "/roles/PumpCustomerAccess/policy", CAROL)[1]["max_duration"] is None


def test_a_dry_run_shows_the_effect_and_changes_nothing(world: World) -> None:
    active = granted(world)["id"]
    status, body = put(world, {**LOCKED_DOWN, "requester_accounts": ["123456789012"]}, dry_run=True)
    assert status == 200, body
    assert body["dry_run"] is True
    assert body["trust_policy_before"] == world.trust_policy()
    assert all(s.get("Sid") != "PumpOrganizationAccess" for s in statements_of(body["trust_policy_after"]))
    assert [r["id"] for r in body["revoked_requests"]] == [active]
    assert world.status(active) == "active"
    assert world.api("GET", "/roles/PumpCustomerAccess/policy", CAROL)[1]["mode"] is None


def test_tightening_revokes_grants_that_no_longer_conform_and_says_which(world: World) -> None:
    active = granted(world)["id"]
    status, body = put(world, {"requester_accounts": ["123456789012"]})
    assert status == 200, body
    assert [r["id"] for r in body["revoked_requests"]] == [active]
    assert world.status(active) == "revoked"
    assert "requester_accounts" in (world.deps.store.get_request(active).reason or "")
    assert grant_expiry_in(world.trust_policy(), ALICE) is None


def test_mode_none_without_adopting_the_open_statement_is_refused(world: World) -> None:
    status, body = put(world, {"mode": "none"})
    assert (status, body["error"]["code"]) == (422, "unadopted_open_statement")
    assert "PumpOrganizationAccess" in body["error"]["message"]
    assert world.trust_policy() == VENDOR_TRUST


def test_organization_mode_renders_a_baseline_bound_to_the_organization(world: World) -> None:
    status, body = put(
        world, {"mode": "organization", "adopt_statements": ["PumpOrganizationAccess"], "require_mfa": True}
    )
    assert status == 200, body
    (baseline,) = statements_of(world.trust_policy())
    assert baseline["Sid"] == BASELINE_SID
    assert baseline["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == ORG_ID
    assert baseline["Condition"]["Bool"]["aws:MultiFactorAuthPresent"] == "true"


def test_accounts_mode_keeps_standing_access_for_listed_accounts_only(world: World) -> None:
    policy = {"mode": "accounts", "adopt_statements": ["PumpOrganizationAccess"], "standing_principals": [MEMBER]}
    status, body = put(world, policy)
    assert status == 200, body
    (baseline,) = statements_of(world.trust_policy())
    assert baseline["Principal"] == {"AWS": f"arn:aws:iam::{MEMBER}:root"}


@pytest.mark.parametrize(
    ("policy", "status", "code"),
    [
        ({"mode": "everyone"}, 400, "invalid_input"),
        ({"unknown": True}, 400, "invalid_input"),
        ({"ticket_pattern": "OPS-("}, 422, "invalid_pattern"),
        ({"source_ip_ranges": ["10.0.0.0/33"]}, 400, "invalid_input"),
        ({"required_approvals": 0}, 400, "invalid_input"),
        ({"approval_window": "PT48H"}, 422, "exceeds_ceiling"),
        ({"requester_accounts": ["999999999999"]}, 422, "exceeds_ceiling"),
        ({"max_duration": "PT2H", "default_duration": "PT3H"}, 422, "invalid_policy"),
    ],
)
def test_invalid_policies_are_refused_and_change_nothing(
    world: World, policy: dict[str, object], status: int, code: str
) -> None:
    got_status, body = put(world, policy)
    assert (got_status, body["error"]["code"]) == (status, code)
    assert world.trust_policy() == VENDOR_TRUST
    assert world.api("GET", "/audit", CAROL, query={"role": "PumpCustomerAccess"})[1]["items"] == []


def test_only_admins_may_read_or_change_a_role_policy(world: World) -> None:
    assert put(world, {"require_mfa": True}, caller=ALICE)[0] == 403
    assert world.api("GET", "/roles/PumpCustomerAccess/policy", BOB)[0] == 403
    assert world.api("POST", "/roles/PumpCustomerAccess/sync", ALICE)[0] == 403


def test_admins_added_by_policy_can_administer_and_the_change_is_audited(world: World) -> None:
    status, _ = put(world, {"admins": [DAVE], "max_duration": "PT2H"})
    assert status == 200
    status, body = world.api("GET", "/roles/PumpCustomerAccess/policy", DAVE)
    assert (status, body["max_duration"], body["effective"]["max_duration"]) == (200, "PT2H", "PT2H")
    status, audit = world.api("GET", "/audit", CAROL, query={"role": "PumpCustomerAccess", "actor": CAROL})
    (change,) = [e for e in audit["items"] if e["action"] == "policy.changed"]
    assert change["before"] == {}
    assert change["after"] == {"admins": [DAVE], "max_duration": "PT2H"}


def test_manual_sync_reports_whether_anything_changed(world: World) -> None:
    status, body = world.api("POST", "/roles/PumpCustomerAccess/sync", CAROL)
    assert (status, body["changed"]) == (200, False)
    assert body["trust_policy"] == VENDOR_TRUST
    assert ROLE_ARN
