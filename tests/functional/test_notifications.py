"""What people are told, as published to the SNS topic: approvers, the requester, the other approvers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.aws import ALICE, BOB, DAVE, MEMBER, ROLE_ARN, World, wait_for
from tests.support.flows import JUSTIFICATION, request_access
from tests.support.links import Sent, approval_links, call_page, form_for, messages_for
from trustgate.core import messages

pytestmark = pytest.mark.functional

SWITCH_ROLE = "https://signin.aws.amazon.com/switchrole?roleName=PumpCustomerAccess&account=123456789012"


def decide_on_page(world: World, token: str, decision: str, comment: str = "") -> None:
    page = call_page(world, "GET", token)
    assert call_page(world, "POST", token, form=form_for(page.body, decision, comment)).status == 200


def only(world: World, request_id: str, event: str, recipient: str | None = None) -> Sent:
    """The one message of `event` (to `recipient`), once it has been published."""
    found = wait_for(
        lambda: [m for m in messages_for(world, request_id, event) if recipient is None or m.recipient == recipient],
        20,
        f"{event} for {request_id}",
    )
    assert len(found) == 1, [m.subject for m in found]
    return found[0]


def test_each_approver_gets_the_request_in_full_with_their_own_link(world: World) -> None:
    request_id = request_access(world, ticket="OPS-42")["id"]
    links = approval_links(world, request_id)

    for approver in (BOB, DAVE):
        message = only(world, request_id, "approval.requested", approver)
        assert message.attributes["audience"] == "approver"
        assert message.attributes["role_arn"] == ROLE_ARN
        assert message.subject.startswith("[TrustGate] alice (222222222222) asks for PumpCustomerAccess for 1 hour")
        for line in (
            f"Requester:     alice (IAM user, {MEMBER}) via {ALICE}",
            f"Role:          {ROLE_ARN}",
            "Duration:      1 hour (PT1H)",
            f"Justification: {JUSTIFICATION}",
            "Ticket:        OPS-42",
            "Approvals:     0 given, 1 needed",
            "Times out at:  ",
            f"http://127.0.0.1:3000/decide/{links[approver]}",
            f"trustgate approve {request_id}",
        ):
            assert line in message.email
    assert links[BOB] != links[DAVE]


def test_the_chat_card_shows_the_request_but_never_a_personal_link(world: World) -> None:
    request_id = request_access(world)["id"]
    links = approval_links(world, request_id)

    card = only(world, request_id, "approval.requested", BOB).chat

    assert card["version"] == "1.0"
    assert card["source"] == "custom"
    assert card["content"]["textType"] == "client-markdown"
    assert "PumpCustomerAccess" in card["content"]["title"]
    assert JUSTIFICATION in card["content"]["description"]
    assert card["content"]["nextSteps"][0].startswith(f"trustgate approve {request_id}")
    assert card["metadata"]["threadId"] == request_id
    assert all(token not in str(card) for token in links.values())
    assert "/decide/" not in str(card)


def test_the_requester_is_told_of_the_grant_with_the_switch_role_link_and_expiry(world: World) -> None:
    request_id = request_access(world)["id"]
    decide_on_page(world, approval_links(world, request_id)[BOB], "approve")
    world.wait_status(request_id, "active")

    message = only(world, request_id, "request.active", ALICE)

    expires = world.deps.store.get_request(request_id).expires_at
    assert expires is not None
    assert message.attributes["audience"] == "requester"
    assert SWITCH_ROLE in message.email
    assert messages.human_time(expires) in message.subject
    assert messages.human_time(expires) in message.email
    assert f"--role-arn {ROLE_ARN}" in message.email
    assert f"trustgate extend {request_id}" in message.email


def test_other_approvers_are_told_once_the_request_is_decided(world: World) -> None:
    request_id = request_access(world)["id"]
    decide_on_page(world, approval_links(world, request_id)[BOB], "approve")
    world.wait_status(request_id, "active")

    closed = only(world, request_id, "approval.closed", DAVE)

    assert "already approved by bob (222222222222)" in closed.email
    assert "No action is needed" in closed.email
    assert BOB not in {m.recipient for m in messages_for(world, request_id, "approval.closed")}  # bob decided


def test_a_denial_reaches_the_requester_with_the_comment(world: World) -> None:
    request_id = request_access(world)["id"]
    decide_on_page(world, approval_links(world, request_id)[BOB], "deny", "use the read-only role")

    message = only(world, request_id, "request.denied", ALICE)

    assert "denied by bob (222222222222)" in message.email
    assert "Comment: use the read-only role" in message.email
    assert only(world, request_id, "approval.closed", DAVE)


def test_a_timed_out_request_tells_the_requester_and_closes_the_approvers_messages(world: World) -> None:
    request_id = request_access(world)["id"]
    approval_links(world, request_id)
    world.advance(timedelta(hours=2, minutes=1))

    world.invoke("FinalizeFunction", {"request_id": request_id, "outcome": "timed_out"})

    message = only(world, request_id, "request.timed_out", ALICE)
    assert "Nobody decided" in message.email
    assert "timed out" in message.subject
    assert {m.recipient for m in messages_for(world, request_id, "approval.closed")} == {BOB, DAVE}
    assert "timed out" in only(world, request_id, "approval.closed", BOB).email


def test_a_revoked_grant_tells_the_requester_why(world: World) -> None:
    request_id = request_access(world)["id"]
    decide_on_page(world, approval_links(world, request_id)[BOB], "approve")
    world.wait_status(request_id, "active")

    status, _ = world.api("POST", f"/requests/{request_id}/revoke", ALICE, {"reason": "done early"})

    assert status == 200
    message = only(world, request_id, "request.revoked", ALICE)
    assert "revoked" in message.subject
    assert "Reason: done early" in message.email


def test_a_failed_grant_tells_the_requester_the_reason(world: World) -> None:
    request_id = request_access(world)["id"]
    approval_links(world, request_id)
    error = {"Error": "ConflictError", "Cause": '{"errorMessage": "the role is at its trust-policy quota"}'}

    world.invoke("FinalizeFunction", {"request_id": request_id, "outcome": "failed", "error": error})

    message = only(world, request_id, "request.failed", ALICE)
    assert "no access was given" in message.email
    assert "the role is at its trust-policy quota" in message.email


def test_the_expiring_soon_reminder_names_the_end_and_the_extend_command(world: World) -> None:
    request_id = request_access(world)["id"]
    decide_on_page(world, approval_links(world, request_id)[BOB], "approve")
    world.wait_status(request_id, "active")
    request = world.deps.store.get_request(request_id)
    assert request.expires_at is not None

    reminder = messages.expiring_soon(request)

    assert reminder.recipient == ALICE
    assert reminder.event == "grant.expiring"
    assert messages.human_time(request.expires_at) in reminder.subject
    assert f"trustgate extend {request_id} --duration 1h" in reminder.text
    assert reminder.chatbot()  # renders as a chat card too
