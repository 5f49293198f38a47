"""Application services: what each user action and each workflow step does, over the adapters.

Handlers parse and call these; these call the pure core and the adapters. Every trust-policy change
goes through `sync_role`; every request change through `transitions.transition`/`commit_change`.
"""

from __future__ import annotations

import difflib
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import unquote

from trustgate import approval_links, messages
from trustgate.clock import parse_rfc3339, to_rfc3339
from trustgate.coverage import Coverage
from trustgate.durations import format_duration
from trustgate.errors import (
    ApproverRemovedError,
    ConflictError,
    DecisionBusyError,
    ForbiddenError,
    LockTimeoutError,
    NotAPersonError,
    NotFoundError,
    RequestNonconformingError,
    RevokeIncompleteError,
    RuleViolationError,
    SessionGuardFullError,
    ThrottledError,
    TrustGateError,
    ValidationError,
)
from trustgate.identity import Caller, Person, caller_for_arn, check_person, person_of, role_name_of
from trustgate.ids import new_id
from trustgate.messages import Notification
from trustgate.models import AccessRequest, Approval, AuditEvent, RequestStatus, notify_targets
from trustgate.observability import count, logger
from trustgate.ports import Dependencies
from trustgate.records import iterate_pages
from trustgate.rules import (
    EffectivePolicy,
    approver_removed_message,
    auto_approves,
    check_decidable,
    check_may_request,
    check_request,
    counted_approvals,
    effective_policy,
    is_admin,
    may_decide_now,
    same_human,
)
from trustgate.session_guard import guard_window
from trustgate.standing import start_just_in_time
from trustgate.sync import (
    Activation,
    SyncResult,
    end_now,
    history_window,
    nonconforming_grants,
    preview_activation,
    role_lock,
    sync_role,
)
from trustgate.throttling import throttling_in
from trustgate.transitions import commit_change, publish_quietly, transition
from trustgate.trust_policy import Document, grant_expiry_in, statements_of

SYSTEM = "trustgate"
OPTIMISTIC_RETRIES = 8  # decide's attempts when others record decisions on the same request at the same moment
OPTIMISTIC_PAUSE_SECONDS = (0.02, 0.2)  # full-jitter pause after a lost attempt: grows from 20 ms, at most 200 ms
REMINDER_BEFORE = timedelta(minutes=10)
REMINDER_MIN_DURATION = timedelta(minutes=30)  # a shorter grant needs no separate reminder
EXPIRY_SKEW = timedelta(seconds=60)  # a schedule may fire slightly early; IAM's own condition covers the gap
FLOW_GRACE = timedelta(minutes=2)  # the reconciler leaves a younger request or end alone: its step may be running


# -- roles and policies -------------------------------------------------------------------------


def resolve_role(deps: Dependencies, role: str) -> str:
    """A managed role ARN from its ARN or its name (API Gateway passes path parameters still URL-encoded).

    Names match without regard to case, as IAM's do (`pumpcustomeraccess` is `PumpCustomerAccess`); the answer
    is always the managed role's own ARN, so whatever is rendered names the real role.
    """
    role = unquote(role)
    arns = deps.settings.managed_role_arns
    for arn in arns:
        if role in (arn, arn.rsplit("/", 1)[-1]):
            return arn
    for arn in arns:
        prefix, name = arn.rsplit("/", 1)
        given_prefix, _, given_name = role.rpartition("/")
        if given_name.casefold() == name.casefold() and given_prefix in ("", prefix):
            return arn
    names = [arn.rsplit("/", 1)[-1] for arn in arns]
    by_folded = {name.casefold(): name for name in names}
    close = difflib.get_close_matches(role.rsplit("/", 1)[-1].casefold(), list(by_folded), n=1, cutoff=0.6)
    hint = f"; did you mean {by_folded[close[0]]}?" if close else ""
    raise NotFoundError(f"{role!r} is not a role TrustGate manages{hint} (managed roles: {', '.join(names) or 'none'})")


def policy_for(deps: Dependencies, role_arn: str) -> EffectivePolicy:
    policy, _ = deps.store.get_role_policy(role_arn)
    return effective_policy(role_arn, policy, deps.settings)


def check_admin(deps: Dependencies, caller: Caller, role_arn: str | None = None) -> None:
    admins = policy_for(deps, role_arn).admins if role_arn else tuple(deps.settings.bootstrap_admins)
    if not is_admin(caller, admins):
        raise ForbiddenError(f"{caller.arn} is not a TrustGate admin" + (f" for {role_arn}" if role_arn else ""))


def owns(deps: Dependencies, caller: Caller, request: AccessRequest) -> bool:
    """Is the caller the person who made the request? Only a person can own anything (see `check_person`)."""
    try:
        person = check_person(caller, policy_for(deps, request.role_arn).identity_roles)
    except NotAPersonError:
        return False
    return person.key == request.requester.key


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
    """Validate, record and start the approval flow for a request; the requester is always the caller.

    A person has one coverage of a role: asked while covered, the request is an extension that moves
    the end of that coverage by its duration, and approvers are shown exactly that.
    """
    role_arn = resolve_role(deps, new.role)
    effective = policy_for(deps, role_arn)
    person = check_may_request(caller, effective, deps.settings)
    duration = new.duration or effective.default_duration
    check_request(duration, new.justification, new.ticket, effective)
    _check_nothing_pending(deps, person, role_arn)
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
        identity_roles=list(effective.identity_roles),
        approver_kinds=list(effective.policy.approver_kinds),
        require_mfa=effective.policy.require_mfa,
    )
    # Refuses (409) when the role cannot hold this person now: trust policy or guard full, session name taken.
    coverage = preview_activation(deps, request, effective)
    if coverage is not None and coverage.is_live(now):
        _check_extension(coverage, duration, now, effective)
        request = request.model_copy(update={"extends": coverage.grant_ids[-1], "covered_until": coverage.ends_at})
    elif new.extends:
        raise ConflictError(f"request {new.extends} is no longer active, so there is nothing to extend; ask anew")
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


def _check_nothing_pending(deps: Dependencies, person: Person, role_arn: str) -> None:
    """One open request per person per role: a second would race the first for the same coverage."""
    for request in _pending_of(deps, person.key, role_arn)[:1]:
        raise ConflictError(
            f"you ({person.label}) already have request {request.id} open for {role_name_of(role_arn)}; "
            f"wait for its decision or cancel it (trustgate cancel {request.id}) before asking again",
            code="request_pending",
        )


def _check_extension(coverage: Coverage, duration: timedelta, now: datetime, effective: EffectivePolicy) -> None:
    until = coverage.ends_at + duration
    if until - now > effective.max_duration:
        raise RuleViolationError(
            f"you have access until {to_rfc3339(coverage.ends_at)}; {format_duration(duration)} more would keep it "
            f"until {to_rfc3339(until)}, more than the role's maximum of {format_duration(effective.max_duration)} "
            f"from now; ask for at most {format_duration(max(effective.max_duration - (coverage.ends_at - now), timedelta(0)))}",
            code="duration_too_long",
        )


def extend_request(
    deps: Dependencies, caller: Caller, request_id: str, duration: timedelta, justification: str
) -> AccessRequest:
    """Ask for more time on an active grant: a new request that extends the person's coverage when approved."""
    original = deps.store.get_request(request_id)
    if not owns(deps, caller, original):
        raise ForbiddenError("only the person who holds a grant can extend it")
    if original.status != RequestStatus.ACTIVE or original.expires_at is None:
        raise ConflictError(f"request {request_id} is {original.status.value}; only an active grant can be extended")
    return create_request(
        deps, caller, NewRequest(original.role_arn, duration, justification, original.ticket, original.id)
    )


def cancel_request(deps: Dependencies, caller: Caller, request_id: str) -> AccessRequest:
    request = deps.store.get_request(request_id)
    if not owns(deps, caller, request):
        raise ForbiddenError("only the person who asked can cancel a request")
    # Under the role lock, so an approved request is either granted or cancelled, never both.
    with role_lock(deps.store, deps, request.role_arn):
        request = deps.store.get_request(request_id)
        if request.status != RequestStatus.PENDING:
            raise ConflictError(
                f"request {request_id} is {request.status.value}; only a pending request can be cancelled"
            )
        if request.starts_at is not None:  # its grant was under way and failed: the flow records that
            raise ConflictError(f"request {request_id} is being granted; revoke it once it is active")
        cancelled = transition(deps, request, RequestStatus.CANCELLED, caller.arn)
    _resume_flow(deps, cancelled, "cancelled")
    _tell_approvers_closed(deps, cancelled)
    return cancelled


@dataclass(frozen=True)
class Revocation:
    """What a revoke changed for one person on one role."""

    role_arn: str
    person: str
    ended: list[AccessRequest]
    cancelled: list[AccessRequest]
    was_until: datetime | None


def revoke_request(deps: Dependencies, caller: Caller, request_id: str, reason: str | None) -> AccessRequest:
    """End a grant now (its holder or an admin): the person's whole coverage of the role ends, with every
    linked grant, and their pending extensions are cancelled.

    The grant is read by id (a consistent read), so it is ended even while the role's index does not show
    it yet. Asked again for a grant already revoked, it finishes what an earlier call could not: the sync
    that takes its person out of IAM (200 once done, 503 revoke_incomplete while IAM still cannot be reached).
    """
    request = deps.store.get_request(request_id)
    own = owns(deps, caller, request)
    if not own and not is_admin(caller, policy_for(deps, request.role_arn).admins):
        raise ForbiddenError("only the person who holds a grant or an admin can revoke it")
    if request.status not in (RequestStatus.ACTIVE, RequestStatus.REVOKED):
        raise ConflictError(f"request {request_id} is {request.status.value}; only an active grant can be revoked")
    revocation = revoke_person(deps, caller, request.role_arn, request.principal_arn, reason, grant=request)
    return next((g for g in revocation.ended if g.id == request_id), deps.store.get_request(request_id))


def revoke_person(
    deps: Dependencies,
    caller: Caller,
    role_arn: str,
    principal: str,
    reason: str | None,
    *,
    grant: AccessRequest | None = None,
) -> Revocation:
    """End everything one person holds on a role: every active grant and every pending request.

    `principal` is any ARN of the person or their person key; `grant`, one of their grants read by id.
    Fails closed: the ends are recorded first, under the role lock (no grant can be activated in between,
    and every later sync, whoever runs it, renders the person out), then the same locked sync takes the
    person out of the trust policy and the session guard and verifies both; only then does it answer.
    When IAM cannot be updated it answers 503 revoke_incomplete; a retry (which finds the grants already
    revoked and re-runs the sync) or the reconciler finishes it.
    """
    key = (
        principal
        if principal.split(":", 1)[0] in ("iam", "idc", "role")
        else caller_for_arn(principal, deps.settings.caller_policy()).person.key
    )
    actor = caller.arn
    why = reason or f"revoked by {caller.arn}"
    finishing = grant is not None and grant.status == RequestStatus.REVOKED  # only the sync is left to do
    ended: list[AccessRequest] = []
    cancelled: list[AccessRequest] = []
    was_until: list[datetime] = []

    def revoke_under_lock() -> list[AccessRequest]:
        if finishing:
            return []
        active = {g.id: g for g in deps.store.active_grants(role_arn)}
        if grant is not None:  # its own consistent read wins over what the index shows
            active[grant.id] = deps.store.get_request(grant.id)
        for held in active.values():
            if held.status == RequestStatus.ACTIVE and held.requester.key == key:
                if held.expires_at:
                    was_until.append(held.expires_at)
                ended.append(end_now(deps, held, RequestStatus.REVOKED, why, actor))
        for pending in _pending_of(deps, key, role_arn):
            if pending.starts_at is not None:  # being granted (IAM may name them already): its span must end
                ended.append(end_now(deps, pending, RequestStatus.FAILED, f"revoked while being granted: {why}", actor))
                continue
            cancelled.append(
                transition(deps, pending, RequestStatus.CANCELLED, actor, reason=f"cancelled by a revoke: {why}")
            )
        return [*ended, *cancelled]

    result: SyncResult | None = None
    guard_full: SessionGuardFullError | None = None
    try:
        result = sync_role(deps, role_arn, actor, f"revoke {key}", under_lock=revoke_under_lock)
    except LockTimeoutError as error:  # raised before the lock was held: nothing is recorded
        raise LockTimeoutError(
            f"another change to {role_name_of(role_arn)} is in progress, so nothing was revoked yet; retry in a minute"
        ) from error
    except SessionGuardFullError as error:  # the trust policy let go; finish the revoke, then say what is left
        guard_full = error
    except Exception as error:
        earlier = [] if ended or cancelled or finishing else _revoked_earlier(deps, role_arn, key)
        if not (ended or cancelled or finishing or earlier):
            raise  # nothing of this person's is recorded as revoked: the error is all there is to say
        if ended or cancelled:
            _after_revoke(deps, ended, cancelled, was_until, why)
        raise _revoke_incomplete(role_arn, key, error) from error
    latest_end = max(was_until, default=None)
    if not ended and not cancelled:
        if finishing:
            assert grant is not None
            ended = [deps.store.get_request(grant.id)]
        else:  # a retry after an incomplete revoke: answer as that call would have, once IAM has caught up
            earlier = _revoked_earlier(deps, role_arn, key)
            if not earlier or (result is not None and not _iam_was_behind(result, earlier)):
                raise NotFoundError(
                    f"{principal} holds nothing on {role_name_of(role_arn)}: no active grant, no pending request"
                )
            ended = earlier
    else:
        _after_revoke(deps, ended, cancelled, was_until, why)
    if guard_full is not None:
        raise guard_full
    assert result is not None
    still = [g.id for g in result.grants if g.requester.key == key and not finishing]
    if still:  # an active grant the index had not shown when the lock was taken: the trust policy names it
        raise _revoke_incomplete(role_arn, key, ConflictError(f"grant {', '.join(still)} was not yet listed"))
    return Revocation(role_arn, key, ended, cancelled, latest_end)


def _after_revoke(
    deps: Dependencies,
    ended: list[AccessRequest],
    cancelled: list[AccessRequest],
    was_until: list[datetime],
    why: str,
) -> None:
    """What follows recorded ends, whether or not IAM could be updated yet: schedules, flows, people told."""
    for grant in ended:
        deps.schedules.delete(grant.id)
    for request in cancelled:
        _resume_flow(deps, request, "cancelled")
        _tell_approvers_closed(deps, request)
    notify(deps, messages.coverage_revoked(ended, cancelled, max(was_until, default=None), why))


def _revoked_earlier(deps: Dependencies, role_arn: str, key: str) -> list[AccessRequest]:
    """The person's grants revoked recently enough that IAM could still name them."""
    since = deps.clock.now() - history_window(deps)
    return [g for g in deps.store.recent_grants(role_arn, (RequestStatus.REVOKED,), since) if g.requester.key == key]


def _iam_was_behind(result: SyncResult, grants: list[AccessRequest]) -> bool:
    """Did this sync have to take these grants' person out of the trust policy, or end their sessions anew?"""
    if any(grant_expiry_in(result.before, g.principal_arn) is not None for g in grants):
        return True
    names = {g.requester.session_name for g in grants}
    return _guard_windows(result.guard_before, names) != _guard_windows(result.guard_after, names)


def _guard_windows(document: Document | None, session_names: set[str]) -> dict[str, tuple[Any, Any]]:
    """What the session guard enforces for each session userid (`<role id>:<session name>`) of these names."""
    userids: set[str] = set()
    for statement in statements_of(document or {}):
        named = statement.get("Condition", {}).get("StringEquals", {}).get("aws:userid", [])
        userids.update(
            u for u in ([named] if isinstance(named, str) else named) if u.split(":", 1)[-1] in session_names
        )
    return {userid: guard_window(document, userid) for userid in userids}


def _revoke_incomplete(role_arn: str, key: str, error: Exception) -> RevokeIncompleteError:
    cause = error.message if isinstance(error, TrustGateError) else f"{type(error).__name__}: {error}"
    return RevokeIncompleteError(
        f"the revocation of {key} on {role_name_of(role_arn)} is recorded, but IAM could not be updated yet "
        f"({cause[:300]}), so the role's trust policy or session guard may still name them. Retry this call "
        "to finish it; otherwise TrustGate's reconciler finishes it within 5 minutes"
    )


def _pending_of(deps: Dependencies, person_key: str, role_arn: str) -> list[AccessRequest]:
    oldest_pending = deps.clock.now() - deps.settings.max_approval_window - timedelta(hours=1)
    found = []
    for request in iterate_pages(lambda cursor: deps.store.requests_by_person(person_key, cursor)):
        if request.created_at < oldest_pending:
            break
        if request.role_arn == role_arn and request.status == RequestStatus.PENDING:
            found.append(request)
    return found


def end_grant_effects(deps: Dependencies, ended: AccessRequest, actor: str) -> SyncResult:
    """After a grant ends: take the principal out, drop the schedule, tell the requester."""
    result = sync_role(deps, ended.role_arn, actor, f"{ended.id} {ended.status.value}", changed=[ended])
    deps.schedules.delete(ended.id)
    notify(deps, messages.outcome_for_requester(ended))
    return result


# -- reading ------------------------------------------------------------------------------------


def get_request_for(deps: Dependencies, caller: Caller, request_id: str) -> AccessRequest:
    """The requester, the role's approvers (as the policy in force names them) and admins may read a request."""
    request = deps.store.get_request(request_id)
    effective = policy_for(deps, request.role_arn)
    allowed = owns(deps, caller, request) or caller.matches(effective.approvers) or is_admin(caller, effective.admins)
    if not allowed:
        raise NotFoundError(f"no request {request_id} that you may see")
    return request


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


# -- deciding -----------------------------------------------------------------------------------

Decision = Literal["approve", "deny"]


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
                _resume_flow(deps, updated, decision)
            except Exception:  # the decision is on the request: the reconciler hands it to the flow
                logger.exception("could not hand the decision to the approval flow", extra={"request_id": request_id})
            _tell_approvers_closed(deps, updated, except_arn=approver.arn)
        return updated
    if lost is not None and throttling_in(lost) is not None:  # the table was busy, not the request
        raise ThrottledError() from lost
    count("DecisionsBusy")
    raise DecisionBusyError(
        f"request {request_id} is being decided by others at this very moment and your {decision} could not be "
        "recorded; nothing was changed. Send it again in a few seconds"
    )


def _resume_flow(deps: Dependencies, request: AccessRequest, decision: Literal["approve", "deny", "cancelled"]) -> bool:
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
    _after_activation(deps, request)
    return {"request_id": request.id, "status": request.status.value, "expires_at": request.expires_at.isoformat()}


def _after_activation(deps: Dependencies, grant: AccessRequest) -> None:
    """What follows an activation: its schedules, the requester told. A grant is active only once IAM verified
    it, so none of this may fail it: a schedule that cannot be made now is made by the reconciler (IAM's own
    end condition and the session guard end the access on time meanwhile)."""
    try:
        ensure_schedules(deps, grant)
    except Exception:
        logger.exception("could not schedule a grant's expiry; the reconciler will", extra={"request_id": grant.id})
        count("SchedulesDeferred")
    notify(deps, messages.outcome_for_requester(grant))


def ensure_schedules(deps: Dependencies, grant: AccessRequest) -> None:
    """Schedule an active grant's expiry and, for a long one, its reminder (replacing any made before)."""
    assert grant.expires_at is not None
    deps.schedules.create(grant.id, grant.expires_at)
    remind_at = grant.expires_at - REMINDER_BEFORE
    if grant.duration >= REMINDER_MIN_DURATION and remind_at > deps.clock.now():
        deps.schedules.create(grant.id, remind_at, reminder=True)


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
        _tell_approvers_closed(deps, request)
    elif outcome == "failed" and request.status == RequestStatus.ACTIVE:
        # Active is recorded only once IAM verified both documents: whatever failed after that (scheduling,
        # telling the requester, a Lambda that died) is finished here, and the grant stands.
        _after_activation(deps, request)
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


def reconcile(deps: Dependencies) -> dict[str, Any]:
    """Every 5 minutes: finish whatever an interrupted step left behind (docs/architecture.md, "What the
    reconciler finishes"): flows that never started or ended too soon, decisions the flow was never told,
    due expiries, grants the policy no longer allows, drift, and schedules without a grant or a grant without one.

    Each phase, each role and each request is its own unit: one that fails is logged, counted
    (`ReconcileFailures`, which an alarm watches) and reported, and never stops the others.
    """
    now = deps.clock.now()
    failures: list[dict[str, str]] = []
    flows: list[dict[str, str]] = []
    schedules: dict[str, list[str]] = {}
    try:
        flows = _finish_flows(deps, now, failures)
    except Exception as error:
        _failed(failures, "pending requests", error)
    roles = [_reconcile_role(deps, role_arn, now, failures) for role_arn in deps.settings.managed_role_arns]
    try:
        schedules = _reconcile_schedules(deps, now, failures)
    except Exception as error:
        _failed(failures, "schedules", error)
    return {"roles": roles, "flows": flows, "schedules": schedules, "failures": failures}


def _failed(failures: list[dict[str, str]], what: str, error: Exception) -> None:
    """Within an `except`: log, count and report one part of a reconcile that failed."""
    logger.exception("reconcile could not finish a part", extra={"part": what})
    count("ReconcileFailures")
    detail = (
        f"{error.code}: {error.message}" if isinstance(error, TrustGateError) else f"{type(error).__name__}: {error}"
    )
    failures.append({"part": what, "error": detail})


def _reconcile_role(deps: Dependencies, role_arn: str, now: datetime, failures: list[dict[str, str]]) -> dict[str, Any]:
    """End what is due (even if its schedule was lost) and grants the stored policy no longer allows; repair drift.
    Under InitialStandingAccess=none, first take a role nobody set a policy for to just-in-time."""
    expired: list[str] = []
    started = None
    try:
        started = start_just_in_time(deps, role_arn)
    except Exception as error:  # e.g. an open statement without a Sid: reported each run, the sync still runs
        _failed(failures, f"initial standing access of {role_arn}", error)
    try:
        for request in deps.store.active_grants(role_arn):
            if request.expires_at is not None and request.expires_at <= now:
                try:  # one grant that cannot be ended now must not keep the role from its sync
                    ended = transition(deps, request, RequestStatus.EXPIRED, SYSTEM, reason="expired (reconciler)")
                except Exception as error:
                    _failed(failures, f"expiry of {request.id}", error)
                    continue
                notify(deps, messages.outcome_for_requester(ended))
                expired.append(request.id)
        revoked = _NonconformingRevoker(deps, role_arn)
        result = sync_role(deps, role_arn, SYSTEM, "reconcile", under_lock=revoked)
        for grant in revoked.ended:
            deps.schedules.delete(grant.id)
            notify(deps, messages.outcome_for_requester(grant))
    except Exception as error:  # a TrustGate error or an AWS one (AccessDenied, throttling): report it, go on
        _failed(failures, f"role {role_arn}", error)
        return {"role_arn": role_arn, "error": failures[-1]["error"], "expired": expired}
    if started is None:
        return {"role_arn": role_arn, "changed": result.changed, "expired": expired}
    changed = started.changed or result.changed
    return {"role_arn": role_arn, "changed": changed, "expired": expired, "started_just_in_time": True}


def _finish_flows(deps: Dependencies, now: datetime, failures: list[dict[str, str]]) -> list[dict[str, str]]:
    """Every pending request, and every recently denied or cancelled one, against its flow (see `_finish_flow`)."""
    since = now - deps.settings.max_approval_window - timedelta(hours=1)  # older flows have timed out
    requests = [
        *iterate_pages(lambda cursor: deps.store.requests_by_status(RequestStatus.PENDING, cursor)),
        *deps.store.requests_by_status_since(RequestStatus.DENIED, since),
        *deps.store.requests_by_status_since(RequestStatus.CANCELLED, since),
    ]
    finished = []
    for request in requests:
        try:
            done = _finish_flow(deps, request.id, now)
        except Exception as error:
            _failed(failures, f"request {request.id}", error)
            continue
        if done:
            finished.append({"request_id": request.id, "done": done})
    return finished


def _finish_flow(deps: Dependencies, request_id: str, now: datetime) -> str | None:
    """One request's flow: started if it never was, told a decision it was never given, or, if it ended while
    the request is still pending, the request's real outcome recorded (nobody left in IAM). What it did, if anything."""
    request = deps.store.get_request(request_id)  # read consistently: the index may be behind
    flow = deps.flow.status(request.id)
    if request.status in (RequestStatus.DENIED, RequestStatus.CANCELLED):
        if flow == "RUNNING" and _resume_flow(deps, request, _decision_of(request) or "cancelled"):
            return "decision delivered"
        return None
    if request.status != RequestStatus.PENDING:
        return None
    undecided_too_long = (
        request.decided_at is None and request.approval_deadline is not None and request.approval_deadline <= now
    )
    if flow is None:  # recorded, but the flow never started (the API died in between)
        if request.created_at > now - FLOW_GRACE:  # or it is starting right now
            return None
        if undecided_too_long:
            finalize(deps, request.id, "timed_out")
            return "timed out"
        deps.flow.start(request.id)  # named after the request: never a second flow
        return "flow started"
    if flow == "RUNNING":
        decision = _decision_of(request)
        if decision and _resume_flow(deps, request, decision):
            return "decision delivered"
        return None
    # The flow ended (failed, aborted, timed out) while the request is still pending.
    if undecided_too_long and request.starts_at is None:
        finalize(deps, request.id, "timed_out")
        return "timed out"
    cause = f"the approval flow ended ({flow}) before the request was granted"
    finalize(deps, request.id, "failed", {"Error": "TrustGate.FlowEnded", "Cause": cause})
    return "failed"


def _reconcile_schedules(deps: Dependencies, now: datetime, failures: list[dict[str, str]]) -> dict[str, list[str]]:
    """Schedules without an active grant are deleted; an active grant without its expiry schedule gets it."""
    listed: dict[str, set[bool]] = {}
    for ref in deps.schedules.listed():
        listed.setdefault(ref.request_id, set()).add(ref.reminder)
    deleted, created = [], []
    for request_id, kinds in listed.items():
        try:
            if _delete_orphaned(deps, request_id, kinds, now):
                deleted.append(request_id)
        except Exception as error:
            _failed(failures, f"schedules of {request_id}", error)
    for role_arn in deps.settings.managed_role_arns:
        try:
            missing = [g for g in deps.store.active_grants(role_arn) if False not in listed.get(g.id, set())]
        except Exception as error:
            _failed(failures, f"schedules of {role_arn}", error)
            continue
        for grant in missing:
            try:
                if _schedule_missing(deps, grant.id, now):
                    created.append(grant.id)
            except Exception as error:
                _failed(failures, f"schedules of {grant.id}", error)
    return {"deleted": deleted, "created": created}


def _delete_orphaned(deps: Dependencies, request_id: str, kinds: set[bool], now: datetime) -> bool:
    """Delete the schedules of a request that is not (or no longer) an active grant. One whose grant ended early
    while its expiry schedule stayed was never followed through (the ending steps delete it before telling the
    requester): the requester is told now."""
    try:
        request: AccessRequest | None = deps.store.get_request(request_id)
    except NotFoundError:
        request = None
    if request is not None:
        if request.status in (RequestStatus.ACTIVE, RequestStatus.PENDING):
            return False  # an active grant's, or one being granted
        ended_at = request.expires_at or request.created_at
        if ended_at > now - FLOW_GRACE:  # the step that ended it may still be deleting them
            return False
    deps.schedules.delete(request_id)
    if request is not None and False in kinds and request.status in (RequestStatus.REVOKED, RequestStatus.FAILED):
        notify(deps, messages.outcome_for_requester(request))
    return True


def _schedule_missing(deps: Dependencies, grant_id: str, now: datetime) -> bool:
    """Schedule an active grant whose Grant step died before it could (its flow is over; a running one still
    schedules it itself). If the flow did not succeed, the requester was not told either: tell them."""
    grant = deps.store.get_request(grant_id)  # read consistently: a revoke may just have ended it
    if grant.status != RequestStatus.ACTIVE or grant.expires_at is None or grant.expires_at <= now:
        return False  # ended, or due: the next run expires it
    flow = deps.flow.status(grant.id)
    if flow == "RUNNING":
        return False
    ensure_schedules(deps, grant)
    if flow not in (None, "SUCCEEDED"):
        notify(deps, messages.outcome_for_requester(grant))
    return True


@dataclass
class _NonconformingRevoker:
    """Under the role lock: end every live grant the stored policy no longer allows. A policy change ends them
    itself; this catches one that could not (a crash after the policy was stored, a lost race). Their schedules
    are deleted and their requesters told after the sync; if that cannot happen, the schedule sweep does both."""

    deps: Dependencies
    role_arn: str
    ended: list[AccessRequest] = field(default_factory=list)

    def __call__(self) -> list[AccessRequest]:
        grants = self.deps.store.active_grants(self.role_arn)
        effective = policy_for(self.deps, self.role_arn)
        ending = nonconforming_grants(grants, effective, self.deps.settings, self.deps.clock.now())
        for grant in grants:
            if grant.id in ending:
                reason = f"no longer allowed by the role policy: {ending[grant.id]}"
                self.ended.append(end_now(self.deps, grant, RequestStatus.REVOKED, reason))
        return self.ended


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
    publish_quietly(deps.events, event)  # the change is committed: a lost event is logged and counted, no failure


def parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as error:
        raise ValidationError(f"{name} must be an RFC 3339 time such as 2026-11-26T10:00:00Z") from error
