"""Admin route: the append-only audit trail, filtered and paginated, of the roles the caller administers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from trustgate.api.common import caller_of, deps, documented
from trustgate.app import audit
from trustgate.core.clock import parse_rfc3339
from trustgate.core.durations import parse_duration
from trustgate.core.errors import ValidationError
from trustgate.core.models import AuditEvent

router = Router()
_TIME = "RFC 3339 (2026-11-26T10:00:00Z), or an age as an ISO 8601 duration (PT1H: one hour before now)"


def _time_or_age(value: str | None, name: str, now: datetime) -> datetime | None:
    """An RFC 3339 time, or an age (`PT1H`) counted back from TrustGate's own clock, not the caller's."""
    if not value or not value.strip().upper().startswith("P"):
        return _time(value, name)
    try:
        return now - parse_duration(value)
    except ValidationError as error:
        raise ValidationError(
            f"{name}: {error.message}; or give an RFC 3339 time such as 2026-11-26T10:00:00Z"
        ) from error


class AuditList(BaseModel):
    items: list[AuditEvent]
    next: str | None = None


@router.get(
    "/audit",
    summary="Audit events of the roles you administer, newest first",
    responses=documented(
        200,
        "a page of audit events; follow `next` for more",
        {403: "`forbidden`: you administer no role (or not the role asked for)", 404: "`not_found`: no such role"},
    ),
)
def list_audit(
    role: Annotated[str | None, Query()] = None,
    since: Annotated[str | None, Query(description=_TIME)] = None,
    until: Annotated[str | None, Query(description=_TIME)] = None,
    actor: Annotated[str | None, Query()] = None,
    next: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuditList:
    """Bootstrap admins see every event; the admin of some roles sees only those roles' events.

    A page holds `limit` events unless there are no more (`next` is then absent); only when many events in a row
    are of roles you do not administer does it hold fewer, with `next` to go on from.
    """
    now = deps().clock.now()
    start, end = _time_or_age(since, "since", now), _time_or_age(until, "until", now)
    if start and end and start > end:
        raise ValidationError("since must not be later than until")
    page = audit.audit_trail(deps(), caller_of(router), audit.AuditQuery(role, start, end, actor, next, limit))
    return AuditList(items=page.items, next=page.next)


def _time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as error:
        raise ValidationError(f"{name} must be an RFC 3339 time such as 2026-11-26T10:00:00Z") from error
