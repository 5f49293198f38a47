"""The request lifecycle on the fakes: the behaviours of tests/functional/test_lifecycle.py, without moto."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.usecases.conftest import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    JUSTIFICATION,
    MEMBER,
    ROLE_ARN,
    ROLE_ID,
    ROLE_NAME,
    VENDOR_TRUST,
    approve,
    caller,
    granted,
    request_access,
    task_token,
)
from trustgate.app import decisions, requests, roles, workflow_steps
from trustgate.core.errors import ConflictError, DocumentRefusedError, TrustGateError
from trustgate.core.models import AutoApproveRule, RequestStatus, RolePolicy
from trustgate.core.session_guard import guard_window
from trustgate.core.trust_policy import grant_expiry_in, is_managed, statements_of
from trustgate_local.fakes import FakeDependencies

pytestmark = pytest.mark.unit


def managed(deps: FakeDependencies) -> list[dict[str, object]]:
    return [s for s in statements_of(deps.roles.trust_policy(ROLE_ARN)) if is_managed(s)]


def test_creating_a_request_records_it_starts_the_flow_and_asks_each_approver(deps: FakeDependencies) -> None:
    request = request_access(deps)
    stored = deps.store.get_request(request.id)
    assert (stored.status, stored.principal_arn, stored.role_arn) == (RequestStatus.PENDING, ALICE, ROLE_ARN)
    assert deps.flow.started == [request.id]
    assert deps.store.get_task_token(request.id) == task_token(request.id)
    asked = [n.recipient for n in deps.notifier.sent if n.audience == "approver"]
    assert asked == [BOB, DAVE]
    assert len(deps.store.tokens) == 2  # a personal approval link each
    assert [e.action for e in deps.events.published] == ["request.created"]
    # Not auto-approved: the flow waits for a decision at most the approval window (the default 2 hours).
    assert deps.flow.inputs[request.id] == (False, 7200)
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST  # nothing reaches IAM before a decision


def test_the_api_judges_auto_approve_once_and_starts_the_flow_straight_to_grant(deps: FakeDependencies) -> None:
    deps.settings = deps.settings.model_copy(update={"allow_auto_approve": True})
    rule = AutoApproveRule(principals=[ALICE], max_duration=timedelta(hours=1))
    roles.change_policy(deps, caller(CAROL), ROLE_ARN, RolePolicy(auto_approve=[rule]), dry_run=False)
    new = requests.NewRequest(role=ROLE_NAME, duration=timedelta(hours=1), justification=JUSTIFICATION)

    request = requests.create_request(deps, caller(ALICE), new)

    stored = deps.store.get_request(request.id)
    assert (stored.auto_approved, stored.decided_at, stored.status) == (True, deps.clock.now(), RequestStatus.PENDING)
    assert deps.flow.inputs[request.id] == (True, 7200)  # AutoApproved? -> Grant: no evaluation step
    assert [e.action for e in deps.events.published][-2:] == ["request.created", "request.auto_approved"]
    workflow_steps.grant(deps, request.id)
    assert deps.store.get_request(request.id).status == RequestStatus.ACTIVE
    # Someone no rule names: the flow waits for a person.
    erin = requests.create_request(deps, caller(f"arn:aws:iam::{MEMBER}:user/erin"), new)
    assert (deps.store.get_request(erin.id).auto_approved, deps.flow.inputs[erin.id]) == (False, (False, 7200))


def test_a_second_open_request_for_the_same_role_is_refused_and_changes_nothing(deps: FakeDependencies) -> None:
    request_access(deps)
    before = dict(deps.store.requests)
    with pytest.raises(ConflictError) as refused:
        request_access(deps)
    assert refused.value.code == "request_pending"
    assert deps.store.requests == before


def test_approved_grant_puts_exactly_that_principal_with_its_expiry(deps: FakeDependencies) -> None:
    grant = granted(deps)
    assert grant.expires_at is not None
    assert grant.starts_at is not None
    policy = deps.roles.trust_policy(ROLE_ARN)
    assert statements_of(policy)[0] == VENDOR_TRUST["Statement"][0]  # the vendor's statement is untouched
    assert [s["Principal"] for s in managed(deps)] == [{"AWS": ALICE}]
    assert grant_expiry_in(policy, ALICE) == grant.expires_at
    assert grant.expires_at - grant.starts_at == timedelta(hours=1)
    # The session guard ends alice's sessions at the grant's end; the expiry is scheduled.
    assert guard_window(deps.roles.session_guard(ROLE_ARN), f"{ROLE_ID}:alice")[1] == grant.expires_at
    assert deps.schedules.schedules[(grant.id, "expire")] == grant.expires_at


def test_a_requester_may_not_approve_their_own_request(deps: FakeDependencies) -> None:
    request = request_access(deps, who=BOB)  # bob is an approver of the role, but not of his own request
    with pytest.raises(TrustGateError) as refused:
        approve(deps, request.id, approver=BOB)
    assert refused.value.status == 403, refused.value
    stored = deps.store.get_request(request.id)
    assert (stored.status, stored.approvals, stored.decided_at) == (RequestStatus.PENDING, [], None)
    assert deps.flow.resumed == []
    assert approve(deps, request.id, approver=DAVE).decided_at is not None  # another approver still may


def test_deny_ends_the_request_and_leaves_the_trust_policy_alone(deps: FakeDependencies) -> None:
    request = request_access(deps)
    denied = decisions.decide(deps, caller(BOB), request.id, "deny", "use the read-only role")
    assert denied.status == RequestStatus.DENIED
    assert deps.flow.resumed == [(task_token(request.id), "deny")]
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST
    assert deps.roles.writes == []
    request_access(deps)  # the open-request marker is freed: alice may ask again


def test_cancel_ends_the_flow(deps: FakeDependencies) -> None:
    request = request_access(deps)
    cancelled = requests.cancel_request(deps, caller(ALICE), request.id)
    assert cancelled.status == RequestStatus.CANCELLED
    assert deps.flow.resumed == [(task_token(request.id), "cancelled")]
    with pytest.raises(ConflictError) as refused:
        approve(deps, request.id)
    assert refused.value.code == "already_decided"
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST


def test_schedule_firing_at_expiry_removes_the_principal(deps: FakeDependencies) -> None:
    grant = granted(deps)
    assert workflow_steps.expire(deps, grant.id)["status"] == "active"  # a schedule firing early changes nothing
    deps.clock.advance(timedelta(hours=1, seconds=1))
    assert workflow_steps.expire(deps, grant.id)["status"] == "expired"
    assert deps.store.get_request(grant.id).status == RequestStatus.EXPIRED
    assert managed(deps) == []
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST


def test_revoke_removes_the_principal_at_once_and_drops_the_schedule(deps: FakeDependencies) -> None:
    grant = granted(deps)
    revoked = requests.revoke_request(deps, caller(ALICE), grant.id, "done early")
    assert (revoked.status, revoked.reason) == (RequestStatus.REVOKED, "done early")
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST
    assert (grant.id, "expire") not in deps.schedules.schedules


def test_every_change_is_audited_and_announced(deps: FakeDependencies) -> None:
    grant = granted(deps)
    actions = [e.action for e in deps.store.audit_events(role_arn=ROLE_ARN).items if e.request_id == grant.id]
    assert {"request.created", "request.approved", "request.granted"} <= set(actions), actions
    assert {e.id for e in deps.events.published} <= set(deps.store.audits)


def test_a_grant_iam_refuses_fails_and_leaves_no_principal_behind(deps: FakeDependencies) -> None:
    deps.roles.refuse(ALICE)  # IAM: "Invalid principal" (say, alice's user was deleted meanwhile)
    request = request_access(deps)
    approve(deps, request.id)
    with pytest.raises(DocumentRefusedError):
        workflow_steps.grant(deps, request.id)  # the flow's Grant step fails; its Catch records the failure
    error = {"Error": "DocumentRefusedError", "Cause": "Invalid principal in policy"}
    assert workflow_steps.finalize(deps, request.id, "failed", error)["status"] == "failed"
    assert deps.store.get_request(request.id).status == RequestStatus.FAILED
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST
    assert grant_expiry_in(deps.roles.trust_policy(ROLE_ARN), ALICE) is None
