"""The reconciler on the fakes: tests/functional/test_reconcile_finishes.py without moto.

Each test leaves an interrupted step as a crash leaves it (a `Killed` BaseException, which no `except Exception` of
TrustGate's catches, as when Lambda dies), runs `reconcile.reconcile` and checks what it finished: the request's
status, the trust policy and session guard, the schedules, the flow, who was told, and the report.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.usecases.conftest import (
    ALICE,
    BOB,
    CAROL,
    JUSTIFICATION,
    MANAGEMENT,
    MEMBER,
    ROLE_ARN,
    ROLE_ID,
    ROLE_NAME,
    SETTINGS,
    VENDOR_TRUST,
    approve,
    caller,
    granted,
    request_access,
    task_token,
)
from trustgate.app import decisions, requests, workflow_steps
from trustgate.app import reconcile as reconciler
from trustgate.app.transitions import transition
from trustgate.core.clock import FixedClock
from trustgate.core.ids import new_id
from trustgate.core.models import AuditEvent, RequestStatus, RolePolicy
from trustgate.core.records import LiveRole
from trustgate.core.session_guard import guard_window
from trustgate.core.trust_policy import grant_expiry_in, is_managed, statements_of
from trustgate_local.fakes import FakeDependencies

pytestmark = pytest.mark.unit

ERIN = f"arn:aws:iam::{MEMBER}:user/erin"
GONE = f"arn:aws:iam::{MANAGEMENT}:role/Decommissioned"
AFTER_GRACE = reconciler.FLOW_GRACE + timedelta(seconds=1)
NO_SUCH_REQUEST = "01NOSUCHREQUEST0000000000"


class Killed(BaseException):
    """The Lambda dies here: no `except Exception` of TrustGate's runs, nothing is cleaned up."""


def kill(*_: object, **__: object) -> Any:
    raise Killed


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The metrics the reconciler counts (ReconcileFailures, which an alarm watches), in order."""
    seen: list[str] = []
    monkeypatch.setattr(reconciler, "count", seen.append)
    return seen


def recorded_without_flow(deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch, who: str = ALICE) -> str:
    """A request the API recorded, then died before starting its approval flow."""
    before = set(deps.store.requests)
    with monkeypatch.context() as patch:
        patch.setattr(deps.flow, "start", kill)
        new = requests.NewRequest(role=ROLE_NAME, duration=timedelta(hours=1), justification=JUSTIFICATION)
        with pytest.raises(Killed):
            requests.create_request(deps, caller(who), new)
    (request_id,) = set(deps.store.requests) - before
    assert deps.store.get_request(request_id).status == RequestStatus.PENDING
    assert deps.flow.status(request_id) is None
    return request_id


def names(deps: FakeDependencies, principal: str, role_arn: str = ROLE_ARN) -> bool:
    return grant_expiry_in(deps.roles.trust_policy(role_arn), principal) is not None


def told(deps: FakeDependencies, request_id: str, event: str) -> list[str]:
    return [n.recipient for n in deps.notifier.sent if n.request.id == request_id and n.event == event]


def store_policy(deps: FakeDependencies, policy: RolePolicy) -> None:
    """A role policy stored, as if its own sync died before it could end the grants it no longer allows."""
    _, version = deps.store.get_role_policy(ROLE_ARN)
    now = deps.clock.now()
    audit = AuditEvent(id=new_id(now), at=now, actor=CAROL, action="policy.changed", role_arn=ROLE_ARN)
    deps.store.put_role_policy(ROLE_ARN, policy, version, audit)


def tamper(deps: FakeDependencies, role_arn: str = ROLE_ARN) -> None:
    """A hand-written grant-like statement put in the trust policy behind TrustGate's back: drift."""
    forged = {"Sid": "TrustGateGrantForged", "Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "sts:AssumeRole"}
    role = deps.roles.roles[role_arn]
    role.trust_policy = {"Version": "2012-10-17", "Statement": [*statements_of(role.trust_policy), forged]}


def forged_present(deps: FakeDependencies, role_arn: str = ROLE_ARN) -> bool:
    return any(s.get("Sid") == "TrustGateGrantForged" for s in statements_of(deps.roles.trust_policy(role_arn)))


# -- a clean world: nothing to finish ----------------------------------------------------------------


def test_a_reconcile_with_nothing_interrupted_changes_nothing(deps: FakeDependencies) -> None:
    grant = granted(deps)
    deps.flow.executions[grant.id] = "SUCCEEDED"
    writes, schedules, sent = list(deps.roles.writes), dict(deps.schedules.schedules), len(deps.notifier.sent)

    report = reconciler.reconcile(deps)

    assert report == {
        "roles": [{"role_arn": ROLE_ARN, "changed": False, "expired": []}],
        "flows": [],
        "schedules": {"deleted": [], "created": [], "started": []},
        "reviews_reminded": [],
        "failures": [],
    }
    assert deps.roles.writes == writes
    assert deps.schedules.schedules == schedules
    assert len(deps.notifier.sent) == sent
    assert deps.store.get_request(grant.id).status == RequestStatus.ACTIVE


# -- pending requests whose flow never started or ended too soon ---------------------------------------


def test_a_request_whose_flow_never_started_is_left_alone_in_its_grace_then_started(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = recorded_without_flow(deps, monkeypatch)

    deps.clock.advance(timedelta(minutes=1))  # within FLOW_GRACE (2 minutes)
    assert reconciler.reconcile(deps)["flows"] == []  # its flow may be starting right now
    assert deps.flow.started == []

    deps.clock.advance(timedelta(minutes=1, seconds=1))
    assert reconciler.reconcile(deps)["flows"] == [{"request_id": request_id, "done": "flow started"}]
    assert deps.flow.started == [request_id]
    assert deps.flow.status(request_id) == "RUNNING"
    assert reconciler.reconcile(deps)["flows"] == []  # never a second flow
    assert deps.flow.started == [request_id]

    # The flow it started runs as any other: the request can be approved and granted.
    workflow_steps.notify_approvers(deps, request_id, task_token(request_id))
    approve(deps, request_id)
    assert deps.flow.resumed == [(task_token(request_id), "approve")]
    workflow_steps.grant(deps, request_id)
    assert deps.store.get_request(request_id).status == RequestStatus.ACTIVE
    assert names(deps, ALICE)


def test_a_request_without_a_flow_past_its_approval_window_times_out_without_one(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = recorded_without_flow(deps, monkeypatch)
    deadline = deps.store.get_request(request_id).approval_deadline
    assert deadline is not None
    deps.clock.at = deadline  # the approval window is over at its deadline

    report = reconciler.reconcile(deps)

    assert report["flows"] == [{"request_id": request_id, "done": "timed out"}]
    assert report["failures"] == []
    assert deps.store.get_request(request_id).status == RequestStatus.TIMED_OUT
    assert deps.flow.started == []
    assert told(deps, request_id, "request.timed_out") == [ALICE]
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST
    assert reconciler.reconcile(deps)["flows"] == []  # timed out once, and no longer pending


@pytest.mark.parametrize(
    ("later", "outcome"),
    [(timedelta(0), RequestStatus.FAILED), (timedelta(hours=3), RequestStatus.TIMED_OUT)],
    ids=["failed", "timed-out"],
)
def test_a_flow_that_ended_while_its_request_was_pending_records_the_real_outcome(
    deps: FakeDependencies, later: timedelta, outcome: RequestStatus
) -> None:
    request = request_access(deps)
    deps.flow.executions[request.id] = "FAILED"  # its notify step and the clean-up after it both failed
    deps.clock.advance(later)

    report = reconciler.reconcile(deps)

    assert report["flows"] == [{"request_id": request.id, "done": outcome.value.replace("_", " ")}]
    ended = deps.store.get_request(request.id)
    assert ended.status == outcome
    if outcome == RequestStatus.FAILED:
        assert "the approval flow ended (FAILED)" in (ended.reason or "")
    assert told(deps, request.id, f"request.{outcome.value}") == [ALICE]
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST
    assert reconciler.reconcile(deps)["flows"] == []


def test_a_running_flow_of_an_undecided_request_is_left_to_itself(deps: FakeDependencies) -> None:
    request = request_access(deps)
    deps.clock.advance(timedelta(hours=1))
    before = deps.store.get_request(request.id)

    assert reconciler.reconcile(deps)["flows"] == []

    assert deps.store.get_request(request.id) == before
    assert deps.flow.resumed == []
    assert deps.flow.started == [request.id]


# -- recorded decisions the flow was never told ---------------------------------------------------------


@pytest.mark.parametrize(("decision", "status"), [("approve", RequestStatus.PENDING), ("deny", RequestStatus.DENIED)])
def test_a_decision_whose_sender_died_is_delivered_once_its_lease_lapses(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch, decision: decisions.Decision, status: RequestStatus
) -> None:
    request = request_access(deps)
    with monkeypatch.context() as patch:
        patch.setattr(deps.flow, "resume", kill)
        with pytest.raises(Killed):
            decisions.decide(deps, caller(BOB), request.id, decision, "ok")
    decided = deps.store.get_request(request.id)
    assert (decided.status, decided.decided_at is not None) == (status, True)
    assert deps.flow.resumed == []  # recorded, never told

    assert reconciler.reconcile(deps)["flows"] == []  # the sender's lease still holds: it may be sending right now
    assert deps.flow.resumed == []
    deps.clock.advance(timedelta(seconds=61))
    assert reconciler.reconcile(deps)["flows"] == [{"request_id": request.id, "done": "decision delivered"}]
    assert deps.flow.resumed == [(task_token(request.id), decision)]
    assert reconciler.reconcile(deps)["flows"] == []  # delivered once: its new lease holds
    assert deps.flow.resumed == [(task_token(request.id), decision)]


def test_an_approval_recorded_before_the_flow_waited_is_delivered_once_its_token_is_set(
    deps: FakeDependencies,
) -> None:
    new = requests.NewRequest(role=ROLE_NAME, duration=timedelta(hours=1), justification=JUSTIFICATION)
    request = requests.create_request(deps, caller(ALICE), new)
    approve(deps, request.id)  # before WaitForApproval: there is no task token to resume yet
    assert deps.flow.resumed == []
    # WaitForApproval stored its token, then died before it read the request and found the decision.
    deps.store.set_task_token(request.id, task_token(request.id))

    report = reconciler.reconcile(deps)

    assert report["flows"] == [{"request_id": request.id, "done": "decision delivered"}]
    assert deps.flow.resumed == [(task_token(request.id), "approve")]
    workflow_steps.grant(deps, request.id)  # what the resumed flow does next
    assert deps.store.get_request(request.id).status == RequestStatus.ACTIVE
    assert names(deps, ALICE)


def test_a_cancel_the_flow_was_never_told_is_delivered(deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch) -> None:
    request = request_access(deps)
    with monkeypatch.context() as patch:
        patch.setattr(deps.flow, "resume", kill)
        with pytest.raises(Killed):
            requests.cancel_request(deps, caller(ALICE), request.id)
    assert deps.store.get_request(request.id).status == RequestStatus.CANCELLED
    deps.clock.advance(timedelta(seconds=61))

    assert reconciler.reconcile(deps)["flows"] == [{"request_id": request.id, "done": "decision delivered"}]

    assert deps.flow.resumed == [(task_token(request.id), "cancelled")]


# -- due expiries whose schedule was lost ----------------------------------------------------------------


def test_an_active_grant_past_its_end_whose_schedule_was_lost_is_expired(deps: FakeDependencies) -> None:
    grant = granted(deps)
    assert grant.expires_at is not None
    deps.schedules.delete(grant.id)  # the schedule is gone: nothing will ever call `expire`
    deps.clock.advance(timedelta(hours=1, seconds=1))
    assert names(deps, ALICE)  # IAM's own end condition still names alice until a sync renders her out

    report = reconciler.reconcile(deps)

    assert report["roles"] == [{"role_arn": ROLE_ARN, "changed": True, "expired": [grant.id]}]
    assert report["failures"] == []
    expired = deps.store.get_request(grant.id)
    assert expired.status == RequestStatus.EXPIRED
    assert expired.expires_at == grant.expires_at  # an expiry keeps the approved end
    assert not names(deps, ALICE)
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST
    assert guard_window(deps.roles.session_guard(ROLE_ARN), f"{ROLE_ID}:alice")[1] == grant.expires_at
    assert told(deps, grant.id, "request.expired") == [ALICE]
    assert report["schedules"] == {"deleted": [], "created": [], "started": []}  # an ended grant gets no schedule back
    assert deps.schedules.schedules == {}
    assert reconciler.reconcile(deps)["roles"][0]["expired"] == []  # expired once


def test_an_active_grant_not_yet_due_is_not_expired(deps: FakeDependencies) -> None:
    grant = granted(deps)
    deps.clock.advance(timedelta(minutes=59))

    report = reconciler.reconcile(deps)

    assert report["roles"][0]["expired"] == []
    assert deps.store.get_request(grant.id).status == RequestStatus.ACTIVE
    assert names(deps, ALICE)


def test_an_expiry_that_died_before_its_sync_is_finished(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = granted(deps)
    deps.clock.advance(timedelta(hours=1, seconds=1))
    with monkeypatch.context() as patch:
        patch.setattr(workflow_steps, "sync_role", kill)
        with pytest.raises(Killed):
            workflow_steps.expire(deps, grant.id)
    assert deps.store.get_request(grant.id).status == RequestStatus.EXPIRED
    assert names(deps, ALICE)  # recorded as ended, still named

    first = reconciler.reconcile(deps)

    assert first["roles"] == [{"role_arn": ROLE_ARN, "changed": True, "expired": []}]
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST
    assert first["schedules"] == {
        "deleted": [],
        "created": [],
        "started": [],
    }  # its end is too recent: its step may still run
    assert (grant.id, "expire") in deps.schedules.schedules
    deps.clock.advance(AFTER_GRACE)
    assert reconciler.reconcile(deps)["schedules"] == {"deleted": [grant.id], "created": [], "started": []}
    assert deps.schedules.schedules == {}


# -- schedules without a grant, and a grant without its schedule -----------------------------------------


def test_orphaned_schedules_are_deleted_and_a_missing_one_is_made(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = granted(deps)
    revoked = granted(deps, ERIN)
    for grant in (kept, revoked):
        deps.flow.executions[grant.id] = "SUCCEEDED"  # both flows finished (the fake leaves them RUNNING)
    at = deps.clock.now() + timedelta(hours=1)
    deps.schedules.create(NO_SUCH_REQUEST, at)  # its request does not exist
    deps.schedules.create(NO_SUCH_REQUEST, at, "remind")
    # A revoke that died after IAM let go of erin, before it deleted her schedules and told her.
    with monkeypatch.context() as patch:
        patch.setattr(deps.schedules, "delete", kill)
        with pytest.raises(Killed):
            requests.revoke_request(deps, caller(ERIN), revoked.id, "done")
    assert deps.store.get_request(revoked.id).status == RequestStatus.REVOKED
    assert not names(deps, ERIN)
    # A grant whose schedule is gone (its flow succeeded: alice was told it is active).
    deps.schedules.delete(kept.id)
    active_told = len(told(deps, kept.id, "request.active"))

    first = reconciler.reconcile(deps)["schedules"]

    assert first == {"deleted": [NO_SUCH_REQUEST], "created": [kept.id], "started": []}
    assert kept.expires_at is not None
    assert deps.schedules.schedules[(kept.id, "expire")] == kept.expires_at
    assert deps.schedules.schedules[(kept.id, "remind")] == kept.expires_at - timedelta(minutes=10)  # its reminder
    assert (revoked.id, "expire") in deps.schedules.schedules  # its end is too recent: its step may still be running
    assert told(deps, revoked.id, "request.revoked") == []

    deps.clock.advance(AFTER_GRACE)
    assert reconciler.reconcile(deps)["schedules"] == {"deleted": [revoked.id], "created": [], "started": []}

    assert set(deps.schedules.schedules) == {(kept.id, "expire"), (kept.id, "remind")}
    assert told(deps, revoked.id, "request.revoked") == [ERIN]  # told now, once
    assert len(told(deps, kept.id, "request.active")) == active_told  # told once, by its own Grant step
    assert reconciler.reconcile(deps)["schedules"] == {"deleted": [], "created": [], "started": []}
    assert told(deps, revoked.id, "request.revoked") == [ERIN]


def test_a_grant_without_a_schedule_whose_flow_still_runs_is_left_to_its_flow(deps: FakeDependencies) -> None:
    grant = granted(deps)
    assert deps.flow.status(grant.id) == "RUNNING"  # its Grant step may be scheduling it right now
    deps.schedules.delete(grant.id)

    assert reconciler.reconcile(deps)["schedules"] == {"deleted": [], "created": [], "started": []}

    assert deps.schedules.schedules == {}


def test_a_grant_whose_flow_failed_after_activation_is_scheduled_and_its_requester_told(
    deps: FakeDependencies,
) -> None:
    grant = granted(deps)
    deps.schedules.delete(grant.id)
    deps.flow.executions[grant.id] = "FAILED"  # the Grant step died after the activation, before its follow-ups
    deps.notifier.sent.clear()

    assert reconciler.reconcile(deps)["schedules"] == {"deleted": [], "created": [grant.id], "started": []}

    assert deps.schedules.schedules[(grant.id, "expire")] == grant.expires_at
    assert told(deps, grant.id, "request.active") == [ALICE]


# -- a tightened policy whose revocations did not happen --------------------------------------------------


def test_a_grant_the_stored_policy_no_longer_allows_is_revoked(deps: FakeDependencies) -> None:
    grant = granted(deps)
    deps.clock.advance(timedelta(minutes=5))
    store_policy(deps, RolePolicy(requester_accounts=[MANAGEMENT]))  # alice asks from MEMBER

    report = reconciler.reconcile(deps)

    assert report["roles"] == [{"role_arn": ROLE_ARN, "changed": True, "expired": []}]
    assert report["failures"] == []
    revoked = deps.store.get_request(grant.id)
    assert revoked.status == RequestStatus.REVOKED
    assert "no longer allowed by the role policy" in (revoked.reason or "")
    assert "requester_accounts" in (revoked.reason or "")
    assert revoked.expires_at == deps.clock.now()  # ended at the reconcile, not at its approved end
    assert not names(deps, ALICE)
    assert [s for s in statements_of(deps.roles.trust_policy(ROLE_ARN)) if is_managed(s)] == []
    assert guard_window(deps.roles.session_guard(ROLE_ARN), f"{ROLE_ID}:alice")[1] == deps.clock.now()
    assert (grant.id, "expire") not in deps.schedules.schedules
    assert told(deps, grant.id, "request.revoked") == [ALICE]
    assert reconciler.reconcile(deps)["roles"][0]["changed"] is False  # finished once


def test_a_grant_the_stored_policy_still_allows_is_kept(deps: FakeDependencies) -> None:
    grant = granted(deps)
    store_policy(deps, RolePolicy(requester_accounts=[MEMBER]))

    reconciler.reconcile(deps)

    assert deps.store.get_request(grant.id).status == RequestStatus.ACTIVE
    assert names(deps, ALICE)


# -- drift ---------------------------------------------------------------------------------------------------


def test_a_hand_written_grant_statement_is_removed(deps: FakeDependencies) -> None:
    grant = granted(deps)
    tamper(deps)

    report = reconciler.reconcile(deps)

    assert report["roles"] == [{"role_arn": ROLE_ARN, "changed": True, "expired": []}]
    assert not forged_present(deps)
    assert names(deps, ALICE)  # the real grant stays
    assert deps.store.get_request(grant.id).status == RequestStatus.ACTIVE


# -- every role and every phase on its own ------------------------------------------------------------------


@pytest.fixture
def two_roles() -> FakeDependencies:
    """A deployment managing a role IAM no longer lets TrustGate read, before the real one."""
    settings = SETTINGS.model_copy(update={"managed_role_arns": [GONE, ROLE_ARN]})
    fakes = FakeDependencies(settings, FixedClock(datetime(2026, 11, 30, 9, 0, tzinfo=UTC)))
    fakes.roles.add_role(ROLE_ARN, VENDOR_TRUST, ROLE_ID)
    fakes.roles.add_role(GONE, VENDOR_TRUST, "AROAEXAMPLEROLEID0002")
    return fakes


def test_a_failing_role_is_reported_and_never_stops_the_other_role_or_the_other_parts(
    two_roles: FakeDependencies, monkeypatch: pytest.MonkeyPatch, counted: list[str]
) -> None:
    deps = two_roles
    grant = granted(deps)
    deps.flow.executions[grant.id] = "SUCCEEDED"
    deps.schedules.delete(grant.id)  # a grant without its schedule
    tamper(deps)  # drift on the readable role
    deps.schedules.create(NO_SUCH_REQUEST, deps.clock.now() + timedelta(hours=1))  # an orphaned schedule
    waiting = recorded_without_flow(deps, monkeypatch, ERIN)  # a request without its flow
    deps.clock.advance(AFTER_GRACE)
    real = deps.roles.read

    def denied_for_one(role_arn: str) -> LiveRole:
        if role_arn == GONE:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetRole")
        return real(role_arn)

    monkeypatch.setattr(deps.roles, "read", denied_for_one)

    report = reconciler.reconcile(deps)

    gone, kept = report["roles"]
    assert gone["role_arn"] == GONE
    assert "AccessDenied" in gone["error"]
    assert gone["expired"] == []
    assert kept == {"role_arn": ROLE_ARN, "changed": True, "expired": []}
    assert not forged_present(deps)
    assert names(deps, ALICE)
    assert [f["part"] for f in report["failures"]] == [f"role {GONE}"]
    assert "ClientError" in report["failures"][0]["error"]
    assert counted.count("ReconcileFailures") == 1
    assert report["flows"] == [{"request_id": waiting, "done": "flow started"}]
    assert deps.flow.status(waiting) == "RUNNING"
    assert report["schedules"] == {"deleted": [NO_SUCH_REQUEST], "created": [grant.id], "started": []}
    assert (grant.id, "expire") in deps.schedules.schedules


def test_a_failing_pending_sweep_never_stops_the_roles_or_the_schedules(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch, counted: list[str]
) -> None:
    grant = granted(deps)
    deps.flow.executions[grant.id] = "SUCCEEDED"
    tamper(deps)
    deps.schedules.delete(grant.id)

    def throttled(*_: object, **__: object) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Query")

    monkeypatch.setattr(deps.store, "requests_by_status", throttled)

    report = reconciler.reconcile(deps)

    assert [f["part"] for f in report["failures"]] == ["pending requests", "scheduled requests"]
    assert all("ThrottlingException" in failure["error"] for failure in report["failures"])
    assert report["flows"] == []
    assert report["roles"][0]["changed"] is True
    assert not forged_present(deps)
    assert report["schedules"]["created"] == [grant.id]
    assert (grant.id, "expire") in deps.schedules.schedules
    assert counted.count("ReconcileFailures") == 2


def test_one_request_that_fails_never_stops_the_other_requests(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch, counted: list[str]
) -> None:
    broken = recorded_without_flow(deps, monkeypatch, ALICE)
    fine = recorded_without_flow(deps, monkeypatch, ERIN)
    deps.clock.advance(AFTER_GRACE)
    real = deps.flow.status

    def unreadable(request_id: str) -> Any:
        if request_id == broken:
            raise ClientError({"Error": {"Code": "InternalFailure", "Message": "boom"}}, "DescribeExecution")
        return real(request_id)

    with monkeypatch.context() as patch:
        patch.setattr(deps.flow, "status", unreadable)
        report = reconciler.reconcile(deps)

    assert [f["part"] for f in report["failures"]] == [f"request {broken}"]
    assert report["flows"] == [{"request_id": fine, "done": "flow started"}]
    assert deps.flow.started == [fine]
    assert counted.count("ReconcileFailures") == 1
    assert reconciler.reconcile(deps)["flows"] == [{"request_id": broken, "done": "flow started"}]
    assert deps.flow.started == [fine, broken]


def test_a_grant_that_cannot_be_expired_never_keeps_its_role_from_the_sync(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch, counted: list[str]
) -> None:
    due = granted(deps)
    deps.clock.advance(timedelta(hours=1, seconds=1))
    tamper(deps)

    def refuses_the_expiry(*args: Any, **kwargs: Any) -> Any:
        if args[2] == RequestStatus.EXPIRED:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "TransactWriteItems")
        return transition(*args, **kwargs)

    monkeypatch.setattr(reconciler, "transition", refuses_the_expiry)

    report = reconciler.reconcile(deps)

    assert [f["part"] for f in report["failures"]] == [f"expiry of {due.id}"]
    assert report["roles"] == [{"role_arn": ROLE_ARN, "changed": True, "expired": []}]
    assert not forged_present(deps)  # the sync ran all the same
    assert deps.store.get_request(due.id).status == RequestStatus.ACTIVE
    assert counted.count("ReconcileFailures") == 1


def test_a_holder_is_told_of_an_expiry_the_reconciler_recorded_even_when_the_sync_after_it_fails(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = granted(deps)
    deps.schedules.delete(grant.id)  # the schedule is gone: nothing will ever call `expire`
    deps.clock.advance(timedelta(hours=1, seconds=1))

    def iam_refuses(role_arn: str, document: Any) -> None:
        raise RuntimeError("IAM is unavailable")

    monkeypatch.setattr(deps.roles, "write_trust_policy", iam_refuses)
    monkeypatch.setattr(deps.roles, "write_session_guard", iam_refuses)
    report = reconciler.reconcile(deps)

    assert report["roles"][0]["expired"] == [grant.id]
    assert "error" in report["roles"][0]
    assert deps.store.get_request(grant.id).status == RequestStatus.EXPIRED  # recorded: no later run sees it due
    assert told(deps, grant.id, "request.expired") == [ALICE]
