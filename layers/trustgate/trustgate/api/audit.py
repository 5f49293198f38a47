"""Admin route: the append-only audit trail, filtered and paginated, of the roles the caller administers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from trustgate import admin, rules, service
from trustgate.api.common import caller_of, deps, documented
from trustgate.durations import parse_duration
from trustgate.errors import ValidationError
from trustgate.models import AuditEvent

router = Router()
_TIME = "RFC 3339 (2026-11-26T10:00:00Z), or an age as an ISO 8601 duration (PT1H: one hour before now)"


def _time_or_age(value: str | None, name: str, now: datetime) -> datetime | None:
    """An RFC 3339 time, or an age (`PT1H`) counted back from TrustGate's own clock, not the caller's."""
    if not value or not value.strip().upper().startswith("P"):
        return service.parse_time(value, name)
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

    Without `role`, a page may hold fewer than `limit` events (even none) when other roles' events were
    left out: follow `next` until it is absent.
    """
    d = deps()
    caller = caller_of(router)
    now = d.clock.now()
    start, end = _time_or_age(since, "since", now), _time_or_age(until, "until", now)
    if start and end and start > end:
        raise ValidationError("since must not be later than until")
    role_arn = service.resolve_role(d, role) if role else None
    if role_arn is not None or rules.is_admin(caller, d.settings.bootstrap_admins):
        service.check_admin(d, caller, role_arn)
        page = d.store.audit_events(role_arn, start, end, actor, next, limit)
        return AuditList(items=page.items, next=page.next)
    administered = admin.roles_for_admin(d, caller)
    if not administered:
        service.check_admin(d, caller)  # 403: administers nothing
    if len(administered) == 1:  # one role: its own index, full pages
        page = d.store.audit_events(administered[0], start, end, actor, next, limit)
        return AuditList(items=page.items, next=page.next)
    page = d.store.audit_events(None, start, end, actor, next, limit)
    return AuditList(items=[e for e in page.items if e.role_arn in administered], next=page.next)
