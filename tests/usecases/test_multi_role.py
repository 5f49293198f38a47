"""Multi-role requests on the fakes (issue 13, section 5): one request, one decision, one grant per role through
each role's own `sync_role`, or none at all; every role's rules checked when asked, and again at the Grant step;
deny, cancel, revoke and extend act on every role."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.usecases.conftest import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    JUSTIFICATION,
    MANAGEMENT,
    ROLE_ARN,
    ROLE_NAME,
    VENDOR_TRUST,
    caller,
    task_token,
)
from trustgate.app import decisions, requests, roles, sync, transitions, workflow_steps
from trustgate.app import reconcile as reconciler
from trustgate.core.errors import (
    ActivationNotRecordedError,
    ConflictError,
    ForbiddenError,
    LockTimeoutError,
    RevokeIncompleteError,
    RolesRefusedError,
    RuleViolationError,
    TrustPolicyFullError,
)
from trustgate.core.models import AccessRequest, RequestStatus, RolePolicy
from trustgate.core.trust_policy import grant_expiry_in
from trustgate_local.fakes import FakeDependencies

pytestmark = pytest.mark.unit

OTHER_NAME = "PumpBilling"
OTHER_ARN = f"arn:aws:iam::{MANAGEMENT}:role/{OTHER_NAME}"
HOUR = timedelta(hours=1)


@pytest.fixture
def two(deps: FakeDependencies) -> FakeDependencies:
    deps.settings = deps.settings.model_copy(update={"managed_role_arns": [ROLE_ARN, OTHER_ARN]})
    deps.roles.add_role(OTHER_ARN, VENDOR_TRUST, "AROAEXAMPLEROLEID0002")
    return deps


def ask(
    deps: FakeDependencies, duration: timedelta = HOUR, names: tuple[str, ...] = (ROLE_NAME, OTHER_NAME)
) -> AccessRequest:
    new = requests.NewRequest("", duration, JUSTIFICATION, roles=names)
    request = requests.create_request(deps, caller(ALICE), new)
    workflow_steps.notify_approvers(deps, request.id, task_token(request.id))
    return request


def approved(deps: FakeDependencies, names: tuple[str, ...] = (ROLE_NAME, OTHER_NAME)) -> AccessRequest:
    """Asked for and approved by bob: what the Grant step then finds."""
    parent = ask(deps, names=names)
    return decisions.decide(deps, caller(BOB), parent.id, "approve", None)


def members(deps: FakeDependencies, parent: AccessRequest) -> list[AccessRequest]:
    return [deps.store.get_request(i) for i in [parent.id, *parent.parts]]


def names(deps: FakeDependencies, role_arn: str) -> bool:
    return grant_expiry_in(deps.roles.trust_policy(role_arn), ALICE) is not None


def granted(deps: FakeDependencies) -> AccessRequest:
    parent = approved(deps)
    assert workflow_steps.grant(deps, parent.id)["status"] == "active"
    return deps.store.get_request(parent.id)


def test_one_decision_grants_each_role_its_own_grant(two: FakeDependencies) -> None:
    parent = ask(two)
    assert parent.roles == [ROLE_ARN, OTHER_ARN]
    (part,) = [two.store.get_request(i) for i in parent.parts]
    assert (part.role_arn, part.part_of, part.status) == (OTHER_ARN, parent.id, RequestStatus.PENDING)
    # One approval request, about both roles; the part itself cannot be decided.
    asked = [n for n in two.notifier.sent if n.event == "approval.requested"]
    assert {n.request.id for n in asked} == {parent.id}
    assert "PumpCustomerAccess, PumpBilling" in asked[0].subject
    with pytest.raises(ConflictError, match="decide that one"):
        decisions.decide(two, caller(BOB), part.id, "approve", None)
    assert [r.id for r in decisions.pending_for_approver(two, caller(BOB))] == [parent.id]

    decisions.decide(two, caller(BOB), parent.id, "approve", None)
    assert workflow_steps.grant(two, parent.id)["status"] == "active"
    both = members(two, parent)
    assert [m.status for m in both] == [RequestStatus.ACTIVE, RequestStatus.ACTIVE]
    assert names(two, ROLE_ARN)
    assert names(two, OTHER_ARN)
    assert {(i, "expire") for i in (parent.id, part.id)} <= set(two.schedules.schedules)
    assert workflow_steps.grant(two, parent.id)["status"] == "active"  # a retry grants nothing twice


def test_a_role_that_refuses_when_asked_refuses_the_whole_request(two: FakeDependencies) -> None:
    roles.change_policy(two, caller(CAROL), OTHER_ARN, RolePolicy(max_duration=timedelta(minutes=30)), dry_run=False)
    with pytest.raises(RolesRefusedError) as refused:
        ask(two)
    assert refused.value.status == 422
    assert [(r["role"], r["code"]) for r in refused.value.refusals] == [(OTHER_NAME, "duration_too_long")]
    assert "PumpBilling: duration_too_long" in refused.value.message
    assert two.store.requests == {}  # nothing recorded for either role

    two.settings = two.settings.model_copy(update={"trust_policy_quota": 300})  # no room for one more grant
    with pytest.raises(RolesRefusedError) as refused:
        ask(two, timedelta(minutes=20))
    assert {r["code"] for r in refused.value.refusals} == {"trust_policy_full"}
    assert two.store.requests == {}


def test_a_role_that_refuses_at_the_grant_fails_them_all_and_iam_names_nobody(two: FakeDependencies) -> None:
    parent = approved(two)
    roles.change_policy(two, caller(CAROL), OTHER_ARN, RolePolicy(max_duration=timedelta(minutes=30)), dry_run=False)

    result = workflow_steps.grant(two, parent.id)
    assert result["status"] == "failed"
    assert "PumpBilling" in result["reason"]
    assert [m.status for m in members(two, parent)] == [RequestStatus.FAILED, RequestStatus.FAILED]
    assert not names(two, ROLE_ARN)
    assert not names(two, OTHER_ARN)


def test_each_role_counts_its_own_approvers(two: FakeDependencies) -> None:
    roles.change_policy(two, caller(CAROL), OTHER_ARN, RolePolicy(approvers=[DAVE]), dry_run=False)
    parent = ask(two)
    assert parent.approvers == [DAVE]  # only who approves every role is asked
    with pytest.raises(ForbiddenError):
        decisions.decide(two, caller(BOB), parent.id, "approve", None)
    decisions.decide(two, caller(DAVE), parent.id, "approve", None)
    assert workflow_steps.grant(two, parent.id)["status"] == "active"

    roles.change_policy(two, caller(CAROL), OTHER_ARN, RolePolicy(approvers=[CAROL]), dry_run=False)
    roles.change_policy(two, caller(CAROL), ROLE_ARN, RolePolicy(approvers=[BOB]), dry_run=False)
    with pytest.raises(RuleViolationError, match="no approver is an approver of every one"):
        requests.create_request(
            two, caller(DAVE), requests.NewRequest("", HOUR, JUSTIFICATION, roles=(ROLE_NAME, OTHER_NAME))
        )


def test_two_approvals_where_one_role_needs_two(two: FakeDependencies) -> None:
    roles.change_policy(two, caller(CAROL), OTHER_ARN, RolePolicy(required_approvals=2), dry_run=False)
    parent = ask(two)
    first = decisions.decide(two, caller(BOB), parent.id, "approve", None)
    assert first.decided_at is None  # enough for PumpCustomerAccess, not for PumpBilling
    second = decisions.decide(two, caller(DAVE), parent.id, "approve", None)
    assert second.decided_at is not None
    assert workflow_steps.grant(two, parent.id)["status"] == "active"


def test_deny_and_cancel_end_every_role(two: FakeDependencies) -> None:
    denied = ask(two)
    decisions.decide(two, caller(BOB), denied.id, "deny", "not now")
    assert [m.status for m in members(two, denied)] == [RequestStatus.DENIED, RequestStatus.DENIED]

    cancelled = ask(two)
    with pytest.raises(ConflictError, match="cancel that one"):
        requests.cancel_request(two, caller(ALICE), cancelled.parts[0])
    requests.cancel_request(two, caller(ALICE), cancelled.id)
    assert [m.status for m in members(two, cancelled)] == [RequestStatus.CANCELLED, RequestStatus.CANCELLED]


def test_revoke_and_extend_act_on_every_role(two: FakeDependencies) -> None:
    parent = granted(two)
    part_id = parent.parts[0]
    ends = {m.role_arn: m.expires_at for m in members(two, parent)}

    extension = requests.extend_request(two, caller(ALICE), part_id, HOUR, JUSTIFICATION)
    assert extension.roles == [ROLE_ARN, OTHER_ARN]
    extension_part = two.store.get_request(extension.parts[0])
    assert (extension.extends, extension_part.extends) == (parent.id, part_id)
    workflow_steps.notify_approvers(two, extension.id, task_token(extension.id))
    decisions.decide(two, caller(BOB), extension.id, "approve", None)
    assert workflow_steps.grant(two, extension.id)["status"] == "active"
    for role_arn, before in ends.items():
        assert before is not None
        assert grant_expiry_in(two.roles.trust_policy(role_arn), ALICE) == before + HOUR

    requests.revoke_request(two, caller(ALICE), part_id, "done")
    assert not names(two, ROLE_ARN)
    assert not names(two, OTHER_ARN)
    assert {m.status for m in members(two, parent)} == {RequestStatus.REVOKED}


def test_a_part_left_pending_by_a_request_that_ended_is_closed_by_the_reconciler(two: FakeDependencies) -> None:
    parent = ask(two)
    # Its flow timed out, and the step died before closing the other role's request.
    stored = two.store.get_request(parent.id)
    two.store.requests[parent.id] = stored.model_copy(update={"status": RequestStatus.TIMED_OUT})
    two.clock.advance(timedelta(minutes=5))
    report = reconciler.reconcile(two)
    assert {"request_id": parent.parts[0], "done": f"closed with {parent.id} (timed_out)"} in report["flows"]
    assert two.store.get_request(parent.parts[0]).status == RequestStatus.TIMED_OUT


# -- found by a security review: each of these once left a role granted, or a request unfinished ---------------

THIRD_NAME = "PumpAudit"
THIRD_ARN = f"arn:aws:iam::{MANAGEMENT}:role/{THIRD_NAME}"


@pytest.fixture
def three(two: FakeDependencies) -> FakeDependencies:
    two.settings = two.settings.model_copy(update={"managed_role_arns": [ROLE_ARN, OTHER_ARN, THIRD_ARN]})
    two.roles.add_role(THIRD_ARN, VENDOR_TRUST, "AROAEXAMPLEROLEID0003")
    return two


Interposed = Callable[[FakeDependencies, str, bool, dict[str, Any]], None]


def interpose(monkeypatch: pytest.MonkeyPatch, before: Interposed) -> None:
    """The Grant step's syncs, with `before(deps, role_arn, activating, kwargs)` run first (it may raise)."""
    real = sync.sync_role

    def interposed(deps: FakeDependencies, role_arn: str, *args: Any, **kwargs: Any) -> Any:
        before(deps, role_arn, len(args) > 2, kwargs)  # (actor, reason, activation): an activation
        return real(deps, role_arn, *args, **kwargs)

    monkeypatch.setattr(workflow_steps, "sync_role", interposed)


def test_a_revoke_while_the_roles_are_being_granted_stops_the_rest(
    two: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = approved(two)

    def revoked_between(deps: FakeDependencies, role_arn: str, activating: bool, _: dict[str, Any]) -> None:
        if role_arn == OTHER_ARN and activating:  # the first role granted: alice revokes the whole request now
            requests.revoke_request(deps, caller(ALICE), parent.id, "done, all of it")

    interpose(monkeypatch, revoked_between)
    assert workflow_steps.grant(two, parent.id)["status"] != "active"
    assert not names(two, ROLE_ARN)
    assert not names(two, OTHER_ARN)
    assert two.store.get_request(parent.parts[0]).status != RequestStatus.ACTIVE


def test_a_role_queued_before_a_revoke_is_never_granted_by_a_later_sync(
    two: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = approved(two)
    part_id = parent.parts[0]

    def busy(deps: FakeDependencies, role_arn: str, activating: bool, _: dict[str, Any]) -> None:
        if role_arn == OTHER_ARN and activating:  # queued its activation, then timed out waiting for the lock
            deps.store.mark_dirty(OTHER_ARN, [part_id], [])
            raise LockTimeoutError("busy")

    interpose(monkeypatch, busy)
    with pytest.raises(LockTimeoutError):
        workflow_steps.grant(two, parent.id)
    monkeypatch.undo()
    requests.revoke_request(two, caller(ALICE), parent.id, "stop everything")
    workflow_steps.grant(two, parent.id)  # the flow's retry
    # Carol's grant of the same role serves its queue: alice's queued activation is refused under the lock.
    carol = requests.create_request(two, caller(CAROL), requests.NewRequest(OTHER_NAME, HOUR, JUSTIFICATION))
    workflow_steps.notify_approvers(two, carol.id, task_token(carol.id))
    decisions.decide(two, caller(BOB), carol.id, "approve", None)
    workflow_steps.grant(two, carol.id)
    assert two.store.get_request(part_id).status != RequestStatus.ACTIVE
    assert not names(two, OTHER_ARN)
    assert grant_expiry_in(two.roles.trust_policy(OTHER_ARN), CAROL) is not None


def test_failing_them_all_records_every_end_before_any_sync(
    three: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = approved(three, names=(ROLE_NAME, OTHER_NAME, THIRD_NAME))
    failed_once: list[str] = []

    def flaky(deps: FakeDependencies, role_arn: str, activating: bool, kwargs: dict[str, Any]) -> None:
        if role_arn == THIRD_ARN and activating:  # the third role filled up after the check: a race
            raise TrustPolicyFullError(2048, 2100)
        if kwargs.get("changed") and not failed_once:  # and the first sync that takes a role out times out
            failed_once.append(role_arn)
            raise LockTimeoutError("busy")

    interpose(monkeypatch, flaky)
    with pytest.raises(LockTimeoutError):
        workflow_steps.grant(three, parent.id)
    assert {m.status for m in members(three, parent)} == {RequestStatus.FAILED}  # every end on record
    monkeypatch.undo()
    three.clock.advance(timedelta(minutes=5))
    reconciler.reconcile(three)  # its per-role sync renders the person out of the role whose sync failed
    assert not any(names(three, arn) for arn in (ROLE_ARN, OTHER_ARN, THIRD_ARN))


def test_the_reconciler_fails_a_request_granted_for_some_roles_whose_flow_is_over(
    two: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = approved(two)

    def dies(deps: FakeDependencies, role_arn: str, activating: bool, _: dict[str, Any]) -> None:
        if role_arn == OTHER_ARN and activating:
            raise RuntimeError("the Lambda died")

    interpose(monkeypatch, dies)
    with pytest.raises(RuntimeError):
        workflow_steps.grant(two, parent.id)
    two.flow.executions[parent.id] = "FAILED"  # and RecordFailure failed every retry: the flow is over
    monkeypatch.undo()
    two.clock.advance(timedelta(minutes=10))
    reconciler.reconcile(two)
    assert {m.status for m in members(two, parent)} == {RequestStatus.FAILED}
    assert not names(two, ROLE_ARN)
    requests.create_request(two, caller(ALICE), requests.NewRequest(OTHER_NAME, HOUR, JUSTIFICATION))  # not blocked


def test_an_admin_of_one_role_cannot_revoke_the_others(two: FakeDependencies) -> None:
    roles.change_policy(two, caller(CAROL), ROLE_ARN, RolePolicy(admins=[DAVE]), dry_run=False)
    parent = granted(two)
    with pytest.raises(ForbiddenError, match="every one of its roles"):
        requests.revoke_request(two, caller(DAVE), parent.id, "x")
    assert names(two, OTHER_ARN)


def test_holding_only_some_of_the_roles_is_refused(two: FakeDependencies) -> None:
    held = requests.create_request(
        two, caller(ALICE), requests.NewRequest(OTHER_NAME, timedelta(minutes=50), JUSTIFICATION)
    )
    workflow_steps.notify_approvers(two, held.id, task_token(held.id))
    decisions.decide(two, caller(BOB), held.id, "approve", None)
    workflow_steps.grant(two, held.id)
    with pytest.raises(ConflictError, match="but not every other role") as refused:
        ask(two)
    assert refused.value.code == "mixed_coverage"


def test_under_the_lock_a_role_is_granted_only_while_its_request_stands(
    two: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = approved(two)
    part_id = parent.parts[0]
    workflow_steps._carry_decision(two, two.store.get_request(parent.id), two.store.get_request(part_id))
    two.store.mark_dirty(OTHER_ARN, [part_id], [])  # queued, decided, still pending
    stored = two.store.get_request(parent.id)
    two.store.requests[parent.id] = stored.model_copy(update={"status": RequestStatus.FAILED})
    carol = requests.create_request(two, caller(CAROL), requests.NewRequest(OTHER_NAME, HOUR, JUSTIFICATION))
    workflow_steps.notify_approvers(two, carol.id, task_token(carol.id))
    decisions.decide(two, caller(BOB), carol.id, "approve", None)
    workflow_steps.grant(two, carol.id)  # its sync serves the queue; alice's role is refused there
    assert two.store.get_request(part_id).status == RequestStatus.PENDING
    assert not names(two, OTHER_ARN)


def test_extending_roles_that_end_at_different_times_is_refused(two: FakeDependencies) -> None:
    parent = granted(two)
    later = requests.extend_request(two, caller(ALICE), parent.id, HOUR, JUSTIFICATION)  # both, together: fine
    requests.cancel_request(two, caller(ALICE), later.id)
    one = requests.create_request(two, caller(ALICE), requests.NewRequest(OTHER_NAME, HOUR, JUSTIFICATION))
    workflow_steps.notify_approvers(two, one.id, task_token(one.id))
    decisions.decide(two, caller(BOB), one.id, "approve", None)
    workflow_steps.grant(two, one.id)  # PumpBilling alone now ends an hour after PumpCustomerAccess
    with pytest.raises(ConflictError, match="ends at different times") as refused:
        requests.extend_request(two, caller(ALICE), parent.id, HOUR, JUSTIFICATION)
    assert refused.value.code == "mixed_coverage"


def test_a_revoke_that_fails_on_one_role_still_ends_the_others(
    two: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = granted(two)
    real_write = two.roles.write_trust_policy

    def iam_down_for_the_first(role_arn: str, document: Any) -> None:
        if role_arn == ROLE_ARN:
            raise RuntimeError("AccessDenied / IAM unavailable")
        real_write(role_arn, document)

    monkeypatch.setattr(two.roles, "write_trust_policy", iam_down_for_the_first)
    with pytest.raises(RevokeIncompleteError):
        requests.revoke_request(two, caller(ALICE), parent.id, "leaked key, end everything")
    assert {m.status for m in members(two, parent)} == {RequestStatus.REVOKED}  # every end on record
    assert not names(two, OTHER_ARN)  # the role IAM could write is done
    monkeypatch.undo()  # IAM is back: the reconciler finishes the other
    two.clock.advance(timedelta(minutes=5))
    reconciler.reconcile(two)
    assert not names(two, ROLE_ARN)


def test_a_role_whose_window_is_on_record_is_ended_by_the_reconciler_when_the_flow_is_over(
    two: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = approved(two)
    part_id = parent.parts[0]
    real_transition = transitions.transition

    def cannot_mark_active(
        deps: FakeDependencies, request: AccessRequest, target: RequestStatus, *args: Any, **kwargs: Any
    ) -> AccessRequest:
        if request.id == part_id and target == RequestStatus.ACTIVE:  # IAM names alice; recording it is throttled
            raise RuntimeError("ProvisionedThroughputExceeded")
        return real_transition(deps, request, target, *args, **kwargs)

    monkeypatch.setattr(sync, "transition", cannot_mark_active)
    with pytest.raises(ActivationNotRecordedError):
        workflow_steps.grant(two, parent.id)
    two.flow.executions[parent.id] = "FAILED"  # Grant's retries and RecordFailure's all failed the same way
    monkeypatch.undo()
    two.clock.advance(timedelta(minutes=10))
    reconciler.reconcile(two)
    assert {m.status for m in members(two, parent)} == {RequestStatus.FAILED}
    assert not names(two, ROLE_ARN)
    assert not names(two, OTHER_ARN)
    requests.create_request(two, caller(ALICE), requests.NewRequest(OTHER_NAME, HOUR, JUSTIFICATION))  # not blocked
