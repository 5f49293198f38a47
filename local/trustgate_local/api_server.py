"""The local API endpoint: what API Gateway does for each request, over a stdlib HTTP server.

Route by the template's Api events, verify SigV4 against the IAM keys moto holds, apply the API's
resource policy, invoke the route's function with a REST proxy event, answer with what it returns
or with the template's gateway responses. Plus the local-only /_local routes.

Requests are served concurrently, one thread each; the function runs in a worker process of its own for
the request's duration (`trustgate_local.workers`), as Lambda runs one event per execution environment.
"""

from __future__ import annotations

import json
import sys
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from trustgate.core.clock import SystemClock, to_rfc3339
from trustgate.core.durations import parse_duration
from trustgate.core.errors import ValidationError
from trustgate_local import gateway, identities, routes, sigv4
from trustgate_local.clockwork import Clockwork
from trustgate_local.outbox import Outbox
from trustgate_local.provision import Stack
from trustgate_local.runtime import Invoker
from trustgate_local.workers import FunctionError

MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
# The methods an API Gateway REST API can route. Any of them on a path or method the template does not
# define is answered as API Gateway does (403 MISSING_AUTHENTICATION_TOKEN); any other method (TRACE,
# CONNECT, ...) no REST API can ever have: 405 `method_not_allowed`, naming what the path takes.
GATEWAY_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# SignatureError kinds -> the API Gateway response type that answers them.
_REFUSALS = {
    "missing": "MISSING_AUTHENTICATION_TOKEN",
    "invalid_signature": "INVALID_SIGNATURE",
    "unknown_key": "UNRECOGNIZED_CLIENT",
    "expired_token": "EXPIRED_TOKEN",
}


class PortInUseError(RuntimeError):
    pass


@dataclass
class LocalApi:
    """Everything the endpoint needs from the running stack."""

    stack: Stack
    functions: Invoker  # runs the route's function: the worker pool
    api: gateway.ApiDefinition
    routes: routes.RouteTable
    outbox: Outbox
    clockwork: Clockwork
    clock: SystemClock
    organization_of: Callable[[str], str | None]  # account id -> organization id (aws:PrincipalOrgID)
    endpoint: str
    aws_endpoint: str
    say: Callable[[str], None] | None = None  # one line per API call when set

    @property
    def api_arn(self) -> str:
        return f"arn:aws:execute-api:{self.stack.region}:{self.stack.account}:local"


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_answer(status: int, document: Any) -> Answer:
    return Answer(status, [("Content-Type", "application/json")], json.dumps(document, indent=2).encode())


def error_answer(status: int, code: str, message: str) -> Answer:
    """An answer in the API's error shape."""
    return json_answer(status, {"error": {"code": code, "message": message}})


class ApiServer(ThreadingHTTPServer):
    """Binds at once (so a busy port fails early); serves once `app` is set."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        self.app: LocalApi | None = None
        try:
            super().__init__(address, _Handler)
        except OSError as error:
            raise PortInUseError(
                f"cannot serve the API on {address[0]}:{address[1]} ({error.strerror}); "
                "is another `make local` running? Set TRUSTGATE_PORT to a free port"
            ) from error


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"
    server_version = "TrustGateLocal"
    sys_version = ""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line or header, a method it has no handler
        for) in the API's JSON error shape, never its HTML page."""
        if code == HTTPStatus.NOT_IMPLEMENTED:  # a method API Gateway has not either
            answer = method_not_allowed(self.server.app, self.command, self.path.partition("?")[0])
        else:
            status = HTTPStatus(code)
            answer = error_answer(code, "bad_request" if code < 500 else "internal", message or status.phrase)
        self.close_connection = True
        self._send(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # `say` prints one line per call instead, with the caller and without approval tokens

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header on the stack's clock, which `/_local/advance` moves (the CLI tells time by it)."""
        if timestamp is None and self.server.app is not None:
            timestamp = self.server.app.clock.now().timestamp()
        return super().date_time_string(timestamp)

    def _handle(self) -> None:
        app = self.server.app
        request_id = str(uuid.uuid4())
        raw_path, _, raw_query = self.path.partition("?")
        who = ""
        try:
            length = _content_length(self.headers.get("Content-Length"))
            if length is None:
                answer = error_answer(400, "bad_request", "Content-Length must be a whole number of bytes")
                self.close_connection = True  # the body's end is unknown: nothing more can be read
            elif app is None:
                answer = error_answer(503, "starting", "the local stack is still starting")
                self.close_connection = True  # its body, if any, is left unread
            elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                answer = error_answer(411, "length_required", "send a Content-Length (no chunked bodies locally)")
                self.close_connection = True  # the unread body would be taken for the next request
            elif length > MAX_BODY:
                rendered = app.api.responses.render("REQUEST_TOO_LARGE", "Request Too Long", request_id)
                answer = Answer(rendered.status, rendered.headers, rendered.body)
                self.close_connection = True
            else:
                body = self.rfile.read(length) if length else b""
                if raw_path.startswith("/_local/"):
                    answer = local_route(app, self.command, raw_path, raw_query, body)
                else:
                    request = _Request(self.command, raw_path, raw_query, list(self.headers.items()), body)
                    answer, who = api_route(app, request, self.client_address[0], request_id)
        except Exception:  # never leave a client without an answer
            traceback.print_exc()
            answer = error_answer(500, "internal", "the local stack failed; see its output")
        if not any(name.lower() == "x-amzn-requestid" for name, _ in answer.headers):  # gateway responses carry it
            answer.headers.append(("x-amzn-RequestId", request_id))
        self._send(answer)
        if app is not None and app.say is not None and not raw_path.startswith("/_local/"):
            match = app.routes.match(self.command, raw_path)
            shown = match.route.path if match else raw_path  # the template path keeps approval tokens off the screen
            app.say(f"  {self.command} {shown} -> {answer.status}{f' ({who})' if who else ''}")

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has the headers of the body it leaves out
            self.wfile.write(answer.body)


def _content_length(header: str | None) -> int | None:
    """The declared body length; None when the header is no whole number (RFC 9110: refuse the request)."""
    text = (header or "0").strip()
    return int(text) if text.isdigit() and text.isascii() else None


def method_not_allowed(app: LocalApi | None, method: str, raw_path: str) -> Answer:
    """405 for a method no API Gateway REST API can route, with the methods the path does take."""
    allowed = [m for m in GATEWAY_METHODS if app is not None and app.routes.match(m, raw_path) is not None]
    answer = error_answer(
        405,
        "method_not_allowed",
        f"{method} is not an HTTP method this API takes"
        + (f"; {raw_path} takes {', '.join(allowed)}" if allowed else "")
        + "; see GET /openapi.json",
    )
    answer.headers.append(("Allow", ", ".join(allowed or GATEWAY_METHODS)))
    return answer


@dataclass(frozen=True)
class _Request:
    method: str
    raw_path: str  # as received: still percent-encoded
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")


def api_route(app: LocalApi, request: _Request, source_ip: str, request_id: str) -> tuple[Answer, str]:
    """What API Gateway does for one request: route, authenticate, authorize, invoke, answer.

    Returns the answer and, for a signed call, the caller's name (for the console line).
    """

    def refuse(response_type: str, message: str) -> Answer:
        rendered = app.api.responses.render(response_type, message, request_id)
        return Answer(rendered.status, rendered.headers, rendered.body)

    match = app.routes.match(request.method, request.raw_path)
    if match is None:  # API Gateway answers an unknown route (or method) as if it were unsigned
        return refuse("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token"), ""
    user_agent = request.header("User-Agent")
    caller = gateway.Caller(source_ip=source_ip)
    identity: dict[str, Any] = {"sourceIp": source_ip, "userAgent": user_agent}
    who = ""
    if match.route.authorized:
        try:
            verified = sigv4.verify(
                request.method,
                request.raw_path,
                request.raw_query,
                request.headers,
                request.body,
                identities.signing_key,
            )
        except sigv4.SignatureError as error:
            return refuse(_REFUSALS[error.kind], error.message), ""
        principal = identities.identity_of(verified.access_key_id)
        if principal is None:
            return refuse("UNRECOGNIZED_CLIENT", "The security token included in the request is invalid."), ""
        organization_id = app.organization_of(principal.account)
        caller = gateway.Caller(principal.arn, principal.account, organization_id, source_ip)
        identity = principal.request_context(source_ip, user_agent) | {"principalOrgId": organization_id}
        who = principal.arn.rsplit("/", 1)[-1]
    denial = app.api.policy.decide(caller, app.api.stage, request.method, request.raw_path, app.api_arn)
    if denial is not None:
        return refuse("ACCESS_DENIED", denial), who
    event = routes.proxy_event(
        match,
        request.method,
        request.raw_path,
        request.raw_query,
        request.headers,
        request.body,
        identity,
        stage=app.api.stage,
        account=app.stack.account,
        host=request.header("Host"),
    )
    try:
        # Through JSON both ways, as Lambda passes events and results.
        result = app.functions.invoke(app.stack.functions[match.route.function], json.loads(json.dumps(event)))
        status, headers, body = routes.response_parts(json.loads(json.dumps(result)))
    except FunctionError as error:  # the worker printed the handler's traceback already
        print(f"{match.route.function} failed: {error}", file=sys.stderr, flush=True)
        return refuse("DEFAULT_5XX", "Internal server error"), who
    except Exception:  # a malformed answer: API Gateway's 502
        traceback.print_exc()
        return refuse("DEFAULT_5XX", "Internal server error"), who
    return Answer(status, headers, body), who


def local_route(app: LocalApi, method: str, raw_path: str, raw_query: str, body: bytes) -> Answer:
    """The /_local/* routes: the outbox, the clock, health. They exist only here, never in the template."""
    if (method, raw_path) == ("GET", "/_local/health"):
        return json_answer(
            200,
            {
                "status": "ok",
                "endpoint": app.endpoint,
                "aws_endpoint": app.aws_endpoint,
                "now": to_rfc3339(app.clock.now()),
                "clock_offset_seconds": int(app.clock.offset.total_seconds()),
            },
        )
    if (method, raw_path) == ("GET", "/_local/outbox"):
        filters = dict(routes.parse_query(raw_query))
        items = [n.as_json() for n in app.outbox.items()]
        return json_answer(200, [n for n in items if all(n.get(k) == v for k, v in filters.items())])
    if (method, raw_path) == ("POST", "/_local/advance"):
        return _advance(app, body)
    return error_answer(
        404,
        "not_found",
        f"no local route {method} {raw_path}; try GET /_local/outbox, POST /_local/advance, GET /_local/health",
    )


def _advance(app: LocalApi, body: bytes) -> Answer:
    usage = 'send {"by": "<ISO 8601 duration or minutes>"}, e.g. {"by": "PT1H"}'
    try:
        document = json.loads(body or b"{}")
        by = document.get("by") if isinstance(document, dict) else None
        delta = parse_duration(by) if isinstance(by, (str, int)) else None
    except (ValueError, ValidationError) as error:
        return error_answer(400, "bad_request", f"{usage}: {error}")
    if delta is None:
        return error_answer(400, "bad_request", usage)
    now, runs = app.clockwork.advance(delta)
    return json_answer(200, {"now": to_rfc3339(now), "advanced_by": by, "ran": [r.as_json() for r in runs]})
