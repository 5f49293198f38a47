"""Admin route: the append-only audit trail, filtered and paginated, of the roles the caller administers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, ConfigDict

from trustgate.api.common import caller_of, deps, documented
from trustgate.api.inputs import header
from trustgate.app import audit
from trustgate.core.audit_export import COLUMNS, CSV_MEDIA_TYPE, audit_csv, prefers_csv
from trustgate.core.clock import parse_rfc3339, to_rfc3339
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
    # defer_build: the schema is built when a route first needs it, not in every cold start.
    model_config = ConfigDict(defer_build=True)
    items: list[AuditEvent]
    next: str | None = None


_CSV = (
    f"CSV ({CSV_MEDIA_TYPE}) for `?format=csv` or `Accept: text/csv`: a header row ({', '.join(COLUMNS)}), one "
    "event per row, `before`/`after`/`detail` as JSON text; the next page's link is in the `Link` header "
    '(`rel="next"`), absent on the last page'
)


@router.get(
    "/audit",
    summary="Audit events of the roles you administer, newest first (JSON or CSV)",
    responses=documented(
        200,
        "a page of audit events; follow `next` for more",
        {403: "`forbidden`: you administer no role (or not the role asked for)", 404: "`not_found`: no such role"},
        content={
            "application/json": {"model": AuditList},
            CSV_MEDIA_TYPE: {"schema": {"type": "string", "description": _CSV}},
        },
    ),
)
def list_audit(
    role: Annotated[str | None, Query()] = None,
    since: Annotated[str | None, Query(description=_TIME)] = None,
    until: Annotated[str | None, Query(description=_TIME)] = None,
    actor: Annotated[str | None, Query()] = None,
    next: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    format_: Annotated[
        Literal["json", "csv"] | None,
        Query(alias="format", description="`csv` for CSV (default: JSON, or what `Accept` prefers)"),
    ] = None,
) -> Response[Any]:
    """Bootstrap admins see every event; the admin of some roles sees only those roles' events.

    A page holds `limit` events unless there are no more (`next` is then absent); only when many events in a row
    are of roles you do not administer does it hold fewer, with `next` to go on from.
    """
    now = deps().clock.now()
    start, end = _time_or_age(since, "since", now), _time_or_age(until, "until", now)
    if start and end and start > end:
        raise ValidationError("since must not be later than until")
    page = audit.audit_trail(deps(), caller_of(router), audit.AuditQuery(role, start, end, actor, next, limit))
    vary = {"Vary": "Accept"}  # one URL, two representations: caches must key on Accept
    if not prefers_csv(format_, header(router.current_event.raw_event, "accept")):
        return Response(200, "application/json", AuditList(items=page.items, next=page.next), headers=vary)
    # The next page keeps this page's window: an age (since=PT1H) is sent on as the time it meant now.
    window = {"since": to_rfc3339(start) if start else None, "until": to_rfc3339(end) if end else None}
    given = {"role": role, **window, "actor": actor, "limit": limit, "format": "csv"}
    headers = {**vary, "Link": _next_link(given, page.next)} if page.next else vary
    return Response(200, f"{CSV_MEDIA_TYPE}; charset=utf-8", audit_csv(page.items), headers=headers)


def _next_link(given: dict[str, str | int | None], cursor: str) -> str:
    """RFC 8288 `Link` to the next page: the same query with the cursor, relative to this path (the stage kept)."""
    query = urlencode([(k, v) for k, v in {**given, "next": cursor}.items() if v is not None], quote_via=quote)
    return f'<audit?{query}>; rel="next"'


def _time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as error:
        raise ValidationError(f"{name} must be an RFC 3339 time such as 2026-11-26T10:00:00Z") from error
