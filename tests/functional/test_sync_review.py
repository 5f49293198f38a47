"""Findings of a security review of coalesced syncs, each reproduced here and fixed.

1. Rounds read a role's grants through the eventually consistent ByRole index: a grant revoked or activated a
   moment ago came back, or fell out. Now the index only names candidates (it holds keys only), each read from
   the table consistently.
2. A holder that stalled past its lease re-took the lock once another holder took and released it, and wrote its
   stale plan (undoing a revoke). Now a renewal requires still being the lock's owner.
3. A revoke cancelled a request IAM already named (its activation not yet recorded), and the guard forgot it.
4. One activation IAM refused failed every round it was batched into, revokes included.
5. A failure in a round served for others replaced the holder's own answer.
6. A policy change that failed after the policy was stored answered "nothing was changed".
7. A throttled recovery audit was taken for one already recorded, and the IAM write went unaudited.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.aws import ALICE, CAROL, ERIN, MANAGEMENT, ROLE_ARN, ROLE_NAME, World
from tests.support.flows import approve, forge_statement, granted, request_access
from tests.support.iam_faults import iam_refuses_principal
from trustgate.app import sync, transitions
from trustgate.core.errors import ConflictError, LockTimeoutError
from trustgate.core.models import RequestStatus
from trustgate.core.session_guard import GUARD_POLICY_NAME, guard_window, session_userid
from trustgate.core.trust_policy import grant_expiry_in
from trustgate_local.polling import wait_until

pytestmark = pytest.mark.functional

REVOKE = "/roles/PumpCustomerAccess/revoke"


def alice_window(world: World) -> tuple[Any, Any]:
    return guard_window(world.session_guard(), session_userid(world.role_id(), "alice"))


# -- 1. the index only names candidates -------------------------------------------------------------------


def test_a_round_right_after_a_revoke_does_not_bring_the_person_back_while_the_index_lags(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = granted(world)
    store = world.deps.store
    real_ids = store._all_ids
    real_record_intent = store.record_intent
    arrived: list[int] = []

    def another_change_arrives(name: str, owner: str, intent: dict[str, Any]) -> None:
        real_record_intent(name, owner, intent)
        if not arrived:  # someone's expiry queues itself while the revoke's round runs
            arrived.append(store.mark_dirty(ROLE_ARN))

    monkeypatch.setattr(store, "record_intent", another_change_arrives)
    # The index as it was before the revoke: the grant still under `active#` (and so named by every status query).
    monkeypatch.setattr(store, "_all_ids", lambda *a, **k: [*real_ids(*a, **k), grant["id"]])

    status, body = world.api("POST", REVOKE, CAROL, {"principal": ALICE})

    assert status == 200, body
    assert arrived  # a round for the other change ran after the revoke's
    assert store.get_request(grant["id"]).status == RequestStatus.REVOKED
    assert grant_expiry_in(world.trust_policy(), ALICE) is None


def test_a_round_right_after_an_activation_keeps_the_grant_the_index_still_shows_pending(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = granted(world)
    store = world.deps.store
    real_query_ids = store._query_ids

    def index_still_pending(index: str, condition: str, values: dict[str, Any], *rest: Any) -> Any:
        """The index as it was before the activation: the grant under `pending#`, not under `active#`."""
        page = real_query_ids(index, condition, values, *rest)
        shown_as = str(values.get(":prefix") or values.get(":from") or "")
        if shown_as.startswith("pending#"):
            return type(page)([*page.items, grant["id"]], page.next)
        return type(page)([i for i in page.items if i != grant["id"]], page.next)

    monkeypatch.setattr(store, "_query_ids", index_still_pending)
    assert grant["id"] not in [g.id for g in store.active_grants(ROLE_ARN)]  # what a lagging index shows

    sync.sync_role(world.deps, ROLE_ARN, "trustgate", "someone else's expiry")

    assert world.status(grant["id"]) == "active"
    assert grant_expiry_in(world.trust_policy(), ALICE) is not None
    assert alice_window(world) != (None, None)


# -- 2. a renewal needs the lock still held ---------------------------------------------------------------


def test_a_holder_that_stalled_while_another_revoked_and_released_writes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = granted(world)
    iam = world.session.client("iam")
    forge_statement(world)  # something for the stalled holder to write
    iam.delete_role_policy(RoleName=ROLE_NAME, PolicyName=GUARD_POLICY_NAME)
    store = world.deps.store
    real_record_intent = store.record_intent
    revoked: list[tuple[int, Any]] = []
    stalled: list[str] = []

    def stalls_past_its_lease(name: str, owner: str, intent: dict[str, Any]) -> None:
        real_record_intent(name, owner, intent)
        if not stalled:  # the holder stalls past its lease; an admin's revoke takes the lock, ends, releases it
            stalled.append(owner)
            world.advance(sync.LOCK_LEASE + timedelta(seconds=1))
            revoked.append(world.api("POST", REVOKE, CAROL, {"principal": ALICE}))

    monkeypatch.setattr(store, "record_intent", stalls_past_its_lease)

    with pytest.raises(LockTimeoutError):
        sync.sync_role(world.deps, ROLE_ARN, "a-stalled-holder", "manual sync", alone=True)

    [(status, body)] = revoked
    assert status == 200, body
    assert world.status(grant["id"]) == "revoked"
    assert grant_expiry_in(world.trust_policy(), ALICE) is None  # the stale plan was not written over it


# -- 3. a revoke ends a grant being activated -------------------------------------------------------------


def test_revoking_a_person_iam_names_before_their_activation_is_recorded_keeps_their_sessions_ended(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    erin = request_access(world, caller=ERIN)["id"]
    real_transition = transitions.transition

    def activation_not_recorded(deps: Any, request: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
        if target == RequestStatus.ACTIVE and request.id == erin:  # the Grant Lambda timed out right here
            raise ConflictError("the table was busy")
        return real_transition(deps, request, target, *args, **kwargs)

    monkeypatch.setattr(sync, "transition", activation_not_recorded)
    approve(world, erin)
    wait_until(lambda: grant_expiry_in(world.trust_policy(), ERIN), "IAM names erin", 20)
    assert world.deps.store.get_request(erin).starts_at is not None
    userid = session_userid(world.role_id(), "erin")

    status, body = world.api("POST", REVOKE, CAROL, {"principal": ERIN})

    assert status == 200, body
    assert grant_expiry_in(world.trust_policy(), ERIN) is None
    assert guard_window(world.session_guard(), userid) != (None, None)  # sessions issued meanwhile end now
    ended = world.deps.store.get_request(erin)
    assert ended.status == RequestStatus.FAILED
    assert ended.expires_at is not None


# -- 4. a refused batch blocks no removal -----------------------------------------------------------------


def test_an_activation_iam_refuses_does_not_block_an_unrelated_revoke_in_the_same_round(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    granted(world)
    erin = request_access(world, caller=ERIN)["id"]
    world.wait_for_task_token(erin)
    store = world.deps.store
    now = world.deps.clock.now()
    assert store.try_lock(ROLE_ARN, "test", now, now + timedelta(minutes=1))
    approve(world, erin)  # its Grant step queues the activation and waits
    wait_until(lambda: erin in store.sync_queue(ROLE_ARN).activate, "erin queued", 20)
    real_try_lock = store.try_lock
    main = threading.main_thread()  # keep erin's own waiter off the lock, as if its Lambda were slow
    monkeypatch.setattr(
        store, "try_lock", lambda *a, **k: threading.current_thread() is main and real_try_lock(*a, **k)
    )
    store.unlock(ROLE_ARN, "test")

    with iam_refuses_principal(world, ERIN):  # erin's IAM user was deleted after the approval
        status, body = world.api("POST", REVOKE, CAROL, {"principal": ALICE})
    monkeypatch.undo()

    assert status == 200, body
    assert grant_expiry_in(world.trust_policy(), ALICE) is None
    assert grant_expiry_in(world.trust_policy(), ERIN) is None  # not activated by the refused batch
    assert world.status(erin) == "pending"
    # Left to its own waiter, judged alone: IAM accepts erin again (her user exists), so she is granted.
    world.wait_status(erin, "active")
    assert grant_expiry_in(world.trust_policy(), ERIN) is not None


# -- 5. the holder's own answer stands --------------------------------------------------------------------


def _queue_then_throttle_reads(world: World, monkeypatch: pytest.MonkeyPatch, after: str) -> None:
    """Once the store's `after` ran: another change queues itself, and every IAM read is throttled."""
    store, roles = world.deps.store, world.deps.roles
    real_after, real_read = getattr(store, after), roles.read
    armed: list[bool] = []

    def then_queue(*args: Any, **kwargs: Any) -> Any:
        result = real_after(*args, **kwargs)
        if not armed:
            armed.append(True)
            store.mark_dirty(ROLE_ARN)
        return result

    def read(role_arn: str) -> Any:
        if armed:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "GetRole")
        return real_read(role_arn)

    monkeypatch.setattr(store, after, then_queue)
    monkeypatch.setattr(roles, "read", read)


def test_a_revoke_is_answered_done_when_a_round_it_serves_for_others_fails(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = granted(world)
    _queue_then_throttle_reads(world, monkeypatch, "finish_round")

    status, body = world.api("POST", REVOKE, CAROL, {"principal": ALICE})
    monkeypatch.undo()

    assert status == 200, body
    assert world.status(grant["id"]) == "revoked"
    assert grant_expiry_in(world.trust_policy(), ALICE) is None
    queue = world.deps.store.sync_queue(ROLE_ARN)
    assert queue.done < queue.wanted  # the other change waits for its own waiter (or the reconciler)


def test_a_revoke_is_answered_done_when_its_lease_is_lost_while_serving_others(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = granted(world)
    store = world.deps.store
    real_finish = store.finish_round
    armed: list[bool] = []

    def then_lose_the_lease(*args: Any, **kwargs: Any) -> Any:
        result = real_finish(*args, **kwargs)
        if not armed:
            armed.append(True)
            store.mark_dirty(ROLE_ARN)
            world.advance(sync.LOCK_LEASE + timedelta(seconds=1))
            now = world.deps.clock.now()
            assert store.try_lock(ROLE_ARN, "someone-else", now, now + sync.LOCK_LEASE)
        return result

    monkeypatch.setattr(store, "finish_round", then_lose_the_lease)

    status, body = world.api("POST", REVOKE, CAROL, {"principal": ALICE})
    monkeypatch.undo()

    assert status == 200, body
    assert world.status(grant["id"]) == "revoked"
    assert grant_expiry_in(world.trust_policy(), ALICE) is None


# -- 6. a stored policy is answered stored ----------------------------------------------------------------


def test_a_policy_stored_before_its_guard_write_failed_is_answered_stored_and_finished_by_the_next_round(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = granted(world)
    before = alice_window(world)
    version = world.api("GET", "/roles/PumpCustomerAccess/policy", CAROL)[1]["version"]
    real_write = world.deps.roles.write_session_guard
    failed: list[bool] = []

    def throttled_once(role_arn: str, document: Any) -> None:
        if not failed:
            failed.append(True)
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "PutRolePolicy")
        real_write(role_arn, document)

    monkeypatch.setattr(world.deps.roles, "write_session_guard", throttled_once)

    status, body = world.api(
        "PUT",
        "/roles/PumpCustomerAccess/policy",
        CAROL,
        {"requester_accounts": [MANAGEMENT]},  # alice's account (the member account) is no longer allowed
        headers={"If-Match": str(version)},
    )

    assert status == 200, body
    assert failed
    stored = world.api("GET", "/roles/PumpCustomerAccess/policy", CAROL)[1]
    assert stored["version"] == version + 1
    assert world.status(grant["id"]) == "revoked"
    assert grant_expiry_in(world.trust_policy(), ALICE) is None
    assert alice_window(world) != before  # the holder's next round wrote the guard: her sessions end now
    queue = world.deps.store.sync_queue(ROLE_ARN)
    assert (queue.done, queue.intent) == (queue.wanted, None)
    actions = [e.action for e in world.deps.store.audit_events(role_arn=ROLE_ARN).items]
    assert "guard.synced" in actions
    assert "role.synced" in actions


# -- 7. a throttled recovery keeps the intent -------------------------------------------------------------


def test_a_throttled_recovery_audit_is_not_taken_for_one_already_recorded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sync._audit
    lost: list[str] = []

    def audit_fails_once(*args: Any, **kwargs: Any) -> None:
        if not lost:
            lost.append(args[3])
            raise RuntimeError("the table throttled the audit record")
        real(*args, **kwargs)

    monkeypatch.setattr(sync, "_audit", audit_fails_once)
    request_id = request_access(world)["id"]
    approve(world, request_id)
    world.wait_status(request_id, "active")
    assert world.deps.store.sync_queue(ROLE_ARN).intent is not None
    monkeypatch.setattr(sync, "_audit", real)
    client = world.deps.store.client

    def busy(params: dict[str, Any], **_: Any) -> None:  # the recovery audit is one conditional put
        if "recovered" in str(params.get("Item", "")):
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Throughput exceeds the table's capacity"}},
                "PutItem",
            )

    client.meta.events.register("before-parameter-build.dynamodb.PutItem", busy)
    try:
        world.invoke("ReconcileFunction", {})
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb.PutItem", busy)

    assert world.deps.store.sync_queue(ROLE_ARN).intent is not None  # kept for the next round
    world.invoke("ReconcileFunction", {})  # the table is no longer busy
    events = world.deps.store.audit_events(role_arn=ROLE_ARN).items
    assert [e.detail.get("recovered") is not None for e in events if e.action == lost[0]] == [True]
    assert world.deps.store.sync_queue(ROLE_ARN).intent is None
