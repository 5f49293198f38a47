"""The per-role lock: one sync at a time; a dead holder's lease runs out."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.support.aws import ROLE_ARN, World
from tests.support.flows import approve, forge_statement, request_access
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


# -- the fence: every IAM write inside a lease set at most FENCE_FRESH before it ------------------------------


def _drift(world: World) -> dict[str, Any]:
    """A statement nobody granted on a role TrustGate manages, for a sync to remove (so it writes IAM)."""
    request_id = request_access(world)["id"]
    approve(world, request_id)
    world.wait_status(request_id, "active")
    return forge_statement(world)


def _renewals(world: World, monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    renewed: list[datetime] = []
    real_renew = world.deps.store.renew_lock

    def renew(name: str, owner: str, lease_until: datetime) -> None:
        renewed.append(lease_until)
        real_renew(name, owner, lease_until)

    monkeypatch.setattr(world.deps.store, "renew_lock", renew)
    return renewed


def test_a_write_right_after_the_lock_was_taken_is_not_preceded_by_a_renewal(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = _drift(world)
    renewed = _renewals(world, monkeypatch)

    result = sync_role(world.deps, ROLE_ARN, "test", "repair", alone=True)

    assert result.changed
    assert world.trust_policy() != forged
    assert renewed == []  # inside the lease it had just set: a renewal would have proved nothing more


def test_a_round_that_ran_past_fence_fresh_renews_its_lease_before_it_writes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = _drift(world)
    renewed = _renewals(world, monkeypatch)
    record_intent = world.deps.store.record_intent

    def slow(name: str, owner: str, intent: dict[str, Any]) -> None:
        record_intent(name, owner, intent)
        world.advance(sync.FENCE_FRESH + timedelta(seconds=1))  # the round took a while before its first write

    monkeypatch.setattr(world.deps.store, "record_intent", slow)

    result = sync_role(world.deps, ROLE_ARN, "test", "repair", alone=True)

    assert result.changed
    assert world.trust_policy() != forged
    assert renewed, "the write was fenced by a fresh lease"
    # renewed after the clock moved on: the write began with a whole lease ahead of it
    assert renewed[0] >= world.deps.clock.now() + sync.LOCK_LEASE - timedelta(seconds=5)


# -- the intent on the lock item ---------------------------------------------------------------------------


def test_an_intent_is_stored_compressed_and_one_stored_as_text_by_an_earlier_release_is_still_read(
    world: World,
) -> None:
    store = world.deps.store
    document = world.trust_policy()
    intent = {"actor": "test", "trust_before": document, "trust_after": document, "guard_before": None}
    now = world.deps.clock.now()
    assert store.try_lock(ROLE_ARN, "holder", now, now + sync.LOCK_LEASE)
    store.record_intent(ROLE_ARN, "holder", intent)

    dynamodb = world.session.client("dynamodb")
    key = {"pk": {"S": f"LOCK#{ROLE_ARN}"}, "sk": {"S": "LOCK"}}
    stored = dynamodb.get_item(TableName=world.deps.settings.table_name, Key=key)["Item"]["intent"]
    assert "B" in stored
    assert len(stored["B"]) < len(json.dumps(intent))
    assert store.sync_queue(ROLE_ARN).intent == intent

    dynamodb.update_item(
        TableName=world.deps.settings.table_name,
        Key=key,
        UpdateExpression="SET intent = :text",
        ExpressionAttributeValues={":text": {"S": json.dumps(intent)}},
    )
    assert store.sync_queue(ROLE_ARN).intent == intent
