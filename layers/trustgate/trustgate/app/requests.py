"""A requester's use cases: ask, extend, cancel, read; and revoke, by the holder or an admin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from trustgate.adapters.observability import logger
from trustgate.app.access import SYSTEM, owns, policy_for, resolve_role, roles_for_admin
from trustgate.app.effects import (
    announce_break_glass,
    break_glass_record,
    delete_schedules_quietly,
    notify,
    publish_event,
    resume_flow,
    start_flow,
    tell_approvers_closed,
    while_pending,
)
from trustgate.app.sync import (
    AWAITING_ACTIVATION,
    SyncResult,
    end_now,
    history_window,
    preview_activation,
    role_lock,
    sync_role,
)
from trustgate.app.transitions import commit_change, transition
from trustgate.core import messages
from trustgate.core.clock import to_rfc3339
from trustgate.core.coverage import Coverage
from trustgate.core.durations import format_duration
from trustgate.core.errors import (
    ConflictError,
    ForbiddenError,
    LockTimeoutError,
    NotAPersonError,
    NotFoundError,
    RevokeIncompleteError,
    RolesRefusedError,
    RuleViolationError,
    SessionGuardFullError,
    TrustGateError,
    ValidationError,
)
from trustgate.core.identity import Caller, Person, caller_for_arn, check_person, role_name_of
from trustgate.core.ids import new_id
from trustgate.core.models import AccessRequest, AuditEvent, RequestStatus
from trustgate.core.ports import Dependencies
from trustgate.core.records import Page, filled_page, iterate_pages
from trustgate.core.rules import (
    EffectivePolicy,
    auto_approves,
    break_glass_max,
    check_may_break_glass,
    check_may_request,
    check_request,
    is_admin,
)
from trustgate.core.session_guard import guard_window
from trustgate.core.trust_policy import Document, grant_expiry_in, statements_of

AUTO_APPROVE_WAIT_SECONDS = 10.0  # POST /requests answers an auto-approved request once active, or after this


@dataclass(frozen=True)
class NewRequest:
    role: str
    duration: timedelta | None
    justification: str
    ticket: str | None = None
    extends: str | None = None
    start_at: datetime | None = None  # scheduled access: from then, for `duration`
    roles: tuple[str, ...] = ()  # several roles in one request (`role` is then unused)
    break_glass: bool = False  # at once, without approval; reviewed by an approver afterwards


def create_request(
    deps: Dependencies, caller: Caller, new: NewRequest, *, wait_if_auto_approved: bool = False
) -> AccessRequest:
    """Validate, record and start the approval flow for a request; the requester is always the caller.

    A person has one coverage of a role: asked while covered, the request is an extension that moves
    the end of that coverage by its duration, and approvers are shown exactly that. With `new.roles`, one request
    for several roles (see `_create_bundle`).
    """
    if len(new.roles) > 1:
        return _create_bundle(deps, caller, new, wait=wait_if_auto_approved)
    now = deps.clock.now()
    request, effective = _prepared(deps, caller, new.roles[0] if new.roles else new.role, new, now)
    audit = _created(request, caller.arn, now)
    # A break-glass request is recorded with its `break_glass` audit record, in one write.
    deps.store.create_request(request, audit, *([break_glass_record(request)] if request.break_glass else []))
    publish_event(deps, audit)
    if request.break_glass:  # announced at once, then straight to Grant, which judges it by the rule in force
        return _start(deps, announce_break_glass(deps, request), False, wait=wait_if_auto_approved)
    # The role's auto-approve rules are judged here, once, and the flow is told (no evaluation step); the Grant
    # step judges the request again under the role lock by the policy in force then.
    # A scheduled request is judged at the time it asks to start (a rule for working hours means those hours).
    auto_approved = auto_approves(request, effective.policy.auto_approve, request.start_at or now)
    return _start(deps, request, auto_approved, wait=wait_if_auto_approved)


def _prepared(
    deps: Dependencies, caller: Caller, role: str, new: NewRequest, now: datetime
) -> tuple[AccessRequest, EffectivePolicy]:
    """The request for one role as it would be recorded, every rule of the role checked (nothing recorded yet)."""
    role_arn = resolve_role(deps, role)
    effective = policy_for(deps, role_arn)
    person = check_may_request(caller, effective, deps.settings)
    duration = new.duration or effective.default_duration
    if new.break_glass:
        if new.start_at is not None or new.extends:
            raise ValidationError(
                "break_glass is access now: leave start_at out (a scheduled start is approved beforehand), and extend "
                "a break-glass grant by asking again with approval"
            )
        duration = new.duration or min(duration, break_glass_max(effective, deps.settings) or duration)
        check_may_break_glass(caller, duration, effective, deps.settings)
        _check_no_unreviewed_break_glass(deps, person, role_arn)
    check_request(duration, new.justification, new.ticket, effective)
    start_at = check_start(new.start_at, now, deps.settings.max_schedule_ahead) if new.start_at else None
    _check_nothing_pending(deps, person, role_arn)
    approval_deadline = now + effective.approval_window
    if start_at is not None:  # no decision is worth waiting for once the window asked for has ended
        approval_deadline = min(approval_deadline, start_at + duration)
    request = AccessRequest(
        id=new_id(now),
        role_arn=role_arn,
        principal_arn=caller.arn,
        principal_id=caller.unique_id,
        duration=duration,
        justification=new.justification.strip(),
        ticket=new.ticket,
        created_at=now,
        start_at=start_at,
        approval_deadline=approval_deadline,
        required_approvals=effective.policy.required_approvals,
        approvers=list(effective.approvers),
        allow_self_approval=effective.policy.allow_self_approval,
        identity_roles=list(effective.identity_roles),
        approver_kinds=list(effective.policy.approver_kinds),
        require_mfa=effective.policy.require_mfa,
        break_glass=new.break_glass,
        decided_at=now if new.break_glass else None,  # nobody approves it: its review comes afterwards
    )
    # Refuses (409) when the role cannot hold this person now: trust policy or guard full, session name taken.
    coverage = preview_activation(deps, request, effective)
    if coverage is not None and coverage.is_live(now) and new.break_glass:
        raise ConflictError(
            f"you ({person.label}) already hold {role_name_of(role_arn)} until {to_rfc3339(coverage.ends_at)}, so "
            "there is no glass to break; ask for an extension with approval if you need longer",
            code="already_covered",
        )
    if coverage is not None and coverage.is_live(now) and start_at is None:
        _check_extension(coverage, duration, now, effective)
        request = request.model_copy(update={"extends": coverage.grant_ids[-1], "covered_until": coverage.ends_at})
    elif new.extends:
        raise ConflictError(f"request {new.extends} is no longer active, so there is nothing to extend; ask anew")
    return request, effective


def _created(request: AccessRequest, actor: str, now: datetime) -> AuditEvent:
    return AuditEvent(
        id=new_id(now),
        at=now,
        actor=actor,
        action="request.created",
        role_arn=request.role_arn,
        request_id=request.id,
        after=request.model_dump(mode="json", exclude={"approvers"}),
    )


def _start(deps: Dependencies, request: AccessRequest, auto_approved: bool, *, wait: bool) -> AccessRequest:
    """A recorded request's approval flow started: straight to Grant when a rule approved it or it is break-glass
    (decided once recorded), and then, with `wait`, answered once granted or after AUTO_APPROVE_WAIT_SECONDS."""
    if auto_approved:
        changes: dict[str, Any] = {"auto_approved": True, "decided_at": request.created_at}
        request = commit_change(deps, request, changes, SYSTEM, "request.auto_approved")
    try:
        start_flow(deps, request)
    except Exception as error:
        logger.exception("could not start the approval flow")
        failed = transition(
            deps, request, RequestStatus.FAILED, SYSTEM, reason=f"the approval flow could not start: {error}"
        )
        close_parts(deps, failed, SYSTEM)
        raise
    if wait and request.decided_at is not None:
        return while_pending(deps, request, AUTO_APPROVE_WAIT_SECONDS, poll=0.1)
    return request


MAX_ROLES = 10  # the most roles one request may ask for
# Roles granted together end within seconds of each other, or minutes when the Grant step had to retry (its backoff
# is at most ~2.5 min): within this, approvers are shown one window.
SAME_END = timedelta(minutes=5)


def _create_bundle(deps: Dependencies, caller: Caller, new: NewRequest, *, wait: bool) -> AccessRequest:
    """One request for several roles: one decision, then one grant per role, each through its own `sync_role`.

    Every role's rules are checked as for a request of that role alone; if any role refuses, nothing is recorded
    and the answer names each refusing role and why (`RolesRefusedError`). The first role's request holds the
    decision (its approvers are those every role names, and each role's policy must be satisfied by the approvals:
    `decisions.decide`); the others are its `parts`, recorded with it in one write.
    """
    if new.break_glass or new.start_at is not None:
        raise ValidationError(
            "roles: a request for several roles is neither break-glass nor scheduled; ask for each role on its own "
            "for that"
        )
    if len(new.roles) > MAX_ROLES:
        raise ValidationError(f"roles: at most {MAX_ROLES} roles in one request; you named {len(new.roles)}")
    now = deps.clock.now()
    refusals: list[dict[str, object]] = []
    resolved: list[str] = []
    for role in new.roles:
        try:
            resolved.append(resolve_role(deps, role))
        except TrustGateError as error:
            refusals.append(_refusal(role, error))
    if len(set(resolved)) != len(resolved):
        raise ValidationError("roles: each role once; the list names one role twice")
    if refusals:
        raise RolesRefusedError(refusals)
    duration = new.duration or min(policy_for(deps, arn).default_duration for arn in resolved)
    prepared: list[tuple[AccessRequest, EffectivePolicy]] = []
    for arn in resolved:
        try:
            prepared.append(_prepared(deps, caller, arn, replace(new, duration=duration, roles=()), now))
        except TrustGateError as error:
            refusals.append(_refusal(role_name_of(arn), error))
    if refusals:
        raise RolesRefusedError(refusals)
    members = [request for request, _ in prepared]
    extending = [role_name_of(m.role_arn) for m in members if m.extends is not None]
    if extending and len(extending) != len(members):
        raise ConflictError(
            f"you hold {', '.join(extending)} now but not every other role asked for, so one decision could not show "
            "approvers one window: extend what you hold (trustgate extend ID) and ask for the other roles on their own",
            code="mixed_coverage",
        )
    ends = [m.covered_until for m in members if m.covered_until is not None]
    if ends and max(ends) - min(ends) > SAME_END:
        shown = ", ".join(
            f"{role_name_of(m.role_arn)} until {to_rfc3339(m.covered_until)}" for m in members if m.covered_until
        )
        raise ConflictError(
            f"your access to these roles ends at different times ({shown}), so one decision could not show approvers "
            "one window: extend each on its own",
            code="mixed_coverage",
        )
    common = [a for a in members[0].approvers if all(a in m.approvers for m in members[1:])]
    if not common:
        raise RuleViolationError(
            "roles: no approver is an approver of every one of these roles, so no single decision could cover them; "
            "ask for them in separate requests",
            code="no_common_approver",
        )
    deadline = min(m.approval_deadline for m in members if m.approval_deadline is not None)
    first, *others = members
    parts = [m.model_copy(update={"part_of": first.id, "approval_deadline": deadline}) for m in others]
    parent = first.model_copy(
        update={
            "roles": resolved,
            "parts": [p.id for p in parts],
            "approvers": common,
            "required_approvals": max(m.required_approvals for m in members),
            "approval_deadline": deadline,
        }
    )
    recorded = [parent, *parts]
    audits = [_created(r, caller.arn, now) for r in recorded]
    deps.store.create_requests(recorded, audits)
    for audit in audits:
        publish_event(deps, audit)
    auto_approved = all(
        auto_approves(r, effective.policy.auto_approve, now)
        for r, (_, effective) in zip(recorded, prepared, strict=True)
    )
    return _start(deps, parent, auto_approved, wait=wait)


def _refusal(role: str, error: TrustGateError) -> dict[str, object]:
    return {"role": role, "status": error.status, "code": error.code, "message": error.message}


def parts_of(deps: Dependencies, parent: AccessRequest) -> list[AccessRequest]:
    """A multi-role request's other roles' requests, as stored now, in `roles` order (one GetItem each: the
    unauthenticated approval page may read no more than that)."""
    return [deps.store.get_request(part_id) for part_id in parent.parts]


def close_parts(deps: Dependencies, parent: AccessRequest, actor: str) -> list[AccessRequest]:
    """A multi-role request that ended before its grants (denied, cancelled, timed out, failed): its other roles'
    requests not begun end the same way (else failed); the reconciler does it for one this could not. Returns
    those it ended."""
    closing = parent.status if parent.status in _ENDS_BEFORE_GRANT else RequestStatus.FAILED
    why = f"with request {parent.id}: {parent.reason or parent.status.value}"
    return [
        transition(deps, part, closing, actor, reason=why)
        for part in parts_of(deps, parent)
        if part.status == RequestStatus.PENDING and part.starts_at is None
    ]


_ENDS_BEFORE_GRANT = (RequestStatus.DENIED, RequestStatus.CANCELLED, RequestStatus.TIMED_OUT, RequestStatus.FAILED)


def check_start(start_at: datetime, now: datetime, max_ahead: timedelta) -> datetime:
    """A scheduled request's start: in the future, at most MaxScheduleAhead from now (whole seconds)."""
    start = start_at.replace(microsecond=0)
    if start <= now:
        raise RuleViolationError(
            f"start_at {to_rfc3339(start)} is not in the future (it is {to_rfc3339(now)} now); give a later time, "
            "or leave start_at out to start once approved",
            code="start_at_in_past",
        )
    if start - now > max_ahead:
        raise RuleViolationError(
            f"start_at {to_rfc3339(start)} is more than {format_duration(max_ahead)} ahead (MaxScheduleAhead); ask "
            f"for a start before {to_rfc3339(now + max_ahead)}",
            code="start_at_too_far",
        )
    return start


def _check_no_unreviewed_break_glass(deps: Dependencies, person: Person, role_arn: str) -> None:
    """Break-glass limits one use, not access: the next use waits for the last one's review, so nobody holds a role
    without approval for longer than its maximum by breaking the glass again when a grant ends (or is revoked)."""
    for request in iterate_pages(deps.store.review_pending):
        if request.role_arn == role_arn and request.requester.key == person.key:
            raise ForbiddenError(
                f"your break-glass use {request.id} of {role_name_of(role_arn)} has not been reviewed yet, so you may "
                f"not break the glass again; ask an approver to review it (trustgate review {request.id}), or ask "
                "for access with approval (leave break_glass out)",
                code="break_glass_not_allowed",
            )


def _check_nothing_pending(deps: Dependencies, person: Person, role_arn: str) -> None:
    """One open request per person per role: a second would race the first for the same coverage."""
    for request in pending_of(deps, person.key, role_arn)[:1]:
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
    if original.part_of is not None:  # one role of a multi-role request: extend all of them, as asked together
        original = deps.store.get_request(original.part_of)
    new = NewRequest(
        original.role_arn, duration, justification, original.ticket, original.id, roles=tuple(original.roles)
    )
    return create_request(deps, caller, new)


def cancel_request(deps: Dependencies, caller: Caller, request_id: str) -> AccessRequest:
    request = deps.store.get_request(request_id)
    if not owns(deps, caller, request):
        raise ForbiddenError("only the person who asked can cancel a request")
    if request.part_of is not None:
        raise ConflictError(
            f"request {request_id} is one role of the multi-role request {request.part_of}; cancel that one "
            f"(trustgate cancel {request.part_of}), which cancels every role of it",
            code="part_of_request",
        )
    # Under the role lock, so an approved request is either granted or cancelled, never both.
    with role_lock(deps.store, deps, request.role_arn):
        request = deps.store.get_request(request_id)
        if request.status not in AWAITING_ACTIVATION:
            raise ConflictError(
                f"request {request_id} is {request.status.value}; only a pending or scheduled request can be "
                "cancelled (an active grant is revoked: trustgate revoke)"
            )
        if request.starts_at is not None:  # its grant was under way and failed: the flow records that
            raise ConflictError(f"request {request_id} is being granted; revoke it once it is active")
        cancelled = transition(deps, request, RequestStatus.CANCELLED, caller.arn)
    if request.status == RequestStatus.SCHEDULED:  # approved, its flow is over: only its start schedule is left
        delete_schedules_quietly(deps, cancelled.id)
        return cancelled
    close_parts(deps, cancelled, caller.arn)
    resume_flow(deps, cancelled, "cancelled")
    tell_approvers_closed(deps, cancelled)
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
    if request.status not in (RequestStatus.ACTIVE, RequestStatus.SCHEDULED, RequestStatus.REVOKED):
        raise ConflictError(
            f"request {request_id} is {request.status.value}; only an active or scheduled grant can be revoked"
        )
    parent = deps.store.get_request(request.part_of) if request.part_of else request
    if parent.bundle:  # a multi-role request: every one of its roles, as they were asked for together
        members = [parent, *parts_of(deps, parent)]
        if not own and not all(is_admin(caller, policy_for(deps, m.role_arn).admins) for m in members):
            raise ForbiddenError(
                f"request {request_id} is one of a multi-role request, which a revoke ends on every role: only its "
                "holder or an admin of every one of its roles can revoke it"
            )
        # Every role is tried, whatever one of them answers (a role still being granted too: it must never
        # begin); the first error is raised once every end that could be recorded is.
        errors: list[TrustGateError] = []
        for member in members:
            if member.status in (RequestStatus.ACTIVE, RequestStatus.REVOKED, RequestStatus.PENDING):
                try:
                    revoke_person(deps, caller, member.role_arn, member.principal_arn, reason, grant=member)
                except NotFoundError:  # nothing of theirs left on that role
                    continue
                except TrustGateError as error:  # 503 revoke_incomplete, 429 role_busy: retried, or the reconciler
                    errors.append(error)
        if errors:
            raise errors[0]
        return deps.store.get_request(request_id)
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
    """End everything one person holds on a role: every active grant, every scheduled one (it never starts) and
    every pending request.

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
        now = deps.clock.now()  # one end for the whole coverage, however long the writes take
        active = {g.id: g for g in deps.store.active_grants(role_arn)}
        if grant is not None:  # its own consistent read wins over what the index shows
            active[grant.id] = deps.store.get_request(grant.id)
        for held in active.values():
            if held.status == RequestStatus.ACTIVE and held.requester.key == key:
                if held.expires_at:
                    was_until.append(held.expires_at)
                ended.append(end_now(deps, held, RequestStatus.REVOKED, why, actor, now))
        waiting = open_of(deps, key, role_arn, also=grant)
        for scheduled in (r for r in waiting if r.status == RequestStatus.SCHEDULED):
            if scheduled.starts_at is not None:  # being activated (IAM may name them already): its span must end
                ended.append(
                    end_now(deps, scheduled, RequestStatus.FAILED, f"revoked while starting: {why}", actor, now)
                )
                continue
            ended.append(transition(deps, scheduled, RequestStatus.REVOKED, actor, reason=why))
        for pending in (r for r in waiting if r.status == RequestStatus.PENDING):
            if pending.starts_at is not None:  # being granted (IAM may name them already): its span must end
                ended.append(
                    end_now(deps, pending, RequestStatus.FAILED, f"revoked while being granted: {why}", actor, now)
                )
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
        resume_flow(deps, request, "cancelled")
        tell_approvers_closed(deps, request)
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


def open_of(
    deps: Dependencies, person_key: str, role_arn: str, also: AccessRequest | None = None
) -> list[AccessRequest]:
    """The person's pending and scheduled requests of the role, read consistently (under the role lock, nothing
    moves between the two: a request becomes scheduled under it). The index only names the candidates: one it
    still shows pending may be scheduled by now, or the reverse, and `also` (read by id) need not be listed yet."""
    ahead = deps.settings.max_schedule_ahead  # a scheduled request may have been asked for that long before
    ids = {r.id for r in _listed_of(deps, person_key, role_arn, AWAITING_ACTIVATION, ahead)}
    if also is not None:
        ids.add(also.id)
    return sorted(
        (r for r in deps.store.get_requests(ids) if r.status in AWAITING_ACTIVATION and r.requester.key == person_key),
        key=lambda r: r.created_at,
    )


def pending_of(deps: Dependencies, person_key: str, role_arn: str) -> list[AccessRequest]:
    """The person's pending requests of the role, as the index lists them."""
    return _listed_of(deps, person_key, role_arn, (RequestStatus.PENDING,), timedelta(0))


def _listed_of(
    deps: Dependencies, person_key: str, role_arn: str, statuses: tuple[RequestStatus, ...], ahead: timedelta
) -> list[AccessRequest]:
    """The person's requests of the role in `statuses` as the index lists them, newest first, back to the oldest
    that can still be undecided (the longest approval window, plus `ahead` for one asked for in advance)."""
    oldest = deps.clock.now() - deps.settings.max_approval_window - ahead - timedelta(hours=1)
    found = []
    for request in iterate_pages(lambda cursor: deps.store.requests_by_person(person_key, cursor)):
        if request.created_at < oldest:
            break
        if request.role_arn == role_arn and request.status in statuses:
            found.append(request)
    return found


@dataclass(frozen=True)
class RequestQuery:
    """What `GET /requests` asks for: a status, a role (name or ARN), only the caller's own, a page."""

    status: RequestStatus | None = None
    role: str | None = None
    mine: bool = False
    cursor: str | None = None
    limit: int = 50


def list_requests(deps: Dependencies, caller: Caller, query: RequestQuery) -> Page[AccessRequest]:
    """Admins see the requests of the roles they administer (bootstrap admins: every role) and their own;
    everyone else only their own (only a person has requests of their own).

    Pages are filled (`records.filled_page`): `query.limit` requests unless there are no more.
    """
    role_arn = resolve_role(deps, query.role) if query.role else None
    administered = set(roles_for_admin(deps, caller)) if not query.mine else set()
    if role_arn is not None:
        administered &= {role_arn}
    fetch: Callable[[str | None, int], Page[AccessRequest]]
    if not administered:
        person = check_person(caller, deps.settings.identity_role_arns).key  # 403 for a caller that is no person
        fetch = partial(deps.store.requests_by_person, person)

        def visible(request: AccessRequest) -> bool:
            return role_arn is None or request.role_arn == role_arn
    else:
        if role_arn is not None:
            fetch = partial(deps.store.requests_by_role, role_arn, query.status)
        elif query.status is not None:
            fetch = partial(deps.store.requests_by_status, query.status)
        else:
            fetch = deps.store.all_requests
        every_role = is_admin(caller, deps.settings.bootstrap_admins)
        me = _person_key(deps, caller)

        def visible(request: AccessRequest) -> bool:
            return every_role or request.role_arn in administered or request.requester.key == me

    def wanted(request: AccessRequest) -> bool:
        return visible(request) and query.status in (None, request.status)

    return filled_page(fetch, wanted, query.cursor, query.limit)


def _person_key(deps: Dependencies, caller: Caller) -> str | None:
    """The caller's person key, or None for a caller that is no person (it then has no requests)."""
    try:
        return check_person(caller, deps.settings.identity_role_arns).key
    except NotAPersonError:
        return None


def requestable_roles(deps: Dependencies, caller: Caller) -> tuple[Person, list[EffectivePolicy]]:
    """The caller as a person, and the policy in force of each role they may request: the very check
    `create_request` makes, so this list never promises what a request would refuse. 403 `not_a_person` (saying
    who is one) when no role accepts this identity; a person whom no role lets ask gets an empty list."""
    person: Person | None = None
    not_a_person: NotAPersonError | None = None
    allowed = []
    for role_arn in deps.settings.managed_role_arns:
        effective = policy_for(deps, role_arn)
        try:
            person = check_may_request(caller, effective, deps.settings)
        except NotAPersonError as error:
            not_a_person = not_a_person or error
            continue
        except ForbiddenError:
            continue
        allowed.append(effective)
    if person is None:
        if not_a_person is not None:
            raise not_a_person
        person = check_person(caller, deps.settings.identity_role_arns)
    return person, allowed


def get_request_for(deps: Dependencies, caller: Caller, request_id: str) -> AccessRequest:
    """The requester, the role's approvers (as the policy in force names them) and admins may read a request."""
    request = deps.store.get_request(request_id)
    if owns(deps, caller, request):
        return request
    # A multi-role request's decision names every role: only those entitled on every one of them see it.
    policies = [policy_for(deps, arn) for arn in request.roles or [request.role_arn]]
    allowed = all(caller.matches(p.approvers) or is_admin(caller, p.admins) for p in policies)
    if not allowed:
        raise NotFoundError(f"no request {request_id} that you may see")
    return request
