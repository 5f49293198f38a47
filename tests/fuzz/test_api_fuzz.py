"""schemathesis against the API's generated OpenAPI document, through the local stack's SigV4 gateway.

Each route runs as the kind of caller it is for (alice asks, bob decides, carol administers), and every
route also runs as callers it is not for: signed from outside the organization, unsigned, and signed in the
organization without the rights. Every answer must be below 500 and as documented; every 4xx must leave the
trust policy, the session guard and the stored state as they were (see conftest.Fuzz.run).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from aws_lambda_powertools.utilities.typing import LambdaContext
from hypothesis import HealthCheck, settings
from schemathesis import Case

from tests.fuzz import profiles
from tests.fuzz.conftest import Fuzz
from tests.fuzz.harness import ADMIN, APPROVER, KNOWN, OUTSIDER, REQUESTER, UNSIGNED, aim_at_known, signed_json
from trustgate.adapters import wiring
from trustgate.api.app import build_app
from trustgate_local.server import LocalStack

pytestmark = pytest.mark.fuzz


def generated_document() -> dict[str, Any]:
    """The OpenAPI document the API serves at GET /openapi.json, from the API's own route (in this process,
    so that pytest can name one test per operation before the stack starts)."""
    event = {
        "resource": "/openapi.json",
        "path": "/openapi.json",
        "httpMethod": "GET",
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "requestContext": {"resourcePath": "/openapi.json", "httpMethod": "GET", "stage": "prod", "identity": {}},
        "body": None,
        "isBase64Encoded": False,
    }
    answer = build_app(wiring.dependencies).resolve(event, LambdaContext())
    assert answer["statusCode"] == 200, answer
    return dict(json.loads(answer["body"]))


DOCUMENT = generated_document()
OWN = schemathesis.openapi.from_dict(DOCUMENT, config=profiles.config(profiles.PROFILE.max_examples))
OTHERS = schemathesis.openapi.from_dict(DOCUMENT, config=profiles.config(profiles.PROFILE.rights_examples))

# Who each route is for (operation labels as schemathesis names them).
FOR_REQUESTER = [
    "POST /requests",
    "GET /requests",
    "GET /requests/{request_id}",
    "POST /requests/{request_id}/cancel",
    "POST /requests/{request_id}/extend",
    "POST /requests/{request_id}/revoke",
    "GET /requestable-roles",
]
FOR_APPROVER = [
    "GET /approvals",
    "GET /requests/{request_id}",
    "POST /requests/{request_id}/approve",
    "POST /requests/{request_id}/deny",
    "POST /requests/{request_id}/review",
]
FOR_ADMIN = [
    "GET /roles",
    "GET /roles/{role}",
    "GET /roles/{role}/policy",
    "PUT /roles/{role}/policy",
    "POST /roles/{role}/sync",
    "POST /roles/{role}/revoke",
    "GET /audit",
    "GET /requests",
    "POST /requests/{request_id}/revoke",
]
# In the organization, signed, but not an approver or admin of the role: alice on carol's and bob's routes.
WITHOUT_RIGHTS = sorted(set(FOR_ADMIN + FOR_APPROVER) - set(FOR_REQUESTER) - {"GET /approvals"})


def test_every_route_has_a_caller_it_is_for() -> None:
    documented = {f"{method.upper()} {path}" for path, methods in DOCUMENT["paths"].items() for method in methods}
    assert documented == set(FOR_REQUESTER + FOR_APPROVER + FOR_ADMIN)


def test_the_served_document_is_the_one_fuzzed(fuzz_stack: LocalStack) -> None:
    status, served = signed_json(fuzz_stack, REQUESTER, "GET", "/openapi.json")
    assert status == 200, served
    assert served == DOCUMENT


# The runner (a function-scoped fixture) is meant to live across a test's cases; slow cases are the network's.
QUIET = settings(suppress_health_check=list(HealthCheck))
OWN.hook("flatmap_path_parameters")(aim_at_known(KNOWN))
OTHERS.hook("flatmap_path_parameters")(aim_at_known(KNOWN))


@OWN.include(name=FOR_REQUESTER).parametrize()
@QUIET
def test_as_requester(case: Case[Any], fuzz: Fuzz) -> None:
    fuzz.run(case, REQUESTER)


@OWN.include(name=FOR_APPROVER).parametrize()
@QUIET
def test_as_approver(case: Case[Any], fuzz: Fuzz) -> None:
    fuzz.run(case, APPROVER)


@OWN.include(name=FOR_ADMIN).parametrize()
@QUIET
def test_as_admin(case: Case[Any], fuzz: Fuzz) -> None:
    fuzz.run(case, ADMIN)


@OTHERS.include(name=WITHOUT_RIGHTS).parametrize()
@QUIET
def test_in_the_organization_without_rights(case: Case[Any], fuzz: Fuzz) -> None:
    fuzz.run(case, REQUESTER)


@OTHERS.parametrize()
@QUIET
def test_from_outside_the_organization(case: Case[Any], fuzz: Fuzz) -> None:
    fuzz.run(case, OUTSIDER)


@OTHERS.parametrize()
@QUIET
def test_unsigned(case: Case[Any], fuzz: Fuzz) -> None:
    fuzz.run(case, UNSIGNED)
