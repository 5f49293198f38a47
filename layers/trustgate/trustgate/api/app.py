"""Assemble the REST API: routers, validation, OpenAPI, and errors in the API's JSON shape."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from trustgate.api import audit, requests, roles
from trustgate.api.common import describe_validation_error, error_response
from trustgate.errors import TrustGateError
from trustgate.observability import logger

TITLE = "TrustGate"


def build_app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)
    app.include_router(requests.router)
    app.include_router(roles.router)
    app.include_router(audit.router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> Response[Any]:
        return Response(
            status_code=200,
            content_type="application/json",
            body=app.get_openapi_json_schema(title=TITLE, version="1.0.0"),
        )

    @app.exception_handler(TrustGateError)
    def trustgate_error(error: TrustGateError) -> Response[Any]:
        return error_response(error.status, error.code, error.message)

    @app.exception_handler(RequestValidationError)
    def invalid(error: RequestValidationError) -> Response[Any]:
        return error_response(400, "invalid_input", describe_validation_error(error))

    @app.exception_handler(IdempotencyValidationError)
    def reused_key(_: IdempotencyValidationError) -> Response[Any]:
        return error_response(
            422, "idempotency_key_reused", "this Idempotency-Key was used with a different body; use a new key"
        )

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def in_progress(_: IdempotencyAlreadyInProgressError) -> Response[Any]:
        return error_response(409, "in_progress", "a request with this Idempotency-Key is still being processed")

    @app.not_found
    def not_found(_: Exception) -> Response[Any]:
        return error_response(404, "not_found", "no such route; see GET /openapi.json")

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        return error_response(500, "internal", "TrustGate failed unexpectedly; the error is logged. Try again.")

    return app
