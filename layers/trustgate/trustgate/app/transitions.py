"""The one way a request changes: check the move, write it with its audit record, emit the event."""

from __future__ import annotations

from typing import Any

from trustgate.adapters.observability import count, logger
from trustgate.core.ids import new_id
from trustgate.core.lifecycle import check_transition, event_name
from trustgate.core.models import AccessRequest, AuditEvent, RequestStatus
from trustgate.core.ports import Dependencies, EventPublisher

# Counted for each event the bus did not take (its change is committed all the same).
NOT_PUBLISHED_METRIC = "EventsNotPublished"


def commit_change(
    deps: Dependencies,
    before: AccessRequest,
    changes: dict[str, Any],
    actor: str,
    action: str,
    detail: dict[str, Any] | None = None,
) -> AccessRequest:
    """Apply `changes` to a request if nobody changed it meanwhile; audit and announce it."""
    after = before.model_copy(update={**changes, "version": before.version + 1})
    now = deps.clock.now()
    fields = sorted(set(changes) - {"version"})
    event = AuditEvent(
        id=new_id(now),
        at=now,
        actor=actor,
        action=action,
        role_arn=before.role_arn,
        request_id=before.id,
        before=before.model_dump(mode="json", include=set(fields)),
        after=after.model_dump(mode="json", include=set(fields)),
        detail={"principal_arn": before.principal_arn, **(detail or {})},
    )
    deps.store.replace_request(before, after, event)
    count(action)
    publish_quietly(deps.events, event)  # the audit record is committed: a lost bus event must not undo the change
    return after


def transition(
    deps: Dependencies,
    request: AccessRequest,
    target: RequestStatus,
    actor: str,
    *,
    reason: str | None = None,
    **changes: Any,
) -> AccessRequest:
    """Move a request to `target` (a legal move only), recording who did it and why."""
    check_transition(request.status, target)
    update: dict[str, Any] = {"status": target, **changes}
    if reason is not None:
        update["reason"] = reason
    return commit_change(deps, request, update, actor, event_name(target), {"reason": reason} if reason else None)


def publish_quietly(publisher: EventPublisher, event: AuditEvent) -> bool:
    """Publish an event whose change is already committed: a failure is logged and counted, never raised.

    Returns whether it was published."""
    try:
        publisher.publish(event)
    except Exception:
        logger.exception(
            "could not publish event",
            extra={"action": event.action, "role_arn": event.role_arn, "request_id": event.request_id},
        )
        count(NOT_PUBLISHED_METRIC)
        return False
    return True
