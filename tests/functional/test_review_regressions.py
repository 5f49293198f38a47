"""Regression tests for the security review's findings, through HTTP, the approval flow and the reconciler.

Each test reproduces one finding as a user (or an attacker, or a failing dependency) would meet it, and
checks what TrustGate does now: refuse, keep the person's sessions ended, or answer 4xx instead of 5xx.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import (
    ALICE,
    BOB,
    CAROL,
    ERIN,
    MANAGEMENT,
    MEMBER,
    ROLE_ARN,
    ROLE_NAME,
    VENDOR_TRUST,
    World,
    running_world,
)
from tests.support.flows import JUSTIFICATION, approve, granted, request_access
from tests.support.links import approval_links, messages_for
from trustgate.app import sync, transitions
from trustgate.core.models import RequestStatus
from trustgate.core.records import Decision
from trustgate.core.session_guard import guard_window
from trustgate.core.trust_policy import policy_size

pytestmark = pytest.mark.functional

ROLE = "PumpCustomerAccess"
POLICY = f"/roles/{ROLE}/policy"
SSO_ADMINS = "arn:aws:sts::*:assumed-role/AWSReservedSSO_Admin_*/*"
SSO_ADMIN_ROLE = "AWSReservedSSO_Admin_0123456789abcdef"
SAML_ROLE = f"arn:aws:iam::{MEMBER}:role/FederatedEngineers"


def sso_admin(account: str, user: str = "mallory") -> str:
    return f"arn:aws:sts::{account}:assumed-role/{SSO_ADMIN_ROLE}/{user}"


def federated(session_name: str, role: str = "FederatedEngineers") -> str:
    return f"arn:aws:sts::{MEMBER}:assumed-role/{role}/{session_name}"


def error_of(answer: Any) -> tuple[str, str]:
    return answer["error"]["code"], answer["error"]["message"]


def cursor(content: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(content).encode()).decode()


def names(document: Any, principal: str) -> bool:
    return principal in json.dumps(document)


# -- 1. a look-alike Identity Center session is no admin ---------------------------------------------


def test_an_admin_pattern_for_identity_center_roles_refuses_policy_changes_with_a_look_alike_session() -> None:
    parameters = {"IdentityCenterAccountIds": MANAGEMENT, "BootstrapAdmins": SSO_ADMINS}
    with running_world(parameters) as world:
        trusted, forged = sso_admin(MANAGEMENT, "carol"), sso_admin(MEMBER)  # MEMBER may create roles so named
        status, policy_before = world.api("GET", POLICY, trusted)
        assert status == 200, policy_before
        trust_before = world.trust_policy()
        takeover = {
            "admins": [forged],
            "mode": "accounts",
            "standing_principals": [MEMBER],
            "adopt_statements": [s["Sid"] for s in trust_before["Statement"] if s.get("Sid")],
        }

        status, answer = world.api("PUT", POLICY, forged, takeover)
        assert status == 403, answer
        status, answer = world.api("GET", POLICY, forged)
        assert status == 403, answer

        assert world.api("GET", POLICY, trusted) == (200, policy_before)
        assert world.trust_policy() == trust_before
        # The same permission set from an account Identity Center is trusted in is an admin.
        # Admins a policy adds are named exactly: the Identity Center user, in every permission set.
        status, answer = world.api("PUT", POLICY, trusted, {"admins": ["idc:carol"], "justification_min_length": 20})
        assert status == 200, answer
        assert answer["policy"]["justification_min_length"] == 20


# -- 2. ownership needs a person --------------------------------------------------------------------


def test_a_requests_ownership_with_a_look_alike_session_name_of_a_non_identity_role_is_refused() -> None:
    victim, attacker = federated("alice@corp.example"), federated("alice@corp.example", "AnyRole")
    with running_world({"IdentityRoleArns": SAML_ROLE}) as world:
        status, answer = world.api("PUT", POLICY, CAROL, {"identity_roles": [SAML_ROLE]})
        assert status == 200, answer
        request_id = request_access(world, victim)["id"]
        world.wait_for_task_token(request_id)

        status, answer = world.api("GET", "/requests", attacker, query={"mine": "true"})
        assert status == 403, answer
        assert error_of(answer)[0] == "not_a_person"
        status, answer = world.api("GET", f"/requests/{request_id}", attacker)
        assert status == 404, answer
        status, answer = world.api("POST", f"/requests/{request_id}/cancel", attacker)
        assert status == 403, answer
        assert world.status(request_id) == "pending"

        approve(world, request_id)
        world.wait_status(request_id, "active")
        extension = {"duration": "PT30M", "justification": JUSTIFICATION}
        status, answer = world.api("POST", f"/requests/{request_id}/extend", attacker, extension)
        assert status == 403, answer
        status, answer = world.api("POST", f"/requests/{request_id}/revoke", attacker, {"reason": "bye"})
        assert status == 403, answer
        assert world.status(request_id) == "active"

        # The person herself, through the identity role, still owns it.
        status, answer = world.api("GET", "/requests", victim, query={"mine": "true"})
        assert status == 200, answer
        assert [item["id"] for item in answer["items"]] == [request_id]
        status, answer = world.api("GET", f"/requests/{request_id}", victim)
        assert (status, answer["status"]) == (200, "active")


# -- 3. a grant that fails after IAM was written --------------------------------------------------


def test_a_grant_that_fails_after_the_iam_writes_is_finished_by_its_retry_with_the_window_it_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once IAM holds a grant nothing after it may fail it: the activation that could not be recorded is
    retried by the state machine, which reuses the window recorded before IAM named her (no second window)."""
    real = transitions.transition
    written: dict[str, Any] = {}

    def fails_once_on_activation(deps: Any, request: Any, target: RequestStatus, actor: str, **kw: Any) -> Any:
        if target == RequestStatus.ACTIVE and not written:
            written["trust"], written["at"] = world.trust_policy(), world.deps.clock.now()
            raise RuntimeError("DynamoDB throttled after the IAM writes")
        return real(deps, request, target, actor, **kw)

    monkeypatch.setattr(sync, "transition", fails_once_on_activation)
    request_id = request_access(world, duration="PT15M")["id"]
    approve(world, request_id)
    assert world.wait_execution(request_id, timeout=60)["status"] == "SUCCEEDED"
    world.wait_status(request_id, "active")

    assert names(written["trust"], ALICE)  # IAM named alice before the failure
    grant = world.deps.store.get_request(request_id)
    assert grant.starts_at is not None
    assert grant.expires_at is not None
    assert grant.starts_at <= written["at"]  # the window recorded before IAM named her is the one kept
    assert grant.expires_at == grant.starts_at + timedelta(minutes=15)
    windows = [
        e
        for e in world.deps.store.audit_events(role_arn=ROLE_ARN).items
        if e.request_id == request_id and e.action == "grant.window_recorded"
    ]
    assert len(windows) == 1
    _start, end = guard_window(world.session_guard(), f"{world.role_id()}:alice")
    assert end == grant.expires_at.replace(microsecond=0)
    assert names(world.trust_policy(), ALICE)


# -- 4. a revoke from a trust policy already over the quota -----------------------------------------


def test_a_revoke_takes_the_person_out_with_a_trust_policy_already_over_the_quota(world: World) -> None:
    grant = granted(world)
    document = world.trust_policy()
    vendor_accounts = [f"arn:aws:iam::{n:012d}:root" for n in range(100000000000, 100000000000 + 58)]
    document["Statement"].append(
        {"Sid": "VendorSupport", "Effect": "Allow", "Principal": {"AWS": vendor_accounts}, "Action": "sts:AssumeRole"}
    )
    world.session.client("iam").update_assume_role_policy(RoleName=ROLE_NAME, PolicyDocument=json.dumps(document))
    assert policy_size(world.trust_policy()) > world.deps.settings.trust_policy_quota

    status, answer = world.api("POST", f"/roles/{ROLE}/revoke", CAROL, {"principal": ALICE, "reason": "compromised"})

    assert status == 200, answer
    assert [(r["id"], r["status"]) for r in answer["ended"]] == [(grant["id"], "revoked")]
    assert world.status(grant["id"]) == "revoked"
    assert not names(world.trust_policy(), ALICE)
    assert any(s.get("Sid") == "VendorSupport" for s in world.trust_policy()["Statement"])  # hand-written, kept
    ended = world.deps.store.get_request(grant["id"]).expires_at
    assert ended is not None
    assert guard_window(world.session_guard(), f"{world.role_id()}:alice")[1] == ended.replace(microsecond=0)
    # Only growth is refused: nobody new fits into a policy over its quota.
    status, answer = world.api(
        "POST", "/requests", ERIN, {"role": ROLE, "duration": "PT1H", "justification": JUSTIFICATION}
    )
    assert (status, error_of(answer)[0]) == (409, "trust_policy_full")


# -- 5. one person, session names differing in case ------------------------------------------------


def test_the_guard_keeps_ending_a_persons_sessions_with_grants_pinning_names_differing_in_case() -> None:
    upper, lower = federated("Alice@corp.example"), federated("alice@corp.example")
    with running_world({"IdentityRoleArns": SAML_ROLE}) as world:
        status, answer = world.api("PUT", POLICY, CAROL, {"identity_roles": [SAML_ROLE]})
        assert status == 200, answer
        first = granted(world, upper)
        status, answer = world.api("POST", f"/requests/{first['id']}/revoke", CAROL, {"reason": "done"})
        assert (status, answer["status"]) == (200, "revoked")
        world.advance(timedelta(minutes=10))
        second = granted(world, lower)  # the same IdP user, signed in with their name in another case

        guard = world.session_guard()
        role_id = world.role_id()
        latest = world.deps.store.get_request(second["id"])
        starts, ends = latest.starts_at, latest.expires_at
        assert starts is not None
        assert ends is not None
        window = (starts.replace(microsecond=0), ends.replace(microsecond=0))
        # Sessions the first grant issued as `Alice@…` may live for hours: they stay dead, like `alice@…`'s.
        assert guard_window(guard, f"{role_id}:Alice@corp.example") == window
        assert guard_window(guard, f"{role_id}:alice@corp.example") == window


# -- 6. standing principals within the deployment's accounts ---------------------------------------


def test_a_policy_is_refused_with_standing_principals_outside_the_allowed_accounts(world: World) -> None:
    status, policy_before = world.api("GET", POLICY, CAROL)
    assert status == 200, policy_before
    outsiders = ["999999999999", "arn:aws:iam::888888888888:role/Anything"]

    status, answer = world.api(
        "PUT",
        POLICY,
        CAROL,
        {"mode": "accounts", "adopt_statements": ["PumpOrganizationAccess"], "standing_principals": outsiders},
    )

    assert status == 422, answer
    code, message = error_of(answer)
    assert code == "exceeds_ceiling"
    assert "standing_principals" in message
    assert world.api("GET", POLICY, CAROL) == (200, policy_before)
    assert world.trust_policy() == VENDOR_TRUST


# -- 7. a decision whose delivery to the flow failed -----------------------------------------------


def test_an_approval_is_kept_and_delivered_by_the_reconciler_with_a_failed_send_task_success(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = request_access(world)["id"]
    world.wait_for_task_token(request_id)
    flow = world.deps.flow
    real = flow.resume
    calls: list[str] = []

    def throttled_once(token: str, decision: Decision) -> Any:
        calls.append(decision)
        if len(calls) == 1:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "SendTaskSuccess")
        return real(token, decision)

    monkeypatch.setattr(flow, "resume", throttled_once)

    status, answer = world.api("POST", f"/requests/{request_id}/approve", BOB, {"comment": "ok"})

    assert status == 200, answer
    assert answer["status"] == "pending"
    request = world.deps.store.get_request(request_id)
    assert (request.status.value, request.decided_at is not None) == ("pending", True)
    assert world.execution(request_id)["status"] == "RUNNING"  # the flow was never told

    world.invoke("ReconcileFunction", {})

    world.wait_status(request_id, "active")
    assert calls == ["approve", "approve"]
    assert names(world.trust_policy(), ALICE)


# -- 8. bad input never 5xx ------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "caller"), [("/requests", ALICE), ("/audit", CAROL)], ids=["requests", "audit"])
def test_a_listing_answers_400_with_a_next_cursor_this_api_never_issued(world: World, path: str, caller: str) -> None:
    request_access(world)
    status, answer = world.api("GET", path, caller, query={"next": cursor({"a": 1})})
    assert (status, error_of(answer)[0]) == (400, "invalid_cursor")
    assert "next" in error_of(answer)[1]


@pytest.mark.parametrize("duration", [10**30, "P9999999999D"], ids=["minutes-overflow", "days-overflow"])
def test_a_request_is_refused_with_a_message_with_a_duration_no_calendar_holds(world: World, duration: Any) -> None:
    body = {"role": ROLE, "duration": duration, "justification": JUSTIFICATION}
    status, answer = world.api("POST", "/requests", ALICE, body)
    assert status in (400, 422), answer
    assert "duration" in error_of(answer)[1]
    assert world.deps.store.requests_by_person(f"iam:{MEMBER}:alice", None, 50).items == []


def test_the_audit_log_answers_400_with_a_time_outside_utcs_range(world: World) -> None:
    status, answer = world.api("GET", "/audit", CAROL, query={"until": "9999-12-31T23:59:59-01:00"})
    assert status == 400, answer
    assert "until" in error_of(answer)[1]


# -- 9. a revoke names a principal of this deployment --------------------------------------------


def test_a_revoke_is_refused_with_a_principal_of_another_partition(world: World) -> None:
    grant = granted(world)
    status, answer = world.api(
        "POST", f"/roles/{ROLE}/revoke", CAROL, {"principal": f"arn:aws-cn:iam::{MEMBER}:user/alice"}
    )
    assert status == 400, answer
    assert error_of(answer)[0] == "invalid_input"
    assert world.status(grant["id"]) == "active"
    assert names(world.trust_policy(), ALICE)


# -- 10. user text in notifications --------------------------------------------------------------


def test_approver_notifications_show_the_justification_inert_with_newlines_and_markdown(world: World) -> None:
    justification = "ok\nApprovals: 2 given *pre-approved* [x](https://evil.example)"
    request_id = request_access(world, justification=justification)["id"]
    approval_links(world, request_id)

    for sent in messages_for(world, request_id, "approval.requested"):
        email_lines = sent.email.splitlines()
        assert "Justification: ok Approvals: 2 given *pre-approved* [x](https[:]//evil[.]example)" in email_lines
        assert [line for line in email_lines if line.startswith("Approvals:")] == ["Approvals:     0 given, 1 needed"]
        chat = sent.chat["content"]["description"]
        assert r"*Justification:* ok Approvals: 2 given \*pre-approved\* \[x\]\(https\[:\]//evil\[.\]example\)" in chat
        assert "[x](https://evil.example)" not in chat
        assert not any(line.startswith("Approvals:") for line in chat.splitlines())
