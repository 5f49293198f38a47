"""Coalesced syncs: a change records itself and waits; whoever holds the role's lock serves every waiting change.

Driven through the approval flow on moto's executor: the Grant step of each request is the waiter.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from tests.support.aws import ALICE, BOB, MANAGEMENT, MEMBER, ROLE_ARN, World, running_world
from tests.support.flows import approve, forge_statement, request_access
from trustgate.app import sync
from trustgate.core.errors import LockTimeoutError
from trustgate.core.trust_policy import grant_expiry_in, same_policy
from trustgate_local.polling import wait_until

pytestmark = pytest.mark.functional

HOLDER = "a-holder"


def hold_lock(world: World, owner: str = HOLDER, lease: timedelta = timedelta(minutes=1)) -> None:
    now = world.deps.clock.now()
    assert world.deps.store.try_lock(ROLE_ARN, owner, now, now + lease)


def wait_queued(world: World, *request_ids: str) -> None:
    wait_until(
        lambda: set(request_ids) <= world.deps.store.sync_queue(ROLE_ARN).activate, timeout=20, what="queued grants"
    )


def serve_as(world: World, owner: str = HOLDER) -> sync.SyncResult:
    """Run the holder's rounds as `owner` (who holds the lock), as a sync that came for something else would."""
    try:
        return sync._hold(
            world.deps, ROLE_ARN, owner, "test", "held by the test", time.monotonic(), None, None, None, True
        )
    finally:
        world.deps.store.unlock(ROLE_ARN, owner)


def synced_reasons(world: World) -> list[str]:
    events = world.deps.store.audit_events(role_arn=ROLE_ARN).items
    return [e.detail.get("reason", "") for e in events if e.action == "role.synced"]


def test_a_waiting_grant_is_activated_by_the_round_of_whoever_holds_the_lock(world: World) -> None:
    request_id = request_access(world)["id"]
    world.wait_for_task_token(request_id)
    hold_lock(world)
    approve(world, request_id)  # its Grant step records the change and waits
    wait_queued(world, request_id)

    serve_as(world)

    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    world.wait_status(request_id, "active")
    assert grant_expiry_in(world.trust_policy(), ALICE) is not None
    assert synced_reasons(world) == ["held by the test"]  # one write, by the holder's round, for the waiter
    queue = world.deps.store.sync_queue(ROLE_ARN)
    assert (queue.done, queue.activate, queue.owner, queue.intent) == (queue.wanted, frozenset(), None, None)


def test_a_grant_the_batch_cannot_hold_is_judged_alone_and_refused_with_its_own_reason(world: World) -> None:
    # Two IAM users named alice in two accounts would share one session name, hence one aws:userid.
    other_alice = f"arn:aws:iam::{MANAGEMENT}:user/alice"
    first = request_access(world, caller=ALICE)["id"]
    second = request_access(world, caller=other_alice)["id"]
    hold_lock(world)
    approve(world, first)
    approve(world, second)
    wait_queued(world, first, second)

    serve_as(world)

    world.wait_status(first, "active")
    world.wait_status(second, "failed")
    assert "session name" in (world.deps.store.get_request(second).reason or "")
    assert grant_expiry_in(world.trust_policy(), ALICE) is not None
    assert grant_expiry_in(world.trust_policy(), other_alice) is None


def test_a_dead_holders_lease_runs_out_and_a_waiter_takes_over(world: World) -> None:
    request_id = request_access(world)["id"]
    world.wait_for_task_token(request_id)
    hold_lock(world, "died-holding-it", timedelta(seconds=30))
    approve(world, request_id)
    wait_queued(world, request_id)

    world.advance(timedelta(minutes=1))  # the dead holder's lease lapses; the waiter takes the lock itself

    world.wait_status(request_id, "active")
    assert grant_expiry_in(world.trust_policy(), ALICE) is not None
    assert world.deps.store.sync_queue(ROLE_ARN).owner is None


def test_an_iam_write_whose_audit_was_lost_is_audited_by_the_next_sync(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sync._audit
    lost: list[str] = []

    def audit_fails_once(*args: Any, **kwargs: Any) -> None:
        if not lost:
            lost.append(args[3])  # the action whose record is lost
            raise RuntimeError("the table throttled the audit record")
        real(*args, **kwargs)

    monkeypatch.setattr(sync, "_audit", audit_fails_once)
    request_id = request_access(world)["id"]
    approve(world, request_id)
    world.wait_status(request_id, "active")  # a lost audit never fails a grant IAM holds
    assert world.deps.store.sync_queue(ROLE_ARN).intent is not None
    monkeypatch.setattr(sync, "_audit", real)

    world.invoke("ReconcileFunction", {})

    assert world.deps.store.sync_queue(ROLE_ARN).intent is None
    events = world.deps.store.audit_events(role_arn=ROLE_ARN).items
    trust_audits = [e for e in events if e.action == "role.synced"]
    guard_audits = [e for e in events if e.action == "guard.synced"]
    assert any(e.after and same_policy(e.after, world.trust_policy()) for e in trust_audits)
    assert any(e.after == world.session_guard() for e in guard_audits)
    assert [e.detail.get("recovered") is not None for e in events if e.action == lost[0]] == [True]


def test_a_holder_that_lost_its_lock_before_an_iam_write_writes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = request_access(world)["id"]
    approve(world, request_id)
    world.wait_status(request_id, "active")
    forged = forge_statement(world)
    audits_before = len(world.deps.store.audit_events(role_arn=ROLE_ARN).items)
    record_intent = world.deps.store.record_intent

    def stalls_past_its_lease(name: str, owner: str, intent: dict[str, Any]) -> None:
        record_intent(name, owner, intent)
        # The holder stalls here until its lease lapses, and another sync takes the lock meanwhile.
        later = world.deps.clock.now() + sync.LOCK_LEASE + timedelta(seconds=1)
        assert world.deps.store.try_lock(ROLE_ARN, "the-next-holder", later, later + sync.LOCK_LEASE)

    monkeypatch.setattr(world.deps.store, "record_intent", stalls_past_its_lease)
    hold_lock(world)

    with pytest.raises(LockTimeoutError):
        serve_as(world)  # its round would remove the forged statement, but it no longer holds the lock

    assert world.trust_policy() == forged  # nothing written by a holder without a lease
    assert len(world.deps.store.audit_events(role_arn=ROLE_ARN).items) == audits_before
    assert world.deps.store.sync_queue(ROLE_ARN).owner == "the-next-holder"


@pytest.mark.parametrize("people", [30])
def test_many_concurrent_approvals_on_one_role_are_all_granted_without_a_lock_timeout(people: int) -> None:
    """The load test's small sibling (make bench has the 200-approval figure): every approval through the
    flow ends active, none failed, none timed out on the lock."""
    with running_world({"TrustPolicyQuota": "4096"}) as world:
        persons = [f"arn:aws:iam::{MEMBER}:user/p{i:03d}" for i in range(people)]
        ids = [request_access(world, caller=person)["id"] for person in persons]
        for request_id in ids:
            world.wait_for_task_token(request_id)
        answers: list[tuple[int, Any]] = []
        threads = [
            threading.Thread(target=lambda i=i: answers.append(world.api("POST", f"/requests/{i}/approve", BOB)))
            for i in ids
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [status for status, _ in answers] == [200] * people
        for request_id in ids:
            assert world.wait_execution(request_id, timeout=120)["status"] == "SUCCEEDED"
        assert {world.status(i) for i in ids} == {"active"}
        policy = world.trust_policy()
        assert {p for p in persons if grant_expiry_in(policy, p)} == set(persons)
        queue = world.deps.store.sync_queue(ROLE_ARN)
        assert (queue.done, queue.activate, queue.owner) == (queue.wanted, frozenset(), None)
