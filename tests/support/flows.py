"""Steps tests take through the API, as users do."""

from __future__ import annotations

from typing import Any

from tests.support.aws import ALICE, BOB, DAVE, ROLE_NAME, World
from trustgate.core.trust_policy import serialize

JUSTIFICATION = "rotate the CloudTrail bucket policy"


def request_access(world: World, caller: str = ALICE, duration: str = "PT1H", **extra: Any) -> dict[str, Any]:
    status, body = world.api(
        "POST",
        "/requests",
        caller,
        {"role": "PumpCustomerAccess", "duration": duration, "justification": JUSTIFICATION, **extra},
    )
    assert status == 201, body
    return dict(body)


def approve(world: World, request_id: str, approver: str = BOB) -> dict[str, Any]:
    world.wait_for_task_token(request_id)
    status, body = world.api("POST", f"/requests/{request_id}/approve", approver, {"comment": "ok"})
    assert status == 200, body
    return dict(body)


def granted(world: World, caller: str = ALICE, duration: str = "PT1H") -> dict[str, Any]:
    """Request and approve; return the request once it is active."""
    request_id = request_access(world, caller, duration)["id"]
    approve(world, request_id)
    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"  # granted, synced and scheduled
    world.wait_status(request_id, "active")
    status, body = world.api("GET", f"/requests/{request_id}", caller)
    assert status == 200, body
    return dict(body)


def forge_statement(world: World) -> dict[str, Any]:
    """Let dave in by hand, behind TrustGate's back: drift a sync removes. Returns the forged trust policy."""
    forged = world.trust_policy()
    forged["Statement"].append(
        {"Sid": "Forged", "Effect": "Allow", "Principal": {"AWS": DAVE}, "Action": "sts:AssumeRole"}
    )
    world.session.client("iam").update_assume_role_policy(RoleName=ROLE_NAME, PolicyDocument=serialize(forged))
    return dict(forged)
