"""Every sample event in events/ reaches its handler and is answered (valid for `sam local invoke -e`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.aws import ALICE, EVENTS, World
from trustgate_local.template import load_template

pytestmark = pytest.mark.functional

API_EVENTS = sorted((EVENTS / "api").glob("*.json"))
TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "template.yaml")


def template_routes() -> set[tuple[str, str]]:
    routes = set()
    for resource in TEMPLATE["Resources"].values():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event["Type"] == "Api":
                routes.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
    return routes


def test_there_is_a_sample_event_for_every_api_route() -> None:
    covered = set()
    for path in [*API_EVENTS, *sorted((EVENTS / "decide").glob("*.json"))]:
        event = json.loads(path.read_text())
        covered.add((event["httpMethod"], event["resource"]))
    assert template_routes() <= covered


def test_there_is_a_sample_event_for_every_function() -> None:
    code_uris = {
        resource["Properties"]["CodeUri"].strip("/").split("/")[-1]
        for resource in TEMPLATE["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    names = {p.stem for p in EVENTS.glob("*.json")} | {p.name for p in EVENTS.iterdir() if p.is_dir()}
    for uri in code_uris:
        assert any(name == uri or name.startswith(uri + "_") for name in names), uri


@pytest.mark.parametrize("path", API_EVENTS, ids=[p.stem for p in API_EVENTS])
def test_each_api_sample_event_reaches_its_route(world: World, path: Path) -> None:
    response = world.invoke("ApiFunction", json.loads(path.read_text()))
    body = json.loads(response["body"] or "{}")
    assert response["statusCode"] < 500, body
    assert body.get("error", {}).get("message") != "no such route; see GET /openapi.json"


def test_every_route_the_api_serves_is_declared_in_the_template(world: World) -> None:
    """A route the code serves but API Gateway does not declare answers 403 there (and in the local stack)."""
    status, document = world.api("GET", "/openapi.json", ALICE)
    assert status == 200

    def shape(path: str) -> str:
        return re.sub(r"\{[^}]+\}", "{}", path)

    served = {(method.upper(), shape(path)) for path, operations in document["paths"].items() for method in operations}
    declared = {(method, shape(path)) for method, path in template_routes()}
    assert served, "the OpenAPI document lists the API's routes"
    assert served <= declared, f"served but not declared in template.yaml: {sorted(served - declared)}"
