"""Every API route: its success and its documented errors, through the API handler as API Gateway calls it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.aws import ALICE, BOB, CAROL, DAVE, MALLORY, MEMBER, ROLE_ARN, VENDOR_TRUST, World
from tests.support.flows import JUSTIFICATION, approve, granted, request_access
from trustgate.api import requests as requests_api
from trustgate.core.errors import TrustGateError

pytestmark = pytest.mark.functional

BODY = {"role": "PumpCustomerAccess", "duration": "PT1H", "justification": JUSTIFICATION}


def error(
    world: World, method: str, path: str, caller: str | None, body: object = None, **kw: dict[str, str] | None
) -> tuple[int, str, str]:
    status, answer = world.api(method, path, caller, body, **kw)
    assert set(answer) == {"error"}, answer
    return status, answer["error"]["code"], answer["error"]["message"]


# -- POST /requests ------------------------------------------------------------------------------


def test_post_requests_answers_201_with_the_request(world: World) -> None:
    body = request_access(world)
    assert body["status"] == "pending"
    assert body["principal_arn"] == ALICE
    assert body["role_arn"] == ROLE_ARN
    assert body["duration"] == "PT1H"
    assert body["required_approvals"] == 1
    assert body["approvals"] == []
    assert "task_token" not in body
    assert "approvers" not in body


def test_post_requests_accepts_whole_minutes_and_the_role_arn(world: World) -> None:
    status, body = world.api("POST", "/requests", ALICE, {**BODY, "role": ROLE_ARN, "duration": 90})
    assert (status, body["duration"]) == (201, "PT1H30M")


def test_post_requests_uses_the_role_default_duration_when_none_is_given(world: World) -> None:
    status, body = world.api("POST", "/requests", ALICE, {"role": "PumpCustomerAccess", "justification": JUSTIFICATION})
    assert (status, body["duration"]) == (201, "PT1H")


@pytest.mark.parametrize(
    ("body", "status", "code", "hint"),
    [
        ("{not json", 400, "invalid_input", ""),
        ({"duration": "PT1H", "justification": JUSTIFICATION}, 400, "invalid_input", "role"),
        ({**BODY, "principal": MALLORY}, 400, "invalid_input", "principal"),
        ({**BODY, "duration": "an hour"}, 400, "invalid_input", "PT1H"),
        ({**BODY, "duration": "PT0M"}, 400, "invalid_input", "longer than zero"),
        ({**BODY, "role": "NotManaged"}, 404, "not_found", "PumpCustomerAccess"),
        ({**BODY, "duration": "PT13H"}, 422, "duration_too_long", "PT12H"),
        ({**BODY, "justification": "because"}, 422, "justification_too_short", "at least 10"),
    ],
)
def test_post_requests_refuses_bad_input_clearly_and_changes_nothing(
    world: World, body: object, status: int, code: str, hint: str
) -> None:
    got = error(world, "POST", "/requests", ALICE, body)
    assert got[:2] == (status, code)
    assert hint in got[2]
    assert world.deps.store.all_requests().items == []
    assert world.trust_policy() == VENDOR_TRUST


@pytest.mark.parametrize(
    ("caller", "status", "code"),
    [
        (None, 401, "unauthenticated"),
        (f"arn:aws:iam::{MEMBER}:root", 403, "invalid_principal"),
        (MALLORY, 403, "forbidden"),
        (f"arn:aws-cn:iam::{MEMBER}:user/alice", 403, "invalid_principal"),
    ],
)
def test_post_requests_refuses_callers_who_may_not_ask(
    world: World, caller: str | None, status: int, code: str
) -> None:
    assert error(world, "POST", "/requests", caller, BODY)[:2] == (status, code)
    assert world.deps.store.all_requests().items == []


def test_post_requests_names_an_assumed_role_session(world: World) -> None:
    session = f"arn:aws:sts::{MEMBER}:assumed-role/AWSReservedSSO_Ops_0123456789abcdef/alice@example.com"
    status, body = world.api("POST", "/requests", session, BODY)
    assert (status, body["principal_arn"]) == (201, session)


def test_the_principal_is_always_the_caller_never_the_body(world: World) -> None:
    status, body = world.api("POST", "/requests", DAVE, BODY)
    assert (status, body["principal_arn"]) == (201, DAVE)


def test_idempotency_key_returns_the_same_request_without_a_second_flow(world: World) -> None:
    headers = {"Idempotency-Key": "k-123"}
    first = world.api("POST", "/requests", ALICE, BODY, headers=headers)
    second = world.api("POST", "/requests", ALICE, BODY, headers=headers)
    assert first[0] == second[0] == 201
    assert first[1]["id"] == second[1]["id"]
    assert len(world.deps.store.all_requests().items) == 1
    status, code, _ = error(world, "POST", "/requests", ALICE, {**BODY, "duration": "PT2H"}, headers=headers)
    assert (status, code) == (422, "idempotency_key_reused")


def test_the_same_idempotency_key_while_the_first_is_still_being_processed_is_409_in_progress(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The local host answers one HTTP call at a time, so the retry is made from inside the first call, through
    # the same idempotency layer and table the API uses, while the first still holds its in-progress record.
    real_create = requests_api._create
    retried: list[TrustGateError] = []

    def create_while_a_retry_arrives(payload: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in payload.items() if k != "key"}
        with pytest.raises(TrustGateError) as raised:
            requests_api._create_once(payload["key"], body)
        retried.append(raised.value)
        return real_create(payload)

    monkeypatch.setattr(requests_api, "_create", create_while_a_retry_arrives)
    headers = {"Idempotency-Key": "k-busy"}

    status, created = world.api("POST", "/requests", ALICE, BODY, headers=headers)

    assert status == 201
    [refusal] = retried
    assert (refusal.status, refusal.code) == (409, "in_progress")
    assert "Idempotency-Key" in refusal.message
    assert [r.id for r in world.deps.store.all_requests().items] == [created["id"]]  # the retry created nothing
    monkeypatch.setattr(requests_api, "_create", real_create)
    status, again = world.api("POST", "/requests", ALICE, BODY, headers=headers)  # done: the key answers as usual
    assert (status, again["id"]) == (201, created["id"])


def test_the_same_idempotency_key_from_another_caller_is_another_request(world: World) -> None:
    headers = {"Idempotency-Key": "shared"}
    first = world.api("POST", "/requests", ALICE, BODY, headers=headers)[1]
    second = world.api("POST", "/requests", DAVE, BODY, headers=headers)[1]
    assert first["id"] != second["id"]


# -- reading -------------------------------------------------------------------------------------


def test_get_requests_lists_mine_and_admins_see_all(world: World) -> None:
    mine = request_access(world)["id"]
    other = request_access(world, caller=DAVE)["id"]
    status, body = world.api("GET", "/requests", ALICE)
    assert (status, [r["id"] for r in body["items"]]) == (200, [mine])
    status, body = world.api("GET", "/requests", CAROL)
    assert {r["id"] for r in body["items"]} == {mine, other}
    status, body = world.api("GET", "/requests", CAROL, query={"mine": "true"})
    assert body["items"] == []
    status, body = world.api("GET", "/requests", CAROL, query={"role": "PumpCustomerAccess", "status": "pending"})
    assert {r["id"] for r in body["items"]} == {mine, other}
    status, body = world.api("GET", "/requests", CAROL, query={"status": "active"})
    assert body["items"] == []


def test_get_requests_paginates_with_a_cursor(world: World) -> None:
    ids = set()
    for _ in range(3):  # one open request per person per role: cancel each before the next
        ids.add(request_access(world)["id"])
        assert world.api("POST", f"/requests/{sorted(ids)[-1]}/cancel", ALICE)[0] == 200
    status, page = world.api("GET", "/requests", ALICE, query={"limit": "2"})
    assert (status, len(page["items"])) == (200, 2)
    status, rest = world.api("GET", "/requests", ALICE, query={"limit": "2", "next": page["next"]})
    assert {r["id"] for r in page["items"] + rest["items"]} == ids


@pytest.mark.parametrize(
    ("query", "code"),
    [({"status": "bogus"}, "invalid_input"), ({"next": "%%%"}, "invalid_cursor"), ({"limit": "0"}, "invalid_input")],
)
def test_get_requests_refuses_bad_queries(world: World, query: dict[str, str], code: str) -> None:
    assert error(world, "GET", "/requests", ALICE, query=query)[:2] == (400, code)


def test_get_request_by_id_for_requester_approver_and_admin_only(world: World) -> None:
    request_id = request_access(world)["id"]
    for caller in (ALICE, BOB, CAROL):
        status, body = world.api("GET", f"/requests/{request_id}", caller)
        assert (status, body["id"]) == (200, request_id)
    assert error(world, "GET", f"/requests/{request_id}", f"arn:aws:iam::{MEMBER}:user/erin")[:2] == (404, "not_found")
    assert error(world, "GET", "/requests/NOPE", ALICE)[:2] == (404, "not_found")


# -- cancel / revoke / extend --------------------------------------------------------------------


def test_cancel_only_by_the_requester_and_only_while_pending(world: World) -> None:
    request_id = request_access(world)["id"]
    assert error(world, "POST", f"/requests/{request_id}/cancel", BOB)[:2] == (403, "forbidden")
    status, body = world.api("POST", f"/requests/{request_id}/cancel", ALICE)
    assert (status, body["status"]) == (200, "cancelled")
    assert error(world, "POST", f"/requests/{request_id}/cancel", ALICE)[:2] == (409, "conflict")


def test_revoke_by_requester_or_admin_only_and_only_while_active(world: World) -> None:
    pending = request_access(world)["id"]
    assert error(world, "POST", f"/requests/{pending}/revoke", ALICE)[:2] == (409, "conflict")
    assert world.api("POST", f"/requests/{pending}/cancel", ALICE)[0] == 200
    active = granted(world)["id"]
    assert error(world, "POST", f"/requests/{active}/revoke", BOB)[:2] == (403, "forbidden")
    status, body = world.api("POST", f"/requests/{active}/revoke", CAROL, {"reason": "incident over"})
    assert (status, body["status"], body["reason"]) == (200, "revoked", "incident over")


def test_extend_refuses_others_inactive_grants_and_too_long_totals(world: World) -> None:
    active = granted(world)["id"]
    body = {"duration": "PT1H", "justification": JUSTIFICATION}
    assert error(world, "POST", f"/requests/{active}/extend", DAVE, body)[:2] == (403, "forbidden")
    assert error(world, "POST", f"/requests/{active}/extend", ALICE, {**body, "duration": "PT12H"})[:2] == (
        422,
        "duration_too_long",
    )
    assert error(world, "POST", f"/requests/{active}/extend", ALICE, {"duration": "PT1H"})[:2] == (400, "invalid_input")
    pending = request_access(world)["id"]
    assert error(world, "POST", f"/requests/{pending}/extend", ALICE, body)[:2] == (409, "conflict")


# -- approvers -----------------------------------------------------------------------------------


def test_approvals_lists_what_this_caller_may_decide(world: World) -> None:
    request_id = request_access(world)["id"]
    status, body = world.api("GET", "/approvals", BOB)
    assert (status, [r["id"] for r in body["items"]]) == (200, [request_id])
    assert world.api("GET", "/approvals", ALICE)[1]["items"] == []
    assert world.api("GET", "/approvals", MALLORY.replace("999999999999", MEMBER))[1]["items"] == []


def test_approve_refuses_the_requester_strangers_and_decided_requests(world: World) -> None:
    request_id = request_access(world)["id"]
    assert error(world, "POST", f"/requests/{request_id}/approve", ALICE)[:2] == (403, "own_request")
    assert error(world, "POST", f"/requests/{request_id}/approve", CAROL)[:2] == (403, "forbidden")
    approve(world, request_id)
    assert error(world, "POST", f"/requests/{request_id}/approve", DAVE)[:2] == (409, "already_decided")
    assert error(world, "POST", f"/requests/{request_id}/deny", DAVE)[:2] == (409, "already_decided")


def test_deny_records_the_comment(world: World) -> None:
    request_id = request_access(world)["id"]
    status, body = world.api("POST", f"/requests/{request_id}/deny", BOB, {"comment": "use read-only"})
    assert (status, body["status"]) == (200, "denied")
    assert body["approvals"][0]["decision"] == "deny"
    assert body["approvals"][0]["comment"] == "use read-only"


def test_decision_bodies_reject_unknown_fields(world: World) -> None:
    request_id = request_access(world)["id"]
    assert error(world, "POST", f"/requests/{request_id}/approve", BOB, {"approver": ALICE})[:2] == (
        400,
        "invalid_input",
    )


# -- admins --------------------------------------------------------------------------------------


def test_get_roles_shows_capacity_to_admins_only(world: World) -> None:
    status, body = world.api("GET", "/roles", CAROL)
    assert status == 200
    (role,) = body["items"]
    assert role["role_arn"] == ROLE_ARN
    assert role["trust_policy_quota"] == 2048
    assert 0 < role["trust_policy_chars"] < 2048
    assert role["active_grants"] == 0
    assert error(world, "GET", "/roles", ALICE)[:2] == (403, "forbidden")


def test_get_role_shows_the_live_trust_policy_and_active_grants(world: World) -> None:
    request_id = granted(world)["id"]
    status, body = world.api("GET", "/roles/PumpCustomerAccess", CAROL)
    assert status == 200
    assert body["trust_policy"] == world.trust_policy()
    assert [g["id"] for g in body["active_grants"]] == [request_id]
    assert body["trust_policy_chars"] > len(json.dumps(VENDOR_TRUST, separators=(",", ":")))
    assert error(world, "GET", "/roles/PumpCustomerAccess", ALICE)[:2] == (403, "forbidden")
    assert error(world, "GET", "/roles/Nope", CAROL)[:2] == (404, "not_found")
    encoded_arn = ROLE_ARN.replace(":", "%3A").replace("/", "%2F")
    assert world.api("GET", f"/roles/{encoded_arn}", CAROL)[1]["role_arn"] == ROLE_ARN


def test_get_audit_filters_by_role_actor_and_time_for_admins(world: World) -> None:
    request_id = request_access(world)["id"]
    status, body = world.api("GET", "/audit", CAROL, query={"role": "PumpCustomerAccess"})
    assert status == 200
    assert [e["request_id"] for e in body["items"] if e["action"] == "request.created"] == [request_id]
    status, body = world.api("GET", "/audit", CAROL, query={"actor": BOB})
    assert body["items"] == []
    status, body = world.api("GET", "/audit", CAROL, query={"since": "2999-01-01T00:00:00Z"})
    assert body["items"] == []
    assert error(world, "GET", "/audit", CAROL, query={"since": "yesterday"})[:2] == (400, "invalid_input")
    assert error(world, "GET", "/audit", ALICE)[:2] == (403, "forbidden")


def test_openapi_document_is_served_from_the_code(world: World) -> None:
    status, body = world.api("GET", "/openapi.json", ALICE)
    assert status == 200
    assert body["info"]["title"] == "TrustGate"
    for path in ("/requests", "/requests/{request_id}/approve", "/roles/{role}/policy", "/audit"):
        assert path in body["paths"]


def test_unknown_routes_are_404_in_the_error_shape(world: World) -> None:
    assert error(world, "GET", "/nope", ALICE)[:2] == (404, "not_found")
