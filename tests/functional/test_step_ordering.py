"""Crash-safe ordering of the workflow steps (issue 11, section 2), through the real state machine (moto's ASL
executor) and the functions as Step Functions and EventBridge Scheduler call them.

Once IAM holds a grant nothing after it may fail the grant; a busy role is retried, not failed; a clean-up that
fails still ends the execution; an expiry retried after it died mid-way finishes its job.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from tests.support.aws import ALICE, World
from tests.support.flows import approve, granted, request_access
from tests.support.links import messages_for
from trustgate.adapters.scheduler import schedule_name
from trustgate.app import decisions, effects, reconcile, sync, workflow_steps
from trustgate.core import errors
from trustgate.core.models import RequestStatus
from trustgate.core.trust_policy import grant_expiry_in

pytestmark = pytest.mark.functional

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "approval.asl.json"


@pytest.fixture
def no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's executor really sleeps between retries; the tests need the retries, not the waits."""
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=lambda _seconds: None))


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    for module in (decisions, effects, reconcile):
        monkeypatch.setattr(module, "count", seen.append)
    return seen


def schedules(world: World) -> set[str]:
    client = world.session.client("scheduler")
    return {s["Name"] for s in client.list_schedules(GroupName=world.stack.refs["ExpiryScheduleGroup"])["Schedules"]}


def entered(world: World, request_id: str) -> list[str]:
    """The states the request's execution entered, in order."""
    history = world.session.client("stepfunctions").get_execution_history(
        executionArn=world.execution(request_id)["executionArn"]
    )
    return [e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e]


def states() -> dict[str, Any]:
    return dict(json.loads(ASL.read_text())["States"])


# -- the state machine's shape ----------------------------------------------------------------------------


def retriers_of(state: dict[str, Any], error: str) -> list[dict[str, Any]]:
    return [r for r in state.get("Retry", []) if error in r["ErrorEquals"]]


@pytest.mark.parametrize("name", ["Grant", "RecordFailure"])
def test_the_grant_and_its_clean_up_retry_a_busy_role_and_a_dead_lambda_with_bounded_backoff(name: str) -> None:
    state = states()[name]
    # Lambda reports an unhandled exception by its class name.
    (retrier,) = retriers_of(state, errors.LockTimeoutError.__name__)
    retried = {errors.ActivationNotRecordedError.__name__, errors.ThrottledError.__name__}
    assert retried | {"Lambda.Unknown", "Sandbox.Timedout", "States.Timeout"} <= set(retrier["ErrorEquals"])
    assert retrier["JitterStrategy"] == "FULL"
    assert retrier["BackoffRate"] > 1
    waits = [
        min(retrier["IntervalSeconds"] * retrier["BackoffRate"] ** n, retrier["MaxDelaySeconds"])
        for n in range(retrier["MaxAttempts"])
    ]
    assert sum(waits) < 5 * 60  # well below any approval window, and below the reconciler's period
    assert state["TimeoutSeconds"] <= 900


def test_a_clean_up_that_fails_still_ends_the_execution() -> None:
    record_failure = states()["RecordFailure"]
    assert [c["ErrorEquals"] for c in record_failure["Catch"]] == [["States.ALL"]]
    assert record_failure["Catch"][0]["Next"] == "RequestFailed"
    still_granted = states()[record_failure["Next"]]
    assert still_granted["Choices"] == [{"Variable": "$.status", "StringEquals": "active", "Next": "Done"}]
    assert still_granted["Default"] == "RequestFailed"


# -- through the state machine ---------------------------------------------------------------------------


def test_a_busy_role_is_retried_by_the_state_machine_and_the_grant_goes_through(
    world: World, monkeypatch: pytest.MonkeyPatch, no_retry_waits: None
) -> None:
    real = sync.sync_role
    calls: list[str] = []

    def busy_twice(*args: Any, **kwargs: Any) -> Any:
        calls.append("sync")
        if len(calls) <= 2:
            raise errors.LockTimeoutError("another change to the role is in progress; try again in a minute")
        return real(*args, **kwargs)

    monkeypatch.setattr(workflow_steps, "sync_role", busy_twice)
    request_id = request_access(world)["id"]
    approve(world, request_id)

    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    assert world.status(request_id) == "active"
    assert len(calls) == 3
    assert entered(world, request_id).count("RecordFailure") == 0
    assert grant_expiry_in(world.trust_policy(), ALICE) is not None


def test_a_grant_that_fails_after_its_activation_stays_active(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Grant step dies after IAM was verified and the grant recorded active: RecordFailure keeps it, makes its
    schedules and tells the requester (it used to turn it into `failed`)."""
    real = effects.after_activation
    calls: list[str] = []

    def dies_the_first_time(deps: Any, grant: Any) -> None:
        calls.append(grant.id)
        if len(calls) == 1:
            raise RuntimeError("the Lambda died after the activation")
        real(deps, grant)

    monkeypatch.setattr(workflow_steps, "after_activation", dies_the_first_time)
    request_id = request_access(world)["id"]
    approve(world, request_id)

    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    assert entered(world, request_id)[-3:] == ["RecordFailure", "StillGranted?", "Done"]
    assert world.status(request_id) == "active"
    assert grant_expiry_in(world.trust_policy(), ALICE) is not None
    assert {schedule_name(request_id), schedule_name(request_id, "remind")} <= schedules(world)
    assert [m.recipient for m in messages_for(world, request_id, "request.active")] == [ALICE]
    assert messages_for(world, request_id, "request.failed") == []


def test_schedules_that_cannot_be_made_after_activation_never_fail_the_grant(
    world: World, monkeypatch: pytest.MonkeyPatch, counted: list[str]
) -> None:
    def unavailable(*_: Any, **__: Any) -> Any:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "CreateSchedule")

    with monkeypatch.context() as patch:
        patch.setattr(world.deps.schedules, "create", unavailable)
        request_id = request_access(world)["id"]
        approve(world, request_id)
        assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    assert world.status(request_id) == "active"
    assert "SchedulesDeferred" in counted
    assert schedule_name(request_id) not in schedules(world)
    assert [m.recipient for m in messages_for(world, request_id, "request.active")] == [ALICE]

    report = world.invoke("ReconcileFunction", {})

    assert report["schedules"]["created"] == [request_id]
    assert {schedule_name(request_id), schedule_name(request_id, "remind")} <= schedules(world)
    assert len(messages_for(world, request_id, "request.active")) == 1  # its Grant step told her already


def test_finalize_failed_on_an_active_grant_keeps_it_and_finishes_its_follow_ups(world: World) -> None:
    grant = granted(world)
    group = world.stack.refs["ExpiryScheduleGroup"]
    world.session.client("scheduler").delete_schedule(Name=schedule_name(grant["id"]), GroupName=group)
    error = {"Error": "Lambda.Unknown", "Cause": "The Lambda function died after the activation"}

    answer = world.invoke("FinalizeFunction", {"request_id": grant["id"], "outcome": "failed", "error": error})

    assert answer == {"request_id": grant["id"], "status": "active"}
    assert world.status(grant["id"]) == "active"
    assert grant_expiry_in(world.trust_policy(), ALICE) is not None
    assert schedule_name(grant["id"]) in schedules(world)
    assert len(messages_for(world, grant["id"], "request.active")) == 2  # the grant's, and this one's


# -- expiry -------------------------------------------------------------------------------------------------


def revoked_with_schedules(world: World, monkeypatch: pytest.MonkeyPatch) -> str:
    """A grant revoked by a call that failed before it could delete the grant's schedules."""
    grant = granted(world)

    def unavailable(_request_id: str) -> None:
        raise RuntimeError("EventBridge Scheduler unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(world.deps.schedules, "delete", unavailable)
        status, _ = world.api("POST", f"/requests/{grant['id']}/revoke", ALICE, {"reason": "done"})
    assert status >= 500
    assert world.status(grant["id"]) == "revoked"
    return str(grant["id"])


def test_the_schedule_of_a_grant_revoked_by_a_call_that_failed_syncs_and_deletes_itself(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = revoked_with_schedules(world, monkeypatch)
    assert schedule_name(request_id) in schedules(world)

    assert world.fire_schedule(request_id) == {"request_id": request_id, "status": RequestStatus.REVOKED.value}

    assert schedules(world) == set()
    assert grant_expiry_in(world.trust_policy(), ALICE) is None
