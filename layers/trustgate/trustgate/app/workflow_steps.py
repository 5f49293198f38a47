"""The approval flow's steps (statemachine/approval.asl.json) and the scheduler's targets."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from trustgate.adapters.observability import count, logger
from trustgate.adapters.throttling import throttling_in
from trustgate.app import approval_links
from trustgate.app.access import SYSTEM, policy_for
from trustgate.app.effects import (
    after_activation,
    announce_break_glass,
    concrete_approvers,
    decision_of,
    delete_schedules_quietly,
    end_grant_effects,
    is_outlasted,
    notify,
    resume_flow,
    tell_approvers_closed,
    watchers_of,
)
from trustgate.app.requests import close_parts, parts_of
from trustgate.app.sync import (  # sync_role is a module attribute here: tests interpose on it
    AWAITING_ACTIVATION,
    Activation,
    end_now,
    preview_activation,
    role_lock,
    sync_role,
)
from trustgate.app.transitions import commit_change, transition
from trustgate.core import messages
from trustgate.core.errors import (
    ConflictError,
    RequestNonconformingError,
    TrustGateError,
)
from trustgate.core.identity import role_name_of
from trustgate.core.models import AccessRequest, RequestStatus
from trustgate.core.ports import Dependencies
from trustgate.core.rules import approval_shortfall, nonconforming_reason

EXPIRY_SKEW = timedelta(seconds=60)  # a schedule may fire slightly early; IAM's own condition covers the gap
# A start this close is waited for in the Grant step (well inside its timeout) rather than scheduled: nothing in IAM
# could keep a person out before their start, so a grant is never made early, not even by seconds.
START_SLACK = timedelta(seconds=60)


def notify_approvers(deps: Dependencies, request_id: str, task_token: str) -> dict[str, Any]:
    """State WaitForApproval: keep the task token, send each approver their own link."""
    deps.store.set_task_token(request_id, task_token)
    request = deps.store.get_request(request_id)
    decision = decision_of(request)
    if decision:  # decided before the flow got here: resume it now
        resume_flow(deps, request, decision)
        return {"request_id": request_id, "notified": 0}
    notified = 0
    approvers = concrete_approvers(request)
    for approver in approvers:
        link = None
        if deps.settings.approval_base_url and request.approval_deadline:
            token = approval_links.mint(deps.store, request.id, approver, request.approval_deadline)
            link = f"{deps.settings.approval_base_url.rstrip('/')}/decide/{token}"
        notify(deps, messages.approval_needed(request, approver, link))  # personal: their own delivery only
        notified += 1
    notify(deps, messages.request_notice(request))  # the team copy, without links
    for target in watchers_of(deps, request, approvers):
        notify(deps, messages.request_notice(request, target))
    return {"request_id": request_id, "notified": notified}


def grant(deps: Dependencies, request_id: str) -> dict[str, Any]:
    """State Grant: activate the grant, put the principal in the trust policy, schedule the expiry.

    Safe to retry (the state machine retries lock timeouts and a dead Lambda): a request whose window is on
    record keeps it, and an active one only gets its follow-ups. Once the grant is active nothing may fail it.
    A scheduled request (`start_at` ahead) is recorded `scheduled` and its start schedule made; at its start the
    schedule runs the flow again ({request_id, start: true}) and this step activates it. Early or repeated runs
    change nothing but what is due.
    """
    request = deps.store.get_request(request_id)
    if request.status == RequestStatus.PENDING and request.decided_at is None:
        raise ConflictError(f"request {request_id} has no approval to grant")
    if request.part_of is not None:  # never alone: its request's Grant step grants every role or none
        raise ConflictError(f"request {request_id} is one role of request {request.part_of}; grant that one")
    if request.bundle:
        if request.status in (RequestStatus.PENDING, RequestStatus.ACTIVE):
            return _grant_bundle(deps, request)
        return _fail_bundle(deps, request, request.reason or f"request {request.id} is {request.status.value}")
    if request.status in AWAITING_ACTIVATION:
        if request.break_glass and request.announced_at is None:  # the API died before announcing it
            request = announce_break_glass(deps, request)
        if request.start_at is not None:
            wait = request.start_at - deps.clock.now()
            if wait > START_SLACK:
                return _schedule_start(deps, request)
            if wait > timedelta(0):  # its start is seconds away: wait for it here, never letting anyone in early
                deps.sleep(wait.total_seconds())
                request = deps.store.get_request(request_id)  # as it is after the wait (a cancel may have come)
        return _activate(deps, request)
    if request.status == RequestStatus.ACTIVE:  # a retry after IAM was verified: only follow-ups left
        return _granted(deps, request)
    # Closed meanwhile (cancelled, denied, revoked, ...): whoever closed it took the person out; nothing to grant.
    return {"request_id": request.id, "status": request.status.value}


def _activate(deps: Dependencies, request: AccessRequest) -> dict[str, Any]:
    """Make an approved request an active grant through `sync_role`, or fail it for why it cannot be."""
    if request.status not in AWAITING_ACTIVATION:  # closed while we waited
        return {"request_id": request.id, "status": request.status.value}
    requested_end = request.requested_end()
    if requested_end is not None and requested_end <= deps.clock.now():
        why = f"its window (from {messages.human_time(request.start_at)}) had ended before it could begin"
        return _failed(deps, request, f"not granted: {why}; ask again for a time still ahead")
    effective = policy_for(deps, request.role_arn)
    activation = Activation(request, effective.max_duration, effective.policy.require_mfa)
    # Judged under the role lock by the policy in force there: an admin may have tightened it since the
    # request was made or approved (`sync_role` refuses before writing anything).
    try:
        result = sync_role(deps, request.role_arn, SYSTEM, f"grant {request.id}", activation)
    except RequestNonconformingError as error:
        return _not_granted(deps, deps.store.get_request(request.id), error.message)
    assert result.activated is not None
    return _granted(deps, result.activated)


def _grant_bundle(deps: Dependencies, parent: AccessRequest) -> dict[str, Any]:
    """A multi-role request: one grant per role, each through its own `sync_role`, or none at all.

    The decision is carried to each role's request first; then every role is judged (its policy in force, the
    approvals it counts, room in its trust policy and session guard) before any is granted, so a refusal fails
    them all with each role's reason and IAM never names the person. Only a role that changes between that check
    and its own sync (a race) can fail after others were granted: those are ended at once, their spans kept for
    the session guard, and the whole request fails. Safe to retry: a role already granted is not granted again.
    """
    members = [_carry_decision(deps, parent, member) for member in [parent, *parts_of(deps, parent)]]
    closed = [m for m in members if m.status not in (RequestStatus.PENDING, RequestStatus.ACTIVE)]
    if closed:  # a role's request was ended meanwhile (a revoke of that role): the request is not granted
        ended = "; ".join(f"{role_name_of(m.role_arn)}: {m.status.value}" for m in closed)
        return _fail_bundle(deps, parent, f"not granted: a role's request ended before the grant ({ended})")
    waiting = [m for m in members if m.status == RequestStatus.PENDING]
    now = deps.clock.now()
    refusals = []
    for member in waiting:
        effective = policy_for(deps, member.role_arn)
        why: str | None = nonconforming_reason(member, effective, deps.settings) or approval_shortfall(
            member, effective, deps.settings, now
        )
        if why is None:
            try:
                preview_activation(deps, member, effective)
            except TrustGateError as error:
                why = error.message
        if why is not None:
            refusals.append(f"{role_name_of(member.role_arn)}: {why}")
    if refusals:
        return _fail_bundle(deps, parent, "not granted, for any of its roles: " + "; ".join(refusals))
    for member in waiting:
        holder = deps.store.get_request(parent.id)  # revoked or failed meanwhile: grant no further role
        if holder.status not in (RequestStatus.PENDING, RequestStatus.ACTIVE):
            return _fail_bundle(deps, holder, f"not granted: request {parent.id} is {holder.status.value}")
        effective = policy_for(deps, member.role_arn)
        activation = Activation(member, effective.max_duration, effective.policy.require_mfa)
        try:
            sync_role(deps, member.role_arn, SYSTEM, f"grant {member.id} (of {parent.id})", activation)
        except ConflictError as error:  # refused under the lock (nonconforming, no room, ended meanwhile): none stay
            if throttling_in(error) is not None:  # the table was busy, not the role: the flow retries Grant
                raise
            return _fail_bundle(deps, parent, f"not granted: {role_name_of(member.role_arn)}: {error.message}")
    granted = [deps.store.get_request(m.id) for m in members]
    if any(g.status != RequestStatus.ACTIVE for g in granted):  # one was ended meanwhile (a revoke of its role)
        return _fail_bundle(deps, parent, "not granted: a role's grant was ended while the others were granted")
    for grant in granted:
        after_activation(deps, grant)
    ends = min(g.expires_at for g in granted if g.expires_at is not None)
    return {"request_id": parent.id, "status": RequestStatus.ACTIVE.value, "expires_at": ends.isoformat()}


def _carry_decision(deps: Dependencies, parent: AccessRequest, member: AccessRequest) -> AccessRequest:
    """A multi-role request's other role: given the one decision (its approvals, when, whether a rule approved)."""
    if member.id == parent.id or member.status != RequestStatus.PENDING or member.decided_at is not None:
        return member
    changes = {"approvals": parent.approvals, "decided_at": parent.decided_at, "auto_approved": parent.auto_approved}
    return commit_change(deps, member, changes, SYSTEM, "request.approved", {"with": parent.id})


def _fail_bundle(deps: Dependencies, parent: AccessRequest, reason: str) -> dict[str, Any]:
    """Fail every role of a multi-role request. Every end is recorded first (a role whose window is on record is
    ended now, its span kept, so the session guard ends what it allowed); then each such role's IAM is synced. If
    a sync fails, its end is on record: every later sync of that role, the reconciler's within 5 minutes too,
    renders the person out. A role not yet begun ends as its request did (`close_parts`). The requester is told
    once, when this changed anything."""
    parent = deps.store.get_request(parent.id)
    ended = [
        end_now(deps, member, RequestStatus.FAILED, reason)
        for member in [parent, *parts_of(deps, parent)]
        if member.starts_at is not None and member.status in (RequestStatus.PENDING, RequestStatus.ACTIVE)
    ]
    parent = deps.store.get_request(parent.id)
    changed = [*ended]
    if parent.status == RequestStatus.PENDING:
        parent = transition(deps, parent, RequestStatus.FAILED, SYSTEM, reason=reason)
        changed.append(parent)
    changed += close_parts(deps, parent, SYSTEM)
    for grant in ended:
        sync_role(deps, grant.role_arn, SYSTEM, f"{grant.id} failed", changed=[grant])
        delete_schedules_quietly(deps, grant.id)
    if changed:
        notify(deps, messages.outcome_for_requester(parent))
    return {"request_id": parent.id, "status": parent.status.value, "reason": reason}


def _granted(deps: Dependencies, grant: AccessRequest) -> dict[str, Any]:
    assert grant.expires_at is not None
    after_activation(deps, grant)
    return {"request_id": grant.id, "status": grant.status.value, "expires_at": grant.expires_at.isoformat()}


def _schedule_start(deps: Dependencies, request: AccessRequest) -> dict[str, Any]:
    """An approved request whose start is ahead: it waits as `scheduled` (nobody in IAM) for its one-time schedule.
    Recorded first; a schedule that cannot be made now is made by the reconciler, which also starts a scheduled
    request whose start went by."""
    start_at = request.start_at
    assert start_at is not None
    if request.status == RequestStatus.PENDING:
        # Under the role lock, as a cancel or a revoke of it: neither can miss it while it changes status.
        with role_lock(deps.store, deps, request.role_arn):
            request = deps.store.get_request(request.id)
            if request.status != RequestStatus.PENDING:
                return {"request_id": request.id, "status": request.status.value}
            request = transition(deps, request, RequestStatus.SCHEDULED, SYSTEM)
        notify(deps, messages.outcome_for_requester(request))
    try:
        deps.schedules.create(request.id, start_at, "start")
    except Exception:
        logger.exception("could not schedule a request's start; the reconciler will", extra={"request_id": request.id})
        count("SchedulesDeferred")
    return {"request_id": request.id, "status": request.status.value, "start_at": start_at.isoformat()}


def _not_granted(deps: Dependencies, request: AccessRequest, why: str) -> dict[str, Any]:
    """An approved request the role policy in force no longer allows: it fails, IAM never names its person."""
    reason = (
        f"not granted: the policy of {role_name_of(request.role_arn)} changed after this request was made, and "
        f"{why}; ask again within the current policy"
    )
    return _failed(deps, request, reason)


def _failed(deps: Dependencies, request: AccessRequest, reason: str) -> dict[str, Any]:
    """Record an approved request that will not be granted; one whose window is on record (IAM may have named its
    person before a crash) keeps its span, ended now, and is synced out, as `finalize` does."""
    if request.starts_at is not None:
        failed = end_now(deps, request, RequestStatus.FAILED, reason)
        end_grant_effects(deps, failed, SYSTEM)
        return {"request_id": failed.id, "status": failed.status.value, "reason": reason}
    failed = transition(deps, request, RequestStatus.FAILED, SYSTEM, reason=reason)
    if request.status == RequestStatus.SCHEDULED:
        delete_schedules_quietly(deps, request.id)  # its start schedule, if it has not fired
    notify(deps, messages.outcome_for_requester(failed))
    return {"request_id": failed.id, "status": failed.status.value, "reason": reason}


def finalize(deps: Dependencies, request_id: str, outcome: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
    """States RecordDenied / RecordTimeout / RecordFailure (and the reconciler, for a flow that ended while its
    request was pending): record the outcome, leave nobody behind, tell people."""
    request = deps.store.get_request(request_id)
    if outcome == "failed" and request.bundle:
        parts = parts_of(deps, request)
        if request.status == RequestStatus.ACTIVE and all(p.status == RequestStatus.ACTIVE for p in parts):
            for grant in (request, *parts):  # every role granted (IAM verified): only follow-ups failed
                after_activation(deps, grant)
            return {"request_id": request.id, "status": request.status.value}
        # Some roles granted, others not: none may stay (one grant per role, or none at all).
        return _fail_bundle(deps, request, failure_reason(error))
    if outcome == "timed_out" and request.status == RequestStatus.PENDING:
        request = transition(
            deps, request, RequestStatus.TIMED_OUT, SYSTEM, reason="nobody decided within the approval window"
        )
        close_parts(deps, request, SYSTEM)
        notify(deps, messages.outcome_for_requester(request))
        tell_approvers_closed(deps, request)
    elif outcome == "failed" and request.status == RequestStatus.ACTIVE:
        # Active is recorded only once IAM verified both documents: whatever failed after that (scheduling,
        # telling the requester, a Lambda that died) is finished here, and the grant stands.
        after_activation(deps, request)
    elif outcome == "failed":
        reason = failure_reason(error)
        awaiting = request.status in AWAITING_ACTIVATION
        if awaiting and request.starts_at is not None:
            # Its window is on record, so IAM may have named the person: keep the span, ended now, for the guard.
            request = end_now(deps, request, RequestStatus.FAILED, reason)
        elif awaiting:
            request = transition(deps, request, RequestStatus.FAILED, SYSTEM, reason=reason)
        # Whatever failed, the trust policy must not keep this principal: re-render without the grant.
        end_grant_effects(deps, request, SYSTEM)
    elif outcome == "denied":
        comment = next((a.comment for a in reversed(request.approvals) if a.decision == "deny"), None)
        notify(deps, messages.outcome_for_requester(request, comment))
    return {"request_id": request.id, "status": request.status.value}


def failure_reason(error: dict[str, Any] | None) -> str:
    """A readable reason from a Step Functions Catch result ({"Error", "Cause"})."""
    if not error:
        return "the grant failed"
    cause = error.get("Cause", "")
    try:
        parsed = json.loads(cause)
        message = parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
    except (TypeError, ValueError):
        message = cause
    return f"{error.get('Error', 'Error')}: {message}"[:1000]


def expire(deps: Dependencies, request_id: str) -> dict[str, Any]:
    """Scheduler target: end a grant at its expiry (idempotent; early or repeated calls change nothing).

    The end is recorded before the sync that takes the person out of IAM. A retry (the scheduler's, after a
    call that died in between) finds the grant already ended and finishes the job: the sync again, and the
    grant's schedules removed.
    """
    request = deps.store.get_request(request_id)
    now = deps.clock.now()
    if request.status in (RequestStatus.EXPIRED, RequestStatus.REVOKED):
        sync_role(deps, request.role_arn, SYSTEM, f"{request.id} {request.status.value} (retry)")
        deps.schedules.delete(request.id)
        return {"request_id": request_id, "status": request.status.value}
    if request.status != RequestStatus.ACTIVE or request.expires_at is None:
        return {"request_id": request_id, "status": request.status.value}
    if request.expires_at - EXPIRY_SKEW > now:
        return {
            "request_id": request_id,
            "status": request.status.value,
            "not_due_until": request.expires_at.isoformat(),
        }
    # The approved end stays the end (the schedule may fire up to EXPIRY_SKEW early): the session guard
    # enforces it to the second, while the trust policy stops naming the person at once.
    expired = transition(deps, request, RequestStatus.EXPIRED, SYSTEM)
    sync_role(deps, expired.role_arn, SYSTEM, f"{expired.id} expired", changed=[expired])
    notify(deps, messages.outcome_for_requester(expired))
    return {"request_id": request_id, "status": expired.status.value}


def remind(deps: Dependencies, request_id: str) -> dict[str, Any]:
    """Scheduler target shortly before expiry: tell the requester, unless an extension already covers them."""
    request = deps.store.get_request(request_id)
    if request.status != RequestStatus.ACTIVE or request.expires_at is None:
        return {"request_id": request_id, "reminded": False}
    active = deps.store.active_grants(request.role_arn)
    if is_outlasted(request, active):  # an extension covers them
        return {"request_id": request_id, "reminded": False}
    notify(deps, messages.expiring_soon(request))
    return {"request_id": request_id, "reminded": True}
