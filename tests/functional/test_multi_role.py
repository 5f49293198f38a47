"""Multi-role requests through the API and the real state machine on moto (issue 13, section 5): one request for
two roles, one approval, one grant per role (each role's trust policy names alice, each with its own expiry), a
refusal of either role refusing both with each role's reason, and revoke and extend acting on both. Whether IAM lets
alice in is the independent evaluator's answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.support.assume import decisions
from tests.support.aws import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    MANAGEMENT,
    ROLE_ARN,
    ROLE_NAME,
    VENDOR_TRUST,
    World,
    running_world,
)
from tests.support.flows import JUSTIFICATION, approve
from tests.support.iam_eval import ALLOWED
from tests.support.links import approval_links, messages_for

pytestmark = pytest.mark.functional

OTHER_NAME = "PumpBilling"
OTHER_ARN = f"arn:aws:iam::{MANAGEMENT}:role/{OTHER_NAME}"
JUST_IN_TIME = {"mode": "none", "adopt_statements": ["PumpOrganizationAccess"]}


@pytest.fixture
def world() -> Iterator[World]:
    with running_world({"ManagedRoleArns": f"{ROLE_ARN},{OTHER_ARN}"}) as running:
        running.session.client("iam").create_role(
            RoleName=OTHER_NAME, AssumeRolePolicyDocument=json.dumps(VENDOR_TRUST)
        )
        for name in (ROLE_NAME, OTHER_NAME):  # no standing access: only a grant lets anyone in
            status, answer = running.api("PUT", f"/roles/{name}/policy", CAROL, JUST_IN_TIME)
            assert status == 200, answer
        yield running


def ask(world: World, duration: str = "PT1H") -> tuple[int, dict[str, Any]]:
    body = {"roles": [ROLE_NAME, OTHER_NAME], "duration": duration, "justification": JUSTIFICATION}
    status, answer = world.api("POST", "/requests", ALICE, body)
    return status, answer


def alice_may_assume(world: World, role_arn: str) -> bool:
    return decisions(world, ("alice", ALICE, "alice"), role_arn=role_arn)["alice"] == ALLOWED


def test_one_approval_grants_each_role_and_a_revoke_ends_both(world: World) -> None:
    status, asked = ask(world)
    assert status == 201, asked
    assert (asked["status"], asked["roles"]) == ("pending", [ROLE_ARN, OTHER_ARN])
    (part_id,) = asked["parts"]
    status, part = world.api("GET", f"/requests/{part_id}", ALICE)
    assert (part["role_arn"], part["part_of"], part["status"]) == (OTHER_ARN, asked["id"], "pending")

    # One approval request, one link per approver, naming both roles; the link decides both.
    links = approval_links(world, asked["id"])
    (notice,) = [s for s in messages_for(world, asked["id"], "approval.requested") if s.recipient == BOB]
    assert "PumpCustomerAccess, PumpBilling" in notice.subject
    assert messages_for(world, part_id, "approval.requested") == []
    assert set(links) == {BOB, DAVE}
    status, refused = world.api("POST", f"/requests/{part_id}/approve", BOB)
    assert (status, refused["error"]["code"]) == (409, "part_of_request")

    approve(world, asked["id"])
    world.wait_status(asked["id"], "active")  # the flow finished: every role was granted in its Grant step
    assert world.status(part_id) == "active"
    assert alice_may_assume(world, ROLE_ARN)
    assert alice_may_assume(world, OTHER_ARN)
    for request_id in (asked["id"], part_id):
        assert world.schedule(request_id)["Name"] == f"trustgate-expire-{request_id}"

    # Revoking one role's grant revokes the request's every role.
    status, revoked = world.api("POST", f"/requests/{part_id}/revoke", ALICE, {"reason": "done"})
    assert (status, revoked["status"]) == (200, "revoked")
    assert world.status(asked["id"]) == "revoked"
    assert not alice_may_assume(world, ROLE_ARN)
    assert not alice_may_assume(world, OTHER_ARN)


def test_a_role_that_refuses_refuses_them_all_naming_each_role(world: World) -> None:
    status, answer = world.api("PUT", f"/roles/{OTHER_NAME}/policy", CAROL, {**JUST_IN_TIME, "max_duration": "PT30M"})
    assert status == 200, answer
    status, refused = ask(world)
    assert (status, refused["error"]["code"]) == (422, "roles_refused")
    assert refused["error"]["roles"] == [
        {
            "role": OTHER_NAME,
            "status": 422,
            "code": "duration_too_long",
            "message": "duration PT1H is longer than this role's maximum PT30M; ask for less",
        }
    ]
    assert world.api("GET", "/requests", ALICE, query={"mine": "true"})[1]["items"] == []

    for body, why in (
        ({"role": ROLE_NAME, "roles": [OTHER_NAME]}, "not both"),
        ({"roles": [ROLE_NAME, ROLE_NAME.lower()]}, "twice"),
        ({"roles": [ROLE_NAME, "NoSuchRole"]}, "roles_refused"),
        ({"roles": [f"R{i}" for i in range(11)]}, "at most"),
    ):
        status, answer = world.api("POST", "/requests", ALICE, {**body, "justification": JUSTIFICATION})
        assert status in (400, 404, 422), answer
        assert why in json.dumps(answer), answer
    assert world.api("GET", "/requests", ALICE, query={"mine": "true"})[1]["items"] == []


def test_extending_a_multi_role_grant_extends_every_role(world: World) -> None:
    status, asked = ask(world)
    assert status == 201, asked
    approve(world, asked["id"])
    world.wait_status(asked["id"], "active")
    before = {
        r: world.deps.store.get_request(i).expires_at
        for r, i in zip((ROLE_ARN, OTHER_ARN), [asked["id"], *asked["parts"]], strict=True)
    }

    status, extension = world.api(
        "POST", f"/requests/{asked['id']}/extend", ALICE, {"duration": "PT1H", "justification": JUSTIFICATION}
    )
    assert status == 201, extension
    assert extension["roles"] == [ROLE_ARN, OTHER_ARN]
    assert extension["extends"] == asked["id"]
    approve(world, extension["id"])
    world.wait_status(extension["id"], "active")
    assert world.status(extension["parts"][0]) == "active"
    for role_arn, request_id in zip((ROLE_ARN, OTHER_ARN), [extension["id"], *extension["parts"]], strict=True):
        ends, was = world.deps.store.get_request(request_id).expires_at, before[role_arn]
        assert was is not None
        assert ends == was + timedelta(hours=1), role_arn
