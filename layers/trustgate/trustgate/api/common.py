"""What every route shares: the verified caller, the dependencies, and JSON error bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict

from trustgate.core.identity import Caller, caller_from_identity
from trustgate.core.ports import Dependencies

DEFAULT_RETRY_AFTER_SECONDS = 5


def error_response(
    status: int,
    code: str,
    message: str,
    retry_after: int | None = None,
    roles: list[dict[str, object]] | None = None,
) -> Response[Any]:
    """The API's error body. A 429 or 503 always says when to retry (`Retry-After`, in seconds): the error's
    own `retry_after_seconds`, or DEFAULT_RETRY_AFTER_SECONDS. `roles`: a multi-role request's refusal per role."""
    if retry_after is None and status in (429, 503):
        retry_after = DEFAULT_RETRY_AFTER_SECONDS
    error: dict[str, object] = {"code": code, "message": message}
    if roles:
        error["roles"] = roles
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps({"error": error}),
        headers={"Retry-After": str(retry_after)} if retry_after is not None else None,
    )


def caller_of(router: BaseRouter) -> Caller:
    """The SigV4-verified caller API Gateway put in `requestContext.identity` (never the body)."""
    identity = router.current_event.raw_event.get("requestContext", {}).get("identity", {}) or {}
    return caller_from_identity(identity, deps().settings.caller_policy())


_dependencies: Callable[[], Dependencies] | None = None


def use_dependencies(dependencies: Callable[[], Dependencies]) -> None:
    """Set by the entry point that builds the app (`build_app`, `build_decide_app`): the routes never wire
    AWS themselves, so the same routes run on the AWS adapters (`wiring.dependencies`) or on anything else."""
    global _dependencies
    _dependencies = dependencies


def deps() -> Dependencies:
    if _dependencies is None:
        raise RuntimeError("the API is not wired: build it with build_app(dependencies)")
    return _dependencies()


def describe_validation_error(error: RequestValidationError) -> str:
    """One readable sentence per invalid field: where it is and what is wrong."""
    parts = []
    for problem in error.errors():
        location = ".".join(str(p) for p in problem.get("loc", ()) if p not in ("body",)) or "body"
        parts.append(f"{location}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is malformed"


# -- what the OpenAPI document promises -----------------------------------------------------------


class ErrorDetail(BaseModel):
    # defer_build: the schema is built when a route first needs it, not in every cold start.
    model_config = ConfigDict(defer_build=True)
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every refusal, whether TrustGate's or API Gateway's: `{"error": {"code", "message"}}`."""

    model_config = ConfigDict(defer_build=True)

    error: ErrorDetail


# What each status means on any route; a route may name its own codes instead (see `documented`).
STATUS_MEANINGS: dict[int, str] = {
    400: "malformed input: `invalid_input` (the message names the field), `unknown_parameter`, "
    "`repeated_parameter`, `invalid_cursor`; API Gateway's `bad_request`",
    403: "not allowed: `forbidden`, `not_a_person`, `invalid_principal`",
    404: "`not_found`: no such request (or none you may see) or role",
    409: "the state does not allow it (the code says which)",
    412: "`precondition_failed`: the If-Match version is not the current one; read it again",
    413: "`body_too_large` (16 KB; 64 KB for a role policy), or API Gateway's `request_too_large`",
    415: "`unsupported_media_type`: a body that is not application/json",
    422: "well-formed input that breaks a rule of the role's policy or the deploy ceiling",
    429: "busy, nothing was changed; retry after the `Retry-After` seconds: `throttled` (AWS throttled a call "
    "TrustGate needed, or API Gateway's throttle), `role_busy` (another change held the role's lock)",
    503: "`revoke_incomplete`: recorded, but IAM could not be updated yet; retrying finishes it",
}
_GATEWAY_403 = "API Gateway's `forbidden`: unsigned, a bad signature, outside the organization, or no such route"
ALWAYS = (400, 403, 413, 415, 429)  # the input checks, API Gateway's refusals and its throttling


def documented(
    success: int,
    description: str,
    errors: dict[int, str | None],
    content: dict[str, Any] | None = None,
) -> dict[int, OpenAPIResponse]:
    """`responses=` for a route: its success, the statuses every route can give, and `errors`.

    `errors` maps a status to the codes this route gives with it (None: the status's general meaning);
    `content` describes the success's media types where the return annotation cannot (a route with two).
    """
    responses: dict[int, OpenAPIResponse] = {success: {"description": description}}
    if content is not None:
        responses[success]["content"] = content
    for status in sorted({*ALWAYS, *errors}):
        meaning = errors.get(status) or STATUS_MEANINGS[status]
        if status == 403:
            meaning += f"; {_GATEWAY_403}"
        responses[status] = {"description": meaning, "content": {"application/json": {"model": ErrorBody}}}
    return responses
