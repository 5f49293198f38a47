"""The approval flow's steps (statemachine/approval.asl.json) and the scheduler's targets."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from trustgate.app import approval_links
from trustgate.app.access import SYSTEM, policy_for
from trustgate.app.effects import (
    after_activation,
    concrete_approvers,
    decision_of,
    end_grant_effects,
    notify,
    resume_flow,
    tell_approvers_closed,
)
from trustgate.app.sync import (
    Activation,
    end_now,
    sync_role,
)
from trustgate.app.transitions import transition
from trustgate.core import messages
from trustgate.core.errors import (
    ConflictError,
    RequestNonconformingError,
)
from trustgate.core.identity import role_name_of
from trustgate.core.models import AccessRequest, RequestStatus, notify_targets
from trustgate.core.ports import Dependencies

EXPIRY_SKEW = timedelta(seconds=60)  # a schedule may fire slightly early; IAM's own condition covers the gap


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
    # Bounded and well-formed even if a policy stored before these checks holds more (see notify_targets).
    for target in notify_targets(policy_for(deps, request.role_arn).policy.notify):
        if target not in approvers:
            notify(deps, messages.request_notice(request, target))
    return {"request_id": request_id, "notified": notified}


def grant(deps: Dependencies, request_id: str) -> dict[str, Any]:
    """State Grant: activate the grant, put the principal in the trust policy, schedule the expiry.

    Safe to retry (the state machine retries lock timeouts and a dead Lambda): a request whose window is on
    record keeps it, and an active one only gets its follow-ups. Once the grant is active nothing may fail it.
    """
    request = deps.store.get_request(request_id)
    if request.status == RequestStatus.PENDING:
        if request.decided_at is None:
            raise ConflictError(f"request {request_id} has no approval to grant")
        effective = policy_for(deps, request.role_arn)
        activation = Activation(request, effective.max_duration, effective.policy.require_mfa)
        # Judged under the role lock by the policy in force there: an admin may have tightened it since the
        # request was made or approved (`sync_role` refuses before writing anything).
        try:
            result = sync_role(deps, request.role_arn, SYSTEM, f"grant {request.id}", activation)
        except RequestNonconformingError as error:
            return _not_granted(deps, deps.store.get_request(request_id), error.message)
        assert result.activated is not None
        request = result.activated
    elif request.status != RequestStatus.ACTIVE:  # active: a retry after IAM was verified, only follow-ups left
        raise ConflictError(f"request {request_id} is {request.status.value}; nothing to grant")
    assert request.expires_at is not None
    after_activation(deps, request)
    return {"request_id": request.id, "status": request.status.value, "expires_at": request.expires_at.isoformat()}


def _not_granted(deps: Dependencies, request: AccessRequest, why: str) -> dict[str, Any]:
    """An approved request the role policy in force no longer allows: it fails, IAM never names its person."""
    reason = (
        f"not granted: the policy of {role_name_of(request.role_arn)} changed after this request was made, and "
        f"{why}; ask again within the current policy"
    )
    failed = transition(deps, request, RequestStatus.FAILED, SYSTEM, reason=reason)
    notify(deps, messages.outcome_for_requester(failed))
    return {"request_id": failed.id, "status": failed.status.value, "reason": reason}


def finalize(deps: Dependencies, request_id: str, outcome: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
    """States RecordDenied / RecordTimeout / RecordFailure (and the reconciler, for a flow that ended while its
    request was pending): record the outcome, leave nobody behind, tell people."""
    request = deps.store.get_request(request_id)
    if outcome == "timed_out" and request.status == RequestStatus.PENDING:
        request = transition(
            deps, request, RequestStatus.TIMED_OUT, SYSTEM, reason="nobody decided within the approval window"
        )
        notify(deps, messages.outcome_for_requester(request))
        tell_approvers_closed(deps, request)
    elif outcome == "failed" and request.status == RequestStatus.ACTIVE:
        # Active is recorded only once IAM verified both documents: whatever failed after that (scheduling,
        # telling the requester, a Lambda that died) is finished here, and the grant stands.
        after_activation(deps, request)
    elif outcome == "failed":
        reason = failure_reason(error)
        if request.status == RequestStatus.PENDING and request.starts_at is not None:
            # Its window is on record, so IAM may have named the person: keep the span, ended now, for the guard.
            request = end_now(deps, request, RequestStatus.FAILED, reason)
        elif request.status == RequestStatus.PENDING:
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
    later = [
        g
        for g in deps.store.active_grants(request.role_arn)
        if g.requester.key == request.requester.key and g.expires_at and g.expires_at > request.expires_at
    ]
    if later:
        return {"request_id": request_id, "reminded": False}
    notify(deps, messages.expiring_soon(request))
    return {"request_id": request_id, "reminded": True}
