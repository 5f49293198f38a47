"""Scheduled access through the API and the real state machine on moto (issue 13, section 1): asked with
`start_at`, approved before it, `scheduled` with nobody in IAM; at the start its one-time schedule runs the flow
again and the grant begins, ending one duration after the start. Whether IAM lets alice in is the independent
evaluator's answer."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.support.assume import decisions
from tests.support.aws import ALICE, CAROL, ROLE_NAME, World
from tests.support.flows import JUSTIFICATION, approve
from tests.support.iam_eval import ALLOWED
from trustgate.adapters.scheduler import schedule_name
from trustgate.core.clock import parse_rfc3339, to_rfc3339
from trustgate_local.world import wait_for

pytestmark = pytest.mark.functional


def just_in_time(world: World) -> None:
    """No standing access: only a grant lets anyone in, so IAM's answer is the grant's."""
    policy = {"mode": "none", "adopt_statements": ["PumpOrganizationAccess"]}
    status, answer = world.api("PUT", f"/roles/{ROLE_NAME}/policy", CAROL, policy)
    assert status == 200, answer


def ask_for_later(world: World, start_in: timedelta, duration: str = "PT2H") -> dict[str, object]:
    start = to_rfc3339(world.deps.clock.now() + start_in)
    body = {"role": ROLE_NAME, "duration": duration, "justification": JUSTIFICATION, "start_at": start}
    status, answer = world.api("POST", "/requests", ALICE, body)
    assert status == 201, answer
    assert answer["start_at"] == start
    return dict(answer)


def scheduled(world: World, start_in: timedelta = timedelta(hours=3)) -> str:
    request_id = str(ask_for_later(world, start_in)["id"])
    approve(world, request_id)
    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    assert world.status(request_id) == "scheduled"
    return request_id


def alice_may_assume(world: World, at_offset: timedelta = timedelta(0)) -> str:
    return decisions(world, ("alice", ALICE, "alice"), at=world.deps.clock.now() + at_offset)["alice"]


def start_schedule_exists(world: World, request_id: str) -> bool:
    group = world.stack.refs["ExpiryScheduleGroup"]
    listed = world.session.client("scheduler").list_schedules(GroupName=group)["Schedules"]
    return schedule_name(request_id, "start") in {schedule["Name"] for schedule in listed}


def test_approved_for_later_it_waits_scheduled_then_its_schedule_starts_it_for_one_duration(world: World) -> None:
    just_in_time(world)
    request_id = scheduled(world)

    # Scheduled: IAM lets nobody in, and the one-time start schedule runs the flow again at the start asked for.
    status, view = world.api("GET", f"/requests/{request_id}", ALICE)
    assert (status, view["status"], view.get("starts_at"), view.get("expires_at")) == (200, "scheduled", None, None)
    assert alice_may_assume(world) != ALLOWED
    schedule = world.schedule(request_id, "start")
    assert schedule["ScheduleExpression"] == f"at({view['start_at'][:-1]})"
    assert ":stateMachine:" in schedule["Target"]["Arn"]
    assert json.loads(schedule["Target"]["Input"]) == {"request_id": request_id, "start": True}
    listed = world.api("GET", "/requests", CAROL, query={"status": "scheduled"})[1]["items"]
    assert [r["id"] for r in listed] == [request_id]

    # At the start the schedule fires (five minutes late, say): a new execution goes straight to Grant, through
    # sync_role, and the grant still ends one duration after the start asked for.
    world.advance(timedelta(hours=3, minutes=5))
    world.fire_schedule(request_id, "start")
    wait_for(lambda: world.status(request_id) == "active" or None, 20, "the scheduled grant to begin")

    grant = world.api("GET", f"/requests/{request_id}", ALICE)[1]
    assert parse_rfc3339(grant["expires_at"]) == parse_rfc3339(view["start_at"]) + timedelta(hours=2)
    assert alice_may_assume(world) == ALLOWED
    ends_in = parse_rfc3339(grant["expires_at"]) - world.deps.clock.now()
    assert alice_may_assume(world, ends_in + timedelta(seconds=1)) != ALLOWED
    assert world.schedule(request_id)["ScheduleExpression"] == f"at({grant['expires_at'][:-1]})"  # its expiry


def test_cancel_and_revoke_work_on_a_scheduled_request_and_remove_its_start_schedule(world: World) -> None:
    first = scheduled(world)
    status, cancelled = world.api("POST", f"/requests/{first}/cancel", ALICE)
    assert (status, cancelled["status"]) == (200, "cancelled")
    assert not start_schedule_exists(world, first)

    second = scheduled(world)
    status, revoked = world.api("POST", f"/requests/{second}/revoke", CAROL, {"reason": "change called off"})
    assert (status, revoked["status"]) == (200, "revoked")
    assert not start_schedule_exists(world, second)
    audit = world.api("GET", "/audit", CAROL, query={"role": ROLE_NAME})[1]["items"]
    assert {"request.scheduled", "request.cancelled", "grant.revoked"} <= {e["action"] for e in audit}


@pytest.mark.parametrize(
    ("start_at", "status", "code"),
    [
        ("2020-01-01T00:00:00Z", 422, "start_at_in_past"),
        ("2999-01-01T00:00:00Z", 422, "start_at_too_far"),
        ("tonight", 400, "invalid_input"),
        ("2026-12-01T21:00:00", 400, "invalid_input"),  # no zone: which 21:00?
        ("2026-W49-2", 400, "invalid_input"),
        (1764622800, 400, "invalid_input"),
    ],
)
def test_a_start_at_refused_names_it_and_records_nothing(
    world: World, start_at: object, status: int, code: str
) -> None:
    body = {"role": ROLE_NAME, "duration": "PT1H", "justification": JUSTIFICATION, "start_at": start_at}
    answer_status, answer = world.api("POST", "/requests", ALICE, body)
    assert (answer_status, answer["error"]["code"]) == (status, code)
    assert "start_at" in answer["error"]["message"]
    assert world.api("GET", "/requests", ALICE)[1]["items"] == []


def test_start_at_may_be_a_time_from_now_on_trustgates_clock(world: World) -> None:
    world.advance(timedelta(days=1))  # TrustGate's clock, not the caller's, is what counts
    body = {"role": ROLE_NAME, "duration": "PT1H", "justification": JUSTIFICATION, "start_at": "PT3H"}
    before = world.deps.clock.now().replace(microsecond=0)
    status, answer = world.api("POST", "/requests", ALICE, body)
    assert status == 201, answer
    # Three hours from when the API read its clock: between before and after the call (whole seconds).
    start_at = parse_rfc3339(answer["start_at"])
    assert before + timedelta(hours=3) <= start_at <= world.deps.clock.now() + timedelta(hours=3)
    assert parse_rfc3339(answer["approval_deadline"]) <= parse_rfc3339(answer["start_at"]) + timedelta(hours=1)
