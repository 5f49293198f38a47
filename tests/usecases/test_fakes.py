"""The fakes keep the store's promises the use cases rely on (store.Store's, as moto tests check them there)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.usecases.conftest import ALICE, BOB, ROLE_ARN, approve, caller, request_access
from trustgate.core.errors import ConflictError, InvalidCursorError, LockTimeoutError
from trustgate.core.ids import new_id
from trustgate.core.models import AuditEvent, RequestStatus, RolePolicy
from trustgate_local.fakes import FakeDependencies, FakeStore

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def audit(action: str = "test") -> AuditEvent:
    return AuditEvent(id=new_id(NOW), at=NOW, actor="test", action=action, role_arn=ROLE_ARN)


def test_replace_request_is_optimistic_and_frees_the_open_marker(deps: FakeDependencies) -> None:
    request = request_access(deps)
    with pytest.raises(ValueError, match=r"before\.version \+ 1"):
        deps.store.replace_request(request, request, None)
    cancelled = request.model_copy(update={"status": RequestStatus.CANCELLED, "version": request.version + 1})
    deps.store.replace_request(request, cancelled, audit())
    with pytest.raises(ConflictError, match=f"request {request.id} changed meanwhile; read it again"):
        deps.store.replace_request(request, cancelled, None)  # the stored version moved on
    request_access(deps)  # the marker went with the pending status


def test_what_the_store_returns_is_a_copy(deps: FakeDependencies) -> None:
    request = approve(deps, request_access(deps).id)
    got = deps.store.get_request(request.id)
    got.approvals.clear()
    got.approvers.append(ALICE)
    assert deps.store.get_request(request.id) == request


def test_audit_is_append_only_and_put_once_is_idempotent() -> None:
    store = FakeStore()
    event = audit()
    assert store.put_audit_once(event) is True
    assert store.put_audit_once(event) is False
    with pytest.raises(ConflictError):
        store.put_audit(event)
    assert store.audit_events(actor="nobody").items == []
    assert [e.id for e in store.audit_events(role_arn=ROLE_ARN).items] == [event.id]


def test_role_policies_are_versioned_and_unrenderable_is_noted_once() -> None:
    store = FakeStore()
    assert store.get_role_policy(ROLE_ARN)[1] == 0
    store.put_role_policy(ROLE_ARN, RolePolicy(), 0, audit())
    with pytest.raises(ConflictError, match="changed meanwhile"):
        store.put_role_policy(ROLE_ARN, RolePolicy(), 0, audit())
    assert store.mark_policy_unrenderable(ROLE_ARN, 1, "too big", audit()) is True
    assert store.mark_policy_unrenderable(ROLE_ARN, 1, "too big", audit()) is False
    assert store.get_stored_policy(ROLE_ARN).unrenderable == "too big"
    store.put_role_policy(ROLE_ARN, RolePolicy(), 1, audit())  # saving again clears it
    stored = store.get_stored_policy(ROLE_ARN)
    assert (stored.version, stored.unrenderable) == (2, None)


def test_tokens_are_single_use_and_a_release_needs_the_same_use() -> None:
    store = FakeStore()
    store.put_token("h", {"request_id": "r"}, NOW + timedelta(hours=1))
    assert store.use_token("h", NOW) is True
    assert store.use_token("h", NOW) is False
    assert store.release_token("h", NOW + timedelta(seconds=5)) is False
    assert store.release_token("h", NOW) is True
    assert store.use_token("h", NOW) is True
    assert store.use_token("missing", NOW) is False


def test_a_decision_delivery_claim_is_a_lease(deps: FakeDependencies) -> None:
    request = request_access(deps)
    assert deps.store.claim_decision_delivery(request.id, NOW) is True
    assert deps.store.claim_decision_delivery(request.id, NOW + timedelta(seconds=30)) is False
    assert deps.store.claim_decision_delivery(request.id, NOW + timedelta(seconds=61)) is True
    deps.store.release_decision_delivery(request.id, NOW + timedelta(seconds=61))
    assert deps.store.claim_decision_delivery(request.id, NOW) is True
    assert deps.store.claim_decision_delivery("no-such-request", NOW) is False


def test_only_the_lock_holder_may_renew_or_write_the_queue() -> None:
    store = FakeStore()
    assert store.mark_dirty("role", activate=["a"]) == 1
    assert store.try_lock("role", "one", NOW, NOW + timedelta(seconds=30)) is True
    assert store.try_lock("role", "two", NOW, NOW + timedelta(seconds=30)) is False
    with pytest.raises(LockTimeoutError):
        store.renew_lock("role", "two", NOW + timedelta(minutes=1))
    store.record_intent("role", "one", {"trust": 1})
    assert store.sync_queue("role").intent == {"trust": 1}
    assert store.finish_round("role", "one", 1, ["a"], keep_intent=False) == 1
    queue = store.sync_queue("role")
    assert (queue.done, queue.activate, queue.intent, queue.owner) == (1, frozenset(), None, "one")
    assert store.try_lock("role", "two", NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)) is True  # lapsed
    store.unlock("role", "one")  # no longer its lock: nothing happens
    assert store.sync_queue("role").owner == "two"


def test_listings_page_newest_first_and_refuse_another_listings_cursor(deps: FakeDependencies) -> None:
    ids = []
    for who in (ALICE, BOB):
        ids.append(request_access(deps, who).id)
        deps.clock.advance(timedelta(seconds=1))
    first = deps.store.requests_by_role(ROLE_ARN, RequestStatus.PENDING, limit=1)
    assert [r.id for r in first.items] == [ids[1]]
    assert first.next
    second = deps.store.requests_by_role(ROLE_ARN, RequestStatus.PENDING, first.next, limit=1)
    assert ([r.id for r in second.items], second.next) == ([ids[0]], None)
    with pytest.raises(InvalidCursorError):
        deps.store.requests_by_person(caller(ALICE).person.key, first.next)
    with pytest.raises(InvalidCursorError):
        deps.store.requests_by_role(ROLE_ARN, RequestStatus.ACTIVE, first.next)
    with pytest.raises(InvalidCursorError):
        deps.store.all_requests("not a cursor")
    assert [r.id for r in deps.store.requests_by_person(caller(ALICE).person.key).items] == [ids[0]]
    assert len(deps.store.requests_by_status_since(RequestStatus.PENDING, NOW)) == 2
    assert deps.store.requests_by_status_since(RequestStatus.PENDING, NOW + timedelta(seconds=1))[0].id == ids[1]
