"""What every route shares: the verified caller, the dependencies, and JSON error bodies."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from trustgate.identity import Caller, caller_from_identity
from trustgate.wiring import Dependencies, dependencies


def error_response(status: int, code: str, message: str) -> Response[Any]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps({"error": {"code": code, "message": message}}),
    )


def caller_of(router: BaseRouter) -> Caller:
    """The SigV4-verified caller API Gateway put in `requestContext.identity` (never the body)."""
    identity = router.current_event.raw_event.get("requestContext", {}).get("identity", {}) or {}
    return caller_from_identity(identity, deps().settings.caller_policy())


def deps() -> Dependencies:
    return dependencies()


def describe_validation_error(error: RequestValidationError) -> str:
    """One readable sentence per invalid field: where it is and what is wrong."""
    parts = []
    for problem in error.errors():
        location = ".".join(str(p) for p in problem.get("loc", ()) if p not in ("body",)) or "body"
        parts.append(f"{location}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is malformed"
