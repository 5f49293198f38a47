"""How the e2e tests reach the local stack: the CLI as a subprocess, raw SigV4 requests, the /_local routes."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from trustgate_local.polling import wait_until
from trustgate_local.server import LocalStack

ROLE = "PumpCustomerAccess"
SECOND_ROLE = "PumpBillingAccess"  # the local stack manages a second role, for multi-role requests


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any  # decoded JSON, or text when the answer is not JSON


def cli(local: LocalStack, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`trustgate ARGS` with the local profiles, as a user's shell runs it."""
    script = Path(sys.executable).parent / "trustgate"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "trustgate_cli"]
    return subprocess.run(
        [*command, *args], env=local.client_environment(), capture_output=True, text=True, timeout=timeout, check=False
    )


def cli_json(local: LocalStack, profile: str, *args: str) -> Any:
    """A CLI command's JSON output; a failed command fails the test with its error line."""
    done = cli(local, "--profile", profile, "--output", "json", *args)
    assert done.returncode == 0, f"trustgate {' '.join(args)} exited {done.returncode}: {done.stderr}"
    return json.loads(done.stdout)


def credentials(local: LocalStack, profile: str) -> Credentials:
    user = local.organization.user(profile)
    return Credentials(user.access_key_id, user.secret_access_key)


def send(url: str, method: str = "GET", data: bytes | None = None, headers: Mapping[str, str] | None = None) -> Answer:
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}), method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local stack
            return _answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return _answer(error.code, error.headers, error.read())


def _answer(status: int, headers: Any, raw: bytes) -> Answer:
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    return Answer(status, {k.lower(): v for k, v in headers.items()}, body)


def signed(
    local: LocalStack,
    who: str | Credentials,
    method: str,
    path: str,
    body: Any = None,
    *,
    at: datetime | None = None,
    send_body: bytes | None = None,
    region: str = "us-east-1",
) -> Answer:
    """A request signed with SigV4 (botocore's signer) as `who`; `at` signs with another clock,
    `send_body` sends other bytes than the ones signed."""
    creds = credentials(local, who) if isinstance(who, str) else who
    data = json.dumps(body).encode() if body is not None else b""
    request = AWSRequest(method, f"{local.endpoint}{path}", data=data, headers={"Content-Type": "application/json"})
    signer = SigV4Auth(creds, "execute-api", region)
    if at is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
            signer.add_auth(request)
    payload = send_body if send_body is not None else data
    assert request.url is not None  # AWSRequest keeps the URL it was given
    return send(request.url, method, payload if method in ("POST", "PUT") else None, dict(request.headers.items()))


def outbox(local: LocalStack, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in filters.items())
    answer = send(f"{local.endpoint}/_local/outbox" + (f"?{query}" if query else ""))
    assert answer.status == 200, answer.body
    return list(answer.body)


def advance(local: LocalStack, by: str) -> dict[str, Any]:
    answer = send(f"{local.endpoint}/_local/advance", "POST", json.dumps({"by": by}).encode())
    assert answer.status == 200, answer.body
    return dict(answer.body)


def wait_for[T](probe: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    return wait_until(probe, what, timeout, interval=0.1)


def statement_naming(policy: Mapping[str, Any], principal: str) -> dict[str, Any] | None:
    """The trust-policy statement whose AWS principal includes `principal`."""
    for statement in policy.get("Statement", []):
        named = (
            (statement.get("Principal") or {}).get("AWS", []) if isinstance(statement.get("Principal"), dict) else []
        )
        if principal in ([named] if isinstance(named, str) else named):
            return dict(statement)
    return None
