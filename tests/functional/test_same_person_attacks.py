"""Regression tests for the security review's same-person attacks, through HTTP as attackers would try them.

Every rule about *who* compares persons: one human with a second principal is still one person, and a
role session whose name its caller chose is no person at all.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.aws import ALICE, BOB, CAROL, MANAGEMENT, MEMBER, ROLE_ARN, VENDOR_TRUST, World
from tests.support.flows import JUSTIFICATION, approve, granted, request_access
from trustgate.core.session_guard import guard_window

pytestmark = pytest.mark.functional

SHARED_SESSION = f"arn:aws:sts::{MEMBER}:assumed-role/SharedDeployRole/alice"  # any caller may pick "alice"
ADMIN_SET = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
READONLY_SET = "AWSReservedSSO_ReadOnlyAccess_fedcba9876543210"


def sso(user: str, permission_set: str = ADMIN_SET, account: str = MEMBER) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{permission_set}/{user}"


def set_policy(world: World, **policy: Any) -> None:
    status, body = world.api("PUT", "/roles/PumpCustomerAccess/policy", CAROL, policy)
    assert status == 200, body


def error_of(world: World, method: str, path: str, caller: str, body: Any = None) -> tuple[int, str, str]:
    status, answer = world.api(method, path, caller, body)
    return status, answer["error"]["code"], answer["error"]["message"]


def refused_request(world: World, caller: str) -> tuple[int, str, str]:
    """POST /requests as `caller`, expecting a refusal: (status, code, message)."""
    body = {"role": "PumpCustomerAccess", "duration": "PT1H", "justification": JUSTIFICATION}
    return error_of(world, "POST", "/requests", caller, body)


def test_an_iam_user_cannot_approve_their_own_request_from_a_role_session(world: World) -> None:
    # Approvers are named exactly (a pattern over SharedDeployRole sessions is refused when saved); the session
    # is still no person, whoever the approvers are.
    set_policy(world, approvers=[BOB])
    request_id = request_access(world)["id"]
    world.wait_for_task_token(request_id)
    status, code, message = error_of(world, "POST", f"/requests/{request_id}/approve", SHARED_SESSION)
    assert (status, code) == (403, "not_a_person")
    assert "IAM user, an IAM Identity Center session" in message
    assert "identity_roles" in message
    assert world.status(request_id) == "pending"
    assert world.deps.store.get_request(request_id).approvals == []


def test_an_identity_center_user_cannot_approve_their_own_request_from_another_permission_set(
    world: World,
) -> None:
    set_policy(world, approvers=["idc:carol.ng@example.com", BOB])  # carol in every permission set and account
    request_id = request_access(world, caller=sso("carol.ng@example.com"))["id"]
    world.wait_for_task_token(request_id)
    for other in (sso("carol.ng@example.com", READONLY_SET), sso("Carol.Ng@example.com", ADMIN_SET, MANAGEMENT)):
        status, code, _ = error_of(world, "POST", f"/requests/{request_id}/approve", other)
        assert (status, code) == (403, "own_request")
    assert world.deps.store.get_request(request_id).approvals == []


@pytest.mark.parametrize(
    "second_identity",
    [sso("erin@example.com", READONLY_SET), sso("erin@example.com", ADMIN_SET, MANAGEMENT)],
    ids=["another-permission-set", "same-permission-set-in-another-account"],
)
def test_one_person_cannot_meet_a_two_of_two_quorum_alone(world: World, second_identity: str) -> None:
    set_policy(world, approvers=["idc:erin@example.com", BOB], required_approvals=2)
    request_id = request_access(world)["id"]
    world.wait_for_task_token(request_id)
    status, body = world.api("POST", f"/requests/{request_id}/approve", sso("erin@example.com"))
    assert status == 200, body
    assert body["approvals"][0]["person"] == "erin@example.com (Identity Center)"
    assert body["approvals"][0]["approver_arn"] == sso("erin@example.com")
    status, code, _ = error_of(world, "POST", f"/requests/{request_id}/approve", second_identity)
    assert (status, code) == (409, "already_decided_by_you")
    request = world.deps.store.get_request(request_id)
    assert (request.status.value, request.decided_at, len(request.approvals)) == ("pending", None, 1)
    assert world.trust_policy() == VENDOR_TRUST


def test_a_chosen_session_name_does_not_make_someone_the_requester(world: World) -> None:
    active = granted(world)["id"]
    # Mallory assumes a shared role with RoleSessionName=alice: she is not alice.
    assert world.api("GET", f"/requests/{active}", SHARED_SESSION)[0] == 404
    extend = {"duration": "PT1H", "justification": JUSTIFICATION}
    assert error_of(world, "POST", f"/requests/{active}/extend", SHARED_SESSION, extend)[:2] == (403, "forbidden")
    assert error_of(world, "POST", f"/requests/{active}/revoke", SHARED_SESSION)[:2] == (403, "forbidden")
    status, mine = world.api("GET", "/requests", SHARED_SESSION, query={"mine": "true"})
    assert (status, mine["error"]["code"]) == (403, "not_a_person")
    # Nor can she ask in her own right through that role.
    status, code, _ = refused_request(world, SHARED_SESSION)
    assert (status, code) == (403, "not_a_person")
    assert world.status(active) == "active"


def test_an_identity_role_listed_by_the_admin_names_persons_within_the_ceiling(world: World) -> None:
    status, code, message = error_of(
        world,
        "PUT",
        "/roles/PumpCustomerAccess/policy",
        CAROL,
        {"identity_roles": [f"arn:aws:iam::{MEMBER}:role/SharedDeployRole"]},
    )
    assert (status, code) == (422, "exceeds_ceiling")
    assert "IdentityRoleArns" in message


def test_the_trust_policy_pins_the_session_name_of_each_person(world: World) -> None:
    granted(world)
    carol = sso("carol.ng@example.com")
    request_id = request_access(world, caller=carol)["id"]
    approve(world, request_id)
    world.wait_status(request_id, "active")
    statements = [s for s in world.trust_policy()["Statement"] if s["Sid"].startswith("TrustGateGrant")]
    pins = {
        s["Sid"]: (s["Principal"]["AWS"], s["Condition"]["StringEquals"]["sts:RoleSessionName"]) for s in statements
    }
    assert pins == {
        "TrustGateGrantUsers": (ALICE, "${aws:username}"),
        "TrustGateGrantSession1": (carol, "carol.ng@example.com"),
    }
    status, view = world.api("GET", f"/requests/{request_id}", carol)
    assert status == 200
    assert view["access"]["session_name"] == "carol.ng@example.com"
    assert "--role-session-name carol.ng@example.com" in view["access"]["assume_role_command"]


def test_a_second_person_with_the_same_session_name_is_refused_and_nothing_changes(world: World) -> None:
    granted(world)
    before_trust, before_guard = world.trust_policy(), world.session_guard()
    other_alice = f"arn:aws:iam::{MANAGEMENT}:user/alice"
    status, code, message = refused_request(world, other_alice)
    assert (status, code) == (409, "session_name_conflict")
    assert "'alice'" in message
    assert "aws:userid" in message
    assert (world.trust_policy(), world.session_guard()) == (before_trust, before_guard)
    status, mine = world.api("GET", "/requests", other_alice, query={"mine": "true"})
    assert mine["items"] == []


def test_one_person_holds_one_open_request_and_one_coverage_per_role(world: World) -> None:
    first = request_access(world)["id"]
    status, code, message = refused_request(world, ALICE)
    assert (status, code) == (409, "request_pending")
    assert first in message
    assert f"trustgate cancel {first}" in message
    approve(world, first)
    world.wait_status(first, "active")
    second = request_access(world)["id"]  # while covered: an extension of the one coverage
    approve(world, second)
    world.wait_status(second, "active")
    grants = [s for s in world.trust_policy()["Statement"] if s["Sid"].startswith("TrustGateGrant")]
    assert [g["Principal"]["AWS"] for g in grants] == [ALICE]


def test_a_full_session_guard_refuses_the_request_and_changes_nothing(world: World) -> None:
    iam = world.session.client("iam")
    filler = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::%s/*"}]}'
    iam.put_role_policy(
        RoleName=ROLE_ARN.rsplit("/", 1)[-1], PolicyName="VendorBigPolicy", PolicyDocument=filler % ("b" * 10100)
    )
    status, code, message = refused_request(world, ALICE)
    assert (status, code) == (409, "session_guard_full")
    assert "10240" in message
    assert world.trust_policy() == VENDOR_TRUST
    assert world.session_guard() is None


def test_revoke_ends_every_session_of_the_person_at_that_second(world: World) -> None:
    active = granted(world)
    status, body = world.api("POST", f"/requests/{active['id']}/revoke", CAROL, {"reason": "incident closed"})
    assert (status, body["status"]) == (200, "revoked")
    _start, end = guard_window(world.session_guard(), f"{world.role_id()}:alice")
    assert end == world.deps.store.get_request(active["id"]).expires_at
    assert world.trust_policy() == VENDOR_TRUST
