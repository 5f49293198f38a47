"""An approver's use cases: what they may decide, and recording a decision (N of M, a deny at once)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from trustgate.adapters.observability import count, logger
from trustgate.adapters.throttling import throttling_in
from trustgate.app.access import policy_for
from trustgate.app.effects import resume_flow, tell_approvers_closed
from trustgate.app.requests import close_parts, parts_of
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
    """Pending requests the caller may decide under each role's policy in force (a deny at least); a multi-role
    request once, by the policies of all its roles (its other roles' requests are decided with it)."""
    now = deps.clock.now()
    policies: dict[str, EffectivePolicy] = {}

    def policy(role_arn: str) -> EffectivePolicy:
        if role_arn not in policies:
            policies[role_arn] = policy_for(deps, role_arn)
        return policies[role_arn]

    found = []
    for request in iterate_pages(lambda cursor: deps.store.requests_by_status(RequestStatus.PENDING, cursor)):
        if request.part_of is not None:
            continue
        judged = judged_by(deps, request, policy)
        if all(may_decide_now(view, caller, now, effective, deps.settings) for view, effective in judged):
            found.append(request)
    return found


def judged_by(
    deps: Dependencies, request: AccessRequest, policy: Callable[[str], EffectivePolicy] | None = None
) -> list[tuple[AccessRequest, EffectivePolicy]]:
    """Each role a decision on `request` must satisfy, with the policy in force there: for a multi-role request,
    every role's own request (its snapshot: approvers, kinds, self-approval) carrying the one decision so far."""
    policy = policy or (lambda role_arn: policy_for(deps, role_arn))
    if not request.bundle:
        return [(request, policy(request.role_arn))]
    decision = {
        "approvals": request.approvals,
        "status": request.status,
        "decided_at": request.decided_at,
        "approval_deadline": request.approval_deadline,
    }
    views = [request, *(part.model_copy(update=decision) for part in parts_of(deps, request))]
    return [(view, policy(view.role_arn)) for view in views]


def approvals_missing(deps: Dependencies, request: AccessRequest) -> int:
    """How many more approvals the request needs under the policy in force (of the role that needs the most)."""
    return max(
        max(effective.policy.required_approvals - len(counted_approvals(view, effective, deps.settings)), 0)
        for view, effective in judged_by(deps, request)
    )


def check_decision(
    deps: Dependencies,
    request: AccessRequest,
    approver: Caller,
    *,
    approving: bool,
    judged: list[tuple[AccessRequest, EffectivePolicy]] | None = None,
) -> None:
    """May `approver` decide `request` now, under the role policy in force? (`rules.check_decidable`.) A multi-role
    request: under the policy of every one of its roles.

    A removed approver is told when the role policy changed (from the audit log).
    """
    if request.part_of is not None:
        raise ConflictError(
            f"request {request.id} is one role of the multi-role request {request.part_of}; decide that one "
            f"(trustgate approve {request.part_of}), which decides every role of it",
            code="part_of_request",
        )
    for view, effective in judged or judged_by(deps, request):
        try:
            check_decidable(view, approver, deps.clock.now(), effective, deps.settings, approving=approving)
        except ApproverRemovedError as error:
            changed_at = policy_changed_at(deps, view.role_arn, request.created_at)
            raise ApproverRemovedError(approver_removed_message(view.role_arn, changed_at)) from error


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
        judged = judged_by(deps, request)
        check_decision(deps, request, approver, approving=decision == "approve", judged=judged)
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
                # Each role's approvals counted by its own policy in force, against its own number.
                required = max(effective.policy.required_approvals for _, effective in judged)
                quorum = all(
                    len(counted_approvals(view.model_copy(update={"approvals": approvals}), effective, deps.settings))
                    >= effective.policy.required_approvals
                    for view, effective in judged
                )
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
        if decision == "deny":
            close_parts(deps, updated, approver.arn)
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
