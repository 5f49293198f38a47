"""The audit trail as an admin may read it: every event for a bootstrap admin, the roles they administer for others."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from trustgate.app.access import check_admin, resolve_role, roles_for_admin
from trustgate.core.identity import Caller
from trustgate.core.models import AuditEvent
from trustgate.core.ports import Dependencies
from trustgate.core.records import Page, filled_page
from trustgate.core.rules import is_admin


@dataclass(frozen=True)
class AuditQuery:
    role: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    cursor: str | None = None
    limit: int = 50


def audit_trail(deps: Dependencies, caller: Caller, query: AuditQuery) -> Page[AuditEvent]:
    """A page of the trail, newest first; 403 for a caller who administers no role (or not the role asked for).

    An admin of several roles but not all reads the whole trail, kept to their roles: pages are filled
    (`records.filled_page`), so a page holds `query.limit` events unless there are no more."""
    role_arn = resolve_role(deps, query.role) if query.role else None
    read = partial(deps.store.audit_events, since=query.since, until=query.until, actor=query.actor)
    if role_arn is not None or is_admin(caller, deps.settings.bootstrap_admins):
        check_admin(deps, caller, role_arn)
        return read(role_arn, cursor=query.cursor, limit=query.limit)
    administered = roles_for_admin(deps, caller)
    if not administered:
        check_admin(deps, caller)  # 403: administers nothing
    if len(administered) == 1:  # one role: its own index, full pages
        return read(administered[0], cursor=query.cursor, limit=query.limit)
    return filled_page(
        lambda cursor, limit: read(None, cursor=cursor, limit=limit),
        lambda event: event.role_arn in administered,
        query.cursor,
        query.limit,
    )
