"""The reconciler: every 5 minutes, finish whatever an interrupted step left behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from trustgate.adapters.observability import count, logger
from trustgate.app import workflow_steps
from trustgate.app.access import SYSTEM, policy_for
from trustgate.app.effects import (
    decision_of,
    delete_schedules_quietly,
    ensure_schedules,
    notify,
    resume_flow,
    start_flow,
)
from trustgate.app.requests import close_parts
from trustgate.app.reviews import remind_reviews
from trustgate.app.standing import start_just_in_time
from trustgate.app.sync import (
    AWAITING_ACTIVATION,
    end_now,
    nonconforming_grants,
    sync_role,
)
from trustgate.app.transitions import transition
from trustgate.app.workflow_steps import finalize
from trustgate.core import messages
from trustgate.core.errors import (
    ActivationNotRecordedError,
    LockTimeoutError,
    NotFoundError,
    ThrottledError,
    TrustGateError,
)
from trustgate.core.models import AccessRequest, RequestStatus
from trustgate.core.ports import Dependencies
from trustgate.core.records import ScheduleKind, iterate_pages

FLOW_GRACE = timedelta(minutes=2)  # the reconciler leaves a younger request or end alone: its step may be running


def reconcile(deps: Dependencies) -> dict[str, Any]:
    """Every 5 minutes: finish whatever an interrupted step left behind (docs/architecture.md, "What the
    reconciler finishes"): flows that never started or ended too soon, decisions the flow was never told,
    due expiries, grants the policy no longer allows, drift, and schedules without a grant or a grant without one;
    and the daily reminder of break-glass grants awaiting review.

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
    live: dict[str, list[AccessRequest]] = {}  # each role's live grants as its sync left them (read under its lock)
    roles = [_reconcile_role(deps, role_arn, now, failures, live) for role_arn in deps.settings.managed_role_arns]
    try:
        schedules = _reconcile_schedules(deps, now, failures, live)
    except Exception as error:
        _failed(failures, "schedules", error)
    reminded: list[str] = []
    try:
        reminded = remind_reviews(deps)
    except Exception as error:
        _failed(failures, "break-glass review reminders", error)
    return {
        "roles": roles,
        "flows": flows,
        "schedules": schedules,
        "reviews_reminded": reminded,
        "failures": failures,
    }


def _failed(failures: list[dict[str, str]], what: str, error: Exception) -> None:
    """Within an `except`: log, count and report one part of a reconcile that failed."""
    logger.exception("reconcile could not finish a part", extra={"part": what})
    count("ReconcileFailures")
    detail = (
        f"{error.code}: {error.message}" if isinstance(error, TrustGateError) else f"{type(error).__name__}: {error}"
    )
    failures.append({"part": what, "error": detail})


def _reconcile_role(
    deps: Dependencies,
    role_arn: str,
    now: datetime,
    failures: list[dict[str, str]],
    live: dict[str, list[AccessRequest]],
) -> dict[str, Any]:
    """End what is due (even if its schedule was lost) and grants the stored policy no longer allows; repair drift.
    Under InitialStandingAccess=none, first take a role nobody set a policy for to just-in-time. The role's live
    grants are left in `live` for the schedule sweep, so it need not read them again."""
    started = None
    try:
        started = start_just_in_time(deps, role_arn)
    except Exception as error:  # e.g. an open statement without a Sid: reported each run, the sync still runs
        _failed(failures, f"initial standing access of {role_arn}", error)
    ending = _EndUnderLock(deps, role_arn, now, failures)
    try:
        result = sync_role(deps, role_arn, SYSTEM, "reconcile", under_lock=ending)
    except Exception as error:  # a TrustGate error or an AWS one (AccessDenied, throttling): report it, go on
        _failed(failures, f"role {role_arn}", error)
        # Expiries are recorded: no later run sees them again, so tell their holders now. (Revoked grants keep
        # their schedules until a sync is through: the schedule sweep deletes those and tells their holders.)
        _tell(deps, ending.expired)
        return {"role_arn": role_arn, "error": failures[-1]["error"], "expired": [g.id for g in ending.expired]}
    for grant in ending.revoked:
        delete_schedules_quietly(deps, grant.id)  # one left behind is deleted by the schedule sweep
    _tell(deps, [*ending.expired, *ending.revoked])
    live[role_arn] = ending.live
    expired = [g.id for g in ending.expired]
    if started is None:
        return {"role_arn": role_arn, "changed": result.changed, "expired": expired}
    changed = started.changed or result.changed
    return {"role_arn": role_arn, "changed": changed, "expired": expired, "started_just_in_time": True}


def _tell(deps: Dependencies, ended: list[AccessRequest]) -> None:
    for grant in ended:
        notify(deps, messages.outcome_for_requester(grant))  # never raises: a lost message is logged


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


def _finish_part(deps: Dependencies, part: AccessRequest, now: datetime) -> str | None:
    """One role of a multi-role request still pending although the request that holds its decision is no longer
    being decided or granted: it ended without granting it (a revoke of another role cancelled it, a step died
    before closing its parts), or its flow is over with some roles granted or this one's window on record."""
    if part.status != RequestStatus.PENDING or part.created_at > now - FLOW_GRACE or part.part_of is None:
        return None
    parent = deps.store.get_request(part.part_of)
    if parent.status == RequestStatus.PENDING and part.starts_at is None:
        return None  # being decided: its flow grants or ends it with the others
    if parent.status in (RequestStatus.PENDING, RequestStatus.ACTIVE) and deps.flow.status(parent.id) == "RUNNING":
        return None  # being granted
    if parent.status in (RequestStatus.PENDING, RequestStatus.ACTIVE) or part.starts_at is not None:
        # Some roles granted (or this one's window recorded) and the flow over: none may stay (every role or none).
        finalize(deps, parent.id, "failed", {"Error": "Reconciler", "Cause": "the grant of every role did not finish"})
        return f"failed with {parent.id} (not every role could be granted)"
    close_parts(deps, parent, SYSTEM)
    return f"closed with {parent.id} ({parent.status.value})"


def _finish_flow(deps: Dependencies, request_id: str, now: datetime) -> str | None:
    """One request's flow: started if it never was, told a decision it was never given, or, if it ended while
    the request is still pending, the request's real outcome recorded (nobody left in IAM). What it did, if anything."""
    request = deps.store.get_request(request_id)  # read consistently: the index may be behind
    if request.part_of is not None:  # one role of a multi-role request: it has no flow of its own
        return _finish_part(deps, request, now)
    flow = deps.flow.status(request.id)
    if request.status in (RequestStatus.DENIED, RequestStatus.CANCELLED):
        if flow == "RUNNING" and resume_flow(deps, request, decision_of(request) or "cancelled"):
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
        start_flow(deps, request)  # named after the request: never a second flow (Grant announces a break-glass)
        return "flow started"
    if flow == "RUNNING":
        decision = decision_of(request)
        if decision and resume_flow(deps, request, decision):
            return "decision delivered"
        return None
    # The flow ended (failed, aborted, timed out) while the request is still pending.
    if undecided_too_long and request.starts_at is None:
        finalize(deps, request.id, "timed_out")
        return "timed out"
    cause = f"the approval flow ended ({flow}) before the request was granted"
    finalize(deps, request.id, "failed", {"Error": "TrustGate.FlowEnded", "Cause": cause})
    return "failed"


def _reconcile_schedules(
    deps: Dependencies, now: datetime, failures: list[dict[str, str]], live: dict[str, list[AccessRequest]]
) -> dict[str, list[str]]:
    """Schedules without an active grant (or a scheduled request) are deleted; an active grant without its expiry
    schedule gets it; a scheduled request without its start schedule gets it, or is started if its start is past.

    The role sweep's live grants (`live`) and the scheduled requests are known to be kept: only a schedule of
    another request is looked up, so a run costs a few calls per role, not one per grant."""
    listed: dict[str, set[ScheduleKind]] = {}
    for ref in deps.schedules.listed():
        listed.setdefault(ref.request_id, set()).add(ref.kind)
    started: list[str] = []
    try:
        scheduled = list(iterate_pages(lambda c: deps.store.requests_by_status(RequestStatus.SCHEDULED, c)))
    except Exception as error:  # the sweeps below stand; scheduled requests are looked at next run
        _failed(failures, "scheduled requests", error)
        scheduled = []
    kept = {g.id for grants in live.values() for g in grants} | {r.id for r in scheduled}
    deleted, created = [], []
    for request_id, kinds in listed.items():
        if request_id in kept:
            continue
        try:
            if _delete_orphaned(deps, request_id, kinds, now):
                deleted.append(request_id)
        except Exception as error:
            _failed(failures, f"schedules of {request_id}", error)
    for role_arn in deps.settings.managed_role_arns:
        try:  # a role whose sweep failed is read here
            grants = live[role_arn] if role_arn in live else deps.store.active_grants(role_arn)
        except Exception as error:
            _failed(failures, f"schedules of {role_arn}", error)
            continue
        for grant in [g for g in grants if "expire" not in listed.get(g.id, set())]:
            try:
                if _schedule_missing(deps, grant.id, now):
                    created.append(grant.id)
            except Exception as error:
                _failed(failures, f"schedules of {grant.id}", error)
    for request in scheduled:
        try:
            done = _keep_scheduled(deps, request.id, "start" in listed.get(request.id, set()), now)
        except Exception as error:
            _failed(failures, f"start of {request.id}", error)
            continue
        (started if done == "started" else created if done == "scheduled" else []).append(request.id)
    return {"deleted": deleted, "created": created, "started": started}


def _keep_scheduled(deps: Dependencies, request_id: str, has_schedule: bool, now: datetime) -> str | None:
    """A scheduled request whose start went by a while ago is started now (its schedule was lost, or failed every
    retry); one still ahead without its start schedule gets it again."""
    request = deps.store.get_request(request_id)  # read consistently: a cancel or its start may just have happened
    if request.status != RequestStatus.SCHEDULED or request.start_at is None:
        return None
    if request.start_at <= now - FLOW_GRACE:
        try:
            result = workflow_steps.grant(deps, request.id)
        except (LockTimeoutError, ThrottledError, ActivationNotRecordedError):
            raise  # passing: the next run (or the schedule's own retry) tries again
        except TrustGateError as error:  # lasting (the trust policy is full, IAM refuses it): as the flow would
            finalize(deps, request.id, "failed", {"Error": error.code, "Cause": error.message})
            return None
        return "started" if result["status"] == RequestStatus.ACTIVE else None
    if not has_schedule and request.start_at > now:
        deps.schedules.create(request.id, request.start_at, "start")
        return "scheduled"
    return None


def _delete_orphaned(deps: Dependencies, request_id: str, kinds: set[ScheduleKind], now: datetime) -> bool:
    """Delete the schedules of a request that is not (or no longer) an active grant. One whose grant ended early
    while its expiry schedule stayed was never followed through (the ending steps delete it before telling the
    requester): the requester is told now."""
    try:
        request: AccessRequest | None = deps.store.get_request(request_id)
    except NotFoundError:
        request = None
    if request is not None:
        if request.status in (RequestStatus.ACTIVE, *AWAITING_ACTIVATION):
            return False  # an active grant's, one being granted, or a scheduled one's start
        ended_at = request.expires_at or request.created_at
        if ended_at > now - FLOW_GRACE:  # the step that ended it may still be deleting them
            return False
    deps.schedules.delete(request_id)
    if request is not None and "expire" in kinds and request.status in (RequestStatus.REVOKED, RequestStatus.FAILED):
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
class _EndUnderLock:
    """Under the role lock: end every live grant that is due (its schedule was lost or is late) or that the stored
    policy no longer allows. A policy change ends the latter itself; this catches one that could not (a crash after
    the policy was stored, a lost race). Requesters are told and revoked grants' schedules deleted after the sync;
    if that cannot happen, the schedule sweep does both. What is left live is kept for the schedule sweep."""

    deps: Dependencies
    role_arn: str
    now: datetime
    failures: list[dict[str, str]]
    expired: list[AccessRequest] = field(default_factory=list)
    revoked: list[AccessRequest] = field(default_factory=list)
    live: list[AccessRequest] = field(default_factory=list)

    def __call__(self) -> list[AccessRequest]:
        grants = self.deps.store.active_grants(self.role_arn)
        for grant in [g for g in grants if g.expires_at is not None and g.expires_at <= self.now]:
            try:  # one grant that cannot be ended now must not keep the role from its sync
                self.expired.append(
                    transition(self.deps, grant, RequestStatus.EXPIRED, SYSTEM, reason="expired (reconciler)")
                )
            except Exception as error:
                _failed(self.failures, f"expiry of {grant.id}", error)
        expired = {g.id for g in self.expired}
        remaining = [g for g in grants if g.id not in expired]
        effective = policy_for(self.deps, self.role_arn)
        ending = nonconforming_grants(remaining, effective, self.deps.settings, self.deps.clock.now())
        for grant in remaining:
            if grant.id in ending:
                reason = f"no longer allowed by the role policy: {ending[grant.id]}"
                self.revoked.append(end_now(self.deps, grant, RequestStatus.REVOKED, reason))
            else:
                self.live.append(grant)
        return [*self.expired, *self.revoked]
