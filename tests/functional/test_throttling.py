"""Throttling is a 429 with Retry-After, never a 409 or a 5xx, and it changes nothing (issue 11).

AWS throttles are injected at the boto3 clients TrustGate's handlers share (a `before-call` hook raises what
AWS answers once botocore's own retries are spent), optimistic conflicts at the store; everything else runs
as users call it, through the HTTP API and the approval page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.adversarial import refused_unchanged
from tests.support.aws import ALICE, BOB, CAROL, DAVE, MANAGEMENT, ROLE_ARN, World, api_event
from tests.support.flows import granted, request_access
from tests.support.links import approval_links, call_page
from trustgate.adapters import iam
from trustgate.app import decisions, sync
from trustgate.core.errors import ConflictError
from trustgate.core.identity import caller_for_arn
from trustgate.core.models import AccessRequest, AuditEvent
from trustgate.core.trust_policy import grant_expiry_in

pytestmark = pytest.mark.functional


def call(world: World, method: str, path: str, caller: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
    """Like `world.api`, with the response headers too."""
    response = world.invoke("ApiFunction", api_event(method, path, caller, body))
    headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers |= response.get("headers") or {}
    return response["statusCode"], json.loads(response.get("body") or "null"), headers


def throttle_error(operation: str, code: str) -> ClientError:
    if code == "TransactionCanceledException":  # DynamoDB cancels a transaction the table is too busy for
        response: Any = {
            "Error": {"Code": code, "Message": "Transaction cancelled, please refer cancellation reasons"},
            "CancellationReasons": [{"Code": "ThrottlingError", "Message": "Throughput exceeds the limit"}],
        }
        return ClientError(response, operation)
    return ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, operation)


@contextmanager
def aws_throttles(client: Any, event: str, code: str, after: int = 0) -> Iterator[list[str]]:
    """While inside: every call `event` names (`before-call.<service>.<Operation>`) but the first `after` is
    answered with throttling, as AWS answers once botocore's retries are spent. Yields the calls refused."""
    calls: list[str] = []
    passed: list[str] = []
    operation = event.rsplit(".", 1)[-1]

    def refuse(**_: Any) -> None:
        if len(passed) < after:
            passed.append(operation)
            return
        calls.append(operation)
        raise throttle_error(operation, code)

    client.meta.events.register(event, refuse)
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, refuse)


def losing_races(world: World, monkeypatch: pytest.MonkeyPatch, losses: int) -> list[int]:
    """The first `losses` writes of a request lose to a concurrent writer (the store's 409 on a changed version)."""
    attempts: list[int] = []
    original = world.deps.store.replace_request

    def replace(before: AccessRequest, after: AccessRequest, audit: AuditEvent | None) -> None:
        attempts.append(before.version)
        if len(attempts) <= losses:
            raise ConflictError(f"request {before.id} changed meanwhile; read it again")
        original(before, after, audit)

    monkeypatch.setattr(world.deps.store, "replace_request", replace)
    return attempts


def pending(world: World) -> str:
    """A request awaiting approval, once its flow has sent the approvers their links (and so writes no more)."""
    request_id = str(request_access(world)["id"])
    world.wait_for_task_token(request_id)
    approval_links(world, request_id)
    return request_id


def assert_retry_later(headers: dict[str, str], seconds: str) -> None:
    assert headers.get("Retry-After") == seconds, headers


# -- deciding ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["ThrottlingException", "ProvisionedThroughputExceededException"])
def test_a_throttled_table_during_approve_answers_429_with_retry_after_and_records_nothing(
    world: World, code: str
) -> None:
    request_id = pending(world)
    answered: dict[str, str] = {}

    def approve() -> tuple[int, Any]:
        status, body, headers = call(world, "POST", f"/requests/{request_id}/approve", BOB, {"comment": "ok"})
        answered.update(headers)
        return status, body

    with aws_throttles(world.deps.store.client, "before-call.dynamodb.TransactWriteItems", code):
        body = refused_unchanged(world, approve, 429, "throttled")

    assert_retry_later(answered, "5")
    assert "nothing was changed" in body["error"]["message"]
    assert "retry" in body["error"]["message"].lower()
    status, _ = world.api("POST", f"/requests/{request_id}/approve", BOB)  # once AWS lets up, it goes through
    assert status == 200


def test_a_transaction_cancelled_because_the_table_was_busy_is_429_throttled_not_409(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = pending(world)
    pauses: list[float] = []
    monkeypatch.setattr(world.deps, "sleep", pauses.append)
    answered: dict[str, str] = {}

    def approve() -> tuple[int, Any]:
        status, body, headers = call(world, "POST", f"/requests/{request_id}/approve", BOB)
        answered.update(headers)
        return status, body

    event = "before-call.dynamodb.TransactWriteItems"
    with aws_throttles(world.deps.store.client, event, "TransactionCanceledException") as calls:
        refused_unchanged(world, approve, 429, "throttled")

    assert len(calls) == decisions.OPTIMISTIC_RETRIES  # retried as a lost race, with a pause between attempts
    assert len(pauses) == decisions.OPTIMISTIC_RETRIES - 1
    assert_retry_later(answered, "5")


def test_a_decision_that_loses_every_race_answers_429_decision_busy_after_short_growing_pauses(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = pending(world)
    attempts = losing_races(world, monkeypatch, losses=decisions.OPTIMISTIC_RETRIES)
    pauses: list[float] = []
    monkeypatch.setattr(world.deps, "sleep", pauses.append)
    answered: dict[str, str] = {}

    def approve() -> tuple[int, Any]:
        status, body, headers = call(world, "POST", f"/requests/{request_id}/approve", BOB)
        answered.update(headers)
        return status, body

    body = refused_unchanged(world, approve, 429, "decision_busy")

    assert len(attempts) == decisions.OPTIMISTIC_RETRIES
    first, most = decisions.OPTIMISTIC_PAUSE_SECONDS
    assert len(pauses) == decisions.OPTIMISTIC_RETRIES - 1  # a pause between attempts, never 8 in a row
    assert all(0 <= pause <= min(most, first * 2**n) for n, pause in enumerate(pauses))
    assert sum(pauses) <= 1.0
    assert_retry_later(answered, "2")
    assert "nothing was changed" in body["error"]["message"]
    assert world.status(request_id) == "pending"


def test_a_decision_that_loses_a_few_races_is_recorded(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    request_id = pending(world)
    attempts = losing_races(world, monkeypatch, losses=3)

    status, body = world.api("POST", f"/requests/{request_id}/approve", BOB)

    assert status == 200, body
    assert len(attempts) == 4
    assert [a["approver_arn"] for a in body["approvals"]] == [BOB]


def test_a_race_lost_to_a_real_decision_is_still_a_409(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    request_id = pending(world)
    original = world.deps.store.replace_request
    raced: list[bool] = []

    def replace(before: AccessRequest, after: AccessRequest, audit: AuditEvent | None) -> None:
        if not raced:  # DAVE denies in the instant between BOB's read and BOB's write
            raced.append(True)
            monkeypatch.setattr(world.deps.store, "replace_request", original)
            dave = caller_for_arn(DAVE, world.deps.settings.caller_policy())
            decisions.decide(world.deps, dave, request_id, "deny", "no")  # (the host serves one API call at a time)
            raise ConflictError(f"request {before.id} changed meanwhile; read it again")
        original(before, after, audit)

    monkeypatch.setattr(world.deps.store, "replace_request", replace)

    status, body = world.api("POST", f"/requests/{request_id}/approve", BOB)

    assert (status, body["error"]["code"]) == (409, "already_decided"), body
    assert world.status(request_id) == "denied"


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_a_throttle_after_the_decision_is_recorded_does_not_fail_it(
    world: World, monkeypatch: pytest.MonkeyPatch, decision: str
) -> None:
    request_id = pending(world)

    def throttled_read(_: str) -> str | None:
        raise throttle_error("GetItem", "ThrottlingException")

    monkeypatch.setattr(world.deps.store, "get_task_token", throttled_read)  # handing it to the flow fails

    status, body = world.api("POST", f"/requests/{request_id}/{decision}", BOB)

    assert status == 200, body
    assert world.deps.store.get_request(request_id).decided_at is not None


# -- the approval page -----------------------------------------------------------------------------------------


def test_a_throttled_table_on_the_approval_page_answers_429_with_retry_after_and_spends_no_link(
    world: World,
) -> None:
    request_id = request_access(world)["id"]
    token = approval_links(world, request_id)[BOB]

    with aws_throttles(world.deps.store.client, "before-call.dynamodb.GetItem", "ThrottlingException"):
        page = call_page(world, "POST", token, json_body={"decision": "approve"})
        shown = call_page(world, "GET", token)

    assert (page.status, page.json()["error"]["code"]) == (429, "throttled")
    assert page.headers.get("Retry-After") == "5"
    assert shown.status == 429
    assert shown.headers.get("Retry-After") == "5"
    assert "text/html" in shown.headers.get("Content-Type", "")
    again = call_page(world, "POST", token, json_body={"decision": "approve"})  # the link still works
    assert again.status == 200, again.body


def test_a_link_decision_that_loses_every_race_answers_429_and_says_how_to_send_it_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = request_access(world)["id"]
    token = approval_links(world, request_id)[BOB]
    losing_races(world, monkeypatch, losses=decisions.OPTIMISTIC_RETRIES)

    page = call_page(world, "POST", token, json_body={"decision": "approve"})

    assert (page.status, page.json()["error"]["code"]) == (429, "decision_busy")
    assert page.headers.get("Retry-After") == "2"
    message = page.json()["error"]["message"]
    assert "was not recorded" in message
    assert "use this link again" in message
    assert f"trustgate approve {request_id}" in message
    assert world.deps.store.get_request(request_id).approvals == []
    monkeypatch.undo()  # the others are done deciding
    again = call_page(world, "POST", token, json_body={"decision": "approve"})
    assert again.status == 200, again.body  # the link was given back
    assert [a.approver_arn for a in world.deps.store.get_request(request_id).approvals] == [BOB]


def test_a_link_decision_aws_throttled_gives_the_link_back(world: World) -> None:
    request_id = request_access(world)["id"]
    token = approval_links(world, request_id)[BOB]

    with aws_throttles(world.deps.store.client, "before-call.dynamodb.TransactWriteItems", "ThrottlingException"):
        page = call_page(world, "POST", token, json_body={"decision": "deny"})

    assert (page.status, page.json()["error"]["code"]) == (429, "throttled")
    assert "use this link again" in page.json()["error"]["message"]
    assert world.status(request_id) == "pending"
    again = call_page(world, "POST", token, json_body={"decision": "deny"})
    assert again.status == 200, again.body
    assert world.status(request_id) == "denied"


def test_a_link_that_cannot_be_given_back_stays_spent_and_the_message_says_how_else_to_decide(world: World) -> None:
    request_id = request_access(world)["id"]
    token = approval_links(world, request_id)[BOB]
    client = world.deps.store.client

    with (
        aws_throttles(client, "before-call.dynamodb.TransactWriteItems", "ThrottlingException"),
        aws_throttles(client, "before-call.dynamodb.UpdateItem", "ThrottlingException", after=1),
    ):
        page = call_page(world, "POST", token, json_body={"decision": "approve"})

    assert (page.status, page.json()["error"]["code"]) == (429, "throttled")
    message = page.json()["error"]["message"]
    assert "could not be given back" in message
    assert f"trustgate approve {request_id}" in message
    again = call_page(world, "POST", token, json_body={"decision": "approve"})
    assert (again.status, again.json()["error"]["code"]) == (409, "link_used")
    assert world.status(request_id) == "pending"


# -- revoking and syncing ----------------------------------------------------------------------------------


def test_a_throttled_table_during_a_revoke_answers_429_and_revokes_nothing(world: World) -> None:
    grant = granted(world)
    answered: dict[str, str] = {}

    def revoke() -> tuple[int, Any]:
        status, body, headers = call(world, "POST", f"/requests/{grant['id']}/revoke", ALICE, {"reason": "done"})
        answered.update(headers)
        return status, body

    with aws_throttles(world.deps.store.client, "before-call.dynamodb.Query", "ThrottlingException"):
        refused_unchanged(world, revoke, 429, "throttled")

    assert_retry_later(answered, "5")
    assert world.status(grant["id"]) == "active"
    assert grant_expiry_in(world.trust_policy(), ALICE) is not None
    status, body = world.api("POST", f"/requests/{grant['id']}/revoke", ALICE, {"reason": "done"})  # a retry
    assert (status, body["status"]) == (200, "revoked"), body
    assert grant_expiry_in(world.trust_policy(), ALICE) is None


def test_a_throttled_iam_answers_429_after_exactly_the_loops_attempts(world: World) -> None:
    answered: dict[str, str] = {}

    def sync_now() -> tuple[int, Any]:
        status, body, headers = call(world, "POST", "/roles/PumpCustomerAccess/sync", CAROL)
        answered.update(headers)
        return status, body

    client = world.deps.roles.client_for(MANAGEMENT)
    with aws_throttles(client, "before-call.iam.GetRole", "Throttling") as calls:
        refused_unchanged(world, sync_now, 429, "throttled")

    assert len(calls) == iam.ATTEMPTS  # one retrying layer: 6 calls, not botocore's 5 for each of them
    assert_retry_later(answered, "5")


def test_a_revoke_already_recorded_when_iam_throttles_says_so_and_a_retry_finishes_it(world: World) -> None:
    """Revoke fails closed: its end is recorded before IAM is written, so a throttled IAM cannot mean "nothing
    changed". It answers 503 revoke_incomplete with Retry-After (docs/api.md), never a 409."""
    grant = granted(world)
    client = world.deps.roles.client_for(MANAGEMENT)

    with aws_throttles(client, "before-call.iam.UpdateAssumeRolePolicy", "Throttling"):
        status, body, headers = call(world, "POST", f"/requests/{grant['id']}/revoke", ALICE)

    assert (status, body["error"]["code"]) == (503, "revoke_incomplete"), body
    assert_retry_later(headers, "30")
    status, body = world.api("POST", f"/requests/{grant['id']}/revoke", ALICE)
    assert (status, body["status"]) == (200, "revoked"), body
    assert grant_expiry_in(world.trust_policy(), ALICE) is None


def test_a_busy_role_answers_429_role_busy_with_retry_after(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync, "LOCK_WAIT_SECONDS", 0.2)
    now = world.deps.clock.now()
    assert world.deps.store.try_lock(ROLE_ARN, "another-sync", now, now + timedelta(minutes=2))

    status, body, headers = call(world, "POST", "/roles/PumpCustomerAccess/sync", CAROL)

    assert (status, body["error"]["code"]) == (429, "role_busy")
    assert_retry_later(headers, "5")


# -- events -------------------------------------------------------------------------------------------------


def refusing_every_event(world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """EventBridge answers 200 but refuses each entry (as it does when throttled); returns how many it refused."""
    refused: list[int] = []

    def put_events(**kwargs: Any) -> dict[str, Any]:
        refused.append(len(kwargs["Entries"]))
        failed = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
        return {"FailedEntryCount": len(kwargs["Entries"]), "Entries": [failed for _ in kwargs["Entries"]]}

    monkeypatch.setattr(world.deps.events.client, "put_events", put_events)
    return lambda: sum(refused)


def test_events_eventbridge_refuses_never_fail_the_change_and_are_counted(
    world: World, monkeypatch: pytest.MonkeyPatch, metrics_added: list[str]
) -> None:
    refused = refusing_every_event(world, monkeypatch)

    request_id = request_access(world)["id"]
    world.wait_for_task_token(request_id)
    status, body = world.api("POST", f"/requests/{request_id}/approve", BOB)
    world.wait_status(request_id, "active")

    assert status == 200, body
    assert refused() >= 2  # request.created, request.approved, the grant's own
    # Each is logged and counted (sync's own audit events too, once sync._publish publishes quietly as well).
    assert 2 <= metrics_added.count("EventsNotPublished") <= refused()
    audit = world.deps.store.audit_events(role_arn=ROLE_ARN, limit=100).items
    assert {"request.created", "request.approved"} <= {e.action for e in audit if e.request_id == request_id}


# -- what the API promises -------------------------------------------------------------------------------------


def test_the_openapi_document_lists_the_429_codes(world: World) -> None:
    status, document = world.api("GET", "/openapi.json", ALICE)

    assert status == 200
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "`throttled`" in operation["responses"]["429"]["description"], (method, path)
    approve = document["paths"]["/requests/{request_id}/approve"]["post"]["responses"]
    assert "`decision_busy`" in approve["429"]["description"]
    assert "`already_decided`" in approve["409"]["description"]
