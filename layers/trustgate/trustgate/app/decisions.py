"""An approver's use cases: what they may decide, and recording a decision (N of M, a deny at once)."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any, Literal

from trustgate.adapters.observability import count, logger
from trustgate.adapters.throttling import throttling_in
from trustgate.app.access import policy_for
from trustgate.app.effects import resume_flow, tell_approvers_closed
from trustgate.app.transitions import commit_change, transition
from trustgate.core.errors import (
    ApproverRemovedError,
    ConflictError,
    DecisionBusyError,
    ThrottledError,
)
from trustgate.core.identity import Caller
from trustgate.core.models import AccessRequest, Approval, RequestStatus
from trustgate.core.ports import Dependencies
from trustgate.core.records import iterate_pages
from trustgate.core.rules import (
    EffectivePolicy,
    approver_removed_message,
    check_decidable,
    counted_approvals,
    may_decide_now,
)

OPTIMISTIC_RETRIES = 8  # decide's attempts when others record decisions on the same request at the same moment


OPTIMISTIC_PAUSE_SECONDS = (0.02, 0.2)  # full-jitter pause after a lost attempt: grows from 20 ms, at most 200 ms


Decision = Literal["approve", "deny"]


def pending_for_approver(deps: Dependencies, caller: Caller) -> list[AccessRequest]:
    """Pending requests the caller may decide under each role's policy in force (a deny at least)."""
    now = deps.clock.now()
    policies: dict[str, EffectivePolicy] = {}
    found = []
    for request in iterate_pages(lambda cursor: deps.store.requests_by_status(RequestStatus.PENDING, cursor)):
        if request.role_arn not in policies:
            policies[request.role_arn] = policy_for(deps, request.role_arn)
        if may_decide_now(request, caller, now, policies[request.role_arn], deps.settings):
            found.append(request)
    return found


def check_decision(
    deps: Dependencies,
    request: AccessRequest,
    approver: Caller,
    *,
    approving: bool,
    effective: EffectivePolicy | None = None,
) -> None:
    """May `approver` decide `request` now, under the role policy in force? (`rules.check_decidable`.)

    A removed approver is told when the role policy changed (from the audit log).
    """
    effective = effective or policy_for(deps, request.role_arn)
    try:
        check_decidable(request, approver, deps.clock.now(), effective, deps.settings, approving=approving)
    except ApproverRemovedError as error:
        changed_at = policy_changed_at(deps, request.role_arn, request.created_at)
        raise ApproverRemovedError(approver_removed_message(request.role_arn, changed_at)) from error


def policy_changed_at(deps: Dependencies, role_arn: str, since: datetime) -> datetime | None:
    """When the role policy was last saved, if after `since` (None if before, or not recorded).

    Read from the policy item itself: the unauthenticated approval page may read no index."""
    changed_at = deps.store.get_stored_policy(role_arn).changed_at
    # Stored to the second: a save within the request's own second still counts as after it.
    return changed_at if changed_at is not None and changed_at >= since.replace(microsecond=0) else None


def decide(
    deps: Dependencies, approver: Caller, request_id: str, decision: Decision, comment: str | None
) -> AccessRequest:
    """Record one approver's decision; counted atomically (N of M), a deny ends the request at once.

    Judged by the role policy in force, not the one the request was made under: only its approvers may
    decide, an approval needs the request to still conform (409 request_nonconforming otherwise; a deny may
    always close it), and the quorum is its `required_approvals`, counting only approvals of persons who may
    still decide.
    """
    first, most = OPTIMISTIC_PAUSE_SECONDS
    lost: ConflictError | None = None
    for attempt in range(OPTIMISTIC_RETRIES):
        if attempt:  # lost to a concurrent write: back off a little (jittered) so the racers spread out
            deps.sleep(random.uniform(0, min(most, first * 2 ** (attempt - 1))))
        request = deps.store.get_request(request_id)
        now = deps.clock.now()
        effective = policy_for(deps, request.role_arn)
        check_decision(deps, request, approver, approving=decision == "approve", effective=effective)
        approvals = [
            *request.approvals,
            Approval(approver_arn=approver.arn, decision=decision, at=now, comment=comment),
        ]
        try:
            if decision == "deny":
                quorum = True  # a deny decides at once
                updated = transition(
                    deps,
                    request,
                    RequestStatus.DENIED,
                    approver.arn,
                    approvals=approvals,
                    decided_at=now,
                    reason=comment,
                )
            else:
                required = effective.policy.required_approvals
                after = request.model_copy(update={"approvals": approvals})
                quorum = len(counted_approvals(after, effective, deps.settings)) >= required
                changes: dict[str, Any] = {"approvals": approvals}
                if required != request.required_approvals:  # the policy in force sets how many are needed
                    changes["required_approvals"] = required
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
        except ConflictError as error:  # someone else decided at the same moment: re-read and judge again
            lost = error  # (a real conflict, the request now decided or closed, is `check_decision`'s 409)
            continue
        if quorum:  # recorded: nothing after this may fail the decision (say, a throttled table)
            try:
                resume_flow(deps, updated, decision)
            except Exception:  # the decision is on the request: the reconciler hands it to the flow
                logger.exception("could not hand the decision to the approval flow", extra={"request_id": request_id})
            tell_approvers_closed(deps, updated, except_arn=approver.arn)
        return updated
    if lost is not None and throttling_in(lost) is not None:  # the table was busy, not the request
        raise ThrottledError() from lost
    count("DecisionsBusy")
    raise DecisionBusyError(
        f"request {request_id} is being decided by others at this very moment and your {decision} could not be "
        "recorded; nothing was changed. Send it again in a few seconds"
    )
