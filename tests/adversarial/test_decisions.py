"""Adversarial cases on deciding a request after its role policy changed: refused, and nothing changes.

The policy is tightened as an admin does it (PUT /roles/PumpCustomerAccess/policy as CAROL) between the
request and the decision; the attack then decides through the API or the approval link.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.adversarial import refused_unchanged
from tests.support.aws import ALICE, BOB, CAROL, DAVE, ERIN, MANAGEMENT, World, running_world
from tests.support.flows import request_access
from tests.support.links import approval_links, call_page, form_for

pytestmark = pytest.mark.functional


def put_policy(world: World, **fields: Any) -> None:
    status, body = world.api("PUT", "/roles/PumpCustomerAccess/policy", CAROL, fields)
    assert status == 200, body


def pending(world: World, duration: str = "PT1H", links: int = 2) -> str:
    """A request waiting for approval, once the flow has sent every approver their link (nothing in flight)."""
    request_id = str(request_access(world, duration=duration)["id"])
    world.wait_for_task_token(request_id)
    approval_links(world, request_id, expected=links)
    return request_id


def approve(world: World, request_id: str, approver: str) -> tuple[int, Any]:
    return world.api("POST", f"/requests/{request_id}/approve", approver, {"comment": "ok"})


def link_json(world: World, token: str, decision: str) -> tuple[int, Any]:
    page = call_page(world, "POST", token, json_body={"decision": decision})
    return page.status, page.json()


# -- approvers removed since the request was made -------------------------------------------------


def test_a_removed_approver_cannot_approve_through_the_api(world: World) -> None:
    request_id = pending(world)
    put_policy(world, approvers=[DAVE, ERIN])

    body = refused_unchanged(world, lambda: approve(world, request_id, BOB), 403, "approver_removed")

    assert "no longer an approver of PumpCustomerAccess" in body["error"]["message"]


def test_a_removed_approver_cannot_deny_through_the_api(world: World) -> None:
    request_id = pending(world)
    put_policy(world, approvers=[DAVE, ERIN])

    refused_unchanged(
        world, lambda: world.api("POST", f"/requests/{request_id}/deny", BOB, {}), 403, "approver_removed"
    )


def test_a_removed_approver_cannot_approve_through_their_link(world: World) -> None:
    request_id = pending(world)
    links = approval_links(world, request_id)
    put_policy(world, approvers=[DAVE, ERIN])

    refused_unchanged(world, lambda: link_json(world, links[BOB], "approve"), 403, "approver_removed")


def test_a_removed_approvers_link_no_longer_opens(world: World) -> None:
    request_id = pending(world)
    links = approval_links(world, request_id)
    put_policy(world, approvers=[DAVE, ERIN])

    def open_link() -> tuple[int, Any]:
        page = call_page(world, "GET", links[BOB])
        return page.status, page.body

    html = refused_unchanged(world, open_link, 403)

    assert "You are no longer an approver" in html


def test_a_removed_approver_cannot_submit_a_page_opened_before_the_removal(world: World) -> None:
    request_id = pending(world)
    links = approval_links(world, request_id)
    page = call_page(world, "GET", links[BOB])
    assert page.status == 200
    put_policy(world, approvers=[DAVE, ERIN])

    def submit() -> tuple[int, Any]:
        posted = call_page(world, "POST", links[BOB], form=form_for(page.body, "approve"))
        return posted.status, posted.body

    html = refused_unchanged(world, submit, 403)

    assert "the role policy changed on" in html


def test_an_approver_of_a_kind_the_policy_no_longer_accepts_cannot_approve(world: World) -> None:
    request_id = pending(world)
    put_policy(world, approver_kinds=["identity_center"])

    body = refused_unchanged(world, lambda: approve(world, request_id, BOB), 403, "forbidden")

    assert "identity_center" in body["error"]["message"]


def test_a_requester_cannot_approve_their_own_request_once_self_approval_is_turned_on_later() -> None:
    with running_world({"AllowSelfApproval": "true"}) as world:
        put_policy(world, approvers=[ALICE, BOB])
        request_id = pending(world, links=1)  # made while self-approval was off: only BOB got a link
        put_policy(world, approvers=[ALICE, BOB], allow_self_approval=True)

        refused_unchanged(world, lambda: approve(world, request_id, ALICE), 403, "own_request")


# -- requests the policy in force no longer allows -------------------------------------------------


def test_a_duration_longer_than_the_new_maximum_cannot_be_approved_through_the_api(world: World) -> None:
    request_id = pending(world, "PT4H")
    put_policy(world, max_duration="PT2H")

    body = refused_unchanged(world, lambda: approve(world, request_id, BOB), 409, "request_nonconforming")

    assert "more than the role's maximum of PT2H now" in body["error"]["message"]


def test_a_duration_longer_than_the_new_maximum_cannot_be_approved_through_the_link(world: World) -> None:
    request_id = pending(world, "PT4H")
    links = approval_links(world, request_id)
    put_policy(world, max_duration="PT2H")

    refused_unchanged(world, lambda: link_json(world, links[DAVE], "approve"), 409, "request_nonconforming")


def test_a_requester_the_new_patterns_exclude_cannot_be_approved(world: World) -> None:
    request_id = pending(world)
    put_policy(world, requester_patterns=[ERIN])

    refused_unchanged(world, lambda: approve(world, request_id, DAVE), 409, "request_nonconforming")


def test_a_requester_from_an_account_the_policy_no_longer_allows_cannot_be_approved(world: World) -> None:
    request_id = pending(world)
    put_policy(world, requester_accounts=[MANAGEMENT])

    body = refused_unchanged(world, lambda: approve(world, request_id, BOB), 409, "request_nonconforming")

    assert "requester_accounts" in body["error"]["message"]


def test_a_newly_added_approver_cannot_approve_a_request_the_policy_no_longer_allows(world: World) -> None:
    request_id = pending(world, "PT4H")
    put_policy(world, approvers=[BOB, DAVE, ERIN], max_duration="PT2H")

    refused_unchanged(world, lambda: approve(world, request_id, ERIN), 409, "request_nonconforming")
