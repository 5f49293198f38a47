"""The whole lifecycle against the local stack: request -> approve -> active in the trust policy -> expired.

Once with the `trustgate` CLI as people use it, once with raw SigV4-signed HTTP as any client would.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.drive import ROLE, advance, cli_json, outbox, signed, statement_naming, wait_for
from trustgate_local.seed import SHARED_MAILBOX, vendor_trust_policy
from trustgate_local.server import LocalStack

pytestmark = pytest.mark.e2e

REASON = "rotate the CloudTrail bucket after the audit finding"


def _users(local: LocalStack) -> dict[str, str]:
    return {u.profile: u.arn for u in local.organization.users}


def _approval_links(local: LocalStack, request_id: str) -> dict[str, str]:
    """Each approver's link, from their own subscriber (the shared mailbox never has one)."""
    items = outbox(local, request_id=request_id, event="approval.requested")
    assert all(n["recipient"].rsplit("/", 1)[-1] == n["subscriber"] for n in items if n["link"]), items
    links = {n["recipient"]: n["link"] for n in items if n["link"]}
    return links if len(links) >= 2 else {}


def _trust_policy_via_cli(local: LocalStack) -> dict[str, Any]:
    return dict(cli_json(local, "admin", "role", ROLE)["trust_policy"])


def test_cli_lifecycle_grants_alice_until_her_expiry_then_removes_her(local_stack: LocalStack) -> None:
    users = _users(local_stack)
    vendor_default = vendor_trust_policy(local_stack.organization.organization_id)

    # GIVEN alice asks for an hour
    request = cli_json(local_stack, "requester", "request", ROLE, "--duration", "1h", "--reason", REASON)
    assert request["status"] == "pending"
    assert request["principal_arn"] == users["requester"]
    request_id = request["id"]

    # THEN both approvers get their own link
    links = wait_for(lambda: _approval_links(local_stack, request_id), "both approvers' notifications")
    assert set(links) == {users["approver"], users["approver2"]}
    assert len(set(links.values())) == 2, "each approver gets a link of their own"

    # WHEN bob approves with the CLI
    cli_json(local_stack, "approver", "approve", request_id, "--comment", "go ahead")
    active = wait_for(
        lambda: (r := cli_json(local_stack, "requester", "status", request_id))["status"] == "active" and r,
        "the request to become active",
    )

    # THEN the trust policy names alice, bounded by DateLessThan at her expiry, next to the vendor's statement
    granted = wait_for(
        lambda: statement_naming(_trust_policy_via_cli(local_stack), users["requester"]), "alice in the trust policy"
    )
    assert granted["Condition"]["DateLessThan"]["aws:CurrentTime"] == active["expires_at"]
    assert granted["Action"] == "sts:AssumeRole"
    assert vendor_default["Statement"][0] in _trust_policy_via_cli(local_stack)["Statement"]

    # WHEN the clock passes her expiry
    ran = advance(local_stack, "PT61M")["ran"]

    # THEN the expiry schedule ended the grant and alice is gone
    assert any(
        r["kind"] == "schedule" and r["result"] == {"request_id": request_id, "status": "expired"} for r in ran
    ), ran
    assert cli_json(local_stack, "requester", "status", request_id)["status"] == "expired"
    assert _trust_policy_via_cli(local_stack) == vendor_default
    events = {
        n["event"]
        for n in wait_for(
            lambda: outbox(local_stack, request_id=request_id, recipient=users["requester"]), "alice's notifications"
        )
    }
    assert "request.active" in events


def test_sigv4_lifecycle_with_raw_requests(local_stack: LocalStack) -> None:
    users = _users(local_stack)
    created = signed(
        local_stack, "requester", "POST", "/requests", {"role": ROLE, "duration": "PT30M", "justification": REASON}
    )
    assert created.status == 201, created.body
    request_id = created.body["id"]

    decided = signed(local_stack, "approver2", "POST", f"/requests/{request_id}/approve", {"comment": "ok from dave"})
    assert decided.status == 200, decided.body
    assert decided.body["approvals"][0]["approver_arn"] == users["approver2"]

    active = wait_for(
        lambda: (
            (a := signed(local_stack, "requester", "GET", f"/requests/{request_id}")).body["status"] == "active"
            and a.body
        ),
        "the request to become active",
    )
    # `active` is recorded just before the trust policy is written (the render reads active grants)
    statement = wait_for(
        lambda: statement_naming(
            signed(local_stack, "admin", "GET", f"/roles/{ROLE}").body["trust_policy"], users["requester"]
        ),
        "alice in the trust policy",
    )
    assert statement["Condition"]["DateLessThan"]["aws:CurrentTime"] == active["expires_at"]

    advance(local_stack, "PT31M")

    assert signed(local_stack, "requester", "GET", f"/requests/{request_id}").body["status"] == "expired"
    after = signed(local_stack, "admin", "GET", f"/roles/{ROLE}").body["trust_policy"]
    assert statement_naming(after, users["requester"]) is None


def test_outbox_serves_every_notification_with_its_fields(local_stack: LocalStack) -> None:
    items = outbox(local_stack)
    assert items, "the lifecycle tests above sent notifications"
    for item in items:
        assert set(item) >= {"time", "subscriber", "subject", "recipient", "audience", "event", "text", "link"}
    approver_items = [i for i in items if i["audience"] == "approver" and i["event"] == "approval.requested"]
    assert approver_items
    assert all(i["link"] and "/decide/" in i["link"] for i in approver_items)
    assert all(i["link"].startswith(local_stack.endpoint) for i in approver_items)
    # Each link reached its approver's own subscriber only; the shared mailbox got team copies without links.
    assert all(i["subscriber"] == i["recipient"].rsplit("/", 1)[-1] for i in items if i["link"])
    shared = [i for i in items if i["subscriber"] == SHARED_MAILBOX]
    assert {i["event"] for i in shared} >= {"approval.requested", "request.active"}
    assert all(i["link"] is None and "/decide/" not in i["text"] for i in shared)
