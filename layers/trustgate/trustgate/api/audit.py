"""Admin route: the append-only audit trail, filtered and paginated."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from trustgate import service
from trustgate.api.common import caller_of, deps
from trustgate.models import AuditEvent

router = Router()


class AuditList(BaseModel):
    items: list[AuditEvent]
    next: str | None = None


@router.get("/audit", summary="Audit events, newest first")
def list_audit(
    role: Annotated[str | None, Query()] = None,
    since: Annotated[str | None, Query(description="RFC 3339")] = None,
    until: Annotated[str | None, Query(description="RFC 3339")] = None,
    actor: Annotated[str | None, Query()] = None,
    next: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuditList:
    d = deps()
    caller = caller_of(router)
    role_arn = service.resolve_role(d, role) if role else None
    service.check_admin(d, caller, role_arn)
    page = d.store.audit_events(
        role_arn, service.parse_time(since, "since"), service.parse_time(until, "until"), actor, next, limit
    )
    return AuditList(items=page.items, next=page.next)
