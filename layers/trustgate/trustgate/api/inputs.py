"""What a request must be before any route sees it: a bounded UTF-8 JSON body and only the query parameters
the route declares.

Malformed input is refused here with a 4xx that says what to send instead, before validation or a route
can act on it (a misspelled `dry_run` must never fall through to a real change).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Route
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.types import EventHandlerInstance

from trustgate.core.errors import (
    BodyTooLargeError,
    RepeatedParameterError,
    UnknownParameterError,
    UnsupportedMediaTypeError,
    ValidationError,
)

JSON = "application/json"
MAX_BODY = 16 * 1024  # requests, decisions, revokes: a 2,000-character justification fits many times over
MAX_POLICY_BODY = 64 * 1024  # a role policy (API Gateway itself would take 10 MB)
MAX_DEPTH = 32  # the deepest real body (a policy's auto-approve rules) nests 4 levels


def check_body(event: Mapping[str, Any]) -> None:
    """Refuse a body that is too large, not UTF-8, not JSON, or nested absurdly deep (any route)."""
    raw = event.get("body")
    if not raw:
        return
    data = _bytes(raw, bool(event.get("isBase64Encoded")))
    limit = MAX_POLICY_BODY if _is_policy(event) else MAX_BODY
    if len(data) > limit:
        raise BodyTooLargeError(f"the body is {len(data)} bytes; this route takes at most {limit} bytes")
    media = _media_type(header(event, "content-type"))
    if media not in ("", JSON):
        raise UnsupportedMediaTypeError(f"send the body as {JSON} (got {media}); see GET /openapi.json")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValidationError(f"the body is not UTF-8 text (byte {error.start}); send UTF-8 JSON") from error
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError as error:
        raise ValidationError(f"the body nests deeper than {MAX_DEPTH} levels; no TrustGate body does") from error
    except ValueError as error:  # malformed JSON, or a number too long to read
        raise ValidationError(f"the body is not valid JSON: {error}") from error
    if _depth(document) > MAX_DEPTH:
        raise ValidationError(f"the body nests deeper than {MAX_DEPTH} levels; no TrustGate body does")
    if not isinstance(document, dict):  # validation would read a list's first object as the body
        raise ValidationError("the body must be one JSON object ({...}), not a list or a value; see GET /openapi.json")


def check_query(event: Mapping[str, Any]) -> None:
    """Refuse a query parameter given more than once (any route): which value counts would be a guess."""
    for name, values in (event.get("multiValueQueryStringParameters") or {}).items():
        if isinstance(values, list) and len(values) > 1:
            raise RepeatedParameterError(f"query parameter {name!r} is given {len(values)} times; give it once")


def refuse_unknown_parameters(app: EventHandlerInstance, next_middleware: NextMiddleware) -> Response[Any]:
    """Middleware: every query parameter must be one the route declares.

    It runs after powertools validated the declared ones (no route has run yet): only the route knows
    what it declares."""
    route: Route | None = app.context.get("_route")
    if route is None or getattr(route.func, "__name__", "") == "not_found_handler":
        return next_middleware(app)  # no such route: the 404 says so, whatever the parameters
    declared = {param.alias for param in route.dependant.query_params}
    event = app.current_event
    given = {*(event.multi_value_query_string_parameters or {}), *(event.query_string_parameters or {})}
    unknown = sorted(given - declared)
    if unknown:
        accepted = ", ".join(sorted(declared)) or "none"
        raise UnknownParameterError(
            f"unknown query parameter {unknown[0]!r}; this route accepts: {accepted}. Nothing was changed"
        )
    return next_middleware(app)


def header(event: Mapping[str, Any], name: str) -> str:
    """A request header by case-insensitive name ('' when absent)."""
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name and isinstance(value, str):
            return value
    return ""


def _bytes(raw: Any, is_base64: bool) -> bytes:
    if not isinstance(raw, str):
        raise ValidationError("the body could not be read; send UTF-8 JSON")
    if not is_base64:
        return raw.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValidationError("the body could not be read; send UTF-8 JSON") from error


def _is_policy(event: Mapping[str, Any]) -> bool:
    return str(event.get("httpMethod", "")).upper() == "PUT" and str(event.get("path", "")).endswith("/policy")


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"the key {key!r} appears twice in one object")
        document[key] = value
    return document


def _depth(document: Any) -> int:
    """How deeply lists and objects nest (iteratively: the document may be deep)."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, level = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest
