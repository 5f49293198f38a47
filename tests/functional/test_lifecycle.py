"""The whole lifecycle on moto, through the API and the real state machine (moto's ASL executor)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from tests.support.aws import ALICE, BOB, DAVE, MEMBER, ROLE_ARN, VENDOR_TRUST, World, running_world
from tests.support.flows import JUSTIFICATION, approve, granted, request_access
from tests.support.links import received_by
from trustgate.app.effects import ensure_schedules
from trustgate.core.clock import parse_rfc3339
from trustgate.core.ids import new_id
from trustgate.core.models import AuditEvent, RolePolicy
from trustgate.core.session_guard import guard_window
from trustgate.core.trust_policy import GRANT_SID_PREFIX, grant_expiry_in, is_managed, statements_of

pytestmark = pytest.mark.functional


def managed(world: World) -> list[dict[str, object]]:
    return [s for s in statements_of(world.trust_policy()) if is_managed(s)]


def put_policy(world: World, policy: RolePolicy) -> None:
    """Store a role policy directly (the admin API's own checks are tested elsewhere)."""
    _, version = world.deps.store.get_role_policy(ROLE_ARN)
    now = world.deps.clock.now()
    audit = AuditEvent(id=new_id(now), at=now, actor="test", action="policy.changed", role_arn=ROLE_ARN)
    world.deps.store.put_role_policy(ROLE_ARN, policy, version, audit)


def test_approved_grant_puts_exactly_that_principal_with_its_expiry(world: World) -> None:
    request = granted(world)
    expires = parse_rfc3339(request["expires_at"])
    policy = world.trust_policy()
    assert statements_of(policy)[0] == VENDOR_TRUST["Statement"][0]  # the vendor's statement is untouched
    assert [s["Principal"] for s in managed(world)] == [{"AWS": ALICE}]
    assert grant_expiry_in(policy, ALICE) == expires
    assert request["status"] == "active"
    assert expires - parse_rfc3339(request["starts_at"]) == timedelta(hours=1)
    assert world.wait_execution(request["id"])["status"] == "SUCCEEDED"


def test_grant_creates_a_self_deleting_expiry_schedule_with_retries_and_a_dead_letter_queue(world: World) -> None:
    request = granted(world)
    schedule = world.schedule(request["id"])
    assert schedule["ScheduleExpression"] == f"at({request['expires_at'][:-1]})"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == world.stack.functions["ExpireFunction"].arn
    assert schedule["Target"]["DeadLetterConfig"]["Arn"] == world.stack.attributes["ExpiryDeadLetterQueue"]["Arn"]
    assert schedule["Target"]["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_schedule_firing_at_expiry_removes_the_principal(world: World) -> None:
    request = granted(world)
    early = world.fire_schedule(request["id"])  # a schedule firing early changes nothing
    assert early["status"] == "active"
    world.advance(timedelta(hours=1, seconds=1))
    assert world.fire_schedule(request["id"])["status"] == "expired"
    assert world.status(request["id"]) == "expired"
    assert managed(world) == []
    assert world.trust_policy() == VENDOR_TRUST


def test_reconciler_expires_a_grant_whose_schedule_was_lost(world: World) -> None:
    request = granted(world)
    world.session.client("scheduler").delete_schedule(
        Name=f"trustgate-expire-{request['id']}", GroupName=world.stack.refs["ExpiryScheduleGroup"]
    )
    world.advance(timedelta(hours=2))
    report = world.invoke("ReconcileFunction", {"source": "aws.events", "detail-type": "Scheduled Event"})
    assert report["roles"][0]["expired"] == [request["id"]]
    assert world.status(request["id"]) == "expired"
    assert world.trust_policy() == VENDOR_TRUST


def test_reconciler_repairs_hand_edits_of_managed_statements(world: World) -> None:
    granted(world)
    iam = world.session.client("iam")
    import json

    tampered = {
        "Version": "2012-10-17",
        "Statement": [
            *VENDOR_TRUST["Statement"],
            {"Sid": "TrustGateGrantForged", "Effect": "Allow", "Principal": {"AWS": DAVE}, "Action": "sts:AssumeRole"},
        ],
    }
    iam.update_assume_role_policy(RoleName="PumpCustomerAccess", PolicyDocument=json.dumps(tampered))
    report = world.invoke("ReconcileFunction", {})
    assert report["roles"][0]["changed"] is True
    principals = [s["Principal"] for s in managed(world)]
    assert principals == [{"AWS": ALICE}]


def test_deny_ends_the_request_and_leaves_the_trust_policy_alone(world: World) -> None:
    request_id = request_access(world)["id"]
    world.wait_for_task_token(request_id)
    status, body = world.api("POST", f"/requests/{request_id}/deny", BOB, {"comment": "use the read-only role"})
    assert status == 200, body
    assert body["status"] == "denied"
    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    assert world.trust_policy() == VENDOR_TRUST


def test_cancel_ends_the_flow(world: World) -> None:
    request_id = request_access(world)["id"]
    world.wait_for_task_token(request_id)
    status, body = world.api("POST", f"/requests/{request_id}/cancel", ALICE)
    assert (status, body["status"]) == (200, "cancelled")
    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    status, body = world.api("POST", f"/requests/{request_id}/approve", BOB)
    assert (status, body["error"]["code"]) == (409, "already_decided")
    assert world.trust_policy() == VENDOR_TRUST


def test_nobody_deciding_within_the_window_times_out(world: World) -> None:
    put_policy(world, RolePolicy(approval_window=timedelta(seconds=2)))
    request_id = request_access(world)["id"]
    assert world.wait_execution(request_id, timeout=30)["status"] == "SUCCEEDED"
    assert world.status(request_id) == "timed_out"
    assert world.trust_policy() == VENDOR_TRUST


def test_revoke_removes_the_principal_at_once_and_drops_the_schedule(world: World) -> None:
    request = granted(world)
    status, body = world.api("POST", f"/requests/{request['id']}/revoke", ALICE, {"reason": "done early"})
    assert (status, body["status"], body["reason"]) == (200, "revoked", "done early")
    assert world.trust_policy() == VENDOR_TRUST
    with pytest.raises(world.session.client("scheduler").exceptions.ResourceNotFoundException):
        world.schedule(request["id"])


def test_a_second_request_while_covered_extends_the_one_coverage(world: World) -> None:
    short = granted(world, duration="PT1H")
    status, body = world.api(
        "POST", "/requests", ALICE, {"role": "PumpCustomerAccess", "duration": "PT3H", "justification": JUSTIFICATION}
    )
    assert status == 201, body
    assert (body["extends"], body["covered_until"]) == (short["id"], short["expires_at"])
    approve(world, body["id"])
    world.wait_status(body["id"], "active")
    long = world.deps.store.get_request(body["id"])
    # One coverage: the end moves by the new request's duration, nothing is added beside it.
    assert long.expires_at == parse_rfc3339(short["expires_at"]) + timedelta(hours=3)
    assert grant_expiry_in(world.trust_policy(), ALICE) == long.expires_at
    assert [s["Sid"] for s in statements_of(world.trust_policy()) if is_managed(s)] == [f"{GRANT_SID_PREFIX}Users"]
    userid = f"{world.role_id()}:alice"
    assert guard_window(world.session_guard(), userid)[1] == long.expires_at
    world.advance(timedelta(hours=1, minutes=1))
    world.fire_schedule(short["id"])
    assert world.status(short["id"]) == "expired"
    assert grant_expiry_in(world.trust_policy(), ALICE) == long.expires_at
    assert guard_window(world.session_guard(), userid)[1] == long.expires_at
    world.advance(timedelta(hours=3))
    world.fire_schedule(long.id)
    assert world.trust_policy() == VENDOR_TRUST
    # The guard keeps ending alice's sessions for as long as one could live (MaxSessionDuration), then goes.
    assert guard_window(world.session_guard(), userid)[1] == long.expires_at
    world.advance(timedelta(hours=12, minutes=1))
    world.invoke("ReconcileFunction", {})
    assert world.session_guard() is None


def test_revoking_one_grant_ends_the_whole_coverage_and_its_pending_extension(world: World) -> None:
    first = granted(world)
    status, second = world.api(
        "POST", f"/requests/{first['id']}/extend", ALICE, {"duration": "PT2H", "justification": JUSTIFICATION}
    )
    assert status == 201, second
    approve(world, second["id"])
    world.wait_status(second["id"], "active")
    status, third = world.api(
        "POST", f"/requests/{second['id']}/extend", ALICE, {"duration": "PT1H", "justification": JUSTIFICATION}
    )
    assert status == 201, third
    status, revoked = world.api("POST", f"/requests/{first['id']}/revoke", ALICE)
    assert (status, revoked["status"]) == (200, "revoked")
    assert world.trust_policy() == VENDOR_TRUST
    assert world.status(second["id"]) == "revoked"
    assert world.status(third["id"]) == "cancelled"
    ended_at = world.deps.store.get_request(first["id"]).expires_at
    assert ended_at == world.deps.store.get_request(second["id"]).expires_at
    assert guard_window(world.session_guard(), f"{world.role_id()}:alice")[1] == ended_at
    # The pending extension cannot be approved after the revoke.
    assert world.api("POST", f"/requests/{third['id']}/approve", BOB)[1]["error"]["code"] == "already_decided"


def test_extend_continues_from_the_current_expiry(world: World) -> None:
    original = granted(world)
    status, body = world.api(
        "POST", f"/requests/{original['id']}/extend", ALICE, {"duration": "PT30M", "justification": JUSTIFICATION}
    )
    assert status == 201, body
    assert body["extends"] == original["id"]
    approve(world, body["id"])
    world.wait_status(body["id"], "active")
    extension = world.deps.store.get_request(body["id"])
    assert extension.expires_at == parse_rfc3339(original["expires_at"]) + timedelta(minutes=30)
    world.advance(timedelta(hours=1, minutes=1))
    world.fire_schedule(original["id"])
    assert grant_expiry_in(world.trust_policy(), ALICE) == extension.expires_at


def test_auto_approved_request_is_active_when_the_api_answers() -> None:
    with running_world({"AllowAutoApprove": "true"}) as world:  # the deployer allows auto-approve at all
        put_policy(world, RolePolicy(auto_approve=[{"principals": [ALICE], "max_duration": "PT1H"}]))
        body = request_access(world, duration="PT30M")
        assert body["status"] == "active"
        assert body["auto_approved"] is True
        assert grant_expiry_in(world.trust_policy(), ALICE) is not None
        history = world.session.client("stepfunctions").get_execution_history(
            executionArn=world.execution(body["id"])["executionArn"]
        )
        entered = [e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e]
        assert "WaitForApproval" not in entered


def test_grant_failure_leaves_no_principal_behind_and_records_why() -> None:
    # Room for exactly one grant: two requests fit when asked, the second cannot be granted.
    with running_world({"TrustPolicyQuota": "500"}) as world:
        first = request_access(world)["id"]
        second = request_access(world, caller=f"arn:aws:iam::{MEMBER}:user/erin-with-a-long-name")["id"]
        approve(world, first)
        world.wait_status(first, "active")
        approve(world, second)
        assert world.wait_execution(second)["status"] == "FAILED"
        failed = world.deps.store.get_request(second)
        assert failed.status.value == "failed"
        assert "TrustPolicyFullError" in (failed.reason or "")
        assert "erin" not in str(world.trust_policy())
        assert grant_expiry_in(world.trust_policy(), ALICE) is not None


def test_twenty_concurrent_grants_to_one_role_are_all_kept() -> None:
    with running_world({"TrustPolicyQuota": "4096"}) as world:
        people = [f"arn:aws:iam::{MEMBER}:user/p{i:02d}" for i in range(20)]
        ids = [request_access(world, caller=person)["id"] for person in people]
        for request_id in ids:
            world.wait_for_task_token(request_id)
        errors: list[BaseException] = []

        def decide(request_id: str) -> None:
            try:
                status, body = world.api("POST", f"/requests/{request_id}/approve", BOB)
                assert status == 200, body
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=decide, args=(i,)) for i in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        for request_id in ids:
            world.wait_status(request_id, "active", timeout=60)
        policy = world.trust_policy()
        assert {p for p in people if grant_expiry_in(policy, p)} == set(people)
        assert all(s["Sid"].startswith(GRANT_SID_PREFIX) for s in statements_of(policy)[1:])


def test_a_grant_whose_principal_was_deleted_is_failed_and_pruned(world: World) -> None:
    import json

    request = granted(world)
    stored = world.deps.store.get_request(request["id"])
    policy = world.trust_policy()
    # IAM shows a deleted principal as its unique id.
    for statement in statements_of(policy):
        if is_managed(statement):
            statement["Principal"] = {"AWS": stored.principal_id}
    world.session.client("iam").update_assume_role_policy(
        RoleName="PumpCustomerAccess", PolicyDocument=json.dumps(policy)
    )
    world.invoke("ReconcileFunction", {})
    assert world.status(request["id"]) == "failed"
    assert world.trust_policy() == VENDOR_TRUST


def test_every_change_is_audited_and_announced(world: World) -> None:
    request = granted(world)
    world.api("POST", f"/requests/{request['id']}/revoke", ALICE)
    page = world.deps.store.audit_events(ROLE_ARN)
    actions = [event.action for event in reversed(page.items)]
    assert actions[:1] == ["request.created"]
    for expected in ("request.approved", "request.granted", "role.synced", "grant.revoked"):
        assert expected in actions
    synced = next(e for e in page.items if e.action == "role.synced")
    assert synced.before is not None
    assert synced.after is not None


def test_scheduler_itself_publishes_the_reminder_to_the_holder_and_an_extension_takes_it_away(world: World) -> None:
    request = granted(world)
    reminder = world.schedule(request["id"], "remind")
    expires = parse_rfc3339(request["expires_at"])
    assert reminder["ScheduleExpression"] == f"at({(expires - timedelta(minutes=10)):%Y-%m-%dT%H:%M:%S})"
    # No Lambda: Scheduler's universal target publishes the reminder to the personal topic, as its execution role.
    target = reminder["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:sns:publish"
    assert target["RoleArn"] == world.stack.attributes["SchedulerRole"]["Arn"]
    # A reminder later than its lead time would announce an end already past: Scheduler drops it instead.
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 600
    assert json.loads(target["Input"])["TopicArn"] == world.stack.refs["PersonalTopic"]
    invoked = len(world.host.invocations)
    world.advance(timedelta(minutes=51))
    world.fire_schedule(request["id"], "remind")
    assert len(world.host.invocations) == invoked
    (told,) = [s for s in received_by(world, ALICE) if s.event == "grant.expiring"]
    assert told.request_id == request["id"]
    assert f"trustgate extend {request['id']} --duration 1h" in told.email
    assert not [s for s in received_by(world, BOB) if s.event == "grant.expiring"]  # the holder's alone
    assert world.status(request["id"]) == "active"


def test_an_extension_takes_away_the_reminder_of_the_grant_it_extends(world: World) -> None:
    # Extended, the first grant's end is no longer the end of her access: its reminder goes, the extension has its own.
    second = granted(world)
    assert world.schedule(second["id"], "remind")
    status, body = world.api(
        "POST", f"/requests/{second['id']}/extend", ALICE, {"duration": "PT30M", "justification": JUSTIFICATION}
    )
    assert status == 201, body
    approve(world, body["id"])
    world.wait_status(body["id"], "active")
    with pytest.raises(world.session.client("scheduler").exceptions.ResourceNotFoundException):
        world.schedule(second["id"], "remind")
    extension = world.deps.store.get_request(body["id"])
    assert extension.expires_at is not None
    assert world.schedule(body["id"], "remind")["ScheduleExpression"] == (
        f"at({(extension.expires_at - timedelta(minutes=10)):%Y-%m-%dT%H:%M:%S})"
    )
    # Schedules made again for the extended grant (the reconciler's, a retried step's) bring no reminder back.
    ensure_schedules(world.deps, world.deps.store.get_request(second["id"]))
    assert world.schedule(second["id"])  # its expiry, yes
    with pytest.raises(world.session.client("scheduler").exceptions.ResourceNotFoundException):
        world.schedule(second["id"], "remind")
