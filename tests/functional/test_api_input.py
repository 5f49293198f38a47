"""Issue 10, section 9 through the API handler: the OpenAPI document tells the truth, every route refuses what
it does not declare, and an admin of one role sees only that role's requests and audit events."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.aws import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    ERIN,
    MALLORY,
    MANAGEMENT,
    ROLE_ARN,
    VENDOR_TRUST,
    World,
    api_event,
    running_world,
)
from tests.support.flows import JUSTIFICATION, granted, request_access

pytestmark = pytest.mark.functional

ROLE = "PumpCustomerAccess"
OTHER_ROLE = "VendorReadOnly"
OTHER_ARN = f"arn:aws:iam::{MANAGEMENT}:role/{OTHER_ROLE}"
ASK = {"role": ROLE, "duration": "PT1H", "justification": JUSTIFICATION}
CREATED = {("post", "/requests"), ("post", "/requests/{request_id}/extend")}  # 201; every other route 200
# The routes whose rules can refuse well-formed input (422); no other route may document one.
WITH_RULES = {("post", "/requests"), ("post", "/requests/{request_id}/extend"), ("put", "/roles/{role}/policy")}


def openapi(world: World) -> dict[str, Any]:
    status, document = world.api("GET", "/openapi.json", ALICE)
    assert status == 200, document
    return dict(document)


def operation_of(document: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The documented operation a concrete call lands on, and its template path."""
    for template, operations in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return template, operations[method.lower()]
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


# -- the OpenAPI document -------------------------------------------------------------------------


def test_every_route_documents_400_403_and_exactly_its_success(world: World) -> None:
    document = openapi(world)
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            where = f"{method.upper()} {template}"
            assert {"400", "403", "413", "415", "429"} <= statuses, where
            successes = {s for s in statuses if s.startswith("2")}
            assert successes == ({"201"} if (method, template) in CREATED else {"200"}), (where, successes)
            assert ("422" in statuses) == ((method, template) in WITH_RULES), where
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (where, status)
    extend = document["paths"]["/requests/{request_id}/extend"]["post"]["responses"]
    assert "201" in extend
    assert "200" not in extend


def test_the_error_body_is_documented_and_every_reference_resolves(world: World) -> None:
    document = openapi(world)
    schemas = document["components"]["schemas"]
    assert schemas["ErrorBody"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorDetail"}
    assert set(schemas["ErrorDetail"]["required"]) == {"code", "message"}
    assert "HTTPValidationError" not in schemas  # powertools' 422 shape: TrustGate never sends it
    references = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    assert references <= set(schemas), references - set(schemas)


def test_every_status_a_route_gives_is_documented(world: World) -> None:
    """Drive each route through its success and its refusals; each status seen must be in the document."""
    document = openapi(world)
    seen: list[tuple[str, str, int, Any]] = []

    def call(method: str, path: str, caller: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, answer = world.api(method, path, caller, body, **kw)
        seen.append((method, path, status, answer))
        return status, answer

    request_id = call("POST", "/requests", ALICE, ASK)[1]["id"]
    call("POST", "/requests", ALICE, ASK)  # 409 request_pending
    call("POST", "/requests", ALICE, {**ASK, "role": "Nope"})  # 404
    call("POST", "/requests", ALICE, {**ASK, "duration": "P2D"})  # 422 duration_too_long
    call("POST", "/requests", ALICE, {**ASK, "bogus": 1})  # 400
    call("POST", "/requests", ALICE, "x" * 20_000)  # 413
    call("POST", "/requests", ALICE, "{}", headers={"Content-Type": "text/plain"})  # 415
    call("POST", "/requests", MALLORY, ASK)  # 403
    call("GET", "/requests", ALICE)
    call("GET", "/requests", ALICE, query={"role": "Nope"})  # 404
    call("GET", "/requests", ALICE, query={"rol": ROLE})  # 400
    call("GET", f"/requests/{request_id}", ALICE)
    call("GET", "/requests/nope", ALICE)  # 404
    call("GET", "/approvals", BOB)
    call("POST", f"/requests/{request_id}/approve", ALICE, {})  # 403 own_request
    call("POST", f"/requests/{request_id}/deny", ERIN, {})  # 403 not an approver
    call("POST", f"/requests/{request_id}/cancel", ALICE)
    call("POST", f"/requests/{request_id}/cancel", ALICE)  # 409 not pending
    call("POST", f"/requests/{request_id}/approve", BOB, {})  # 409 no longer pending
    call("POST", "/requests/nope/deny", BOB, {})  # 404

    grant = granted(world)
    call("POST", f"/requests/{grant['id']}/extend", ALICE, {"duration": "P2D", "justification": JUSTIFICATION})
    call("POST", f"/requests/{request_id}/extend", ALICE, {"duration": "PT1H", "justification": JUSTIFICATION})
    extension = call("POST", f"/requests/{grant['id']}/extend", ALICE, {"duration": "PT1H", "justification": "more"})
    if extension[0] == 201:
        call("POST", f"/requests/{extension[1]['id']}/cancel", ALICE)
    call("POST", f"/requests/{grant['id']}/revoke", DAVE, {})  # 403: neither holder nor admin
    call("POST", f"/requests/{grant['id']}/revoke", ALICE, {})
    call("POST", f"/requests/{grant['id']}/revoke", ALICE, {})  # 409 no longer active

    policy = f"/roles/{ROLE}/policy"
    call("GET", "/roles", CAROL)
    call("GET", "/roles", ALICE)  # 403
    call("GET", f"/roles/{ROLE}", CAROL)
    call("GET", "/roles/Nope", CAROL)  # 404
    call("GET", policy, CAROL)
    call("PUT", policy, CAROL, {"justification_min_length": 20}, query={"dry_run": "true"})
    call("PUT", policy, CAROL, {"max_duration": "P30D"})  # 422 exceeds_ceiling
    call("PUT", policy, CAROL, {}, query={"dryrun": "true"})  # 400 unknown_parameter
    call("PUT", policy, ALICE, {})  # 403
    call("POST", f"/roles/{ROLE}/sync", CAROL)
    call("POST", f"/roles/{ROLE}/revoke", CAROL, {"principal": ALICE})  # 404: holds nothing now
    call("GET", "/audit", CAROL, query={"role": ROLE, "limit": "5"})
    call("GET", "/audit", ALICE)  # 403
    call("GET", "/audit", CAROL, query={"since": "10000-01-01T00:00:00Z"})  # 400

    undocumented = []
    for method, path, status, answer in seen:
        template, operation = operation_of(document, method, path)
        assert status < 500, (method, path, status, answer)
        if str(status) not in operation["responses"]:
            undocumented.append(f"{method} {template} -> {status} {answer}")
    assert not undocumented, undocumented
    assert {status for _, _, status, _ in seen} >= {200, 201, 400, 403, 404, 409, 413, 415, 422}


# -- query parameters -----------------------------------------------------------------------------


def test_an_unknown_parameter_is_named_with_the_accepted_ones(world: World) -> None:
    status, answer = world.api("GET", "/requests", ALICE, query={"stauts": "pending"})
    assert status == 400, answer
    assert answer["error"]["code"] == "unknown_parameter"
    assert "'stauts'" in answer["error"]["message"]
    assert "limit, mine, next, review, role, status" in answer["error"]["message"]


def test_every_declared_parameter_is_still_accepted(world: World) -> None:
    request_access(world)
    query = {"status": "pending", "role": ROLE, "mine": "true", "limit": "10"}
    status, answer = world.api("GET", "/requests", ALICE, query=query)
    assert (status, len(answer["items"])) == (200, 1), answer
    query = {"role": ROLE, "since": "2020-01-01T00:00:00Z", "until": "2999-01-01T00:00:00Z", "actor": ALICE}
    status, answer = world.api("GET", "/audit", CAROL, query={**query, "limit": "10"})
    assert status == 200, answer
    status, answer = world.api("GET", "/openapi.json", ALICE, query={"format": "yaml"})
    assert (status, answer["error"]["code"]) == (400, "unknown_parameter")


def test_a_parameter_given_twice_is_refused_as_ambiguous(world: World) -> None:
    event = api_event("GET", "/requests", CAROL, query={"role": ROLE})
    event["multiValueQueryStringParameters"] = {"role": [ROLE, OTHER_ROLE]}
    response = world.invoke("ApiFunction", event)
    assert response["statusCode"] == 400, response
    assert json.loads(response["body"])["error"]["code"] == "repeated_parameter"


def test_audit_refuses_since_after_until(world: World) -> None:
    query = {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    status, answer = world.api("GET", "/audit", CAROL, query=query)
    assert (status, answer["error"]["code"]) == (400, "invalid_input"), answer


# -- bodies ---------------------------------------------------------------------------------------


def test_an_empty_body_with_any_content_type_is_no_body(world: World) -> None:
    """What urllib sends for a POST without data (the CLI's cancel): still accepted."""
    request_id = request_access(world)["id"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, answer = world.api("POST", f"/requests/{request_id}/cancel", ALICE, headers=form)
    assert (status, answer["status"]) == (200, "cancelled"), answer


def test_a_required_body_sent_empty_as_text_plain_is_415(world: World) -> None:
    status, answer = world.api("POST", "/requests", ALICE, "", headers={"Content-Type": "text/plain"})
    assert (status, answer["error"]["code"]) == (415, "unsupported_media_type"), answer


def test_a_policy_body_just_under_64_kb_is_read(world: World) -> None:
    filler = "x" * (60 * 1024)
    status, answer = world.api("PUT", f"/roles/{ROLE}/policy", CAROL, {"ticket_pattern": filler})
    assert status in (400, 422), answer  # refused for what it says, not for its size
    assert answer["error"]["code"] not in ("body_too_large", "internal"), answer


# -- who sees which requests ----------------------------------------------------------------------


@pytest.fixture
def two_roles() -> Iterator[World]:
    """Two managed roles: CAROL (bootstrap) administers both, ERIN only the second."""
    with running_world({"ManagedRoleArns": f"{ROLE_ARN},{OTHER_ARN}"}) as world:
        world.session.client("iam").create_role(RoleName=OTHER_ROLE, AssumeRolePolicyDocument=json.dumps(VENDOR_TRUST))
        status, answer = world.api("PUT", f"/roles/{OTHER_ROLE}/policy", CAROL, {"admins": [ERIN]})
        assert status == 200, answer
        yield world


def ids(answer: Any) -> set[str]:
    return {item["id"] for item in answer["items"]}


def test_an_admin_of_one_role_lists_only_that_roles_requests_and_their_own(two_roles: World) -> None:
    world = two_roles
    on_first = request_access(world)["id"]
    on_other = request_access(world, DAVE, role=OTHER_ROLE)["id"]
    erins_own = request_access(world, ERIN)["id"]  # on the role ERIN does not administer

    status, answer = world.api("GET", "/requests", ERIN)
    assert (status, ids(answer)) == (200, {on_other, erins_own})
    status, answer = world.api("GET", "/requests", ERIN, query={"status": "pending"})
    assert ids(answer) == {on_other, erins_own}
    status, answer = world.api("GET", "/requests", ERIN, query={"role": ROLE})  # not ERIN's role: only her own
    assert (status, ids(answer)) == (200, {erins_own})
    status, answer = world.api("GET", "/requests", ERIN, query={"role": OTHER_ROLE})
    assert ids(answer) == {on_other}
    status, answer = world.api("GET", "/requests", CAROL)  # bootstrap admin: every role
    assert ids(answer) == {on_first, on_other, erins_own}

    assert world.api("GET", f"/requests/{on_first}", ERIN)[0] == 404
    assert world.api("GET", f"/requests/{on_other}", ERIN)[0] == 200


def test_an_admin_of_one_role_reads_only_that_roles_audit(two_roles: World) -> None:
    world = two_roles
    request_access(world)
    request_access(world, DAVE, role=OTHER_ROLE)

    status, answer = world.api("GET", "/audit", ERIN)
    assert status == 200, answer
    assert answer["items"]
    assert {e["role_arn"] for e in answer["items"]} == {OTHER_ARN}
    status, answer = world.api("GET", "/audit", ERIN, query={"role": ROLE})
    assert (status, answer["error"]["code"]) == (403, "forbidden")
    status, answer = world.api("GET", "/audit", CAROL)
    assert {e.get("role_arn") for e in answer["items"]} >= {ROLE_ARN, OTHER_ARN}
    assert world.api("GET", "/audit", ALICE)[0] == 403
