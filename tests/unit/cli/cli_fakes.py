"""Test doubles for the CLI tests: a recording HTTP API, canned `Request`s and a server-side SigV4 check."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FQoGZXIvYXdzEXAMPLETOKEN"
ROLE_ARN = "arn:aws:iam::111122223333:role/PumpCustomerAccess"
PRINCIPAL_ARN = "arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_Dev_0123/alice@example.com"

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<scope>[^,]+), SignedHeaders=(?P<signed>[^,]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def a_request(**fields: Any) -> dict[str, Any]:
    """A `Request` as the API returns it, with `fields` replacing the defaults."""
    return {
        "id": "req-1",
        "role_arn": ROLE_ARN,
        "principal_arn": PRINCIPAL_ARN,
        "status": "pending",
        "duration": "PT1H",
        "justification": "rotate the CloudTrail bucket key",
        "created_at": "2026-11-26T10:00:00Z",
        "approvals": [],
        "required_approvals": 1,
    } | fields


@dataclass
class Result:
    """What one run of `trustgate` gave: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str


class Cli(Protocol):
    """The `cli` fixture (conftest.py): run `trustgate --endpoint <fake api> ARGS…`."""

    def __call__(self, *argv: str, endpoint: str | None = None) -> Result: ...


@dataclass
class Received:
    """One request as the server saw it on the wire."""

    method: str
    target: str  # the raw request target: encoded path and query, exactly as sent
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query))

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeApi:
    """Canned answers per (method, path); a list of answers is served in order, the last one repeatedly."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    _answers: dict[tuple[str, str], list[tuple[int, bytes, dict[str, str]]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reply(
        self, method: str, path: str, body: Any = None, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        answer_headers = {"Content-Type": "application/json", **(headers or {})}
        self._answers.setdefault((method, path), []).append((status, raw, answer_headers))

    def calls(self, method: str, path: str) -> list[Received]:
        return [r for r in self.received if r.method == method and r.path == path]

    def answer(self, received: Received) -> tuple[int, bytes, dict[str, str]]:
        with self._lock:
            self.received.append(received)
            answers = self._answers.get((received.method, received.path))
            if not answers:
                body = {
                    "error": {"code": "no_route", "message": f"no canned answer for {received.method} {received.path}"}
                }
                return 404, json.dumps(body).encode(), {"Content-Type": "application/json"}
            return answers.pop(0) if len(answers) > 1 else answers[0]


def handler_for(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, raw, answer_headers = api.answer(Received(self.command, self.path, headers, body))
            self.send_response_only(status)
            if "Date" not in answer_headers:  # a canned Date stands for the API's clock (see Context.now)
                self.send_header("Date", self.date_time_string())
            for name, value in answer_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    return Handler


def signature_problems(
    received: Received,
    *,
    region: str = "us-east-1",
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    token: str | None = SESSION_TOKEN,
) -> list[str]:
    """Verify a received request's SigV4 signature as a server would; [] when it is valid."""
    match = _AUTHORIZATION.fullmatch(received.headers.get("authorization", ""))
    if match is None:
        return [f"no AWS4-HMAC-SHA256 Authorization header: {received.headers.get('authorization')!r}"]
    problems = []
    timestamp = received.headers.get("x-amz-date", "")
    expected_scope = f"{timestamp[:8]}/{region}/execute-api/aws4_request"
    if match["key"] != access_key:
        problems.append(f"signed with key {match['key']}, expected {access_key}")
    if match["scope"] != expected_scope:
        problems.append(f"credential scope {match['scope']}, expected {expected_scope}")
    if "x-amz-content-sha256" in received.headers:
        # botocore would take the payload hash from this header instead of hashing the body.
        problems.append("x-amz-content-sha256 sent: the check below would not cover the body")
    signed = match["signed"].split(";")
    missing = [name for name in signed if name not in received.headers]
    if missing:
        return [*problems, f"signed headers not received: {missing}"]
    request = AWSRequest(
        method=received.method,
        url=f"http://{received.headers['host']}{received.target}",
        data=received.body,
        headers={name: received.headers[name] for name in signed},
    )
    request.context["timestamp"] = timestamp
    auth = SigV4Auth(Credentials(access_key, secret_key, token), "execute-api", region)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    if expected != match["signature"]:
        problems.append("signature does not verify")
    return problems
