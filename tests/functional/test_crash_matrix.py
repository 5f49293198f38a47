"""The crash matrix: a crash at each step boundary of grant, expire, revoke, extend, decide, policy change, request
and sync, as a kill (no clean-up) and as an exception, followed by ONE reconcile, leaves nothing behind.

Each scenario goes the way users go (HTTP API, the state machine on moto's executor, the scheduler's target),
arms one crash at its boundary (tests/support/crash.py), and triggers it. Then the flows settle, a dead holder's
lease lapses (kill), the reconciler runs once, and `leftovers` must find 0 orphan principals, lost grants, stuck
or stalled requests, leaked locks or schedules, nonconforming live grants and unaudited IAM writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from tests.support.aws import ALICE, BOB, CAROL, ERIN, ROLE_NAME, VENDOR_TRUST, World
from tests.support.crash import FLAVOURS, Crash, Crashed, Flavour, LambdaDied, leftovers, lock_held
from tests.support.flows import JUSTIFICATION, approve, granted, request_access
from trustgate.core.models import AccessRequest, AuditEvent, RequestStatus
from trustgate.core.trust_policy import serialize

pytestmark = pytest.mark.functional

ROLE_PATH = f"/roles/{ROLE_NAME}"


@dataclass(frozen=True)
class Scenario:
    id: str  # area-boundary, as pytest shows it
    boundary: str  # where the crash happens, in words
    run: Callable[[World, Crash], None]  # set up, arm the crash at the boundary, trigger it


SCENARIOS: list[Scenario] = []


def scenario(area: str, boundary: str) -> Callable[[Callable[[World, Crash], None]], Callable[[World, Crash], None]]:
    def register(run: Callable[[World, Crash], None]) -> Callable[[World, Crash], None]:
        slug = "".join(c if c.isalnum() else "-" for c in boundary.lower()).replace("--", "-").strip("-")
        SCENARIOS.append(Scenario(f"{area}-{slug}", f"{area}: {boundary}", run))
        return run

    return register


# -- arming ----------------------------------------------------------------------------------------


def before_first_iam_write(world: World, crash: Crash, step: str) -> None:
    """Crash at the next IAM write of either document, before IAM holds it."""
    crash.at(world.deps.roles, "write_session_guard", step)
    crash.at(world.deps.roles, "write_trust_policy", step)


def after_trust_policy_write(world: World, crash: Crash, step: str) -> None:
    """Crash once IAM holds the next trust policy, before it is read back (verify)."""
    crash.at(world.deps.roles, "write_trust_policy", step, after=True)


def approve_and_crash(world: World, crash: Crash, arm: Callable[[], None]) -> str:
    """Alice asks, the crash is armed, bob approves: the Grant step on the flow runs into it."""
    request_id = str(request_access(world)["id"])
    world.wait_for_task_token(request_id)
    arm()
    approve(world, request_id)
    return request_id


# -- grant -----------------------------------------------------------------------------------------


@scenario("grant", "after the DynamoDB write, before the IAM write")
def _grant_before_iam(world: World, crash: Crash) -> None:
    approve_and_crash(world, crash, lambda: before_first_iam_write(world, crash, "grant: before its IAM write"))


@scenario("grant", "after the IAM write, before verify")
def _grant_before_verify(world: World, crash: Crash) -> None:
    approve_and_crash(world, crash, lambda: after_trust_policy_write(world, crash, "grant: before verify"))


@scenario("grant", "after verify, before the status commit")
def _grant_before_commit(world: World, crash: Crash) -> None:
    def activating(before: AccessRequest, after: AccessRequest, audit: AuditEvent | None) -> bool:
        return before.status == RequestStatus.PENDING and after.status == RequestStatus.ACTIVE

    def arm() -> None:
        crash.at(world.deps.store, "replace_request", "grant: before ACTIVE", when=activating)

    approve_and_crash(world, crash, arm)


@scenario("grant", "after activation, before its expiry schedule")
def _grant_before_schedule(world: World, crash: Crash) -> None:
    approve_and_crash(world, crash, lambda: crash.at(world.deps.schedules, "create", "grant: before its schedule"))


@scenario("grant", "between its expiry schedule and its record")
def _grant_after_schedule(world: World, crash: Crash) -> None:
    def expiry(request_id: str, at: Any, kind: str = "expire") -> bool:
        return kind == "expire"

    def arm() -> None:
        crash.at(world.deps.schedules, "create", "grant: after its schedule", after=True, when=expiry)

    approve_and_crash(world, crash, arm)


@scenario("grant", "while holding the lock")
def _grant_holding_lock(world: World, crash: Crash) -> None:
    def under_lock(role_arn: str) -> bool:
        return lock_held(world, role_arn)

    def arm() -> None:
        crash.at(world.deps.roles, "read", "grant: holding the lock", when=under_lock)

    approve_and_crash(world, crash, arm)


# -- sync ------------------------------------------------------------------------------------------


def synced(event: AuditEvent) -> bool:
    return event.action == "role.synced"


@scenario("sync", "after the IAM write, before its audit")
def _sync_before_audit(world: World, crash: Crash) -> None:
    def arm() -> None:
        crash.at(world.deps.store, "put_audit", "sync: before its audit", when=synced)

    approve_and_crash(world, crash, arm)


@scenario("reconcile", "after repairing drift in IAM, before its audit")
def _reconcile_before_audit(world: World, crash: Crash) -> None:
    granted(world)
    # Someone takes alice out of the trust policy by hand: the reconciler puts her back.
    iam = world.session.client("iam")
    iam.update_assume_role_policy(RoleName=ROLE_NAME, PolicyDocument=serialize(VENDOR_TRUST))
    crash.at(world.deps.store, "put_audit", "reconcile: before its audit", when=synced)
    with contextlib.suppress(Crashed, LambdaDied):  # the crashed reconcile; the matrix's own one follows
        world.invoke("ReconcileFunction", {})


# -- expire ----------------------------------------------------------------------------------------


def expire_and_crash(world: World, crash: Crash, arm: Callable[[], None]) -> None:
    grant = granted(world)
    world.advance(timedelta(hours=1, seconds=1))
    arm()
    crash.fire_schedule(grant["id"])


@scenario("expire", "after the DynamoDB write, before the IAM write")
def _expire_before_iam(world: World, crash: Crash) -> None:
    expire_and_crash(world, crash, lambda: before_first_iam_write(world, crash, "expire: before its IAM write"))


@scenario("expire", "after the IAM write, before verify")
def _expire_before_verify(world: World, crash: Crash) -> None:
    expire_and_crash(world, crash, lambda: after_trust_policy_write(world, crash, "expire: before verify"))


# -- revoke ----------------------------------------------------------------------------------------


def revoke_and_crash(world: World, crash: Crash, arm: Callable[[], None]) -> None:
    grant = granted(world)
    arm()
    crash.api("POST", f"/requests/{grant['id']}/revoke", ALICE, {"reason": "done"})


@scenario("revoke", "after the DynamoDB write, before the IAM write")
def _revoke_before_iam(world: World, crash: Crash) -> None:
    revoke_and_crash(world, crash, lambda: before_first_iam_write(world, crash, "revoke: before its IAM write"))


@scenario("revoke", "after IAM let go, before its schedule is deleted")
def _revoke_before_unschedule(world: World, crash: Crash) -> None:
    def arm() -> None:
        crash.at(world.deps.schedules, "delete", "revoke: before deleting its schedule")

    revoke_and_crash(world, crash, arm)


# -- extend ----------------------------------------------------------------------------------------

EXTENSION = {"duration": "PT1H", "justification": JUSTIFICATION}


@scenario("extend", "between recording the request and starting its flow")
def _extend_before_flow(world: World, crash: Crash) -> None:
    grant = granted(world)
    crash.at(world.deps.flow, "start", "extend: before its flow starts")
    crash.api("POST", f"/requests/{grant['id']}/extend", ALICE, EXTENSION)


@scenario("extend", "after the IAM write, before verify")
def _extend_before_verify(world: World, crash: Crash) -> None:
    grant = granted(world)
    status, body = crash.api("POST", f"/requests/{grant['id']}/extend", ALICE, EXTENSION)
    assert status == 201, body
    world.wait_for_task_token(body["id"])
    after_trust_policy_write(world, crash, "extend: before verify")
    approve(world, body["id"])


# -- request ---------------------------------------------------------------------------------------


@scenario("request", "between recording the request and starting its flow")
def _request_before_flow(world: World, crash: Crash) -> None:
    crash.at(world.deps.flow, "start", "request: before its flow starts")
    body = {"role": ROLE_NAME, "duration": "PT1H", "justification": JUSTIFICATION}
    crash.api("POST", "/requests", ALICE, body)


# -- decide ----------------------------------------------------------------------------------------


def decide_and_crash(world: World, crash: Crash, decision: str) -> None:
    request_id = request_access(world)["id"]
    world.wait_for_task_token(request_id)
    crash.at(world.deps.flow, "resume", f"{decision}: before the flow resumes")
    crash.api("POST", f"/requests/{request_id}/{decision}", BOB, {"comment": "ok"})


@scenario("approve", "between recording the decision and resuming the flow")
def _approve_before_resume(world: World, crash: Crash) -> None:
    decide_and_crash(world, crash, "approve")


@scenario("deny", "between recording the decision and resuming the flow")
def _deny_before_resume(world: World, crash: Crash) -> None:
    decide_and_crash(world, crash, "deny")


# -- policy change ---------------------------------------------------------------------------------

TIGHTER = {"max_duration": "PT30M"}  # alice's 1 h grant no longer conforms; erin's 20 min one does


def tighten_and_crash(world: World, crash: Crash, arm: Callable[[], None]) -> None:
    granted(world)
    granted(world, ERIN, "PT20M")
    arm()
    crash.api("PUT", f"{ROLE_PATH}/policy", CAROL, TIGHTER)


@scenario("policy", "after storing the policy, before revoking what it no longer allows")
def _policy_before_revocations(world: World, crash: Crash) -> None:
    def arm() -> None:
        crash.at(world.deps.store, "put_role_policy", "policy: after storing it", after=True)

    tighten_and_crash(world, crash, arm)


@scenario("policy", "after the IAM write, before verify")
def _policy_before_verify(world: World, crash: Crash) -> None:
    tighten_and_crash(world, crash, lambda: after_trust_policy_write(world, crash, "policy: before verify"))


# -- the matrix ------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("case", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_one_reconcile_after_a_crash_leaves_nothing_behind(
    world: World, monkeypatch: pytest.MonkeyPatch, case: Scenario, flavour: Flavour
) -> None:
    crash = Crash(world, monkeypatch, flavour)

    case.run(world, crash)
    crash.wait_fired()
    left = crash.reconcile() + leftovers(world, crash)

    assert not left, f"after a {flavour} at {case.boundary!r} and one reconcile, left behind:\n" + "\n".join(left)


def test_the_matrix_covers_every_area_and_the_boundaries_the_issue_names() -> None:
    areas = {s.id.split("-", 1)[0] for s in SCENARIOS}
    assert {"grant", "expire", "revoke", "extend", "approve", "deny", "policy", "sync"} <= areas
    assert len(SCENARIOS) >= 12
    boundaries = {s.boundary.split(": ", 1)[1] for s in SCENARIOS}
    assert {
        "after the DynamoDB write, before the IAM write",
        "after the IAM write, before verify",
        "after verify, before the status commit",
        "between its expiry schedule and its record",
        "while holding the lock",
        "between recording the request and starting its flow",
        "between recording the decision and resuming the flow",
    } <= boundaries
