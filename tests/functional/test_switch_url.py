"""The console's Switch Role link comes from the server (`switch_url`): `GET /requests/{id}` of an active grant,
`GET /requestable-roles` and `GET /roles` carry it, and the `trustgate` CLI prints that link, building none.

The CLI runs for real, over HTTP, against the API function of the moto world: a small bridge on 127.0.0.1 hands
each call to `world.api` as the caller the test names (API Gateway's SigV4 check is what it stands in for).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.support.aws import ALICE, CAROL, ROLE_ARN, World
from tests.support.flows import granted, request_access
from trustgate.core.identity import switch_role_url
from trustgate_cli.main import main

pytestmark = pytest.mark.functional

SWITCH_URL = (
    "https://signin.aws.amazon.com/switchrole?roleName=PumpCustomerAccess&account=123456789012"
    "&displayName=PumpCustomerAccess"
)


@contextmanager
def api_over_http(world: World, caller: str) -> Iterator[str]:
    """An HTTP endpoint whose every call is `world.api(…, caller)`; yields its URL."""

    class Bridge(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            target = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer = world.api(
                self.command, target.path, caller, json.loads(raw) if raw else None, dict(parse_qsl(target.query))
            )
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Bridge)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def trustgate(world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `trustgate ARGS…` as `caller` against the world's API; its exit code and stdout."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    def run(caller: str, *argv: str) -> tuple[int, str]:
        with api_over_http(world, caller) as endpoint:
            code = main(["--endpoint", endpoint, *argv])
        return code, capsys.readouterr().out

    return run


def test_an_active_grant_carries_the_switch_url_the_cli_prints(world: World, trustgate: Any) -> None:
    grant = granted(world)

    status, view = world.api("GET", f"/requests/{grant['id']}", ALICE)

    assert status == 200, view
    assert view["switch_url"] == view["access"]["console_url"] == SWITCH_URL == switch_role_url(ROLE_ARN)
    assert trustgate(ALICE, "switch-url", "PumpCustomerAccess") == (0, view["switch_url"] + "\n")
    assert trustgate(ALICE, "switch-url", ROLE_ARN) == (0, view["switch_url"] + "\n")
    code, shown = trustgate(ALICE, "status", grant["id"])
    assert code == 0
    assert f"Console (Switch Role): {view['switch_url']}\n" in shown


def test_a_request_carries_no_switch_url_unless_its_grant_is_active(world: World) -> None:
    pending = request_access(world)
    assert pending["switch_url"] is None
    status, cancelled = world.api("POST", f"/requests/{pending['id']}/cancel", ALICE)
    assert (status, cancelled["switch_url"]) == (200, None), cancelled

    grant = granted(world)
    status, revoked = world.api("POST", f"/requests/{grant['id']}/revoke", ALICE, {"reason": "done early"})

    assert grant["switch_url"] == SWITCH_URL
    assert (status, revoked["status"]) == (200, "revoked"), revoked
    assert revoked["switch_url"] is None
    assert revoked["access"] is None


def test_the_admin_list_carries_the_link_and_the_cli_finds_it_there(world: World, trustgate: Any) -> None:
    status, roles = world.api("GET", "/roles", CAROL)

    assert status == 200, roles
    assert [item["switch_url"] for item in roles["items"]] == [SWITCH_URL]
    assert trustgate(CAROL, "switch-url", "pumpcustomeraccess") == (0, SWITCH_URL + "\n")


def test_the_openapi_document_describes_switch_url(world: World) -> None:
    status, document = world.api("GET", "/openapi.json", ALICE)

    assert status == 200
    schemas = document["components"]["schemas"]
    request = next(
        schema for name, schema in schemas.items() if {"access", "session_name"} <= set(schema.get("properties", {}))
    )
    assert "Switch Role" in request["properties"]["switch_url"]["description"]
    assert "switch_url" in schemas["RoleSummary"]["properties"]
    assert "switch_url" in schemas["RequestableRole"]["properties"]
