"""The /_local routes (outbox, clock, health) exist only in the local stack, never in the deployable API."""

from __future__ import annotations

import json

import pytest

from tests.e2e.drive import send
from trustgate_local.provision import TEMPLATE
from trustgate_local.routes import RouteMatch, proxy_event
from trustgate_local.server import LocalStack
from trustgate_local.template import load_template

pytestmark = pytest.mark.e2e


def test_template_declares_no_local_route() -> None:
    template = load_template(TEMPLATE)
    paths = [
        event["Properties"]["Path"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in (resource.get("Properties", {}).get("Events") or {}).values()
        if event["Type"] == "Api"
    ]
    assert paths, "the template declares the API's routes as function events"
    assert not [p for p in paths if p.startswith("/_local")]


@pytest.mark.parametrize(
    ("function", "method", "path"),
    [
        ("ApiFunction", "GET", "/_local/outbox"),
        ("ApiFunction", "POST", "/_local/advance"),
        ("DecideFunction", "GET", "/_local/outbox"),
    ],
)
def test_deployed_functions_do_not_serve_local_routes(
    local_stack: LocalStack, function: str, method: str, path: str
) -> None:
    # Even if API Gateway forwarded such a path, the functions themselves know nothing of it.
    alice = local_stack.organization.user("requester")
    route = next(r for r in local_stack.stack.routes if r.function == function)
    identity = {"userArn": alice.arn, "accountId": alice.account, "caller": alice.user_id, "sourceIp": "127.0.0.1"}
    event = proxy_event(
        RouteMatch(route, {}),
        method,
        path,
        "",
        [("Content-Type", "application/json")],
        b'{"by": "PT1H"}',
        identity,
        stage="prod",
        account=local_stack.stack.account,
        host="127.0.0.1",
    )
    event["resource"] = event["requestContext"]["resourcePath"] = path
    offset_before = local_stack.clock.offset
    response = local_stack.host.invoke(local_stack.stack.functions[function], json.loads(json.dumps(event)))
    assert response["statusCode"] == 404, response
    assert local_stack.clock.offset == offset_before


def test_health_reports_both_endpoints(local_stack: LocalStack) -> None:
    answer = send(f"{local_stack.endpoint}/_local/health")
    assert answer.status == 200
    assert answer.body["endpoint"] == local_stack.endpoint
    assert answer.body["aws_endpoint"] == local_stack.aws_endpoint


@pytest.mark.parametrize("body", [b"", b"{}", b'{"by": "soon"}', b"not json", b'{"by": ["PT1H"]}'])
def test_advance_refuses_a_malformed_body(local_stack: LocalStack, body: bytes) -> None:
    answer = send(f"{local_stack.endpoint}/_local/advance", "POST", body)
    assert answer.status == 400, answer.body
    assert answer.body["error"]["code"] == "bad_request"


def test_unknown_local_route_is_404(local_stack: LocalStack) -> None:
    answer = send(f"{local_stack.endpoint}/_local/nothing-here")
    assert answer.status == 404
