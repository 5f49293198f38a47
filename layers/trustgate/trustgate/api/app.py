"""Assemble the REST API: input checks, routers, validation, OpenAPI, and errors in the API's JSON shape."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate.adapters.observability import count, logger
from trustgate.adapters.throttling import throttling_in
from trustgate.api import audit, inputs, requestable, requests, roles
from trustgate.api.common import describe_validation_error, error_response, use_dependencies
from trustgate.core.errors import ThrottledError, TrustGateError
from trustgate.core.ports import Dependencies
from trustgate.core.retry_budget import time_budget

TITLE = "TrustGate"
# IAM retries of one API call stop this long after it began (a sync's round may begin after 20 s of waiting
# for the role's lock): the answer comes before API Gateway's 29 s limit, not as its 504.
RETRY_SECONDS = 22.0


class TrustGateResolver(APIGatewayRestResolver):
    """The API's resolver: a repeated query parameter or a malformed body is refused before validation or any
    route reads it (unknown query parameters: `inputs.refuse_unknown_parameters`, once the route is known)."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            inputs.check_query(event)
            inputs.check_body(event)
        except TrustGateError as error:
            return {
                "statusCode": error.status,
                "multiValueHeaders": {"Content-Type": ["application/json"]},
                "body": json.dumps({"error": {"code": error.code, "message": error.message}}),
                "isBase64Encoded": False,
            }
        with time_budget(RETRY_SECONDS):
            return super().resolve(event, context)


def build_app(dependencies: Callable[[], Dependencies]) -> APIGatewayRestResolver:
    """The REST API's resolver; `dependencies` gives the routes theirs (on Lambda: `wiring.dependencies`)."""
    use_dependencies(dependencies)
    app = TrustGateResolver(enable_validation=True)
    app.use([inputs.refuse_unknown_parameters])
    app.include_router(requests.router)
    app.include_router(roles.router)
    app.include_router(requestable.router)
    app.include_router(audit.router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> Response[Any]:
        return Response(status_code=200, content_type="application/json", body=json.dumps(openapi_document(app)))

    @app.exception_handler(TrustGateError)
    def trustgate_error(error: TrustGateError) -> Response[Any]:
        if error.status == 409 and throttling_in(error) is not None:  # a write cancelled only because the
            return throttled(error)  # table was busy (the store calls it a conflict): nothing changed, retry
        retry_after = getattr(error, "retry_after_seconds", None)
        return error_response(error.status, error.code, error.message, retry_after, getattr(error, "refusals", None))

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_media(_: RequestUnsupportedContentType) -> Response[Any]:
        return error_response(415, "unsupported_media_type", "send the body as application/json")

    @app.exception_handler(RequestValidationError)
    def invalid(error: RequestValidationError) -> Response[Any]:
        # A well-formed policy whose patterns TrustGate will not evaluate (models.py) is a 422, not a 400.
        if error.errors() and all(problem.get("type") == "invalid_pattern" for problem in error.errors()):
            return error_response(422, "invalid_pattern", describe_validation_error(error))
        if error.errors() and all(problem.get("type") == "invalid_notify" for problem in error.errors()):
            return error_response(422, "invalid_notify", describe_validation_error(error))  # models._check_notify
        return error_response(400, "invalid_input", describe_validation_error(error))

    @app.not_found
    def not_found(_: Exception) -> Response[Any]:
        return error_response(404, "not_found", "no such route; see GET /openapi.json")

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response[Any]:
        if throttling_in(error) is not None:  # AWS throttled a call beyond its retries: 429, never a 5xx
            return throttled(error)
        logger.exception("unhandled error")
        return error_response(500, "internal", "TrustGate failed unexpectedly; the error is logged. Try again.")

    return app


def throttled(error: Exception) -> Response[Any]:
    """429 throttled with Retry-After, for an AWS throttle (or a busy table) that reached the API."""
    cause = throttling_in(error)
    logger.warning(
        "throttled by AWS",
        extra={
            "aws_error": cause.response.get("Error", {}).get("Code") if cause else None,
            "operation": cause.operation_name if cause else None,
        },
    )
    count("Throttled")
    answer = ThrottledError()
    return error_response(answer.status, answer.code, answer.message, answer.retry_after_seconds)


def openapi_document(app: APIGatewayRestResolver) -> dict[str, Any]:
    """The OpenAPI document of the routes, with only the statuses they really give.

    Powertools documents a 422 `HTTPValidationError` on every route for its request validation; TrustGate
    answers those 400 `invalid_input` (declared on each route), so that 422 is dropped wherever a route
    does not declare a 422 of its own.
    """
    document: dict[str, Any] = json.loads(app.get_openapi_json_schema(title=TITLE, version="1.0.0"))
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                del responses["422"]
    # Their schemas then describe nothing TrustGate sends (every route declares ErrorBody instead).
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    return document
