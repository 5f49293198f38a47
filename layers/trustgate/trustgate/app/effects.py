"""What follows a recorded change and may never undo it: flows resumed, schedules made, people told, events published."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from trustgate.adapters.observability import count, logger
from trustgate.app.access import policy_for
from trustgate.app.sync import (
    SyncResult,
    sync_role,
)
from trustgate.app.transitions import commit_change, publish_quietly
from trustgate.core import messages
from trustgate.core.durations import format_duration
from trustgate.core.errors import (
    TrustGateError,
)
from trustgate.core.identity import person_of
from trustgate.core.messages import Notification
from trustgate.core.models import AccessRequest, AuditEvent, RequestStatus, notify_targets
from trustgate.core.ports import Dependencies
from trustgate.core.rules import (
    same_human,
)

REMINDER_BEFORE = timedelta(minutes=10)


REMINDER_MIN_DURATION = timedelta(minutes=30)  # a shorter grant needs no separate reminder


def resume_flow(deps: Dependencies, request: AccessRequest, decision: Literal["approve", "deny", "cancelled"]) -> bool:
    """Hand a decision to the waiting flow, whichever side (API, notify step, reconciler) gets there last; True
    when this call sent it. The send is leased, not claimed for good: if this process dies before sending, the
    reconciler sends it once the lease lapses (a second send to a finished task is ignored)."""
    claimed_at = deps.clock.now()
    try:
        token = deps.store.get_task_token(request.id)
        if not token:
            return False  # the flow is not waiting yet: its notify step finds the decision on the request
        if not deps.store.claim_decision_delivery(request.id, claimed_at):
            return False
    except Exception:  # the decision is recorded: it must not fail for this; the reconciler delivers it
        logger.exception("could not hand a decision to the flow", extra={"request_id": request.id})
        return False
    try:
        deps.flow.resume(token, decision)
    except Exception:  # the decision is recorded; the reconciler delivers it on its next run
        logger.exception("could not resume the approval flow", extra={"request_id": request.id})
        try:
            deps.store.release_decision_delivery(request.id, claimed_at)
        except Exception:  # the lease lapses by itself
            logger.exception("could not release a decision's lease", extra={"request_id": request.id})
        return False
    return True


def decision_of(request: AccessRequest) -> Literal["approve", "deny", "cancelled"] | None:
    if request.status == RequestStatus.DENIED:
        return "deny"
    if request.status == RequestStatus.PENDING:
        return "approve" if request.decided_at is not None else None
    return "cancelled"


def while_pending(deps: Dependencies, request: AccessRequest, seconds: float, poll: float) -> AccessRequest:
    """The request once it is no longer pending (its flow granted, failed or ended it), or as it stands after
    `seconds`: a bounded wait in real time, for an answer that can say what the flow did (the flow runs elsewhere)."""
    deadline = time.monotonic() + seconds
    while request.status == RequestStatus.PENDING and time.monotonic() < deadline:
        time.sleep(poll)
        request = deps.store.get_request(request.id)
    return request


def start_flow(deps: Dependencies, request: AccessRequest) -> bool:
    """Start the request's approval flow (named after it: never a second one), told what the API decided when it
    recorded the request: auto-approved (straight to Grant) or not, and how long it may wait for a decision."""
    now = deps.clock.now()
    window = (request.approval_deadline or now) - now
    return deps.flow.start(
        request.id,
        auto_approve=request.auto_approved or request.break_glass,
        approval_window_seconds=max(1, int(window.total_seconds())),
    )


def delete_schedules_quietly(deps: Dependencies, request_id: str) -> None:
    """Delete a request's schedules after its end is recorded; one left behind (AWS failed) is the reconciler's to
    delete, so this never fails the change that ended it."""
    try:
        deps.schedules.delete(request_id)
    except Exception:
        logger.exception(
            "could not delete a request's schedules; the reconciler will", extra={"request_id": request_id}
        )
        count("SchedulesDeferred")


def end_grant_effects(deps: Dependencies, ended: AccessRequest, actor: str) -> SyncResult:
    """After a grant ends: take the principal out, drop the schedule, tell the requester."""
    result = sync_role(deps, ended.role_arn, actor, f"{ended.id} {ended.status.value}", changed=[ended])
    deps.schedules.delete(ended.id)
    notify(deps, messages.outcome_for_requester(ended))
    return result


def after_activation(deps: Dependencies, grant: AccessRequest) -> None:
    """What follows an activation: its schedules, the requester told. A grant is active only once IAM verified
    it, so none of this may fail it: a schedule that cannot be made now is made by the reconciler (IAM's own
    end condition and the session guard end the access on time meanwhile). An extension takes away the reminders
    of the person's grants that end before it: their ends are no longer the end of the person's access."""
    active: Sequence[AccessRequest] | None = None
    try:
        active = ensure_schedules(deps, grant)
    except Exception:
        logger.exception("could not schedule a grant's expiry; the reconciler will", extra={"request_id": grant.id})
        count("SchedulesDeferred")
    if grant.extends is not None:
        try:
            if active is None:  # not read for the reminder (a short grant), or that failed
                active = deps.store.active_grants(grant.role_arn)
            for earlier in outlasted_by(grant, active):
                deps.schedules.delete(earlier.id, ("remind",))
        except Exception:  # the reminder then names an end that is no longer the end: wrong words, no access
            logger.exception("could not take away the reminder of an extended grant", extra={"request_id": grant.id})
    notify(deps, messages.outcome_for_requester(grant))


def outlasted_by(grant: AccessRequest, active: Sequence[AccessRequest]) -> list[AccessRequest]:
    """The person's other active grants of the role that end before `grant` does: it extends their access."""
    return [
        g
        for g in active
        if g.id != grant.id
        and g.requester.key == grant.requester.key
        and g.expires_at is not None
        and grant.expires_at is not None
        and g.expires_at < grant.expires_at
    ]


def is_outlasted(grant: AccessRequest, active: Sequence[AccessRequest]) -> bool:
    """Does another of these active grants extend `grant`'s person beyond its end (so its end is not theirs)?"""
    return any(grant.id in {o.id for o in outlasted_by(later, active)} for later in active)


def ensure_schedules(
    deps: Dependencies, grant: AccessRequest, active: Sequence[AccessRequest] | None = None
) -> Sequence[AccessRequest] | None:
    """Schedule an active grant's expiry and, for a long one, its reminder (replacing any made before). No
    reminder while another grant of the person outlasts this one (an extension): its end is not theirs.
    `active` is the role's active grants, for a caller that has just read them (else they are read here, when
    the reminder needs them); returned, so a caller need not read them again (None when they were not needed)."""
    assert grant.expires_at is not None
    deps.schedules.create(grant.id, grant.expires_at)
    remind_at = grant.expires_at - REMINDER_BEFORE
    if grant.duration < REMINDER_MIN_DURATION or remind_at <= deps.clock.now():
        return active
    if active is None:
        active = deps.store.active_grants(grant.role_arn)
    if is_outlasted(grant, active):
        deps.schedules.delete(grant.id, ("remind",))
    else:
        deps.schedules.create(grant.id, remind_at, "remind", messages.expiring_soon(grant))
    return active


def concrete_approvers(request: AccessRequest) -> list[str]:
    """Approvers named exactly (no wildcard) get a personal link; pattern approvers use the CLI or API."""
    return [
        arn
        for arn in dict.fromkeys(request.approvers)
        if "*" not in arn
        and "?" not in arn
        and arn.startswith("arn:")
        and (request.allow_self_approval or not _same_person(arn, request))
    ]


def _same_person(arn: str, request: AccessRequest) -> bool:
    try:
        return same_human(person_of(arn), request.requester)
    except TrustGateError:
        return False


def break_glass_record(request: AccessRequest) -> AuditEvent:
    """The audit record (and EventBridge event `trustgate.break_glass`) of a break-glass request: written with the
    request, in one transaction, under an id derived from the request's, so it can be announced again as it was."""
    return AuditEvent(
        id=f"{request.id}-break-glass",
        at=request.created_at,
        actor=request.principal_arn,
        action="break_glass",
        role_arn=request.role_arn,
        request_id=request.id,
        detail={
            "principal_arn": request.principal_arn,
            "person": request.requester.label,
            "duration": format_duration(request.duration),
            "justification": request.justification,
            "ticket": request.ticket,
        },
    )


def announce_break_glass(deps: Dependencies, request: AccessRequest) -> AccessRequest:
    """Everyone who would have approved it, at once: the event, the metric its alarm watches, and each approver
    (on their own delivery), the role's notify targets and the team told; then `announced_at` recorded.

    The API announces a break-glass request as soon as it is recorded; the Grant step announces one that is not
    yet (the API died first) before it activates it, so no break-glass grant begins unannounced. Dying between
    the two announces it twice, never not at all."""
    publish_event(deps, break_glass_record(request))
    count("BreakGlassUsed")
    until = deps.clock.now() + request.duration
    reviewers = reviewers_of(request)
    for reviewer in reviewers:
        notify(deps, messages.break_glass_used(request, until, reviewer))
    notify(deps, messages.break_glass_used(request, until))
    for target in watchers_of(deps, request, reviewers):
        notify(deps, messages.break_glass_used(request, until, target))
    changes = {"announced_at": deps.clock.now()}
    return commit_change(deps, request, changes, "trustgate", "break_glass.announced")


def watchers_of(deps: Dependencies, request: AccessRequest, told: list[str]) -> list[str]:
    """The `notify` targets of the request's roles (each role of a multi-role request), bounded and well-formed even
    if a policy stored before these checks holds more (`notify_targets`), except those in `told` already."""
    targets = [t for arn in request.roles or [request.role_arn] for t in policy_for(deps, arn).policy.notify]
    return [target for target in notify_targets(targets) if target not in told]


def reviewers_of(request: AccessRequest) -> list[str]:
    """The approvers named exactly who may review a break-glass grant: never its requester."""
    return concrete_approvers(request.model_copy(update={"allow_self_approval": False}))


def tell_approvers_closed(deps: Dependencies, request: AccessRequest, except_arn: str | None = None) -> None:
    if request.part_of is not None:  # its approvers were asked about the multi-role request, and told of that
        return
    for approver in concrete_approvers(request):
        if approver != except_arn:
            notify(deps, messages.already_decided(request, approver))


def notify(deps: Dependencies, notification: Notification) -> None:
    try:
        deps.notifier.send(notification)
    except Exception:  # a lost notification must never undo or block an access decision
        logger.exception("notification failed", extra={"event": notification.event})


def publish_event(deps: Dependencies, event: AuditEvent) -> None:
    publish_quietly(deps.events, event)  # the change is committed: a lost event is logged and counted, no failure
