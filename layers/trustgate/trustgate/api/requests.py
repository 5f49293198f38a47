"""Requester routes: ask for access, watch it, cancel, revoke, extend; approvers decide by id."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from trustgate.adapters.store import Store
from trustgate.api.common import caller_of, deps, documented
from trustgate.app import decisions, requests, reviews
from trustgate.core.clock import parse_rfc3339
from trustgate.core.durations import parse_duration
from trustgate.core.errors import ConflictError, RuleViolationError, ValidationError
from trustgate.core.models import AccessRequest, RequestStatus, RequestView

router = Router()


class CreateRequestBody(BaseModel):
    # defer_build: the schema is built when a route first needs it, not in every cold start.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    role: str | None = Field(
        default=None, min_length=1, max_length=2048, description="name or ARN of a managed role (or give `roles`)"
    )
    roles: list[Annotated[str, Field(min_length=1, max_length=2048)]] | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        description="instead of `role`: up to 10 roles (names or ARNs) in one request, with one approval for all; each "
        "role gets its own grant, or none does (a refusal of any role refuses all, naming each role's reason)",
    )
    duration: StrictStr | StrictInt | None = Field(
        default=None, description="ISO 8601 (PT1H) or whole minutes; default from the role"
    )
    justification: str = Field(min_length=1, max_length=2000)
    ticket: str | None = Field(default=None, max_length=200)
    start_at: StrictStr | None = Field(
        default=None,
        max_length=64,
        description="scheduled access: an RFC 3339 time (2026-12-01T21:00:00Z) in the future, at most the deployer's "
        "MaxScheduleAhead (default P7D) ahead, or that far from now as an ISO 8601 duration (PT3H: in three hours, "
        "on TrustGate's clock); the access begins then, once approved, and ends one `duration` later. Absent: it "
        "begins once approved",
    )
    break_glass: StrictBool = Field(
        default=False,
        description="break-glass: active at once, without approval, where the role policy's `break_glass` rule names "
        "you and within its `max_duration`. Every approver and notify target is told at once, an alarm fires, and "
        "an approver reviews it afterwards (POST /requests/{id}/review)",
    )


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    verdict: Literal["ok", "misuse"] = Field(
        description="`ok`: the break-glass use was justified; `misuse`: it was not"
    )
    comment: str | None = Field(default=None, max_length=1000)


class ExtendBody(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    duration: StrictStr | StrictInt  # strict: JSON true is no duration (pydantic would read it as 1)
    justification: str = Field(min_length=1, max_length=2000)


class RevokeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    reason: str | None = Field(default=None, max_length=1000)


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    comment: str | None = Field(default=None, max_length=1000)


class RequestList(BaseModel):
    model_config = ConfigDict(defer_build=True)
    items: list[RequestView]
    next: str | None = None


_DECISION_ERRORS: dict[int, str | None] = {
    403: "`forbidden` (not an approver of the request), `approver_removed`, `own_request`, `not_a_person`",
    404: "`not_found`: no such request, or none you may see",
    409: "`already_decided`, `already_decided_by_you`, `conflict` (past its approval window), "
    "`request_nonconforming` (the role's policy no longer allows the request)",
    429: "nothing was recorded; send the same decision again after `Retry-After` seconds: `decision_busy` (others "
    "kept recording decisions on the request at the same moment), `throttled` (AWS, or API Gateway, throttled it)",
}


def _view(request: AccessRequest) -> dict[str, Any]:
    return RequestView.of(request).model_dump(mode="json", exclude_none=True)


@router.post(
    "/requests",
    summary="Ask for access to a role",
    responses=documented(
        201,
        "the request (already active when an auto-approve rule decided it, or for break-glass)",
        {
            403: "`forbidden`, `not_a_person`: you may not request the role; `break_glass_not_allowed`: the role's "
            "policy does not let you break the glass",
            400: "`invalid_input`: malformed; both or neither of `role` and `roles`; a role twice in `roles`",
            404: "`not_found`: the role is not one TrustGate manages",
            409: "`request_pending` (one open request per person and role), `in_progress` (same Idempotency-Key), "
            "`trust_policy_full`, `session_guard_full`, `session_name_conflict` (auto-approved and break-glass "
            "grants), `already_covered` (break-glass while you hold the role)",
            422: "a rule of the role: `duration_too_long` (also beyond the break-glass maximum), `duration_too_short`, "
            "`justification_too_short`, `roles_refused` (with `roles`: one or more roles refuse; `error.roles` "
            "lists each `{role, status, code, message}`, and the status is the first refusal's), `no_common_approver`, "
            "`ticket_required`, `ticket_invalid`, `rule_violation`; `start_at_in_past`, `start_at_too_far` "
            "(MaxScheduleAhead); `idempotency_key_reused`",
        },
    ),
)
def post_request(body: Annotated[CreateRequestBody, Body()]) -> Response[RequestView]:
    caller = caller_of(router)
    key = router.current_event.headers.get("idempotency-key") or router.current_event.headers.get("Idempotency-Key")
    payload = {"principal": caller.arn, "body": body.model_dump(mode="json")}
    if key:
        if not 1 <= len(key) <= 200:
            raise ValidationError("the Idempotency-Key header must be 1 to 200 characters")
        result = _create_once(key, payload)
    else:
        result = _create(payload)
    return Response(status_code=201, content_type="application/json", body=RequestView.model_validate(result))


def _create(payload: dict[str, Any]) -> dict[str, Any]:
    d = deps()
    caller = caller_of(router)
    body = CreateRequestBody.model_validate(payload["body"])
    duration = parse_duration(body.duration) if body.duration is not None else None
    start_at = _start_at(body.start_at, d.clock.now()) if body.start_at is not None else None
    if (body.role is None) == (body.roles is None):
        raise ValidationError("give either role (one role) or roles (a list of up to 10), not both and not neither")
    new = requests.NewRequest(
        body.role or "",
        duration,
        body.justification,
        body.ticket,
        start_at=start_at,
        break_glass=body.break_glass,
        roles=tuple(body.roles or ()),
    )
    request = requests.create_request(d, caller, new, wait_if_auto_approved=True)
    return _view(request)


def _start_at(text: str, now: datetime) -> datetime:
    """An RFC 3339 time, or a time from now as an ISO 8601 duration (counted on TrustGate's clock, not the
    caller's: the CLI's `--start +3h`)."""
    if text.strip().upper().startswith("P"):
        try:
            return now + parse_duration(text)
        except ValidationError as error:
            raise ValidationError(f"start_at: {error.message}; or give an RFC 3339 time") from error
    try:
        zoned = datetime.fromisoformat(text.replace("Z", "+00:00")).tzinfo is not None
        if zoned:
            return parse_rfc3339(text)
    except ValueError:
        pass
    raise ValidationError(
        f"start_at: {text[:64]!r} is not an RFC 3339 time with its zone, such as 2026-12-01T21:00:00Z or "
        "2026-12-01T22:00:00+01:00, nor a time from now such as PT3H"
    )


def _create_once(key: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Create once per key and caller. Powertools' idempotency utility is imported only here: a cold start pays
    for it only when its first request carries the header."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    try:
        result: dict[str, Any] = _idempotent_create()(payload={"key": key, **payload})
    except IdempotencyValidationError as error:
        raise RuleViolationError(
            "this Idempotency-Key was used with a different body; use a new key", code="idempotency_key_reused"
        ) from error
    except IdempotencyAlreadyInProgressError as error:
        raise ConflictError(
            "a request with this Idempotency-Key is still being processed", code="in_progress"
        ) from error
    return result


@cache
def _idempotent_create() -> Any:
    """Built on first use, so functions that never see the header do not pay for the persistence layer."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    d = deps()
    persistence = DynamoDBPersistenceLayer(
        table_name=d.settings.table_name,
        key_attr="pk",
        sort_key_attr="sk",
        # The store's client, on AWS: the same timeouts and retries as every other call.
        boto3_client=d.store.client if isinstance(d.store, Store) else None,
    )
    config = IdempotencyConfig(
        event_key_jmespath="[key, principal]", payload_validation_jmespath="body", expires_after_seconds=86400
    )

    @idempotent_function(data_keyword_argument="payload", config=config, persistence_store=persistence)
    def create(payload: dict[str, Any]) -> dict[str, Any]:
        return _create(payload)

    return create


@router.get(
    "/requests",
    summary="List requests: yours, and those of the roles you administer",
    responses=documented(200, "a page of requests; follow `next` for more", {404: "`not_found`: no such role"}),
)
def list_requests(
    status: Annotated[RequestStatus | None, Query()] = None,
    role: Annotated[str | None, Query()] = None,
    mine: Annotated[bool, Query()] = False,
    review: Annotated[
        Literal["pending"] | None, Query(description="`pending`: break-glass grants awaiting review")
    ] = None,
    next: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> RequestList:
    """Admins see the requests of the roles they administer (and their own); everyone else their own.

    `review=pending` lists instead the break-glass grants no approver has reviewed yet, of the roles whose
    approvers or admins you are (newest first); it combines with `role` and `status`, not with `mine`.

    A page holds `limit` requests unless there are no more (`next` is then absent); only when many requests in a
    row are ones you may not see does it hold fewer, with `next` to go on from. Follow `next` until it is absent.
    """
    if review is not None:
        if mine:
            raise ValidationError("review=pending lists the grants you review, never your own: leave mine out")
        page = reviews.pending_reviews(
            deps(), caller_of(router), requests.RequestQuery(status, role, False, next, limit)
        )
        return RequestList(items=[RequestView.of(r) for r in page.items], next=page.next)
    query = requests.RequestQuery(status, role, mine, next, limit)
    page = requests.list_requests(deps(), caller_of(router), query)
    return RequestList(items=[RequestView.of(r) for r in page.items], next=page.next)


@router.get(
    "/requests/<request_id>",
    summary="One request (its requester, its approvers and its role's admins)",
    responses=documented(200, "the request", {404: "`not_found`: no such request, or none you may see"}),
)
def get_request(request_id: str) -> RequestView:
    return RequestView.of(requests.get_request_for(deps(), caller_of(router), request_id))


@router.post(
    "/requests/<request_id>/cancel",
    summary="Cancel your pending or scheduled request",
    responses=documented(
        200,
        "the cancelled request (a scheduled one's start schedule is deleted)",
        {
            404: "`not_found`: no such request, or none you may see",
            409: "`conflict`: the request is neither pending nor scheduled",
        },
    ),
)
def cancel(request_id: str) -> RequestView:
    return RequestView.of(requests.cancel_request(deps(), caller_of(router), request_id))


@router.post(
    "/requests/<request_id>/revoke",
    summary="End an active grant now, or a scheduled one before it begins",
    responses=documented(
        200,
        "the revoked request (with everything else its person holds on the role)",
        {
            404: "`not_found`: no such request, or none you may see",
            409: "`conflict`: the grant is neither active nor scheduled; `session_guard_full`, `sync_not_verified`",
            503: None,
        },
    ),
)
def revoke(request_id: str, body: Annotated[RevokeBody | None, Body()] = None) -> RequestView:
    reason = body.reason if body else None
    return RequestView.of(requests.revoke_request(deps(), caller_of(router), request_id, reason))


@router.post(
    "/requests/<request_id>/extend",
    summary="Ask for more time on an active grant",
    responses=documented(
        201,
        "the new request (an extension of the grant's coverage)",
        {
            404: "`not_found`: no such request, or none you may see",
            409: "`conflict`: the grant is not active; `request_pending`",
            422: "a rule of the role: `duration_too_long`, `duration_too_short`, `justification_too_short`",
        },
    ),
)
def extend(request_id: str, body: Annotated[ExtendBody, Body()]) -> Response[RequestView]:
    request = requests.extend_request(
        deps(), caller_of(router), request_id, parse_duration(body.duration), body.justification
    )
    return Response(status_code=201, content_type="application/json", body=RequestView.of(request))


@router.post(
    "/requests/<request_id>/approve",
    summary="Approve a request (approvers)",
    responses=documented(200, "the request with your approval", _DECISION_ERRORS),
)
def approve(request_id: str, body: Annotated[DecisionBody | None, Body()] = None) -> RequestView:
    comment = body.comment if body else None
    return RequestView.of(decisions.decide(deps(), caller_of(router), request_id, "approve", comment))


@router.post(
    "/requests/<request_id>/deny",
    summary="Deny a request (approvers)",
    responses=documented(200, "the denied request", _DECISION_ERRORS),
)
def deny(request_id: str, body: Annotated[DecisionBody | None, Body()] = None) -> RequestView:
    comment = body.comment if body else None
    return RequestView.of(decisions.decide(deps(), caller_of(router), request_id, "deny", comment))


@router.post(
    "/requests/<request_id>/review",
    summary="Review a break-glass grant after the fact (approvers, never its requester)",
    responses=documented(
        200,
        "the request with your review",
        {
            403: "`forbidden` (not an approver of the role), `approver_removed`, `own_request` (you took it), "
            "`not_a_person`",
            404: "`not_found`: no such request, or none you may see",
            409: "`not_break_glass` (it went through approval), `already_reviewed`",
        },
    ),
)
def review_request(request_id: str, body: Annotated[ReviewBody, Body()]) -> RequestView:
    return RequestView.of(reviews.review_request(deps(), caller_of(router), request_id, body.verdict, body.comment))


@router.get("/approvals", summary="Pending requests you may decide", responses=documented(200, "the requests", {}))
def approvals() -> RequestList:
    pending = decisions.pending_for_approver(deps(), caller_of(router))
    return RequestList(items=[RequestView.of(r) for r in pending])
