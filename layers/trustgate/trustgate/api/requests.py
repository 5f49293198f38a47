"""Requester routes: ask for access, watch it, cancel, revoke, extend; approvers decide by id."""

from __future__ import annotations

import time
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from pydantic import BaseModel, ConfigDict, Field

from trustgate import rules, service
from trustgate.api.common import caller_of, deps
from trustgate.durations import parse_duration
from trustgate.errors import ValidationError
from trustgate.identity import check_person
from trustgate.models import AccessRequest, RequestStatus, RequestView
from trustgate.rules import auto_approves

router = Router()
AUTO_APPROVE_WAIT_SECONDS = 10.0


class CreateRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(min_length=1, max_length=2048, description="name or ARN of a managed role")
    duration: str | int | None = Field(
        default=None, description="ISO 8601 (PT1H) or whole minutes; default from the role"
    )
    justification: str = Field(min_length=1, max_length=2000)
    ticket: str | None = Field(default=None, max_length=200)


class ExtendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration: str | int
    justification: str = Field(min_length=1, max_length=2000)


class RevokeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(default=None, max_length=1000)


class RequestList(BaseModel):
    items: list[RequestView]
    next: str | None = None


def _view(request: AccessRequest) -> dict[str, Any]:
    return RequestView.of(request).model_dump(mode="json", exclude_none=True)


@router.post("/requests", summary="Ask for access to a role", responses={201: {"description": "the request"}})
def post_request(body: Annotated[CreateRequestBody, Body()]) -> Response[RequestView]:
    caller = caller_of(router)
    key = router.current_event.headers.get("idempotency-key") or router.current_event.headers.get("Idempotency-Key")
    payload = {"principal": caller.arn, "body": body.model_dump(mode="json")}
    if key:
        if not 1 <= len(key) <= 200:
            raise ValidationError("the Idempotency-Key header must be 1 to 200 characters")
        result = _idempotent_create()(payload={"key": key, **payload})
    else:
        result = _create(payload)
    return Response(status_code=201, content_type="application/json", body=RequestView.model_validate(result))


def _create(payload: dict[str, Any]) -> dict[str, Any]:
    d = deps()
    caller = caller_of(router)
    body = CreateRequestBody.model_validate(payload["body"])
    duration = parse_duration(body.duration) if body.duration is not None else None
    request = service.create_request(
        d, caller, service.NewRequest(body.role, duration, body.justification, body.ticket)
    )
    rules = service.policy_for(d, request.role_arn).policy.auto_approve
    if auto_approves(request, rules, d.clock.now()):
        request = _wait_until_decided(request.id)
    return _view(request)


def _wait_until_decided(request_id: str) -> AccessRequest:
    """An auto-approved request is answered once it is active, as the API promises (bounded wait)."""
    deadline = time.monotonic() + AUTO_APPROVE_WAIT_SECONDS
    while True:
        request = deps().store.get_request(request_id)
        if request.status != RequestStatus.PENDING or time.monotonic() > deadline:
            return request
        time.sleep(0.1)


@cache
def _idempotent_create() -> Any:
    """Built on first use, so functions that never see the header do not pay for the persistence layer."""
    d = deps()
    persistence = DynamoDBPersistenceLayer(
        table_name=d.settings.table_name,
        key_attr="pk",
        sort_key_attr="sk",
        boto3_session=d.session,
    )
    config = IdempotencyConfig(
        event_key_jmespath="[key, principal]", payload_validation_jmespath="body", expires_after_seconds=86400
    )

    @idempotent_function(data_keyword_argument="payload", config=config, persistence_store=persistence)
    def create(payload: dict[str, Any]) -> dict[str, Any]:
        return _create(payload)

    return create


@router.get("/requests", summary="List requests (yours, or a role's for its admins)")
def list_requests(
    status: Annotated[RequestStatus | None, Query()] = None,
    role: Annotated[str | None, Query()] = None,
    mine: Annotated[bool, Query()] = False,
    next: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> RequestList:
    d = deps()
    caller = caller_of(router)
    role_arn = service.resolve_role(d, role) if role else None
    admin = (role_arn is not None and rules.is_admin(caller, service.policy_for(d, role_arn).admins)) or (
        role_arn is None and service.is_any_admin(d, caller)
    )
    if mine or not admin:
        # Only a person has requests of their own; any identity role the deployment allows may name one.
        person = check_person(caller, d.settings.identity_role_arns)
        page = d.store.requests_by_person(person.key, next, limit)
    elif role_arn:
        page = d.store.requests_by_role(role_arn, status, next, limit)
    elif status:
        page = d.store.requests_by_status(status, next, limit)
    else:
        page = d.store.all_requests(next, limit)
    items = [
        r for r in page.items if (status is None or r.status == status) and (role_arn is None or r.role_arn == role_arn)
    ]
    return RequestList(items=[RequestView.of(r) for r in items], next=page.next)


@router.get("/requests/<request_id>", summary="One request")
def get_request(request_id: str) -> RequestView:
    return RequestView.of(service.get_request_for(deps(), caller_of(router), request_id))


@router.post("/requests/<request_id>/cancel", summary="Cancel your pending request")
def cancel(request_id: str) -> RequestView:
    return RequestView.of(service.cancel_request(deps(), caller_of(router), request_id))


@router.post("/requests/<request_id>/revoke", summary="End an active grant now")
def revoke(request_id: str, body: Annotated[RevokeBody | None, Body()] = None) -> RequestView:
    reason = body.reason if body else None
    return RequestView.of(service.revoke_request(deps(), caller_of(router), request_id, reason))


@router.post("/requests/<request_id>/extend", summary="Ask for more time on an active grant")
def extend(request_id: str, body: Annotated[ExtendBody, Body()]) -> Response[RequestView]:
    request = service.extend_request(
        deps(), caller_of(router), request_id, parse_duration(body.duration), body.justification
    )
    return Response(status_code=201, content_type="application/json", body=RequestView.of(request))


@router.post("/requests/<request_id>/approve", summary="Approve a request (approvers)")
def approve(request_id: str, body: Annotated[DecisionBody | None, Body()] = None) -> RequestView:
    comment = body.comment if body else None
    return RequestView.of(service.decide(deps(), caller_of(router), request_id, "approve", comment))


@router.post("/requests/<request_id>/deny", summary="Deny a request (approvers)")
def deny(request_id: str, body: Annotated[DecisionBody | None, Body()] = None) -> RequestView:
    comment = body.comment if body else None
    return RequestView.of(service.decide(deps(), caller_of(router), request_id, "deny", comment))


@router.get("/approvals", summary="Pending requests you may decide")
def approvals() -> RequestList:
    pending = service.pending_for_approver(deps(), caller_of(router))
    return RequestList(items=[RequestView.of(r) for r in pending])
