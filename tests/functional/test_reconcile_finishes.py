"""What the reconciler finishes (issue 11, section 2): each interrupted step, left as a crash leaves it, is finished
by one reconcile run, through the reconcile function, the API and the real state machine (moto's ASL executor).

A crash is a kill (`Killed`, a BaseException: no `except Exception` of TrustGate's runs, as when Lambda dies) or
an exception. Each test then checks what the issue counts: no orphan principal, no lost grant, no stuck request,
no leaked schedule, no nonconforming live grant, and that people were told.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from tests.support.aws import ALICE, BOB, CAROL, ERIN, MANAGEMENT, ROLE_ARN, VENDOR_TRUST, World, running_world
from tests.support.flows import JUSTIFICATION, approve, granted, request_access
from tests.support.links import messages_for
from trustgate.adapters.scheduler import schedule_name
from trustgate.app import decisions, effects, sync, transitions, workflow_steps
from trustgate.app import reconcile as reconciler
from trustgate.core.models import RequestStatus
from trustgate.core.session_guard import guard_window
from trustgate.core.trust_policy import grant_expiry_in, is_managed, statements_of

pytestmark = pytest.mark.functional

ROLE = "PumpCustomerAccess"
GONE = f"arn:aws:iam::{MANAGEMENT}:role/Decommissioned"
AFTER_GRACE = reconciler.FLOW_GRACE + timedelta(seconds=1)


class Killed(BaseException):
    """The Lambda dies here: no `except Exception` of TrustGate's runs, nothing is cleaned up."""


def kill(*_: Any, **__: Any) -> Any:
    raise Killed


def reconcile(world: World) -> dict[str, Any]:
    return dict(world.invoke("ReconcileFunction", {"source": "aws.events", "detail-type": "Scheduled Event"}))


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The metrics the service counts (ReconcileFailures, SchedulesDeferred…), in order."""
    seen: list[str] = []
    for module in (decisions, effects, reconciler):
        monkeypatch.setattr(module, "count", seen.append)
    return seen


def schedules(world: World) -> set[str]:
    client = world.session.client("scheduler")
    return {s["Name"] for s in client.list_schedules(GroupName=world.stack.refs["ExpiryScheduleGroup"])["Schedules"]}


def names(world: World, principal: str) -> bool:
    return grant_expiry_in(world.trust_policy(), principal) is not None


def pending_ids(world: World) -> list[str]:
    return [r.id for r in world.deps.store.requests_by_status(RequestStatus.PENDING).items]


def recorded_without_flow(world: World, monkeypatch: pytest.MonkeyPatch, caller: str = ALICE) -> str:
    """A request the API recorded and then died before starting its approval flow."""
    before = set(pending_ids(world))
    with monkeypatch.context() as patch:
        patch.setattr(world.deps.flow, "start", kill)
        with pytest.raises(Killed):
            world.api("POST", "/requests", caller, {"role": ROLE, "duration": "PT1H", "justification": JUSTIFICATION})
    (request_id,) = set(pending_ids(world)) - before
    assert world.deps.flow.status(request_id) is None
    return request_id


def tamper(world: World) -> None:
    """A hand-written grant-like statement in the trust policy: drift the reconciler removes."""
    forged = {"Sid": "TrustGateGrantForged", "Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "sts:AssumeRole"}
    document = {"Version": "2012-10-17", "Statement": [*statements_of(world.trust_policy()), forged]}
    world.session.client("iam").update_assume_role_policy(
        RoleName="PumpCustomerAccess", PolicyDocument=json.dumps(document)
    )


def forged_present(world: World) -> bool:
    return any(s.get("Sid") == "TrustGateGrantForged" for s in statements_of(world.trust_policy()))


# -- 1. every role and every phase on its own --------------------------------------------------------


def test_a_role_failing_with_a_raw_client_error_never_stops_the_others_and_is_counted(
    monkeypatch: pytest.MonkeyPatch, counted: list[str]
) -> None:
    with running_world({"ManagedRoleArns": f"{GONE},{ROLE_ARN}"}) as world:
        granted(world)
        tamper(world)
        real = world.deps.roles.read

        def denied_for_one(role_arn: str) -> Any:
            if role_arn == GONE:
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetRole")
            return real(role_arn)

        monkeypatch.setattr(world.deps.roles, "read", denied_for_one)

        report = reconcile(world)

        gone, kept = report["roles"]
        assert gone["role_arn"] == GONE
        assert "AccessDenied" in gone["error"]
        assert kept == {"role_arn": ROLE_ARN, "changed": True, "expired": []}
        assert not forged_present(world)
        assert [f["part"] for f in report["failures"]] == [f"role {GONE}"]
        assert counted.count("ReconcileFailures") == 1


def test_a_failing_pending_sweep_never_stops_the_roles_or_the_schedules(
    world: World, monkeypatch: pytest.MonkeyPatch, counted: list[str]
) -> None:
    grant = granted(world)
    tamper(world)
    world.session.client("scheduler").delete_schedule(
        Name=schedule_name(grant["id"]), GroupName=world.stack.refs["ExpiryScheduleGroup"]
    )

    def throttled(*_: Any, **__: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Query")

    monkeypatch.setattr(world.deps.store, "requests_by_status", throttled)

    report = reconcile(world)

    # Both sweeps that list by status fail (pending requests, scheduled ones); everything else goes on.
    assert [f["part"] for f in report["failures"]] == ["pending requests", "scheduled requests"]
    assert all("ThrottlingException" in failure["error"] for failure in report["failures"])
    assert report["roles"][0]["changed"] is True
    assert not forged_present(world)
    assert report["schedules"]["created"] == [grant["id"]]
    assert schedule_name(grant["id"]) in schedules(world)
    assert counted.count("ReconcileFailures") == 2


def test_one_request_that_fails_never_stops_the_other_requests(
    world: World, monkeypatch: pytest.MonkeyPatch, counted: list[str]
) -> None:
    broken = recorded_without_flow(world, monkeypatch, ALICE)
    fine = recorded_without_flow(world, monkeypatch, ERIN)
    world.advance(AFTER_GRACE)
    real = world.deps.flow.status

    def unreadable(request_id: str) -> Any:
        if request_id == broken:
            raise ClientError({"Error": {"Code": "InternalFailure", "Message": "boom"}}, "DescribeExecution")
        return real(request_id)

    monkeypatch.setattr(world.deps.flow, "status", unreadable)

    report = reconcile(world)

    assert [f["part"] for f in report["failures"]] == [f"request {broken}"]
    assert {"request_id": fine, "done": "flow started"} in report["flows"]
    assert counted.count("ReconcileFailures") == 1
    monkeypatch.setattr(world.deps.flow, "status", real)
    assert reconcile(world)["flows"] == [{"request_id": broken, "done": "flow started"}]
    for request_id in (broken, fine):
        world.wait_for_task_token(request_id)


# -- 2. pending requests whose flow never started or ended too soon ------------------------------------


def test_a_request_recorded_but_whose_flow_never_started_gets_it_and_can_be_granted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = recorded_without_flow(world, monkeypatch)

    assert reconcile(world)["flows"] == []  # within the grace period its flow may be starting right now
    assert world.deps.flow.status(request_id) is None
    world.advance(AFTER_GRACE)
    assert reconcile(world)["flows"] == [{"request_id": request_id, "done": "flow started"}]

    approve(world, request_id)
    world.wait_status(request_id, "active")
    assert names(world, ALICE)
    assert reconcile(world)["flows"] == []  # nothing left to finish, and never a second flow


def test_a_request_recorded_without_a_flow_past_its_approval_window_times_out(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = recorded_without_flow(world, monkeypatch)
    world.advance(timedelta(hours=3))  # the default approval window is 2 hours

    assert reconcile(world)["flows"] == [{"request_id": request_id, "done": "timed out"}]

    assert world.status(request_id) == "timed_out"
    assert world.deps.flow.status(request_id) is None
    assert [m.recipient for m in messages_for(world, request_id, "request.timed_out")] == [ALICE]


@pytest.mark.parametrize(
    ("later", "outcome"), [(timedelta(0), "failed"), (timedelta(hours=3), "timed_out")], ids=["failed", "timed-out"]
)
def test_a_flow_that_ended_while_its_request_was_pending_records_the_real_outcome(
    world: World, monkeypatch: pytest.MonkeyPatch, later: timedelta, outcome: str
) -> None:
    """The notify step failed, and so did the clean-up that would have recorded it: the flow is over, the request
    still pending. The reconciler records what really happened (timed out once its approval window is past)."""

    def unavailable(*_: Any, **__: Any) -> Any:
        raise RuntimeError("DynamoDB unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(workflow_steps, "notify_approvers", unavailable)
        patch.setattr(workflow_steps, "finalize", unavailable)
        request_id = request_access(world)["id"]
        assert world.wait_execution(request_id)["status"] == "FAILED"
    assert world.status(request_id) == "pending"
    world.advance(later)

    report = reconcile(world)

    assert report["flows"] == [{"request_id": request_id, "done": outcome.replace("_", " ")}]
    request = world.deps.store.get_request(request_id)
    assert request.status.value == outcome
    if outcome == "failed":
        assert "the approval flow ended (FAILED)" in (request.reason or "")
    assert [m.recipient for m in messages_for(world, request_id, f"request.{outcome}")] == [ALICE]
    assert world.trust_policy() == VENDOR_TRUST
    assert reconcile(world)["flows"] == []


def test_a_request_being_granted_whose_flow_died_leaves_nobody_in_iam(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=lambda _seconds: None))  # retries, not waits
    """IAM named alice, the activation could not be recorded, and the clean-up step failed too: the execution
    still ends (RecordFailure's Catch), and the reconciler ends the grant with its span kept for the guard."""
    real_transition = transitions.transition

    def no_activation(deps: Any, request: Any, target: RequestStatus, actor: str, **kw: Any) -> Any:
        if target == RequestStatus.ACTIVE:
            raise RuntimeError("DynamoDB unavailable after the IAM writes")
        return real_transition(deps, request, target, actor, **kw)

    def clean_up_fails(*_: Any, **__: Any) -> Any:
        raise RuntimeError("DynamoDB still unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(sync, "transition", no_activation)
        patch.setattr(workflow_steps, "end_now", clean_up_fails)
        request_id = request_access(world, duration="PT15M")["id"]
        approve(world, request_id)
        assert world.wait_execution(request_id)["status"] == "FAILED"  # not left running in limbo
    stuck = world.deps.store.get_request(request_id)
    assert (stuck.status.value, stuck.starts_at is not None) == ("pending", True)
    assert names(world, ALICE)  # the orphan principal the crash left

    assert reconcile(world)["flows"] == [{"request_id": request_id, "done": "failed"}]

    failed = world.deps.store.get_request(request_id)
    assert failed.status.value == "failed"
    assert failed.expires_at is not None
    assert not names(world, ALICE)
    assert world.trust_policy() == VENDOR_TRUST
    _start, end = guard_window(world.session_guard(), f"{world.role_id()}:alice")
    assert end == failed.expires_at.replace(microsecond=0)  # sessions the writes allowed end at the failure


# -- 3. recorded decisions the flow was never told ------------------------------------------------------


@pytest.mark.parametrize(("decision", "outcome"), [("approve", "active"), ("deny", "denied")])
def test_a_decision_whose_sender_died_is_delivered_once_its_lease_lapses(
    world: World, monkeypatch: pytest.MonkeyPatch, decision: str, outcome: str
) -> None:
    request_id = request_access(world)["id"]
    world.wait_for_task_token(request_id)
    with monkeypatch.context() as patch:
        patch.setattr(world.deps.flow, "resume", kill)
        with pytest.raises(Killed):
            world.api("POST", f"/requests/{request_id}/{decision}", BOB, {"comment": "ok"})
    assert world.execution(request_id)["status"] == "RUNNING"  # recorded, never told

    assert reconcile(world)["flows"] == []  # the sender's lease still holds: it may be sending right now
    world.advance(timedelta(seconds=61))
    assert reconcile(world)["flows"] == [{"request_id": request_id, "done": "decision delivered"}]

    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    world.wait_status(request_id, outcome)
    assert names(world, ALICE) is (outcome == "active")
    assert len(messages_for(world, request_id, f"request.{outcome}")) == 1


# -- 4. schedules without a grant, and a grant without its schedule -------------------------------------


def test_orphaned_schedules_are_deleted_and_a_missing_one_is_made(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = world.stack.refs["ExpiryScheduleGroup"]
    scheduler = world.session.client("scheduler")
    kept = granted(world)
    revoked = granted(world, ERIN)
    at = world.deps.clock.now() + timedelta(hours=1)
    world.deps.schedules.create("01NOSUCHREQUEST0000000000", at)  # its request does not exist
    world.deps.schedules.create("01NOSUCHREQUEST0000000000", at, "remind")
    scheduler.create_schedule(  # not TrustGate's: left alone
        Name="someone-elses",
        GroupName=group,
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": world.stack.functions["ExpireFunction"].arn, "RoleArn": f"arn:aws:iam::{MANAGEMENT}:role/x"},
    )
    # A revoke that died after IAM let go of erin, before it deleted her schedules and told her.
    with monkeypatch.context() as patch:
        patch.setattr(world.deps.schedules, "delete", kill)
        with pytest.raises(Killed):
            world.api("POST", f"/requests/{revoked['id']}/revoke", ERIN, {"reason": "done"})
    assert world.status(revoked["id"]) == "revoked"
    # A grant whose schedule is gone (its flow succeeded: she was told it is active).
    scheduler.delete_schedule(Name=schedule_name(kept["id"]), GroupName=group)

    first = reconcile(world)["schedules"]
    assert first == {"deleted": ["01NOSUCHREQUEST0000000000"], "created": [kept["id"]], "started": []}
    assert schedule_name(revoked["id"]) in schedules(world)  # its end is too recent: its step may still be running
    world.advance(AFTER_GRACE)
    assert reconcile(world)["schedules"] == {"deleted": [revoked["id"]], "created": [], "started": []}

    assert schedules(world) == {schedule_name(kept["id"]), schedule_name(kept["id"], "remind"), "someone-elses"}
    assert [m.recipient for m in messages_for(world, revoked["id"], "request.revoked")] == [ERIN]
    assert len(messages_for(world, kept["id"], "request.active")) == 1  # told once, by its own Grant step
    assert reconcile(world)["schedules"] == {"deleted": [], "created": [], "started": []}


# -- 5. a tightened policy whose revocations did not happen ------------------------------------------


def test_a_policy_stored_before_its_revocations_is_finished_by_the_reconciler(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = granted(world)
    erin = granted(world, ERIN)
    real = sync._end_nonconforming
    ended: list[str] = []

    def dies_after_the_first(deps: Any, grant: Any, *args: Any) -> Any:
        if ended:
            raise RuntimeError("the function died mid-change")
        ended.append(grant.id)
        return real(deps, grant, *args)

    monkeypatch.setattr(sync, "_end_nonconforming", dies_after_the_first)
    status, _ = world.api("PUT", "/roles/PumpCustomerAccess/policy", CAROL, {"requester_accounts": [MANAGEMENT]})
    monkeypatch.setattr(sync, "_end_nonconforming", real)
    assert status == 200  # the policy is stored, and the answer says so; what failed after it is queued
    assert world.deps.store.get_role_policy(ROLE_ARN)[0].requester_accounts == [MANAGEMENT]  # stored
    (first,) = ended
    second, second_person = (erin["id"], ERIN) if first == alice["id"] else (alice["id"], ALICE)
    assert world.status(first) == "revoked"
    assert world.status(second) == "active"  # the nonconforming live grant the failure left
    assert not names(world, second_person)  # but no round names a grant the policy in force does not allow

    reconcile(world)
    world.advance(AFTER_GRACE)
    reconcile(world)

    for request_id, person, session in ((alice["id"], ALICE, "alice"), (erin["id"], ERIN, "erin")):
        grant = world.deps.store.get_request(request_id)
        assert grant.status.value == "revoked"
        assert "no longer allowed by the role policy" in (grant.reason or "")
        assert not names(world, person)
        assert schedule_name(request_id) not in schedules(world)
        assert [m.recipient for m in messages_for(world, request_id, "request.revoked")] == [person]
        _start, end = guard_window(world.session_guard(), f"{world.role_id()}:{session}")
        assert end is not None
        assert end <= world.deps.clock.now()  # every session of theirs has ended
    assert [s for s in statements_of(world.trust_policy()) if is_managed(s)] == []


# -- 6. an expiry interrupted between its record and its sync ------------------------------------------


@pytest.mark.parametrize("finisher", ["retry", "reconcile"])
def test_an_expiry_that_died_before_its_sync_is_finished(
    world: World, monkeypatch: pytest.MonkeyPatch, finisher: str
) -> None:
    grant = granted(world)
    world.advance(timedelta(hours=1, seconds=1))
    with monkeypatch.context() as patch:
        patch.setattr(workflow_steps, "sync_role", kill)
        with pytest.raises(Killed):
            world.fire_schedule(grant["id"])
    assert world.status(grant["id"]) == "expired"
    assert names(world, ALICE)  # recorded as ended, still named: what a retry used to leave

    finish: Callable[[], Any] = (
        (lambda: world.fire_schedule(grant["id"])) if finisher == "retry" else (lambda: reconcile(world))
    )
    finish()

    assert not names(world, ALICE)
    assert world.trust_policy() == VENDOR_TRUST
    if finisher == "retry":
        assert schedule_name(grant["id"]) not in schedules(world)
    else:
        world.advance(AFTER_GRACE)
        reconcile(world)
    assert schedules(world) == set()


# -- the alarm ----------------------------------------------------------------------------------------------


def test_an_alarm_fires_on_reconcile_failures_to_the_alarm_topic() -> None:
    from tests.support.permissions import template

    resources = template()["Resources"]
    alarm = resources["ReconcileFailuresAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("TrustGate", "ReconcileFailures")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "trustgate"}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert alarm["AlarmActions"] == resources["PolicyUnrenderableAlarm"]["Properties"]["AlarmActions"]
