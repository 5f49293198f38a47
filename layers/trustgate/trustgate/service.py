"""Application services: what each user action and each workflow step does, over the adapters.

Handlers parse and call these; these call the pure core and the adapters. Every trust-policy change
goes through `sync_role`; every request change through `transitions.transition`/`commit_change`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import unquote

from trustgate import approval_links, messages
from trustgate.clock import parse_rfc3339
from trustgate.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RuleViolationError,
    TrustGateError,
    ValidationError,
)
from trustgate.identity import Caller, matches_any
from trustgate.ids import new_id
from trustgate.messages import Notification
from trustgate.models import AccessRequest, Approval, AuditEvent, RequestStatus
from trustgate.observability import logger
from trustgate.rules import (
    EffectivePolicy,
    auto_approves,
    check_decidable,
    check_may_request,
    check_request,
    effective_policy,
    is_admin,
    render_spec,
)
from trustgate.store import iterate_pages
from trustgate.sync import Activation, SyncResult, sync_role
from trustgate.transitions import commit_change, transition
from trustgate.trust_policy import render_trust_policy
from trustgate.wiring import Dependencies

SYSTEM = "trustgate"
OPTIMISTIC_RETRIES = 8
REMINDER_BEFORE = timedelta(minutes=10)
REMINDER_MIN_DURATION = timedelta(minutes=30)  # a shorter grant needs no separate reminder
EXPIRY_SKEW = timedelta(seconds=60)  # a schedule may fire slightly early; IAM's own condition covers the gap


# -- roles and policies -------------------------------------------------------------------------


def resolve_role(deps: Dependencies, role: str) -> str:
    """A managed role ARN from its ARN or its name (API Gateway passes path parameters still URL-encoded)."""
    role = unquote(role)
    for arn in deps.settings.managed_role_arns:
        if role in (arn, arn.rsplit("/", 1)[-1]):
            return arn
    names = ", ".join(arn.rsplit("/", 1)[-1] for arn in deps.settings.managed_role_arns) or "none"
    raise NotFoundError(f"{role!r} is not a role TrustGate manages (managed roles: {names})")


def policy_for(deps: Dependencies, role_arn: str) -> EffectivePolicy:
    policy, _ = deps.store.get_role_policy(role_arn)
    return effective_policy(role_arn, policy, deps.settings)


def check_admin(deps: Dependencies, caller: Caller, role_arn: str | None = None) -> None:
    admins = policy_for(deps, role_arn).admins if role_arn else tuple(deps.settings.bootstrap_admins)
    if not is_admin(caller, admins):
        raise ForbiddenError(f"{caller.arn} is not a TrustGate admin" + (f" for {role_arn}" if role_arn else ""))


def is_any_admin(deps: Dependencies, caller: Caller) -> bool:
    return any(is_admin(caller, policy_for(deps, arn).admins) for arn in deps.settings.managed_role_arns)


# -- requesting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewRequest:
    role: str
    duration: timedelta | None
    justification: str
    ticket: str | None = None
    extends: str | None = None


def create_request(deps: Dependencies, caller: Caller, new: NewRequest) -> AccessRequest:
    """Validate, record and start the approval flow for a request; the requester is always the caller."""
    role_arn = resolve_role(deps, new.role)
    effective = policy_for(deps, role_arn)
    check_may_request(caller, effective, deps.settings)
    duration = new.duration or effective.default_duration
    check_request(duration, new.justification, new.ticket, effective)
    now = deps.clock.now()
    request = AccessRequest(
        id=new_id(now),
        role_arn=role_arn,
        principal_arn=caller.arn,
        principal_id=caller.unique_id,
        duration=duration,
        justification=new.justification.strip(),
        ticket=new.ticket,
        created_at=now,
        approval_deadline=now + effective.approval_window,
        required_approvals=effective.policy.required_approvals,
        approvers=list(effective.approvers),
        allow_self_approval=effective.policy.allow_self_approval,
        extends=new.extends,
    )
    _check_capacity(deps, request, effective)
    audit = AuditEvent(
        id=new_id(now),
        at=now,
        actor=caller.arn,
        action="request.created",
        role_arn=role_arn,
        request_id=request.id,
        after=request.model_dump(mode="json", exclude={"approvers"}),
    )
    deps.store.create_request(request, audit)
    publish_event(deps, audit)
    try:
        deps.flow.start(request.id)
    except Exception as error:
        logger.exception("could not start the approval flow")
        transition(deps, request, RequestStatus.FAILED, SYSTEM, reason=f"the approval flow could not start: {error}")
        raise
    return request


def _check_capacity(deps: Dependencies, request: AccessRequest, effective: EffectivePolicy) -> None:
    """Refuse up front (409 trust_policy_full) when the role cannot hold one more grant now."""
    now = deps.clock.now()
    candidate = request.model_copy(update={"status": RequestStatus.ACTIVE, "expires_at": now + request.duration})
    grants = [g for g in deps.store.active_grants(request.role_arn) if g.is_grant_live(now)]
    live = deps.roles.trust_policy(request.role_arn)
    spec = render_spec(effective, [*grants, candidate], deps.settings)
    render_trust_policy(live, spec, now)


def extend_request(
    deps: Dependencies, caller: Caller, request_id: str, duration: timedelta, justification: str
) -> AccessRequest:
    """Ask for more time on an active grant: a new request, linked by `extends`, through the same approval."""
    original = deps.store.get_request(request_id)
    if original.principal_arn != caller.arn:
        raise ForbiddenError("only the requester of a grant can extend it")
    if original.status != RequestStatus.ACTIVE or original.expires_at is None:
        raise ConflictError(f"request {request_id} is {original.status.value}; only an active grant can be extended")
    effective = policy_for(deps, original.role_arn)
    until = original.expires_at + duration
    if until - deps.clock.now() > effective.max_duration:
        raise RuleViolationError(
            f"extending by {duration} would keep access until {until:%Y-%m-%dT%H:%M:%SZ}, more than the role's "
            f"maximum of {effective.max_duration} from now; ask for less",
            code="duration_too_long",
        )
    return create_request(
        deps, caller, NewRequest(original.role_arn, duration, justification, original.ticket, original.id)
    )


def cancel_request(deps: Dependencies, caller: Caller, request_id: str) -> AccessRequest:
    request = deps.store.get_request(request_id)
    if request.principal_arn != caller.arn:
        raise ForbiddenError("only the requester can cancel a request")
    if request.status != RequestStatus.PENDING:
        raise ConflictError(f"request {request_id} is {request.status.value}; only a pending request can be cancelled")
    cancelled = transition(deps, request, RequestStatus.CANCELLED, caller.arn)
    _resume_flow(deps, cancelled, "cancelled")
    _tell_approvers_closed(deps, cancelled)
    return cancelled


def revoke_request(deps: Dependencies, caller: Caller, request_id: str, reason: str | None) -> AccessRequest:
    """End an active grant now (its requester or an admin); the principal leaves the trust policy at once."""
    request = deps.store.get_request(request_id)
    if request.principal_arn != caller.arn and not is_admin(caller, policy_for(deps, request.role_arn).admins):
        raise ForbiddenError("only the requester of a grant or an admin can revoke it")
    if request.status != RequestStatus.ACTIVE:
        raise ConflictError(f"request {request_id} is {request.status.value}; only an active grant can be revoked")
    revoked = transition(
        deps,
        request,
        RequestStatus.REVOKED,
        caller.arn,
        reason=reason or f"revoked by {caller.arn}",
        expires_at=deps.clock.now(),
    )
    end_grant_effects(deps, revoked, caller.arn)
    return revoked


def end_grant_effects(deps: Dependencies, ended: AccessRequest, actor: str) -> SyncResult:
    """After a grant ends: take the principal out, drop the schedule, tell the requester."""
    result = sync_role(deps, ended.role_arn, actor, f"{ended.id} {ended.status.value}")
    deps.schedules.delete(ended.id)
    notify(deps, messages.outcome_for_requester(ended))
    return result


# -- reading ------------------------------------------------------------------------------------


def get_request_for(deps: Dependencies, caller: Caller, request_id: str) -> AccessRequest:
    """The requester, the request's approvers and admins may read a request."""
    request = deps.store.get_request(request_id)
    allowed = (
        request.principal_arn == caller.arn
        or matches_any(caller.arn, request.approvers)
        or is_admin(caller, policy_for(deps, request.role_arn).admins)
    )
    if not allowed:
        raise NotFoundError(f"no request {request_id} that you may see")
    return request


def pending_for_approver(deps: Dependencies, caller: Caller) -> list[AccessRequest]:
    now = deps.clock.now()
    return [
        request
        for request in iterate_pages(lambda cursor: deps.store.requests_by_status(RequestStatus.PENDING, cursor))
        if request.decided_at is None
        and (request.approval_deadline is None or request.approval_deadline > now)
        and matches_any(caller.arn, request.approvers)
        and (request.principal_arn != caller.arn or request.allow_self_approval)
        and not any(a.approver_arn == caller.arn for a in request.approvals)
    ]


# -- deciding -----------------------------------------------------------------------------------

Decision = Literal["approve", "deny"]


def decide(
    deps: Dependencies, approver: Caller, request_id: str, decision: Decision, comment: str | None
) -> AccessRequest:
    """Record one approver's decision; counted atomically (N of M), a deny ends the request at once."""
    for _ in range(OPTIMISTIC_RETRIES):
        request = deps.store.get_request(request_id)
        now = deps.clock.now()
        check_decidable(request, approver, now)
        approvals = [
            *request.approvals,
            Approval(approver_arn=approver.arn, decision=decision, at=now, comment=comment),
        ]
        try:
            if decision == "deny":
                decided = transition(
                    deps,
                    request,
                    RequestStatus.DENIED,
                    approver.arn,
                    approvals=approvals,
                    decided_at=now,
                    reason=comment,
                )
                _resume_flow(deps, decided, "deny")
                _tell_approvers_closed(deps, decided, except_arn=approver.arn)
                return decided
            quorum = sum(1 for a in approvals if a.decision == "approve") >= request.required_approvals
            changes: dict[str, Any] = {"approvals": approvals}
            if quorum:
                changes["decided_at"] = now
            updated = commit_change(
                deps,
                request,
                changes,
                approver.arn,
                "request.approved" if quorum else "approval.recorded",
                {"comment": comment} if comment else None,
            )
        except ConflictError:
            continue  # someone else decided at the same moment: re-read and judge again
        if quorum:
            _resume_flow(deps, updated, "approve")
            _tell_approvers_closed(deps, updated, except_arn=approver.arn)
        return updated
    raise ConflictError(f"request {request_id} is being decided by others right now; try again")


def _resume_flow(deps: Dependencies, request: AccessRequest, decision: Literal["approve", "deny", "cancelled"]) -> None:
    """Hand a decision to the waiting flow exactly once, whichever side (API or notify step) gets there last."""
    token = deps.store.get_task_token(request.id)
    if token and deps.store.claim_decision_delivery(request.id):
        deps.flow.resume(token, decision)


def _decision_of(request: AccessRequest) -> Literal["approve", "deny", "cancelled"] | None:
    if request.status == RequestStatus.DENIED:
        return "deny"
    if request.status == RequestStatus.PENDING:
        return "approve" if request.decided_at is not None else None
    return "cancelled"


# -- workflow steps -----------------------------------------------------------------------------


def evaluate(deps: Dependencies, request_id: str) -> dict[str, Any]:
    """State EvaluateRequest: does a rule approve this without a person, and how long may the flow wait?"""
    request = deps.store.get_request(request_id)
    now = deps.clock.now()
    auto = False
    if request.status == RequestStatus.PENDING and request.decided_at is None:
        rules = policy_for(deps, request.role_arn).policy.auto_approve
        if auto_approves(request, rules, now):
            commit_change(deps, request, {"auto_approved": True, "decided_at": now}, SYSTEM, "request.auto_approved")
            auto = True
    deadline = request.approval_deadline or now
    return {
        "request_id": request_id,
        "auto_approve": auto or request.auto_approved,
        "approval_window_seconds": max(1, int((deadline - now).total_seconds())),
    }


def notify_approvers(deps: Dependencies, request_id: str, task_token: str) -> dict[str, Any]:
    """State WaitForApproval: keep the task token, send each approver their own link."""
    deps.store.set_task_token(request_id, task_token)
    request = deps.store.get_request(request_id)
    decision = _decision_of(request)
    if decision:  # decided before the flow got here: resume it now
        _resume_flow(deps, request, decision)
        return {"request_id": request_id, "notified": 0}
    notified = 0
    for approver in concrete_approvers(request):
        link = None
        if deps.settings.approval_base_url and request.approval_deadline:
            token = approval_links.mint(deps.store, request.id, approver, request.approval_deadline)
            link = f"{deps.settings.approval_base_url.rstrip('/')}/decide/{token}"
        notify(deps, messages.approval_needed(request, approver, link))
        notified += 1
    for target in policy_for(deps, request.role_arn).policy.notify:
        notify(deps, messages.approval_needed(request, target, None))
    return {"request_id": request_id, "notified": notified}


def concrete_approvers(request: AccessRequest) -> list[str]:
    """Approvers named exactly (no wildcard) get a personal link; pattern approvers use the CLI or API."""
    return [
        arn
        for arn in dict.fromkeys(request.approvers)
        if "*" not in arn
        and "?" not in arn
        and arn.startswith("arn:")
        and (arn != request.principal_arn or request.allow_self_approval)
    ]


def grant(deps: Dependencies, request_id: str) -> dict[str, Any]:
    """State Grant: activate the grant, put the principal in the trust policy, schedule the expiry."""
    request = deps.store.get_request(request_id)
    now = deps.clock.now()
    if request.status == RequestStatus.PENDING:
        if request.decided_at is None:
            raise ConflictError(f"request {request_id} has no approval to grant")
        starts = now
        if request.extends:
            previous = deps.store.get_request(request.extends)
            if previous.status == RequestStatus.ACTIVE and previous.expires_at and previous.expires_at > now:
                starts = previous.expires_at  # an extension continues where the grant it extends ends
        activation = Activation(request, now, starts + request.duration)
        result = sync_role(deps, request.role_arn, SYSTEM, f"grant {request.id}", activation)
        assert result.activated is not None
        request = result.activated
    elif request.status == RequestStatus.ACTIVE:
        sync_role(deps, request.role_arn, SYSTEM, f"grant {request.id} (retry)")
    else:
        raise ConflictError(f"request {request_id} is {request.status.value}; nothing to grant")
    assert request.expires_at is not None
    deps.schedules.create(request.id, request.expires_at)
    if request.duration >= REMINDER_MIN_DURATION:
        deps.schedules.create(request.id, request.expires_at - REMINDER_BEFORE, reminder=True)
    notify(deps, messages.outcome_for_requester(request))
    return {"request_id": request.id, "status": request.status.value, "expires_at": request.expires_at.isoformat()}


def finalize(deps: Dependencies, request_id: str, outcome: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
    """States RecordDenied / RecordTimeout / RecordFailure: record the outcome, leave nobody behind, tell people."""
    request = deps.store.get_request(request_id)
    if outcome == "timed_out" and request.status == RequestStatus.PENDING:
        request = transition(
            deps, request, RequestStatus.TIMED_OUT, SYSTEM, reason="nobody decided within the approval window"
        )
        notify(deps, messages.outcome_for_requester(request))
        _tell_approvers_closed(deps, request)
    elif outcome == "failed":
        reason = failure_reason(error)
        if request.status in (RequestStatus.PENDING, RequestStatus.ACTIVE):
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
    """Scheduler target: end a grant at its expiry (idempotent; early or repeated calls change nothing)."""
    request = deps.store.get_request(request_id)
    now = deps.clock.now()
    if request.status != RequestStatus.ACTIVE or request.expires_at is None:
        return {"request_id": request_id, "status": request.status.value}
    if request.expires_at - EXPIRY_SKEW > now:
        return {
            "request_id": request_id,
            "status": request.status.value,
            "not_due_until": request.expires_at.isoformat(),
        }
    expired = transition(deps, request, RequestStatus.EXPIRED, SYSTEM)
    sync_role(deps, expired.role_arn, SYSTEM, f"{expired.id} expired")
    notify(deps, messages.outcome_for_requester(expired))
    return {"request_id": request_id, "status": expired.status.value}


def remind(deps: Dependencies, request_id: str) -> dict[str, Any]:
    """Scheduler target shortly before expiry: tell the requester, unless an extension already covers them."""
    request = deps.store.get_request(request_id)
    if request.status != RequestStatus.ACTIVE or request.expires_at is None:
        return {"request_id": request_id, "reminded": False}
    later = [
        g
        for g in deps.store.active_grants(request.role_arn)
        if g.principal_arn == request.principal_arn and g.expires_at and g.expires_at > request.expires_at
    ]
    if later:
        return {"request_id": request_id, "reminded": False}
    notify(deps, messages.expiring_soon(request))
    return {"request_id": request_id, "reminded": True}


def reconcile(deps: Dependencies) -> dict[str, Any]:
    """Every few minutes: end what is due (even if its schedule was lost) and repair drift, per role."""
    now = deps.clock.now()
    report: list[dict[str, Any]] = []
    for role_arn in deps.settings.managed_role_arns:
        expired: list[str] = []
        try:
            for request in deps.store.active_grants(role_arn):
                if request.expires_at is not None and request.expires_at <= now:
                    ended = transition(deps, request, RequestStatus.EXPIRED, SYSTEM, reason="expired (reconciler)")
                    notify(deps, messages.outcome_for_requester(ended))
                    expired.append(request.id)
            result = sync_role(deps, role_arn, SYSTEM, "reconcile")
            report.append({"role_arn": role_arn, "changed": result.changed, "expired": expired})
        except TrustGateError as error:  # one broken role must not stop the others
            logger.exception("reconcile failed for role", extra={"role_arn": role_arn})
            report.append({"role_arn": role_arn, "error": f"{error.code}: {error.message}"})
    return {"roles": report}


# -- helpers ------------------------------------------------------------------------------------


def _tell_approvers_closed(deps: Dependencies, request: AccessRequest, except_arn: str | None = None) -> None:
    for approver in concrete_approvers(request):
        if approver != except_arn:
            notify(deps, messages.already_decided(request, approver))


def notify(deps: Dependencies, notification: Notification) -> None:
    try:
        deps.notifier.send(notification)
    except Exception:  # a lost notification must never undo or block an access decision
        logger.exception("notification failed", extra={"event": notification.event})


def publish_event(deps: Dependencies, event: AuditEvent) -> None:
    try:
        deps.events.publish(event)
    except Exception:
        logger.exception("could not publish event", extra={"action": event.action})


def parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as error:
        raise ValidationError(f"{name} must be an RFC 3339 time such as 2026-11-26T10:00:00Z") from error
