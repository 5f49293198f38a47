"""Revoke fails closed: the API reports a grant revoked only once IAM no longer names its person.

IAM failures are injected into the IAM adapter (`deps.roles`, the RoleEditor every handler shares), a lagging
index into the store's index query; everything else runs as users call it, through HTTP and the reconciler.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.adversarial import refused_unchanged
from tests.support.aws import ALICE, CAROL, ROLE_ARN, VENDOR_TRUST, World, api_event
from tests.support.flows import granted
from trustgate.app import sync
from trustgate.core.clock import parse_rfc3339
from trustgate.core.models import AccessRequest
from trustgate.core.records import Page
from trustgate.core.session_guard import guard_window
from trustgate.core.trust_policy import grant_expiry_in

pytestmark = pytest.mark.functional

PERSON_PATH = "/roles/PumpCustomerAccess/revoke"


def call(world: World, method: str, path: str, caller: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
    """Like `world.api`, with the response headers too."""
    response = world.invoke("ApiFunction", api_event(method, path, caller, body))
    headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers |= response.get("headers") or {}
    return response["statusCode"], json.loads(response.get("body") or "null"), headers


def iam_refuses(world: World, monkeypatch: pytest.MonkeyPatch, method: str) -> Callable[[], None]:
    """Make one IAM write fail as an unreachable or unauthorized IAM does; returns the undo."""
    original = getattr(world.deps.roles, method)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform this IAM action"}}, method
        )

    monkeypatch.setattr(world.deps.roles, method, refuse)
    return lambda: monkeypatch.setattr(world.deps.roles, method, original)


def names_alice(world: World) -> bool:
    return grant_expiry_in(world.trust_policy(), ALICE) is not None


def guard_end(world: World) -> datetime | None:
    return guard_window(world.session_guard(), f"{world.role_id()}:alice")[1]


def assert_incomplete(status: int, body: Any, headers: dict[str, str]) -> str:
    assert (status, body["error"]["code"]) == (503, "revoke_incomplete"), body
    assert headers.get("Retry-After") == "30"
    message = str(body["error"]["message"])
    assert "is recorded" in message
    assert "may still name them" in message
    assert "Retry this call" in message
    assert "reconciler finishes it within 5 minutes" in message
    return message


def test_an_iam_error_answers_503_and_a_retried_revoke_finishes_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = granted(world)
    undo = iam_refuses(world, monkeypatch, "write_trust_policy")

    status, body, headers = call(world, "POST", f"/requests/{grant['id']}/revoke", ALICE, {"reason": "done"})

    message = assert_incomplete(status, body, headers)
    assert "AccessDenied" in message
    # Recorded first (every later sync renders alice out), but IAM still names her: never reported revoked.
    assert world.status(grant["id"]) == "revoked"
    assert names_alice(world)

    undo()
    status, body, _ = call(world, "POST", f"/requests/{grant['id']}/revoke", ALICE, {"reason": "done"})

    assert status == 200, body
    assert (body["id"], body["status"]) == (grant["id"], "revoked")
    assert world.trust_policy() == VENDOR_TRUST
    assert guard_end(world) == parse_rfc3339(body["expires_at"])  # her sessions end at the revoke
    # Finished is finished: asked once more, the same answer.
    again, body_again, _ = call(world, "POST", f"/requests/{grant['id']}/revoke", ALICE)
    assert (again, body_again["status"]) == (200, "revoked")
    assert world.trust_policy() == VENDOR_TRUST


def test_the_reconciler_finishes_an_incomplete_revoke(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    grant = granted(world)
    undo_guard = iam_refuses(world, monkeypatch, "write_session_guard")  # the first write: nothing is written
    guard_before = world.session_guard()

    status, body, headers = call(world, "POST", f"/requests/{grant['id']}/revoke", CAROL)

    assert_incomplete(status, body, headers)
    assert names_alice(world)
    assert world.session_guard() == guard_before

    undo_guard()
    report = world.invoke("ReconcileFunction", {})

    assert [r.get("error") for r in report["roles"]] == [None]
    assert world.trust_policy() == VENDOR_TRUST
    ended = world.deps.store.get_request(grant["id"]).expires_at
    assert ended is not None
    assert guard_end(world) == ended
    # The admin's retry now finds the work done: 200, not 409.
    status, body, _ = call(world, "POST", f"/requests/{grant['id']}/revoke", CAROL)
    assert (status, body["status"]) == (200, "revoked")


def test_a_retried_revoke_of_a_person_finishes_it_and_then_finds_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = granted(world)
    undo = iam_refuses(world, monkeypatch, "write_trust_policy")

    status, body, headers = call(world, "POST", PERSON_PATH, CAROL, {"principal": ALICE})

    assert_incomplete(status, body, headers)
    assert names_alice(world)

    undo()
    status, body, _ = call(world, "POST", PERSON_PATH, CAROL, {"principal": ALICE})

    assert status == 200, body
    assert [(r["id"], r["status"]) for r in body["ended"]] == [(grant["id"], "revoked")]
    assert world.trust_policy() == VENDOR_TRUST
    # IAM is up to date and alice holds nothing: now a revoke of her has nothing to do.
    status, body, _ = call(world, "POST", PERSON_PATH, CAROL, {"principal": ALICE})
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_a_trust_policy_that_does_not_read_back_answers_503(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    grant = granted(world)
    stale = world.trust_policy()
    original = world.deps.roles.trust_policy
    monkeypatch.setattr(world.deps.roles, "trust_policy", lambda role_arn: stale)  # IAM shows the old document

    status, body, headers = call(world, "POST", f"/requests/{grant['id']}/revoke", ALICE)

    assert "read back differs" in assert_incomplete(status, body, headers)
    monkeypatch.setattr(world.deps.roles, "trust_policy", original)
    status, body, _ = call(world, "POST", f"/requests/{grant['id']}/revoke", ALICE)
    assert (status, body["status"]) == (200, "revoked")
    assert world.trust_policy() == VENDOR_TRUST


def lagging_index(world: World, monkeypatch: pytest.MonkeyPatch, grant_id: str, show: AccessRequest | None) -> None:
    """The role's and person's indexes do not show the grant's latest write yet: `show` (an older copy) or nothing."""
    store = world.deps.store
    original = store._query_requests

    def query(index: str, *args: Any, **kwargs: Any) -> Page[AccessRequest]:
        page = original(index, *args, **kwargs)
        if index not in ("ByRole", "ByPrincipal"):
            return page
        items = [(show if r.id == grant_id else r) for r in page.items]
        return Page([r for r in items if r is not None], page.next)

    monkeypatch.setattr(store, "_query_requests", query)


@pytest.mark.parametrize("index_shows", ["nothing", "the-active-copy"])
def test_a_revoke_by_id_ends_a_grant_the_index_does_not_show_yet(
    world: World, monkeypatch: pytest.MonkeyPatch, index_shows: str
) -> None:
    grant = granted(world)
    active_copy = world.deps.store.get_request(grant["id"])
    lagging_index(world, monkeypatch, grant["id"], active_copy if index_shows == "the-active-copy" else None)

    status, body = world.api("POST", f"/requests/{grant['id']}/revoke", ALICE)

    assert status == 200, body
    assert body["status"] == "revoked"
    assert world.status(grant["id"]) == "revoked"
    assert world.trust_policy() == VENDOR_TRUST
    assert guard_end(world) == parse_rfc3339(body["expires_at"])


def test_a_busy_lock_records_nothing_and_a_retry_succeeds(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    grant = granted(world)
    monkeypatch.setattr(sync, "LOCK_WAIT_SECONDS", 0.0)  # give up at once instead of after 20 s
    now = world.deps.clock.now()
    assert world.deps.store.try_lock(ROLE_ARN, "another-sync", now, now + timedelta(minutes=2))

    body = refused_unchanged(
        world, lambda: world.api("POST", f"/requests/{grant['id']}/revoke", ALICE), 429, "role_busy"
    )

    assert "nothing was revoked yet" in body["error"]["message"]
    assert "retry" in body["error"]["message"]
    assert world.status(grant["id"]) == "active"
    world.deps.store.unlock(ROLE_ARN, "another-sync")
    status, body = world.api("POST", f"/requests/{grant['id']}/revoke", ALICE)
    assert (status, body["status"]) == (200, "revoked")
    assert world.trust_policy() == VENDOR_TRUST
