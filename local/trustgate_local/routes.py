"""API Gateway's routing and its REST proxy event (payload v1), built from the template's Api events."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from trustgate_local.provision import ApiRoute


@dataclass(frozen=True)
class RouteMatch:
    route: ApiRoute
    path_parameters: dict[str, str]


class RouteTable:
    """Matches a raw request path against template paths such as /requests/{id} (and {proxy+})."""

    def __init__(self, routes: Sequence[ApiRoute]) -> None:
        # Most specific first: literal segments beat {parameters}, as in API Gateway.
        self.routes = sorted(routes, key=lambda r: [s.startswith("{") for s in _segments(r.path)])

    def match(self, method: str, raw_path: str) -> RouteMatch | None:
        """The route for `method` and the still-encoded `raw_path`, with decoded path parameters."""
        segments = _segments(raw_path)
        for route in self.routes:
            if route.method not in (method, "ANY"):
                continue
            parameters = _match(_segments(route.path), segments)
            if parameters is not None:
                return RouteMatch(route, parameters)
        return None


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def _match(pattern: list[str], segments: list[str]) -> dict[str, str] | None:
    parameters: dict[str, str] = {}
    for index, part in enumerate(pattern):
        if part.startswith("{") and part.endswith("+}"):
            if index >= len(segments):
                return None
            parameters[part[1:-2]] = unquote("/".join(segments[index:]))
            return parameters
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            parameters[part[1:-1]] = unquote(segments[index])
        elif part != segments[index]:
            return None
    return parameters if len(pattern) == len(segments) else None


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Query parameters decoded as API Gateway hands them to a function ('+' stays a plus)."""
    return [(unquote(k), unquote(v)) for k, _, v in (p.partition("=") for p in raw_query.split("&") if p)]


def proxy_event(
    match: RouteMatch,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    identity: dict[str, Any],
    *,
    stage: str,
    account: str,
    host: str,
) -> dict[str, Any]:
    """The Lambda proxy event API Gateway sends a REST API integration.

    `path` stays percent-encoded and has no stage prefix (as behind a custom domain: the local
    endpoint is the API's base URL); path and query parameters are decoded.
    """
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_query(raw_query):
        multi_query.setdefault(key, []).append(value)
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    text, is_base64 = _body(body)
    return {
        "resource": match.route.path,
        "path": raw_path,
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {key: values[-1] for key, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": match.path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": uuid.uuid5(uuid.NAMESPACE_URL, match.route.path).hex[:6],
            "resourcePath": match.route.path,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": raw_path,
            "accountId": account,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": host.split(".", 1)[0],
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": identity,
            "domainName": host,
            "apiId": "local",
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }


def _body(body: bytes) -> tuple[str | None, bool]:
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def response_parts(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body from a proxy integration's answer; a malformed one raises ValueError."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        raise ValueError(f"malformed Lambda proxy response: {json.dumps(result, default=str)[:200]}")
    # As API Gateway merges them: multiValueHeaders wins for a name present in both.
    multi = result.get("multiValueHeaders") or {}
    headers = [(str(name), str(value)) for name, values in multi.items() for value in values]
    taken = {name.lower() for name in multi}
    headers += [(str(k), str(v)) for k, v in (result.get("headers") or {}).items() if k.lower() not in taken]
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return result["statusCode"], headers, body
