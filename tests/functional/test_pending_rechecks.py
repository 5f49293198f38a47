"""Pending requests are judged by the role policy in force when they are decided and when they are granted.

Each test tightens the policy the way an admin does (PUT /roles/PumpCustomerAccess/policy as CAROL, the
bootstrap admin) between filing and deciding, or between approval and grant, and then decides through the
API or the approval link and watches the state machine finish.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.aws import ALICE, BOB, CAROL, DAVE, ERIN, MANAGEMENT, ROLE_ARN, VENDOR_TRUST, World, running_world
from tests.support.flows import granted, request_access
from tests.support.links import approval_links, call_page, form_for, messages_for
from trustgate.app import requests, sync, workflow_steps
from trustgate.core.ids import new_id
from trustgate.core.models import AuditEvent, RolePolicy
from trustgate.core.trust_policy import grant_expiry_in

pytestmark = pytest.mark.functional

POLICY = "/roles/PumpCustomerAccess/policy"


def put_policy(world: World, **fields: Any) -> None:
    status, body = world.api("PUT", POLICY, CAROL, fields)
    assert status == 200, body


def pending(world: World, duration: str = "PT4H") -> str:
    request_id = str(request_access(world, duration=duration)["id"])
    world.wait_for_task_token(request_id)
    return request_id


def error_of(answer: tuple[int, Any]) -> tuple[int, str, str]:
    status, body = answer
    return status, body["error"]["code"], body["error"]["message"]


@pytest.fixture
def flow_unreachable(world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Decisions are recorded but the flow is not told (as when SendTaskSuccess fails), until the returned
    function is called; the reconciler then delivers them. Holds an approved request before its grant."""
    original = world.deps.flow.resume

    def lost(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("Step Functions is unavailable")

    monkeypatch.setattr(world.deps.flow, "resume", lost)
    return lambda: monkeypatch.setattr(world.deps.flow, "resume", original)


# -- at decision time ----------------------------------------------------------------------------


def test_a_duration_the_policy_no_longer_allows_cannot_be_approved_through_the_api_but_can_be_denied(
    world: World,
) -> None:
    request_id = pending(world, "PT4H")
    put_policy(world, max_duration="PT2H")

    status, code, message = error_of(world.api("POST", f"/requests/{request_id}/approve", BOB, {}))

    assert (status, code) == (409, "request_nonconforming")
    assert "no longer conforms to the policy of PumpCustomerAccess" in message
    assert "more than the role's maximum" in message
    assert "deny it, or the requester cancels it" in message
    stored = world.deps.store.get_request(request_id)
    assert (stored.status.value, stored.approvals, stored.decided_at) == ("pending", [], None)

    status, body = world.api("POST", f"/requests/{request_id}/deny", BOB, {"comment": "too long now"})

    assert (status, body["status"]) == (200, "denied")
    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    assert world.trust_policy() == VENDOR_TRUST


def test_a_requester_the_policy_no_longer_allows_cannot_be_approved(world: World) -> None:
    request_id = pending(world, "PT1H")
    put_policy(world, requester_patterns=[ERIN])

    status, code, message = error_of(world.api("POST", f"/requests/{request_id}/approve", DAVE, {}))

    assert (status, code) == (409, "request_nonconforming")
    assert "its requester may no longer ask for the role" in message
    assert "requester_patterns" in message
    assert world.status(request_id) == "pending"


def test_through_the_link_a_nonconforming_request_says_why_refuses_approval_and_can_still_be_denied(
    world: World,
) -> None:
    request_id = pending(world, "PT4H")
    links = approval_links(world, request_id)
    put_policy(world, max_duration="PT2H")

    page = call_page(world, "GET", links[BOB])

    assert page.status == 200
    assert "The role policy changed after this request was made" in page.body
    assert "It can no longer be approved" in page.body

    refused = call_page(world, "POST", links[BOB], form=form_for(page.body, "approve"))

    assert refused.status == 409
    assert "This request can no longer be approved" in refused.body
    assert "more than the role&#x27;s maximum" in refused.body
    assert world.status(request_id) == "pending"
    assert world.deps.store.get_request(request_id).approvals == []

    denied = call_page(world, "POST", links[BOB], form=form_for(page.body, "deny"))  # the link was not spent

    assert denied.status == 200, denied.body
    assert "Denied" in denied.body
    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    assert world.status(request_id) == "denied"


def test_a_removed_approvers_link_stops_working_and_says_why_while_a_new_approver_decides(world: World) -> None:
    request_id = pending(world, "PT1H")
    links = approval_links(world, request_id)
    put_policy(world, approvers=[DAVE, ERIN])
    changed = world.deps.clock.now()

    page = call_page(world, "GET", links[BOB])

    assert page.status == 403
    assert "You are no longer an approver" in page.body
    assert "You are no longer an approver of PumpCustomerAccess: the role policy changed on" in page.body
    assert re.search(rf"the role policy changed on {changed:%Y-%m-%d} \d\d:\d\d UTC", page.body)
    posted = call_page(world, "POST", links[BOB], json_body={"decision": "approve"})
    assert (posted.status, posted.json()["error"]["code"]) == (403, "approver_removed")
    status, code, _ = error_of(world.api("POST", f"/requests/{request_id}/approve", BOB, {}))
    assert (status, code) == (403, "approver_removed")
    assert world.status(request_id) == "pending"
    # BOB no longer sees it among his approvals; ERIN, added since, does and decides through the API.
    assert request_id not in [r["id"] for r in world.api("GET", "/approvals", BOB)[1]["items"]]
    assert request_id in [r["id"] for r in world.api("GET", "/approvals", ERIN)[1]["items"]]

    status, body = world.api("POST", f"/requests/{request_id}/approve", ERIN, {})

    assert status == 200, body
    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    assert world.status(request_id) == "active"
    assert grant_expiry_in(world.trust_policy(), ALICE) is not None


def test_approvals_of_removed_approvers_no_longer_count_toward_the_quorum(world: World) -> None:
    put_policy(world, required_approvals=2)
    request_id = pending(world, "PT1H")
    links = approval_links(world, request_id)
    assert world.api("POST", f"/requests/{request_id}/approve", BOB, {})[0] == 200
    put_policy(world, approvers=[DAVE, ERIN], required_approvals=2)

    page = call_page(world, "GET", links[DAVE])
    recorded = call_page(world, "POST", links[DAVE], form=form_for(page.body, "approve"))

    assert recorded.status == 200, recorded.body
    assert "1 more approval needed" in recorded.body  # BOB's approval no longer counts
    stored = world.deps.store.get_request(request_id)
    assert (stored.status.value, stored.decided_at, len(stored.approvals)) == ("pending", None, 2)

    status, body = world.api("POST", f"/requests/{request_id}/approve", ERIN, {})

    assert (status, body["decided_at"] is not None) == (200, True)
    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    assert world.status(request_id) == "active"


# -- at grant time -------------------------------------------------------------------------------


def test_a_request_approved_before_a_tightening_is_judged_again_at_grant(
    world: World, flow_unreachable: Callable[[], None]
) -> None:
    request_id = pending(world, "PT4H")
    status, body = world.api("POST", f"/requests/{request_id}/approve", BOB, {})
    assert (status, body["decided_at"] is not None) == (200, True)  # approved; the flow was not told yet
    put_policy(world, max_duration="PT2H")

    flow_unreachable()  # the flow can be told again
    world.invoke("ReconcileFunction", {})  # delivers the decision: the flow goes on to Grant

    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    failed = world.deps.store.get_request(request_id)
    assert failed.status.value == "failed"
    assert failed.reason is not None
    assert "the policy of PumpCustomerAccess changed after this request was made" in failed.reason
    assert "more than the role's maximum" in failed.reason
    assert world.trust_policy() == VENDOR_TRUST
    assert world.session_guard() is None
    [told] = messages_for(world, request_id, "request.failed")
    assert told.recipient == ALICE
    assert "no access was given" in told.email


def test_an_approval_by_a_since_removed_approver_does_not_carry_a_request_to_grant(
    world: World, flow_unreachable: Callable[[], None]
) -> None:
    request_id = pending(world, "PT1H")
    assert world.api("POST", f"/requests/{request_id}/approve", BOB, {})[0] == 200
    put_policy(world, approvers=[DAVE, ERIN])

    flow_unreachable()
    world.invoke("ReconcileFunction", {})

    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    failed = world.deps.store.get_request(request_id)
    assert failed.status.value == "failed"
    assert "it has 0 of the 1 approvals the role requires now" in (failed.reason or "")
    assert "approvers the policy no longer names do not count" in (failed.reason or "")
    assert world.trust_policy() == VENDOR_TRUST


def test_an_auto_approved_request_is_judged_again_at_grant(monkeypatch: pytest.MonkeyPatch) -> None:
    with running_world({"AllowAutoApprove": "true"}) as world:
        put_policy(world, auto_approve=[{"principals": [ALICE], "max_duration": "PT1H"}])
        original_grant = workflow_steps.grant

        def tightened_first(deps: Any, request_id: str) -> Any:
            put_policy(world)  # the admin drops the auto-approve rule between auto-approval and grant
            return original_grant(deps, request_id)

        monkeypatch.setattr(workflow_steps, "grant", tightened_first)
        monkeypatch.setattr(requests, "AUTO_APPROVE_WAIT_SECONDS", 0.0)  # answer at once, still pending
        request_id = request_access(world, duration="PT1H")["id"]

        assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
        failed = world.deps.store.get_request(request_id)
        assert failed.auto_approved
        assert failed.status.value == "failed"
        assert "no auto-approve rule of the role approves it any more" in (failed.reason or "")
        assert world.trust_policy() == VENDOR_TRUST


def test_a_policy_saved_between_the_grant_check_and_the_role_lock_still_stops_the_grant(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Grant state judges the request, then takes the role lock; an admin's change can land in between.
    The request is judged again under the lock, so the change wins and IAM never names the requester."""
    request_id = pending(world, "PT1H")
    real_sync = sync.sync_role

    def admin_first(*args: Any, **kwargs: Any) -> Any:
        activation = kwargs.get("activation") if "activation" in kwargs else (args[4] if len(args) > 4 else None)
        if activation is not None and activation.request.id == request_id:
            put_policy(world, max_duration="PT30M")  # lands after grant() judged the request, before its lock
        return real_sync(*args, **kwargs)

    monkeypatch.setattr(workflow_steps, "sync_role", admin_first)
    status, body = world.api("POST", f"/requests/{request_id}/approve", BOB, {})
    assert status == 200, body

    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    request = world.deps.store.get_request(request_id)
    assert request.status.value == "failed"
    assert "more than the role's maximum of PT30M now" in (request.reason or "")
    assert grant_expiry_in(world.trust_policy(), ALICE) is None


def test_the_reconciler_ends_a_grant_the_stored_policy_no_longer_allows(world: World) -> None:
    """A policy change ends the grants it forbids itself; if it could not (a crash right after the policy was
    stored), the reconciler does, under the role lock."""

    grant = granted(world)
    assert grant_expiry_in(world.trust_policy(), ALICE) is not None
    _, version = world.deps.store.get_role_policy(ROLE_ARN)
    now = world.deps.clock.now()
    stored_only = AuditEvent(id=new_id(now), at=now, actor=CAROL, action="policy.changed", role_arn=ROLE_ARN)
    world.deps.store.put_role_policy(ROLE_ARN, RolePolicy(requester_accounts=[MANAGEMENT]), version, stored_only)

    report = world.invoke("ReconcileFunction", {})

    assert "error" not in report["roles"][0], report
    ended = world.deps.store.get_request(grant["id"])
    assert ended.status.value == "revoked"
    assert "no longer allowed by the role policy" in (ended.reason or "")
    assert grant_expiry_in(world.trust_policy(), ALICE) is None
