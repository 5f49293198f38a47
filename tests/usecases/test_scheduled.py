"""Scheduled access on the fakes (issue 13, section 1): `start_at` checked when asked, approval before the start
leaves the request `scheduled` with nobody in IAM, its start schedule activates it through `sync_role`, it ends one
duration after its start, and cancel, revoke and the reconciler treat it as the contract says."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.usecases.conftest import (
    ALICE,
    BOB,
    CAROL,
    JUSTIFICATION,
    ROLE_ARN,
    ROLE_ID,
    ROLE_NAME,
    VENDOR_TRUST,
    approve,
    caller,
    task_token,
)
from trustgate.app import reconcile as reconciler
from trustgate.app import requests, roles, workflow_steps
from trustgate.core import approval_page
from trustgate.core.errors import ConflictError, RuleViolationError, TrustPolicyFullError
from trustgate.core.models import AccessRequest, AutoApproveRule, RequestStatus, RolePolicy
from trustgate.core.session_guard import guard_window
from trustgate.core.trust_policy import grant_expiry_in
from trustgate_local.fakes import FakeDependencies

pytestmark = pytest.mark.unit

HOUR = timedelta(hours=1)


def ask(deps: FakeDependencies, start_in: timedelta, duration: timedelta = 2 * HOUR, who: str = ALICE) -> AccessRequest:
    """POST /requests with a start_at, then the flow's WaitForApproval step."""
    start = deps.clock.now() + start_in
    new = requests.NewRequest(ROLE_NAME, duration, JUSTIFICATION, start_at=start)
    request = requests.create_request(deps, caller(who), new)
    workflow_steps.notify_approvers(deps, request.id, task_token(request.id))
    return request


def scheduled(deps: FakeDependencies, start_in: timedelta = 3 * HOUR, duration: timedelta = 2 * HOUR) -> AccessRequest:
    """Asked for later, approved now, and the flow's Grant step run: it waits as `scheduled`."""
    request = ask(deps, start_in, duration)
    approve(deps, request.id)
    result = workflow_steps.grant(deps, request.id)
    assert result["status"] == "scheduled"
    return deps.store.get_request(request.id)


def fire_start(deps: FakeDependencies, request_id: str) -> dict[str, Any]:
    """What the start schedule does at its time: the flow again, straight to its Grant step."""
    assert (request_id, "start") in deps.schedules.schedules
    deps.clock.advance(deps.schedules.schedules.pop((request_id, "start")) - deps.clock.now())
    return workflow_steps.grant(deps, request_id)


def names(deps: FakeDependencies, principal: str = ALICE) -> bool:
    return grant_expiry_in(deps.roles.trust_policy(ROLE_ARN), principal) is not None


def assert_active_for_its_window(deps: FakeDependencies, request: AccessRequest) -> None:
    """Active, and ending one duration after the start asked for, in the record and in the trust policy."""
    grant = deps.store.get_request(request.id)
    assert grant.status == RequestStatus.ACTIVE
    assert request.start_at is not None
    assert grant.expires_at == request.start_at + request.duration
    assert grant_expiry_in(deps.roles.trust_policy(ROLE_ARN), ALICE) == grant.expires_at


# -- asking -------------------------------------------------------------------------------------


def test_a_start_in_the_past_or_beyond_max_schedule_ahead_is_refused_naming_start_at(deps: FakeDependencies) -> None:
    for start_in, code in ((-timedelta(minutes=1), "start_at_in_past"), (timedelta(0), "start_at_in_past")):
        with pytest.raises(RuleViolationError) as refused:
            ask(deps, start_in)
        assert (refused.value.code, refused.value.status) == (code, 422)
        assert "start_at" in refused.value.message
    with pytest.raises(RuleViolationError) as refused:
        ask(deps, timedelta(days=7, seconds=1))
    assert refused.value.code == "start_at_too_far"
    assert "P7D" in refused.value.message or "7 days" in refused.value.message
    assert deps.store.requests == {}  # nothing recorded
    assert deps.flow.started == []


def test_max_schedule_ahead_is_the_deployers(deps: FakeDependencies) -> None:
    deps.settings = deps.settings.model_copy(update={"max_schedule_ahead": timedelta(days=1)})
    with pytest.raises(RuleViolationError):
        ask(deps, timedelta(days=2))
    assert ask(deps, timedelta(hours=23)).start_at == deps.clock.now() + timedelta(hours=23)


def test_a_scheduled_request_waits_for_approval_no_longer_than_its_window_lasts(deps: FakeDependencies) -> None:
    soon = ask(deps, timedelta(minutes=30), duration=timedelta(minutes=45))
    assert soon.start_at is not None
    assert soon.approval_deadline == soon.start_at + timedelta(minutes=45)  # sooner than the 2-hour default
    assert deps.flow.inputs[soon.id] == (False, 75 * 60)
    approver_note = next(n for n in deps.notifier.sent if n.recipient == BOB and n.request.id == soon.id)
    assert "from 2026-11-30 09:30 UTC" in approver_note.text  # approvers see when it would begin
    assert "Starts:" in approver_note.text


# -- approved before the start: scheduled, nobody in IAM --------------------------------------------


def test_approved_before_its_start_it_is_scheduled_and_iam_names_nobody(deps: FakeDependencies) -> None:
    request = scheduled(deps)

    assert request.status == RequestStatus.SCHEDULED
    assert (request.starts_at, request.expires_at) == (None, None)
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST
    assert deps.roles.session_guard(ROLE_ARN) is None
    assert deps.schedules.schedules == {(request.id, "start"): request.start_at}
    told = [n for n in deps.notifier.sent if n.recipient == ALICE and n.event == "request.scheduled"]
    assert "begins at 2026-11-30 12:00 UTC" in told[-1].subject
    assert [e.action for e in deps.events.published][-1] == "request.scheduled"
    # A second run of the Grant step (a retry) changes nothing but making sure of the schedule.
    assert workflow_steps.grant(deps, request.id)["status"] == "scheduled"
    assert deps.store.get_request(request.id).version == request.version


def test_at_its_start_it_becomes_active_and_ends_one_duration_after_the_start(deps: FakeDependencies) -> None:
    request = scheduled(deps, start_in=3 * HOUR, duration=2 * HOUR)
    assert request.start_at is not None

    early = workflow_steps.grant(deps, request.id)  # a schedule that fires early changes nothing
    assert early["status"] == "scheduled"
    assert not names(deps)

    deps.clock.advance(3 * HOUR + timedelta(seconds=20))  # the schedule fires a little late
    result = workflow_steps.grant(deps, request.id)

    grant = deps.store.get_request(request.id)
    assert (result["status"], grant.status) == ("active", RequestStatus.ACTIVE)
    assert grant.expires_at == request.start_at + 2 * HOUR  # from the start asked for, not from the firing
    assert grant_expiry_in(deps.roles.trust_policy(ROLE_ARN), ALICE) == grant.expires_at
    assert guard_window(deps.roles.session_guard(ROLE_ARN), f"{ROLE_ID}:alice")[1] == grant.expires_at
    assert deps.schedules.schedules[(grant.id, "expire")] == grant.expires_at


def test_approved_after_its_start_it_begins_at_once_and_still_ends_on_time(deps: FakeDependencies) -> None:
    request = ask(deps, timedelta(minutes=30), duration=2 * HOUR)
    deps.clock.advance(HOUR)  # approved half an hour into its window
    approve(deps, request.id)
    workflow_steps.grant(deps, request.id)

    assert_active_for_its_window(deps, request)


def test_a_start_whose_whole_window_went_by_fails_and_names_nobody(deps: FakeDependencies) -> None:
    request = scheduled(deps, start_in=HOUR, duration=HOUR)
    deps.clock.advance(3 * HOUR)  # the start schedule never ran, the window is over
    result = workflow_steps.grant(deps, request.id)

    assert result["status"] == "failed"
    failed = deps.store.get_request(request.id)
    assert failed.status == RequestStatus.FAILED
    assert "ended before it could begin" in (failed.reason or "")
    assert not names(deps)
    assert (request.id, "start") not in deps.schedules.schedules


def test_a_policy_tightened_before_the_start_is_judged_at_the_start(deps: FakeDependencies) -> None:
    request = scheduled(deps, duration=2 * HOUR)
    policy = RolePolicy(max_duration=HOUR)
    roles.change_policy(deps, caller(CAROL), ROLE_ARN, policy, dry_run=False)

    assert fire_start(deps, request.id)["status"] == "failed"
    assert deps.store.get_request(request.id).status == RequestStatus.FAILED
    assert not names(deps)


def test_auto_approve_rules_are_judged_at_the_start_asked_for(deps: FakeDependencies) -> None:
    deps.settings = deps.settings.model_copy(update={"allow_auto_approve": True})
    office_hours = AutoApproveRule(principals=[ALICE], hours_utc=(9, 17))
    roles.change_policy(deps, caller(CAROL), ROLE_ARN, RolePolicy(auto_approve=[office_hours]), dry_run=False)

    at_night = ask(deps, timedelta(hours=12), duration=HOUR)  # 21:00: outside the rule's hours, though asked at 09:00
    assert not deps.store.get_request(at_night.id).auto_approved
    requests.cancel_request(deps, caller(ALICE), at_night.id)
    in_hours = ask(deps, timedelta(hours=2), duration=HOUR)  # 11:00
    assert deps.store.get_request(in_hours.id).auto_approved
    assert workflow_steps.grant(deps, in_hours.id)["status"] == "scheduled"


# -- cancel, revoke, extend ------------------------------------------------------------------------


def test_cancel_and_revoke_end_a_scheduled_request_and_delete_its_start_schedule(deps: FakeDependencies) -> None:
    first = scheduled(deps)
    cancelled = requests.cancel_request(deps, caller(ALICE), first.id)
    assert cancelled.status == RequestStatus.CANCELLED
    assert deps.schedules.schedules == {}
    assert fire_start_if_any(deps, first.id) is None

    second = scheduled(deps)
    revoked = requests.revoke_request(deps, caller(CAROL), second.id, "the change was called off")
    assert revoked.status == RequestStatus.REVOKED
    assert deps.schedules.schedules == {}
    told = [n for n in deps.notifier.sent if n.recipient == ALICE and n.event == "request.revoked"]
    assert "revoked before it began" in told[-1].text
    # A start schedule that fired anyway (a race with the delete) grants nothing.
    assert workflow_steps.grant(deps, second.id) == {"request_id": second.id, "status": "revoked"}
    assert not names(deps)


def fire_start_if_any(deps: FakeDependencies, request_id: str) -> dict[str, Any] | None:
    return fire_start(deps, request_id) if (request_id, "start") in deps.schedules.schedules else None


def test_a_scheduled_request_cannot_be_extended_or_decided_again(deps: FakeDependencies) -> None:
    request = scheduled(deps)
    with pytest.raises(ConflictError):
        requests.extend_request(deps, caller(ALICE), request.id, HOUR, JUSTIFICATION)
    with pytest.raises(ConflictError) as refused:
        approve(deps, request.id, approver="arn:aws:iam::222222222222:user/dave")
    assert refused.value.code == "already_decided"


def test_revoking_a_person_ends_their_active_grant_and_their_scheduled_one(deps: FakeDependencies) -> None:
    later = scheduled(deps, start_in=5 * HOUR)
    now = ask(deps, timedelta(minutes=1), duration=HOUR)
    approve(deps, now.id)
    deps.clock.advance(timedelta(minutes=2))
    workflow_steps.grant(deps, now.id)
    assert names(deps)

    revocation = requests.revoke_person(deps, caller(CAROL), ROLE_ARN, ALICE, "offboarded")

    assert {g.id: g.status for g in revocation.ended} == {
        now.id: RequestStatus.REVOKED,
        later.id: RequestStatus.REVOKED,
    }
    assert not names(deps)
    assert deps.schedules.schedules == {}


# -- the reconciler --------------------------------------------------------------------------------


def test_the_reconciler_remakes_a_lost_start_schedule_and_starts_a_start_it_missed(deps: FakeDependencies) -> None:
    request = scheduled(deps, start_in=3 * HOUR)
    deps.schedules.delete(request.id)  # lost

    report = reconciler.reconcile(deps)
    assert report["schedules"]["created"] == [request.id]
    assert deps.schedules.schedules == {(request.id, "start"): request.start_at}

    deps.schedules.delete(request.id)  # lost again, and the start goes by
    deps.clock.advance(3 * HOUR + timedelta(minutes=3))
    report = reconciler.reconcile(deps)
    assert report["schedules"]["started"] == [request.id]
    assert_active_for_its_window(deps, request)


def test_the_reconciler_leaves_a_scheduled_requests_start_schedule_alone(deps: FakeDependencies) -> None:
    request = scheduled(deps)
    deps.clock.advance(timedelta(minutes=30))
    report = reconciler.reconcile(deps)
    assert report["schedules"] == {"deleted": [], "created": [], "started": []}
    assert (request.id, "start") in deps.schedules.schedules
    assert report["failures"] == []


def test_the_approval_page_says_when_a_scheduled_request_begins(deps: FakeDependencies) -> None:
    request = scheduled(deps)
    assert request.start_at is not None

    page = approval_page.result_page(request, "approve", deps.clock.now())

    assert "Approved — access begins later" in page.html
    assert "from <strong>2026-11-30 12:00 UTC</strong> until <strong>2026-11-30 14:00 UTC</strong>" in page.html
    assert "<dt>Starts</dt><dd>2026-11-30 12:00 UTC" in page.html


# -- what the security review found -----------------------------------------------------------------


def test_a_scheduled_grant_made_days_ahead_keeps_its_session_guard_after_it_ends(deps: FakeDependencies) -> None:
    """Its span counts for the guard from when it began, not from when it was asked for six days before."""
    request = scheduled(deps, start_in=timedelta(days=6), duration=2 * HOUR)
    fire_start(deps, request.id)
    deps.clock.advance(timedelta(minutes=30))
    requests.revoke_request(deps, caller(CAROL), request.id, "compromised laptop")
    revoked_at = deps.clock.now()

    reconciler.reconcile(deps)  # any later sync renders the guard again from the grants it finds

    assert guard_window(deps.roles.session_guard(ROLE_ARN), f"{ROLE_ID}:alice")[1] == revoked_at
    assert not names(deps)


def test_a_scheduled_grant_beginning_does_not_lengthen_another_request_of_the_same_person(
    deps: FakeDependencies,
) -> None:
    request = scheduled(deps, start_in=HOUR, duration=2 * HOUR)  # 10:00 to 12:00
    other = requests.create_request(deps, caller(ALICE), requests.NewRequest(ROLE_NAME, 4 * HOUR, JUSTIFICATION))
    workflow_steps.notify_approvers(deps, other.id, task_token(other.id))
    assert other.extends is None  # asked while not covered: approvers see four hours from its approval
    fire_start(deps, request.id)  # alice is covered from 10:00
    approve(deps, other.id)
    workflow_steps.grant(deps, other.id)

    grant = deps.store.get_request(other.id)
    assert grant.expires_at == deps.clock.now() + 4 * HOUR  # not the coverage's end plus four hours
    assert grant_expiry_in(deps.roles.trust_policy(ROLE_ARN), ALICE) == grant.expires_at


def test_approved_seconds_before_its_start_it_begins_at_its_start_not_before(deps: FakeDependencies) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the Grant step waits in real time; here the clock moves instead
        slept.append(seconds)
        deps.clock.advance(timedelta(seconds=seconds))

    deps.sleep = sleep
    request = ask(deps, timedelta(minutes=5), duration=HOUR)
    deps.clock.advance(timedelta(minutes=4, seconds=5))  # approved 55 seconds before its start
    approve(deps, request.id)
    workflow_steps.grant(deps, request.id)

    grant = deps.store.get_request(request.id)
    assert request.start_at is not None
    assert sum(slept) >= 55
    assert grant.starts_at is not None
    assert grant.starts_at >= request.start_at
    assert grant.expires_at == request.start_at + HOUR


def test_an_auto_approved_scheduled_request_is_judged_at_its_start_when_made_and_when_it_begins(
    deps: FakeDependencies,
) -> None:
    deps.settings = deps.settings.model_copy(update={"allow_auto_approve": True})
    office_hours = AutoApproveRule(principals=[ALICE], hours_utc=(9, 17))
    roles.change_policy(deps, caller(CAROL), ROLE_ARN, RolePolicy(auto_approve=[office_hours]), dry_run=False)
    deps.clock.advance(-2 * HOUR)  # 07:00: outside the rule's hours; it asks for 10:00, inside them
    request = ask(deps, 3 * HOUR, duration=HOUR)
    assert deps.store.get_request(request.id).auto_approved
    assert workflow_steps.grant(deps, request.id)["status"] == "scheduled"

    assert fire_start(deps, request.id)["status"] == "active"  # not "failed: no rule approves it any more"


def test_a_start_the_reconciler_cannot_make_fails_the_request_instead_of_retrying_forever(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = scheduled(deps, start_in=HOUR)
    deps.schedules.delete(request.id)
    deps.clock.advance(HOUR + timedelta(minutes=5))

    def full(*_: object, **__: object) -> Any:
        raise TrustPolicyFullError(quota=2048, size=2300)

    monkeypatch.setattr(workflow_steps, "sync_role", full)
    report = reconciler.reconcile(deps)

    failed = deps.store.get_request(request.id)
    assert failed.status == RequestStatus.FAILED
    assert "the trust policy would need 2300 characters" in (failed.reason or "")
    assert report["failures"] == []
    assert not names(deps)


def test_a_request_closed_while_its_grant_step_ran_is_left_as_it_is(deps: FakeDependencies) -> None:
    request = ask(deps, timedelta(minutes=30))
    approve(deps, request.id)
    requests.cancel_request(deps, caller(ALICE), request.id)  # raced the flow's Grant step

    assert workflow_steps.grant(deps, request.id) == {"request_id": request.id, "status": "cancelled"}
    assert not names(deps)
