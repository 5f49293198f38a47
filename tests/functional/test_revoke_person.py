"""POST /roles/{role}/revoke: an admin ends everything one person holds on a role, through HTTP as the CLI calls it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.support.aws import ALICE, BOB, CAROL, ERIN, MANAGEMENT, MEMBER, ROLE_ARN, VENDOR_TRUST, World
from tests.support.flows import JUSTIFICATION, approve, granted, request_access
from tests.support.links import messages_for
from trustgate.core.clock import parse_rfc3339
from trustgate.core.session_guard import guard_window

pytestmark = pytest.mark.functional

PATH = "/roles/PumpCustomerAccess/revoke"
ADMIN_SET = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
READONLY_SET = "AWSReservedSSO_ReadOnlyAccess_fedcba9876543210"


def sso(user: str, permission_set: str = ADMIN_SET, account: str = MEMBER) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{permission_set}/{user}"


def extension_of(world: World, grant: dict[str, Any], duration: str = "PT30M") -> dict[str, Any]:
    status, body = world.api(
        "POST",
        f"/requests/{grant['id']}/extend",
        grant["principal_arn"],
        {"duration": duration, "justification": JUSTIFICATION},
    )
    assert status == 201, body
    assert body["covered_until"] == grant["expires_at"]
    return dict(body)


def revoke(world: World, principal: Any, caller: str = CAROL, reason: str | None = None) -> tuple[int, Any]:
    body: Any = {"principal": principal} if reason is None else {"principal": principal, "reason": reason}
    return world.api("POST", PATH, caller, body)


def test_an_admin_revokes_a_person_ending_the_grant_and_cancelling_the_extension(world: World) -> None:
    grant = granted(world)
    extension = extension_of(world, grant)
    world.wait_for_task_token(extension["id"])
    world.advance(timedelta(minutes=10))

    status, body = revoke(world, ALICE, reason="left the on-call rotation")

    assert status == 200, body
    assert set(body) == {"role_arn", "person", "ended", "cancelled", "was_until"}
    assert (body["role_arn"], body["person"]) == (ROLE_ARN, f"iam:{MEMBER}:alice")
    assert [(r["id"], r["status"]) for r in body["ended"]] == [(grant["id"], "revoked")]
    assert [(r["id"], r["status"]) for r in body["cancelled"]] == [(extension["id"], "cancelled")]
    assert body["was_until"] == grant["expires_at"]
    [ended] = body["ended"]
    assert ended["person"] == f"alice (IAM user, {MEMBER})"
    assert ended["reason"] == "left the on-call rotation"
    assert ended["access"] is None  # no way in any more
    ended_at = parse_rfc3339(ended["expires_at"])
    assert ended_at < parse_rfc3339(grant["expires_at"])
    assert abs(world.deps.clock.now() - ended_at) < timedelta(minutes=1)  # ended at the revoke, not at its end
    # Both documents: the principal is out of the trust policy; the guard ends alice's sessions at the revoke.
    assert world.trust_policy() == VENDOR_TRUST
    assert guard_window(world.session_guard(), f"{world.role_id()}:alice")[1] == ended_at
    assert world.status(grant["id"]) == "revoked"
    assert world.status(extension["id"]) == "cancelled"
    assert world.wait_execution(extension["id"])["status"] == "SUCCEEDED"
    with pytest.raises(world.session.client("scheduler").exceptions.ResourceNotFoundException):
        world.schedule(grant["id"])
    # The cancelled extension cannot be approved after the revoke.
    status, answer = world.api("POST", f"/requests/{extension['id']}/approve", BOB)
    assert (status, answer["error"]["code"]) == (409, "already_decided")
    # Alice is told exactly what changed.
    [told] = messages_for(world, grant["id"], "request.revoked")
    assert told.recipient == ALICE
    assert "it was until" in told.email
    assert grant["id"] in told.email
    assert extension["id"] in told.email
    assert "left the on-call rotation" in told.email


def test_revoking_with_only_a_pending_request_cancels_it_and_had_no_end(world: World) -> None:
    pending = request_access(world)
    world.wait_for_task_token(pending["id"])

    status, body = revoke(world, ALICE)

    assert status == 200, body
    assert body["ended"] == []
    assert [(r["id"], r["status"]) for r in body["cancelled"]] == [(pending["id"], "cancelled")]
    assert body["was_until"] is None
    assert world.wait_execution(pending["id"])["status"] == "SUCCEEDED"
    assert world.trust_policy() == VENDOR_TRUST


@pytest.mark.parametrize(
    "principal",
    [
        sso("jane@example.com", READONLY_SET),  # another permission set
        sso("Jane@example.com", ADMIN_SET, MANAGEMENT),  # the same user signed in to another account
        "idc:Jane@Example.com",  # the person key, in any case
    ],
    ids=["another-permission-set", "another-account", "person-key"],
)
def test_any_arn_of_the_person_or_their_key_revokes_their_coverage(world: World, principal: str) -> None:
    grant = granted(world, caller=sso("jane@example.com"))

    status, body = revoke(world, principal)

    assert status == 200, body
    assert body["person"] == "idc:jane@example.com"
    assert [r["id"] for r in body["ended"]] == [grant["id"]]
    assert body["ended"][0]["person"] == "jane@example.com (Identity Center)"
    assert world.trust_policy() == VENDOR_TRUST


def test_a_person_key_for_an_iam_user_revokes_them(world: World) -> None:
    grant = granted(world)

    status, body = revoke(world, f"iam:{MEMBER}:Alice")

    assert status == 200, body
    assert [r["id"] for r in body["ended"]] == [grant["id"]]
    assert world.trust_policy() == VENDOR_TRUST


@pytest.mark.parametrize("caller", [BOB, ALICE], ids=["approver", "the-person-themselves"])
def test_only_an_admin_of_the_role_may_revoke_a_person(world: World, caller: str) -> None:
    grant = granted(world)
    before = world.trust_policy()

    status, body = revoke(world, ALICE, caller=caller)

    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert "not a TrustGate admin" in body["error"]["message"]
    assert world.status(grant["id"]) == "active"
    assert world.trust_policy() == before


def test_revoking_someone_who_holds_nothing_is_404_and_says_so(world: World) -> None:
    grant = granted(world)
    before = world.trust_policy()

    status, body = revoke(world, ERIN)

    assert (status, body["error"]["code"]) == (404, "not_found")
    message = body["error"]["message"]
    assert ERIN in message
    assert "holds nothing on PumpCustomerAccess" in message
    assert world.status(grant["id"]) == "active"
    assert world.trust_policy() == before
    # After a revoke the person holds nothing either: a second revoke is a 404, not a silent success.
    assert revoke(world, ALICE)[0] == 200
    assert revoke(world, ALICE)[0] == 404


def test_revoking_on_a_role_trustgate_does_not_manage_is_404(world: World) -> None:
    status, body = world.api("POST", "/roles/NotManaged/revoke", CAROL, {"principal": ALICE})

    assert (status, body["error"]["code"]) == (404, "not_found")
    assert "PumpCustomerAccess" in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (None, "body"),
        ("{not json", ""),
        ({}, "principal"),
        ({"principal": ""}, "principal"),
        ({"principal": ALICE, "role": "PumpCustomerAccess"}, "role"),
        ({"principal": ALICE, "reason": "x" * 1001}, "reason"),
        ({"principal": ["arn:aws:iam::222222222222:user/alice"]}, "principal"),
        ({"principal": "alice"}, "person key"),
        ({"principal": f"arn:aws:iam::{MEMBER}:root"}, "principal"),
        ({"principal": f"arn:aws:iam::{MEMBER}:role/Deploy"}, "principal"),
        ({"principal": "iam:alice"}, "person key"),
        ({"principal": "idc:*"}, "person key"),
    ],
    ids=[
        "no-body",
        "not-json",
        "no-principal",
        "empty-principal",
        "unknown-field",
        "long-reason",
        "principal-list",
        "bare-name",
        "root",
        "role-arn",
        "short-key",
        "wildcard-key",
    ],
)
def test_a_bad_body_is_400_and_changes_nothing(world: World, body: Any, hint: str) -> None:
    grant = granted(world)
    extension = extension_of(world, grant)
    before = (world.trust_policy(), world.session_guard())

    status, answer = world.api("POST", PATH, CAROL, body)

    assert (status, answer["error"]["code"]) == (400, "invalid_input"), answer
    assert hint in answer["error"]["message"]
    assert world.status(grant["id"]) == "active"
    assert world.status(extension["id"]) == "pending"
    assert (world.trust_policy(), world.session_guard()) == before
    approve(world, extension["id"])  # the extension still goes through
    world.wait_status(extension["id"], "active")


def test_the_route_is_in_the_served_openapi_document(world: World) -> None:
    status, body = world.api("GET", "/openapi.json", CAROL)

    assert status == 200
    operation = body["paths"]["/roles/{role}/revoke"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RevokePersonBody")
    result = body["components"]["schemas"]["RevocationResult"]
    assert set(result["required"]) == {"role_arn", "person", "ended", "cancelled", "was_until"}
