"""The per-role lock: one sync at a time; a dead holder's lease runs out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.aws import ROLE_ARN, World
from tests.support.flows import request_access
from trustgate.app import sync
from trustgate.app.sync import sync_role
from trustgate.core.errors import LockTimeoutError

pytestmark = pytest.mark.functional


def test_a_sync_waits_for_the_lock_and_gives_up_with_role_busy(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync, "LOCK_WAIT_SECONDS", 0.3)
    monkeypatch.setattr(sync, "QUEUED_WAIT_SECONDS", 0.3)  # a queued change (this one) waits longer, not forever
    now = world.deps.clock.now()
    assert world.deps.store.try_lock(ROLE_ARN, "someone-else", now, now + timedelta(minutes=2))
    with pytest.raises(LockTimeoutError) as raised:
        sync_role(world.deps, ROLE_ARN, "test", "test")
    assert raised.value.status == 429


def test_a_dead_holders_lease_expires_and_the_next_sync_proceeds(world: World) -> None:
    now = world.deps.clock.now()
    assert world.deps.store.try_lock(ROLE_ARN, "crashed-lambda", now - timedelta(minutes=5), now - timedelta(minutes=3))
    result = sync_role(world.deps, ROLE_ARN, "test", "test")
    assert result.changed is False
    assert world.deps.store.try_lock(ROLE_ARN, "next", now, now + timedelta(seconds=5))  # released after use


def test_a_busy_role_answers_429_through_the_api(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync, "LOCK_WAIT_SECONDS", 0.3)
    request_id = request_access(world)["id"]
    world.wait_for_task_token(request_id)
    now = world.deps.clock.now()
    world.deps.store.try_lock(ROLE_ARN, "someone-else", now, now + timedelta(minutes=2))
    status, body = world.api("POST", "/roles/PumpCustomerAccess/sync", "arn:aws:iam::222222222222:user/carol")
    assert (status, body["error"]["code"]) == (429, "role_busy")
