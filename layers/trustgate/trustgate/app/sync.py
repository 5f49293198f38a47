"""`sync_role`: the one path by which anything TrustGate owns in IAM changes.

TrustGate owns two documents on a managed role: its statements in the trust policy (who may assume the
role) and its session-guard inline policy (when each person's live sessions end). Both are rendered by
the pure engine from the same grants. `sync_role` locks the role, reads both, renders both, writes the
guard first and then the trust policy (a session the trust policy lets in is never one the guard has not
yet been told about), reads each back to verify, and audits each change. Idempotent: retries and the
reconciler are safe.

A new role policy goes through it too (`ProposedPolicy`): stored only once IAM accepted the trust policy it
renders. A stored policy never blocks a removal: when it no longer renders, or IAM refuses what it renders,
a sync that names nobody new keeps the standing access IAM holds now, or none (`Standing`), and says so.
In a managed mode, hand-written statements that appeared since the mode was set are drift: removed, reported.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from trustgate.adapters.observability import count, logger
from trustgate.app.transitions import commit_change, publish_quietly, transition
from trustgate.core.coverage import Coverage, Coverages, GrantSpan, coverages_of, pin_holder
from trustgate.core.errors import (
    ActivationNotRecordedError,
    ConflictError,
    DocumentRefusedError,
    IamRefusedError,
    InvalidPrincipalError,
    LockTimeoutError,
    PreconditionFailedError,
    RequestNonconformingError,
    RuleViolationError,
    SessionGuardFullError,
    SessionNameConflictError,
    SyncVerificationError,
    TrustGateError,
    TrustPolicyFullError,
)
from trustgate.core.ids import new_id
from trustgate.core.models import AccessRequest, AuditEvent, RequestStatus, RolePolicy
from trustgate.core.ports import Dependencies, RequestStore
from trustgate.core.records import LiveRole, StoredPolicy, SyncQueue
from trustgate.core.retry_budget import time_budget
from trustgate.core.rules import (
    EffectivePolicy,
    approval_shortfall,
    effective_policy,
    nonconforming_reason,
    render_spec,
)
from trustgate.core.session_guard import SESSION_LIFETIME_MAX, GuardSpec, render_session_guard
from trustgate.core.settings import Settings
from trustgate.core.trust_policy import (
    BASELINE_SID,
    Document,
    Standing,
    Statement,
    deleted_principal_ids,
    departed_principals,
    drift_in,
    policy_size,
    render_trust_policy,
    same_policy,
    unmanaged_statements,
)

# A holder renews its lease before each round and before each IAM write (`_fenced`) unless it set the lease less
# than FENCE_FRESH ago (a renewal then proves nothing the lease does not: nobody may take a lock whose lease
# runs), so every write begins with at least LOCK_LEASE - FENCE_FRESH (50 s) of lease left. The write itself takes
# at most 43 s: one IAM call with its retries, `iam.worst_case_seconds()` (15 s), after at most one refresh of
# a cross-account editor role's credentials, `wiring.worst_case_call_seconds()` (28 s). So every write ends
# inside a live lease and two holders never write one role at once, however long a round's retries ran, as long
# as the functions' clocks agree within those 7 s (Lambda's are kept by the Amazon Time Sync Service).
# Only a dead holder's lease lapses.
LOCK_LEASE = timedelta(seconds=60)
FENCE_FRESH = timedelta(seconds=10)
LOCK_WAIT_SECONDS = 20.0  # below API Gateway's 29 s limit, so a busy role answers 429, not 504
# A queued change (a Grant step, an expiry, a failed grant's clean-up: never an API call) may wait longer for a
# round to serve it, within its function's 120 s timeout (leaving room for a round of its own).
QUEUED_WAIT_SECONDS = 75.0
# The IAM retries of one round together stop this long after it began (`retry_budget.time_budget`); each call still makes
# its first attempt. So a throttled IAM slows a round down by at most this much, and never past its function.
ROUND_RETRY_SECONDS = 15.0
SERVE_SECONDS = 20.0  # a holder starts no new round for others after this long: its own function must finish
POLL_FIRST_SECONDS = 0.05  # a waiter's first pause; it grows by half each poll, to POLL_MAX_SECONDS
POLL_MAX_SECONDS = 1.0
VERIFY_ATTEMPTS = 5
# The lease each holder in this process last set, by owner (a fresh uuid per holder), from the moment `_wait_turn`
# takes the lock until it is released: what `_fenced` judges by. A holder not in it always renews.
_leases: dict[str, datetime] = {}


# A sync's writes finish within this after it plans them (verify retries included); a departure is recorded
# that much later than the plan, so the guard never forgets someone the trust policy still let in.
DEPARTURE_MARGIN = timedelta(minutes=2)
# Grants that can still shape a coverage: live ones, and ended ones whose sessions the guard still ends.
SPAN_STATUSES = (RequestStatus.ACTIVE, RequestStatus.EXPIRED, RequestStatus.REVOKED, RequestStatus.FAILED)
# Approved requests a round may activate: pending (granted once approved) and scheduled (granted at start_at).
AWAITING_ACTIVATION = (RequestStatus.PENDING, RequestStatus.SCHEDULED)
# When standing access cannot be rendered (or IAM refuses it), the next safer way to render it.
FALLBACK: dict[Standing, Standing | None] = {"policy": "held", "held": "none", "none": None}


@dataclass(frozen=True)
class SyncResult:
    role_arn: str
    changed: bool
    before: Document
    after: Document
    size: int
    quota: int
    grants: list[AccessRequest] = field(default_factory=list)
    activated: AccessRequest | None = None
    guard_before: Document | None = None
    guard_after: Document | None = None
    ended: list[AccessRequest] = field(default_factory=list)  # grants a policy change revoked
    policy_version: int | None = None  # the version a policy change stored
    coalesced: bool = False  # served by a round another caller ran: the documents above are not known here
    waited: float = 0.0  # seconds from the call until it held the lock or a round had served it
    served: int = 1  # changes the round that served this call covered, this one included


@dataclass(frozen=True)
class Plan:
    """Both documents a role should hold now, and the grants that decided them."""

    trust_policy: Document
    guard: Document | None
    coverages: Coverages
    grants: list[AccessRequest]  # live grants the trust policy names
    orphaned: list[AccessRequest]  # live grants whose principal was deleted from IAM
    refused: list[AccessRequest]  # live grants of a person whose session name another person holds
    departures: dict[str, datetime] = field(default_factory=dict)  # ended grant id -> left the trust policy
    guard_full: SessionGuardFullError | None = None  # the guard would not fit: `guard` is the live one, kept
    drift: list[Statement] = field(default_factory=list)  # hand-written statements it removes (managed modes)
    standing: Standing = "policy"  # where its standing access came from
    unrenderable: str | None = None  # why the stored policy did not render, when `standing` is not "policy"


@dataclass(frozen=True)
class Target:
    """What a role's documents are rendered from besides its grants."""

    effective: EffectivePolicy
    hand_written: tuple[Statement, ...] | None = None  # the record kept with the policy (see trust_policy)
    standing: Standing = "policy"
    unrenderable: str | None = None


def target_of(deps: Dependencies, role_arn: str, stored: StoredPolicy) -> Target:
    """The stored policy's target; one known not to render keeps the standing access IAM holds until saved again."""
    effective = effective_policy(role_arn, stored.policy, deps.settings)
    return Target(effective, stored.hand_written, "held" if stored.unrenderable else "policy", stored.unrenderable)


@dataclass(frozen=True)
class ProposedPolicy:
    """A role policy an admin wants saved: stored only once its documents render and IAM accepted them."""

    policy: RolePolicy
    audit: AuditEvent  # `policy.changed`; its `before` becomes the policy stored when the change applies
    if_match: int | None = None  # the version the admin read (If-Match); None applies over whatever is stored


def history_window(deps: Dependencies) -> timedelta:
    """How far back an ended grant may still matter, counted from when it was requested.

    A grant ends at most `max_approval_window + max_duration` after its request. Its person could be issued
    a session until then, or later while the shared IAM-users statement (rendered before that end, so ending
    at most `max_duration` after it) still named them; a session lives SESSION_LIFETIME_MAX at most.
    (Lowering the MaxDuration ceiling shortens this window; grants made under a longer one are then
    forgotten sooner, which the deploy guide warns about.)
    """
    settings = deps.settings
    return SESSION_LIFETIME_MAX + settings.max_approval_window + 2 * settings.max_duration + timedelta(minutes=5)


def grants_shaping(deps: Dependencies, role_arn: str) -> list[AccessRequest]:
    """Every grant of the role that can still shape a coverage, as stored now.

    The `ByRole` index (one query per status) is eventually consistent, so it only names the candidates, each
    read from the table consistently (`recent_grants`): a grant a round revoked or activated a moment ago is seen
    as it is, never as the index still shows it (active, or pending or scheduled and so left out). Pending and scheduled requests are
    candidates for that reason. The index orders a role's requests by when they could begin (`records.role_key`:
    a scheduled one's start, else its creation), so one whose window began before the history window cannot shape a
    coverage any more, however long before its start it was asked for.
    """
    since = deps.clock.now() - history_window(deps)
    candidates = deps.store.recent_grants(role_arn, (*SPAN_STATUSES, *AWAITING_ACTIVATION), since)
    return [g for g in candidates if g.status in SPAN_STATUSES]


def plan_role(
    deps: Dependencies,
    role_arn: str,
    live: LiveRole,
    grants: Sequence[AccessRequest],
    target: Target | None = None,
) -> Plan:
    """Render what the role's trust policy and session guard should be right now (no writes).

    A grant whose principal was deleted shows up in our statements as its unique id (AIDA…/AROA…);
    such grants are left out (IAM would refuse the whole write) and reported as orphaned.
    """
    now = deps.clock.now()
    if target is None:
        target = target_of(deps, role_arn, deps.store.get_stored_policy(role_arn))
    effective = target.effective
    deleted = deleted_principal_ids(live.trust_policy)
    orphaned = [g for g in grants if g.is_grant_live(now) and g.principal_id and g.principal_id in deleted]
    spans = [span for g in grants if g not in orphaned for span in [span_of(g)] if span is not None]
    # The guard remembers every recent coverage; the trust policy names only grants still active.
    coverages = coverages_of(spans, now, SESSION_LIFETIME_MAX)
    refused_ids = {grant_id for coverage in coverages.refused for grant_id in coverage.grant_ids}
    # A live grant the policy in force no longer allows is left out of the trust policy by every round, even
    # one that runs before it is revoked (by the policy change, or else by the reconciler, which ends it).
    disallowed = {g.id for g in grants if g.is_grant_live(now) and nonconforming_reason(g, effective, deps.settings)}
    active_ids = {g.id for g in grants if g.is_grant_live(now)} - refused_ids - disallowed
    granted = coverages_of([span for span in spans if span.grant_id in active_ids], now, timedelta(0))
    spec = replace(
        render_spec(effective, granted.kept, deps.settings), hand_written=target.hand_written, standing=target.standing
    )
    trust = render_trust_policy(live.trust_policy, spec, now)
    departures = _departures(live.trust_policy, trust, [s for s in spans if s.grant_id not in active_ids], now)
    if departures:  # the guard must remember them from when this write lets them go, not from their end
        spans = [replace(s, left_trust_at=departures.get(s.grant_id, s.left_trust_at)) for s in spans]
        coverages = coverages_of(spans, now, SESSION_LIFETIME_MAX)
    guard: Document | None = live.guard
    guard_full: SessionGuardFullError | None = None
    try:
        guard = render_session_guard(
            coverages.kept, GuardSpec(live.role_id, SESSION_LIFETIME_MAX, live.other_inline_size), now
        )
    except SessionGuardFullError as error:  # the caller decides: refuse a grant, but never block a removal
        guard_full = error
    kept_ids = {grant_id for coverage in granted.live(now) for grant_id in coverage.grant_ids}
    return Plan(
        trust_policy=trust,
        guard=guard,
        coverages=coverages,
        grants=[g for g in grants if g.id in kept_ids],
        orphaned=orphaned,
        refused=[g for g in grants if g.id in refused_ids and g.is_grant_live(now)],
        departures=departures,
        guard_full=guard_full,
        drift=drift_in(live.trust_policy, spec),
        standing=target.standing,
        unrenderable=target.unrenderable,
    )


def _removal_plan(
    deps: Dependencies, role_arn: str, live: LiveRole, grants: Sequence[AccessRequest], target: Target
) -> Plan:
    """The plan of a sync that names nobody new. A stored policy that no longer renders (a standing principal
    refused) must not keep anyone in: fall back to the standing access IAM holds now, then to none."""
    failure: InvalidPrincipalError | TrustPolicyFullError | None = None
    standing: Standing | None = target.standing
    while standing is not None:
        reason = target.unrenderable or (f"it does not render: {failure.message}" if failure else None)
        try:
            return plan_role(deps, role_arn, live, grants, replace(target, standing=standing, unrenderable=reason))
        except (InvalidPrincipalError, TrustPolicyFullError) as error:  # not the grants': those render anyway
            failure = failure or error
            standing = FALLBACK[standing]
    assert failure is not None
    raise failure


def _write_trust_policy(
    deps: Dependencies,
    role_arn: str,
    live: LiveRole,
    grants: Sequence[AccessRequest],
    plan: Plan,
    target: Target,
    owner: str,
    *,
    fallback: bool,
) -> Plan:
    """Write the plan's trust policy if it differs from IAM's and verify it; return the plan written.

    When IAM refuses it and `fallback` allows (a sync that names nobody new), render the next safer standing
    access and write that: the removal this sync is for still happens.
    """
    while not same_policy(live.trust_policy, plan.trust_policy):
        try:
            _fenced(deps, role_arn, owner, deps.roles.write_trust_policy, plan.trust_policy)
        except DocumentRefusedError as error:
            why = error.reason
            following = FALLBACK[plan.standing]
            if not fallback or following is None:
                raise
            logger.warning("IAM refused the rendered trust policy", extra={"role_arn": role_arn, "reason": why})
            unrenderable = plan.unrenderable or f"IAM refused its trust policy: {why}"
            plan = _removal_plan(
                deps, role_arn, live, grants, replace(target, standing=following, unrenderable=unrenderable)
            )
            continue
        _verify(deps, role_arn, plan.trust_policy, lambda: deps.roles.trust_policy(role_arn), "trust policy")
        break
    return plan


def _report(
    deps: Dependencies, actor: str, role_arn: str, reason: str, before: Document, plan: Plan, stored: StoredPolicy
) -> None:
    """Say what a sync had to do beyond the policy: drift it removed, standing access it could not render."""
    if plan.drift:
        detail = {"removed": plan.drift, "mode": stored.policy.mode}
        _audit(deps, actor, role_arn, "drift", before, plan.trust_policy, reason, detail)
        count("DriftRemoved")
    if plan.standing == "policy":
        return
    count("PolicyUnrenderable")
    if stored.unrenderable is not None:
        return  # reported when it was first found; the metric keeps the alarm on until the policy is saved again
    now = deps.clock.now()
    event = AuditEvent(
        id=new_id(now),
        at=now,
        actor=actor,
        action="policy.unrenderable",
        role_arn=role_arn,
        after=plan.trust_policy,
        detail={
            "reason": reason,
            "why": plan.unrenderable,
            "standing": plan.standing,
            "fix": "save the role policy again without what IAM refuses (e.g. a deleted standing principal)",
        },
    )
    if stored.version == 0:
        deps.store.put_audit(event)
    elif not deps.store.mark_policy_unrenderable(role_arn, stored.version, plan.unrenderable or "", event):
        return  # saved again meanwhile, or another sync reported it first
    _publish(deps, event)


def _departures(before: Document, after: Document, ended: Sequence[GrantSpan], now: datetime) -> dict[str, datetime]:
    """For each principal the new trust policy drops although the live one still lets them in past their own
    end (IAM users share a statement that lasts until the latest end among them): their latest ended grant's
    id, and until when they could still be issued a session (the write happens within DEPARTURE_MARGIN)."""
    departures: dict[str, datetime] = {}
    for arn, until in departed_principals(before, after, now + DEPARTURE_MARGIN).items():
        latest = max((s for s in ended if s.principal_arn == arn), key=lambda s: s.ends_at, default=None)
        if latest is not None and until > max(latest.ends_at, latest.left_trust_at or latest.ends_at):
            departures[latest.grant_id] = until
    return departures


def span_of(grant: AccessRequest) -> GrantSpan | None:
    """The span a grant gives its person; None for a request IAM never named.

    A request gets its window just before the writes that name it (see `sync_role`), so one whose grant
    failed after those writes still has a span: the guard keeps ending the sessions it may have allowed.
    """
    if grant.starts_at is None or grant.expires_at is None:
        return None
    return GrantSpan(grant.principal_arn, grant.starts_at, grant.expires_at, grant.id, grant.left_trust_at)


@dataclass(frozen=True)
class Activation:
    """An approved request about to become an active grant; its window is fixed under the role lock.

    A person already covered keeps one coverage: the new grant moves its end by the request's duration.
    """

    request: AccessRequest
    max_duration: timedelta
    require_mfa: bool = False

    def as_grant(self, coverage: Coverage | None, now: datetime) -> AccessRequest:
        starts, ends = activation_window(self.request, coverage, now, self.max_duration)
        if self.request.starts_at is not None and self.request.expires_at is not None:
            starts, ends = self.request.starts_at, self.request.expires_at  # recorded by a round that stopped
        return self.request.model_copy(
            update={
                "status": RequestStatus.ACTIVE,
                "starts_at": starts,
                "expires_at": ends,
                "require_mfa": self.require_mfa,
            }
        )


def activation_window(
    request: AccessRequest, coverage: Coverage | None, now: datetime, max_duration: timedelta
) -> tuple[datetime, datetime]:
    """(start, end) of a new grant, the window its approvers saw; never more than the role's maximum from now.

    From now. An extension (asked while covered) ends its `duration` after the coverage's end as they saw it
    (`covered_until`; earlier if the coverage has ended sooner since); scheduled access one `duration` after the
    start asked for; any other request its `duration` from now, even if the person became covered meanwhile (by a
    scheduled grant that began), so that no grant outlasts what was approved."""
    requested_end = request.requested_end()
    if requested_end is not None:
        return now, min(requested_end, now + max_duration)
    base = now
    if request.extends is not None and coverage is not None and coverage.is_live(now):
        seen = coverage.ends_at if request.covered_until is None else min(coverage.ends_at, request.covered_until)
        base = max(seen, now)
    return now, min(base + request.duration, now + max_duration)


def sync_role(
    deps: Dependencies,
    role_arn: str,
    actor: str,
    reason: str,
    activation: Activation | None = None,
    under_lock: Callable[[], Sequence[AccessRequest] | None] | None = None,
    proposal: ProposedPolicy | None = None,
    *,
    changed: Sequence[AccessRequest] = (),
    alone: bool = False,
) -> SyncResult:
    """Make the role's session guard and trust policy match its grants and policy; audit any change.

    Changes are coalesced, because both documents are rendered from all of the role's grants: a change (a
    grant to activate, a request whose record it `changed`) records itself in the role's queue and waits.
    Whoever holds the role lock runs rounds until the queue is clean; each round reads the queue, renders
    every change in it, writes, verifies and only then marks them done. A waiter returns once a round that
    started after its change verified it, or takes the lock itself when it is free. So one sync serves any
    number of waiting changes, and a dead holder delays them only until its lease runs out.

    With an `activation`, the grant is rendered in and marked active only once both documents are verified,
    still under the lock: a grant is never reported active before IAM names its principal. A batch activates
    the approved requests that fit, in order; one it could not activate is judged again alone, so that its
    refusal (409 trust_policy_full, session_name_conflict, request_nonconforming…) is exactly its own.

    `under_lock`, `proposal` and `alone` syncs need the lock themselves: `under_lock` runs first under it
    (revoke uses it, so no grant can be activated between its changes and the sync; the requests it returns
    are rendered as it wrote them, whatever the indexes show yet); a `proposal` is a new policy, stored only
    once IAM accepted its trust policy (see `_apply_proposal`). Each holder then serves the queue as well.
    """
    started = time.monotonic()
    exclusive = alone or under_lock is not None or proposal is not None
    ticket = None
    if not exclusive:
        activate = [activation.request.id] if activation else []
        ticket = deps.store.mark_dirty(role_arn, activate, [g.id for g in changed])
    owner = uuid.uuid4().hex
    while True:
        if _wait_turn(deps, role_arn, owner, ticket, started):
            try:
                return _hold(
                    deps, role_arn, owner, actor, reason, started, activation, under_lock, proposal, ticket is None
                )
            finally:
                _leases.pop(owner, None)
                deps.store.unlock(role_arn, owner)
        served = _served(deps, role_arn, activation, time.monotonic() - started)
        if served is not None:
            return served
        ticket = None  # refused in a batch: take the lock and judge it alone, to say exactly why
        started = time.monotonic()


@contextmanager
def role_lock(
    store: RequestStore, deps: Dependencies, role_arn: str, sleep: Callable[[float], None] | None = None
) -> Iterator[None]:
    """Hold the role's lock (IAM has no conditional write for trust policies): for changes that must not
    interleave with a sync, such as a cancel that must not race the grant of the same request."""
    owner = uuid.uuid4().hex
    _wait_turn(deps, role_arn, owner, None, time.monotonic(), sleep)
    try:
        yield
    finally:
        _leases.pop(owner, None)
        store.unlock(role_arn, owner)


def _wait_turn(
    deps: Dependencies,
    role_arn: str,
    owner: str,
    ticket: int | None,
    started: float,
    sleep: Callable[[float], None] | None = None,
) -> bool:
    """Wait until this caller holds the lock (True) or, with a ticket, a round has verified its change (False).

    One consistent read a poll tells both; the lock is tried only when it looks free or its lease lapsed.
    The pause grows to POLL_MAX_SECONDS so many waiters do not crowd the table; it really sleeps (in tests
    too): waiting for another process is not something a test clock can skip.
    """
    pause = sleep or time.sleep
    delay = POLL_FIRST_SECONDS
    free = True
    while True:
        now = deps.clock.now()
        if free and deps.store.try_lock(role_arn, owner, now, now + LOCK_LEASE):
            _leases[owner] = now + LOCK_LEASE
            return True
        queue = deps.store.sync_queue(role_arn)
        if ticket is not None and queue.done >= ticket:
            return False
        free = queue.is_free(deps.clock.now())
        if time.monotonic() - started > (LOCK_WAIT_SECONDS if ticket is None else QUEUED_WAIT_SECONDS):
            count("LockTimeouts")
            raise LockTimeoutError(f"another change to {role_arn} is in progress; try again in a minute")
        if not free:
            pause(random.uniform(delay / 2, delay))
            delay = min(delay * 1.5, POLL_MAX_SECONDS)


def _served(deps: Dependencies, role_arn: str, activation: Activation | None, waited: float) -> SyncResult | None:
    """What a round run by another caller did for this one; None when it did not activate this grant."""
    activated = None
    if activation is not None:
        activated = deps.store.get_request(activation.request.id)
        if activated.status != RequestStatus.ACTIVE:
            return None
    quota = deps.settings.trust_policy_quota
    return SyncResult(role_arn, False, {}, {}, 0, quota, activated=activated, coalesced=True, waited=waited)


def _hold(
    deps: Dependencies,
    role_arn: str,
    owner: str,
    actor: str,
    reason: str,
    started: float,
    activation: Activation | None,
    under_lock: Callable[[], Sequence[AccessRequest] | None] | None,
    proposal: ProposedPolicy | None,
    exclusive: bool,
) -> SyncResult:
    """As the lock's holder: this caller's own round, then rounds for whoever waits, within SERVE_SECONDS."""
    waited = time.monotonic() - started
    queue = deps.store.sync_queue(role_arn)
    served = max(queue.wanted - queue.done, 0) + (1 if exclusive else 0)
    written = list((under_lock() if under_lock is not None else None) or [])
    with time_budget(ROUND_RETRY_SECONDS):
        result = _own_round(deps, role_arn, owner, actor, reason, waited, served, queue, written, activation, proposal)
    try:
        while time.monotonic() - started < SERVE_SECONDS:
            queue = deps.store.sync_queue(role_arn)
            if queue.done >= queue.wanted:
                break
            _renew(deps, role_arn, owner)
            with time_budget(ROUND_RETRY_SECONDS):
                _round(deps, role_arn, owner, actor, "coalesced sync", queue, [], None)
    except Exception:  # a round for others: its waiters take over (the queue stays dirty); ours is done
        logger.exception("a round serving other changes failed", extra={"role_arn": role_arn})
        count("ServeRoundFailures")
    return result


def _own_round(
    deps: Dependencies,
    role_arn: str,
    owner: str,
    actor: str,
    reason: str,
    waited: float,
    served: int,
    queue: SyncQueue,
    written: Sequence[AccessRequest],
    activation: Activation | None,
    proposal: ProposedPolicy | None,
) -> SyncResult:
    """The holder's round for its own change: a policy proposal, or a round that serves the queue and
    judges this caller's activation (alone, if the batch could not hold it)."""
    quota = deps.settings.trust_policy_quota
    if proposal is not None:
        _recover(deps, role_arn, owner, queue.intent)
        live = deps.roles.read(role_arn)
        grants = _grants_now(deps, role_arn, written, queue.changed)
        return _apply_proposal(deps, role_arn, owner, actor, reason, live, grants, proposal, deps.clock.now())
    # An activation in the queue is judged with the batch; one that is not (a grant refused in a batch,
    # now judged alone; an exclusive sync's) is judged alone and first.
    own = activation if activation is not None and activation.request.id not in queue.activate else None
    served_before = deps.store.get_request(own.request.id) if own is not None else None
    if served_before is not None and served_before.status == RequestStatus.ACTIVE:
        own = None  # a round served an earlier attempt of it (a retry queued it again): nothing left to judge
    else:
        served_before = None
    done = _round(deps, role_arn, owner, actor, reason, queue, written, own)
    activated = done.activated.get(activation.request.id) if activation is not None else None
    activated = activated or served_before
    if activation is not None and activated is None:
        activated = deps.store.get_request(activation.request.id)
        if activated.status != RequestStatus.ACTIVE:  # refused in the batch: judged alone, it says why
            done = _round(deps, role_arn, owner, actor, reason, deps.store.sync_queue(role_arn), [], activation)
            activated = done.activated[activation.request.id]
    return done.result(quota, activated, waited, served)


def _renew(deps: Dependencies, role_arn: str, owner: str) -> None:
    """A fresh lease for a holder that still holds the lock (LockTimeoutError once anyone else took it)."""
    lease_until = deps.clock.now() + LOCK_LEASE
    deps.store.renew_lock(role_arn, owner, lease_until)
    if owner in _leases:
        _leases[owner] = lease_until


def _fenced[D](deps: Dependencies, role_arn: str, owner: str, write: Callable[[str, D], None], document: D) -> None:
    """Make one IAM write inside a fresh lease (see LOCK_LEASE): a holder that lost its lock writes nothing."""
    lease_until = _leases.get(owner)
    if lease_until is None or lease_until - deps.clock.now() < LOCK_LEASE - FENCE_FRESH:
        _renew(deps, role_arn, owner)
    write(role_arn, document)


def _grants_now(
    deps: Dependencies, role_arn: str, written: Sequence[AccessRequest], changed_ids: Iterable[str]
) -> list[AccessRequest]:
    """The role's grants as they are now: the index's view, overridden by records read consistently (those
    `written` under this lock, those the queue names as changed), which the index may not show yet."""
    fresh = {g.id: g for g in (*(deps.store.get_request(i) for i in changed_ids), *written)}
    grants = [fresh.pop(g.id, g) for g in grants_shaping(deps, role_arn)] + list(fresh.values())
    return [g for g in grants if g.status in SPAN_STATUSES]


@dataclass(frozen=True)
class _Round:
    """What one round did: the documents before and after, and the grants it activated."""

    role_arn: str
    live: LiveRole
    plan: Plan
    changed: bool
    activated: dict[str, AccessRequest]

    def result(self, quota: int, activated: AccessRequest | None, waited: float, served: int) -> SyncResult:
        return SyncResult(
            self.role_arn,
            self.changed,
            self.live.trust_policy,
            self.plan.trust_policy,
            policy_size(self.plan.trust_policy),
            quota,
            self.plan.grants,
            activated,
            self.live.guard,
            self.plan.guard,
            waited=waited,
            served=served,
        )


@dataclass(frozen=True)
class _Intent:
    """The IAM writes a round is about to make, recorded before them with the ids of their audit records:
    a holder that dies between a write and its audit leaves this behind, and the next round audits what IAM
    shows was written (`_recover`). So every write IAM holds is accounted for."""

    actor: str
    reason: str
    at: str
    trust_id: str
    trust_before: Document
    trust_after: Document
    guard_id: str
    guard_before: Document | None
    guard_after: Document | None

    @classmethod
    def of(cls, actor: str, reason: str, now: datetime, live: LiveRole, plan: Plan) -> _Intent:
        return cls(
            actor,
            reason,
            now.isoformat(),
            new_id(now),
            live.trust_policy,
            plan.trust_policy,
            new_id(now),
            live.guard,
            plan.guard,
        )

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def _recover(deps: Dependencies, role_arn: str, owner: str, record: Mapping[str, Any] | None) -> None:
    """Audit the writes of a holder that stopped before auditing them (its intent is still on the queue).
    A write IAM shows is recorded under the id the holder chose (so a record it did make is not doubled);
    one IAM does not show never happened. Drift is the round's business, not this."""
    if record is None:
        return
    intent = _Intent(**record)
    live = deps.roles.read(role_arn)
    detail = {"recovered": "written by a sync that stopped before it could record it"}
    now = deps.clock.now()
    for action, event_id, before, after, held in (
        ("guard.synced", intent.guard_id, intent.guard_before, intent.guard_after, live.guard),
        ("role.synced", intent.trust_id, intent.trust_before, intent.trust_after, live.trust_policy),
    ):
        if _same_document(before, after) or not _same_document(held, after):
            continue
        event = AuditEvent(
            id=event_id,
            at=now,
            actor=intent.actor,
            action=action,
            role_arn=role_arn,
            before=before,
            after=after,
            detail={"reason": intent.reason, **detail},
        )
        if not deps.store.put_audit_once(event):
            continue  # the holder did record it
        count("AuditRecovered")
        _publish(deps, event)
    deps.store.clear_intent(role_arn, owner)


def _audit_round(
    deps: Dependencies,
    role_arn: str,
    actor: str,
    reason: str,
    live: LiveRole,
    plan: Plan,
    stored: StoredPolicy,
    intent: _Intent | None,
) -> bool:
    """Audit what a round wrote (and report drift, fallbacks); False when it could not, leaving the intent."""
    try:
        if intent is not None and not _same_document(live.guard, plan.guard):
            _audit(deps, actor, role_arn, "guard.synced", live.guard, plan.guard, reason, event_id=intent.guard_id)
        if intent is not None and not same_policy(live.trust_policy, plan.trust_policy):
            _audit(
                deps,
                actor,
                role_arn,
                "role.synced",
                live.trust_policy,
                plan.trust_policy,
                reason,
                event_id=intent.trust_id,
            )
        _report(deps, actor, role_arn, reason, live.trust_policy, plan, stored)
    except Exception:
        logger.exception("could not audit a sync; the next one will", extra={"role_arn": role_arn})
        count("AuditDeferred")
        return False
    return True


def _judge(
    deps: Dependencies,
    role_arn: str,
    live: LiveRole,
    grants: Sequence[AccessRequest],
    request_id: str,
    now: datetime,
    target: Target,
    before: Plan | None = None,
) -> tuple[Plan, AccessRequest, AccessRequest]:
    """May this approved request be activated now, and does the role hold it? (plan, the request, its grant)

    Judged as it is now, under the lock: a cancel or revoke may have closed it, and an admin may have
    tightened the policy since it was made or approved (policy changes take this lock too).
    """
    fresh = deps.store.get_request(request_id)
    if fresh.status not in AWAITING_ACTIVATION or fresh.decided_at is None:
        raise ConflictError(f"request {fresh.id} is {fresh.status.value}; nothing to grant")
    if fresh.part_of is not None:  # one role of a multi-role request: only while the request as a whole stands
        holder = deps.store.get_request(fresh.part_of)
        if holder.status not in (RequestStatus.PENDING, RequestStatus.ACTIVE):
            raise ConflictError(f"request {fresh.part_of}, of which {fresh.id} is a role, is {holder.status.value}")
    effective = target.effective
    why = nonconforming_reason(fresh, effective, deps.settings) or approval_shortfall(
        fresh, effective, deps.settings, now
    )
    if why:
        raise RequestNonconformingError(why)
    activation = Activation(fresh, effective.max_duration, effective.policy.require_mfa)
    plan, candidate, _ = _with_activation(deps, role_arn, live, grants, activation, now, target, before)
    return plan, fresh, candidate


@dataclass(frozen=True)
class _Writing:
    """How a round writes IAM: its intent first, then the guard, then the trust policy, each fenced and verified."""

    deps: Dependencies
    role_arn: str
    owner: str
    actor: str
    reason: str
    now: datetime
    target: Target

    def write(
        self, live: LiveRole, grants: Sequence[AccessRequest], plan: Plan, *, fallback: bool
    ) -> tuple[Plan, _Intent | None]:
        """Write `plan` over `live`; returns the plan IAM holds (a fallback when IAM refused it) and the intent."""
        deps, role_arn, owner = self.deps, self.role_arn, self.owner
        intent = None
        if not _same_document(live.guard, plan.guard) or not same_policy(live.trust_policy, plan.trust_policy):
            intent = _Intent.of(self.actor, self.reason, self.now, live, plan)
            deps.store.record_intent(role_arn, owner, intent.as_record())
        if not _same_document(live.guard, plan.guard):
            _fenced(deps, role_arn, owner, deps.roles.write_session_guard, plan.guard)
            _verify(deps, role_arn, plan.guard, lambda: deps.roles.session_guard(role_arn), "session guard")
        written = _write_trust_policy(deps, role_arn, live, grants, plan, self.target, owner, fallback=fallback)
        if intent is not None and written is not plan:  # IAM refused the render: the fallback is what it holds
            intent = replace(intent, trust_after=written.trust_policy)
            deps.store.record_intent(role_arn, owner, intent.as_record())
        return written, intent

    def audit_guard_written(self, live: LiveRole, plan: Plan) -> None:
        """Audit a guard `write` wrote before IAM refused the trust policy that went with it."""
        if _same_document(live.guard, plan.guard):
            return
        try:
            _audit(self.deps, self.actor, self.role_arn, "guard.synced", live.guard, plan.guard, self.reason)
        except Exception:
            logger.exception("could not audit a guard write", extra={"role_arn": self.role_arn})
            count("AuditDeferred")


def _record_window(deps: Dependencies, request: AccessRequest, grant: AccessRequest) -> AccessRequest:
    """Put the grant's window on record before IAM names its person; returns the stored request (a window
    already on record, from a round that stopped before activating it, is kept as it is)."""
    if (request.starts_at, request.expires_at) == (grant.starts_at, grant.expires_at):
        return request
    window = {"starts_at": grant.starts_at, "expires_at": grant.expires_at}
    return commit_change(deps, request, window, "trustgate", "grant.window_recorded")


def _round(
    deps: Dependencies,
    role_arn: str,
    owner: str,
    actor: str,
    reason: str,
    queue: SyncQueue,
    written: Sequence[AccessRequest],
    own: Activation | None,
) -> _Round:
    """One render-write-verify of the role that serves every change in `queue`, and `own`: an activation
    judged alone and first, whose refusal is raised with nothing written. The approved requests in the queue
    are activated in order while the role holds them; one it does not hold stays for its waiter to judge
    alone. The queue is marked done only once IAM verified the result."""
    _recover(deps, role_arn, owner, queue.intent)
    now = deps.clock.now()
    live = deps.roles.read(role_arn)
    grants = _grants_now(deps, role_arn, written, queue.changed)
    stored = deps.store.get_stored_policy(role_arn)
    target = target_of(deps, role_arn, stored)
    plan: Plan | None = None
    accepted: list[tuple[AccessRequest, AccessRequest]] = []  # (the stored request, its grant)
    if own is not None:
        plan, request, grant = _judge(deps, role_arn, live, grants, own.request.id, now, target)
        accepted.append((request, grant))
    for request_id in sorted(queue.activate - {own.request.id if own else ""}):  # ids sort by time: first come first
        try:
            batch = [*grants, *(grant for _, grant in accepted)]
            plan, request, grant = _judge(deps, role_arn, live, batch, request_id, now, target, plan)
        except TrustGateError:
            continue  # not activated: its waiter judges it alone, which says why
        accepted.append((request, grant))
    if plan is None:
        plan = _removal_plan(deps, role_arn, live, grants, target)
    activating = {grant.id for _, grant in accepted}
    for grant in plan.orphaned:
        end_now(deps, grant, RequestStatus.FAILED, "the principal was deleted from IAM")
    for grant in plan.refused:
        if grant.id not in activating:
            end_now(deps, grant, RequestStatus.FAILED, "another person holds the same session name on this role")
    # Recorded before any write: if it cannot be, nothing is written and the next sync tries again.
    _record_departures(deps, grants, plan.departures)
    # Each window is on record before IAM names its person: if anything fails from here on, the request keeps
    # a span (a failed one is ended by `finalize`), and the guard ends whatever the writes allowed.
    recorded = [(_record_window(deps, request, grant), grant) for request, grant in accepted]
    writing = _Writing(deps, role_arn, owner, actor, reason, now, target)
    try:
        plan, intent = writing.write(live, grants, plan, fallback=not accepted)
    except DocumentRefusedError as error:
        if own is not None or not accepted:
            raise
        # IAM refused the batch's trust policy (a principal deleted since its approval, a quota): activate none
        # of the batch, whose waiters are each judged alone (with their own answer), and still make every
        # removal this round is for. The guard the batch wrote is audited first.
        logger.warning("IAM refused a batch of activations", extra={"role_arn": role_arn, "error": str(error)})
        count("BatchRefusedByIam")
        writing.audit_guard_written(live, plan)
        accepted, recorded = [], []
        live = deps.roles.read(role_arn)
        plan, intent = writing.write(live, grants, _removal_plan(deps, role_arn, live, grants, target), fallback=True)
    # IAM holds the change: from here on nothing may fail it. What cannot be recorded now stays in the intent
    # and the queue, and the next round (the reconciler's at the latest) records it.
    audited = _audit_round(deps, role_arn, actor, reason, live, plan, stored, intent)
    if plan.guard_full is not None:
        # The trust policy is written (taking people out is always safe); the guard could not be. Say so
        # loudly: sessions of people who just lost access live on until they expire.
        raise SessionGuardFullError(
            plan.guard_full.quota,
            plan.guard_full.size,
            plan.guard_full.others,
            trust_policy_written=not same_policy(live.trust_policy, plan.trust_policy),
        )
    activated: dict[str, AccessRequest] = {}
    for request, grant in recorded:
        try:
            activated[grant.id] = transition(
                deps,
                request,
                RequestStatus.ACTIVE,
                "trustgate",
                starts_at=grant.starts_at,
                expires_at=grant.expires_at,
                require_mfa=grant.require_mfa,
            )
        except Exception:  # IAM names it already: its own retry (or the reconciler) marks it active
            logger.exception("could not mark a verified grant active", extra={"request_id": grant.id})
            count("ActivationDeferred")
    if own is not None and own.request.id not in activated:
        raise ActivationNotRecordedError(
            f"request {own.request.id} is in IAM but could not be marked active yet; a retry finishes it"
        )
    deps.store.finish_round(role_arn, owner, queue.wanted, queue.activate | queue.changed, keep_intent=not audited)
    count("SyncRounds")
    changed = intent is not None
    return _Round(role_arn, live, plan, changed, activated)


# -- a new role policy ------------------------------------------------------------------------------


def record_for(policy: RolePolicy, stored: StoredPolicy, live: Document) -> tuple[Statement, ...] | None:
    """The hand-written statements to keep on record with `policy`: those present when a mode was first set
    (kept while the role stays managed), so that later ones are drift and adopted ones can come back."""
    if policy.mode is None:
        return None
    if stored.policy.mode is not None and stored.hand_written is not None:
        return stored.hand_written
    return tuple(unmanaged_statements(live))


def proposed_target(
    deps: Dependencies, role_arn: str, policy: RolePolicy, stored: StoredPolicy, live: Document
) -> tuple[Target, tuple[Statement, ...] | None]:
    """What a proposed policy renders from, and the record to store with it. Leaving the managed modes renders
    once more from the old record: the statements the admin had adopted come back exactly as they were."""
    record = record_for(policy, stored, live)
    effective = effective_policy(role_arn, policy, deps.settings)
    return Target(effective, record if record is not None else stored.hand_written), record


def nonconforming_grants(
    grants: Sequence[AccessRequest], effective: EffectivePolicy, settings: Settings, now: datetime
) -> dict[str, str]:
    """Live grants a policy no longer allows, judged as a request would be now: grant id -> why."""
    return {
        g.id: why
        for g in grants
        if g.is_grant_live(now)
        for why in [nonconforming_reason(g, effective, settings)]
        if why
    }


def plan_policy_change(
    deps: Dependencies,
    role_arn: str,
    live: LiveRole,
    grants: Sequence[AccessRequest],
    target: Target,
    ending: Mapping[str, str],
    now: datetime,
) -> Plan:
    """The plan under a proposed policy, its nonconforming grants ended now (no writes): 422 if it cannot render."""
    as_if = [
        g.model_copy(update={"status": RequestStatus.REVOKED, "expires_at": _ended_at(g, now)}) if g.id in ending else g
        for g in grants
    ]
    try:
        return plan_role(deps, role_arn, live, as_if, target)
    except InvalidPrincipalError as error:
        raise RuleViolationError(f"the policy cannot be rendered: {error.message}", code="invalid_policy") from error


def _ended_at(grant: AccessRequest, now: datetime) -> datetime:
    return min(grant.expires_at, now) if grant.expires_at else now


def _apply_proposal(
    deps: Dependencies,
    role_arn: str,
    owner: str,
    actor: str,
    reason: str,
    live: LiveRole,
    grants: Sequence[AccessRequest],
    proposal: ProposedPolicy,
    now: datetime,
) -> SyncResult:
    """Store a new role policy, IAM first (under the role lock).

    The trust policy it renders is written before anything else: if IAM refuses it (a standing principal that
    does not exist, a document too large), the answer is 422 with IAM's reason and nothing has changed, no
    policy stored, no grant revoked, the guard untouched. Only then is the policy stored (if still at the
    version the admin read), the grants it no longer allows revoked, and the guard written.
    """
    stored = deps.store.get_stored_policy(role_arn)
    if proposal.if_match is not None and proposal.if_match != stored.version:
        raise PreconditionFailedError(stored.version)
    target, record = proposed_target(deps, role_arn, proposal.policy, stored, live.trust_policy)
    ending = nonconforming_grants(grants, target.effective, deps.settings, now)
    plan = plan_policy_change(deps, role_arn, live, grants, target, ending, now)
    # Facts any sync records, whatever the policy (deleted principals, taken session names, departures of
    # grants that ended before): recorded before the write as a sync does, so none is lost.
    for grant in plan.orphaned:
        end_now(deps, grant, RequestStatus.FAILED, "the principal was deleted from IAM")
    for grant in plan.refused:
        end_now(deps, grant, RequestStatus.FAILED, "another person holds the same session name on this role")
    _record_departures(deps, grants, {k: v for k, v in plan.departures.items() if k not in ending})
    trust_changed = not same_policy(live.trust_policy, plan.trust_policy)
    guard_changed = not _same_document(live.guard, plan.guard)
    intent = _Intent.of(actor, reason, now, live, plan) if trust_changed or guard_changed else None
    if intent is not None:
        deps.store.record_intent(role_arn, owner, intent.as_record())
    if trust_changed:
        # A policy change never names anyone new (it only ends grants that no longer conform), so unlike a
        # grant it may write the trust policy before the guard: a refusal by IAM then leaves everything as it was.
        try:
            _fenced(deps, role_arn, owner, deps.roles.write_trust_policy, plan.trust_policy)
        except DocumentRefusedError as error:
            raise IamRefusedError(
                f"IAM refused the trust policy this role policy renders: {error.reason}. Nothing was saved or changed; "
                "fix the policy (for example a standing principal that does not exist) and try again"
            ) from error
    audit = proposal.audit.model_copy(update={"before": stored.policy.model_dump(mode="json", exclude_defaults=True)})
    try:
        if trust_changed:
            _verify(deps, role_arn, plan.trust_policy, lambda: deps.roles.trust_policy(role_arn), "trust policy")
        deps.store.put_role_policy(role_arn, proposal.policy, stored.version, audit, hand_written=record)
    except Exception:
        if intent is not None and trust_changed:  # not stored: put back what IAM held, as the stored policy has it
            _put_back(deps, role_arn, owner, intent, reason)
        raise
    _publish(deps, audit)
    # The policy is stored: from here on a failure must not answer "nothing was changed". What could not be
    # done now (revoking what it no longer allows, the guard) is queued for the next round, which this holder
    # runs at once; meanwhile no round names a grant the policy no longer allows (`plan_role`), and the
    # reconciler revokes any that is left.
    ended: list[AccessRequest] = []
    try:
        for grant in grants:
            if grant.id in ending:
                revoked = _end_nonconforming(
                    deps, grant, ending[grant.id], _ended_at(grant, now), plan.departures, actor
                )
                if revoked is not None:
                    ended.append(revoked)
        if guard_changed:
            _fenced(deps, role_arn, owner, deps.roles.write_session_guard, plan.guard)
            _verify(deps, role_arn, plan.guard, lambda: deps.roles.session_guard(role_arn), "session guard")
        # Statements the admin adopts now leave as part of the change, and so does the baseline the new policy
        # replaces; anything else unrecorded is drift.
        drift = [s for s in plan.drift if s.get("Sid") not in (*proposal.policy.adopt_statements, BASELINE_SID)]
        if _audit_round(deps, role_arn, actor, reason, live, replace(plan, drift=drift), stored, intent):
            deps.store.clear_intent(role_arn, owner)
    except Exception:
        logger.exception("a stored policy's follow-up failed; the next round finishes it", extra={"role": role_arn})
        count("PolicyFollowUpDeferred")
        deps.store.mark_dirty(role_arn, changed=list(ending))
    if plan.guard_full is not None:
        raise SessionGuardFullError(
            plan.guard_full.quota, plan.guard_full.size, plan.guard_full.others, trust_policy_written=trust_changed
        )
    return SyncResult(
        role_arn,
        trust_changed or guard_changed,
        live.trust_policy,
        plan.trust_policy,
        policy_size(plan.trust_policy),
        deps.settings.trust_policy_quota,
        plan.grants,
        guard_before=live.guard,
        guard_after=plan.guard,
        ended=ended,
        policy_version=stored.version + 1,
    )


def _end_nonconforming(
    deps: Dependencies,
    grant: AccessRequest,
    why: str,
    ends: datetime,
    departures: Mapping[str, datetime],
    actor: str,
) -> AccessRequest | None:
    """Revoke a grant the new policy no longer allows, ending it when the plan did (and with its departure)."""
    left = {"left_trust_at": departures[grant.id]} if grant.id in departures else {}
    for _ in range(3):
        if grant.status != RequestStatus.ACTIVE:  # it ended meanwhile (its expiry): keep only the departure
            _record_departures(deps, [grant], {grant.id: left["left_trust_at"]} if left else {})
            return None
        try:
            return transition(
                deps,
                grant,
                RequestStatus.REVOKED,
                actor,
                reason=f"no longer allowed by the role policy: {why}",
                expires_at=ends,
                **left,
            )
        except ConflictError:  # changed meanwhile (e.g. a notification step): read it again
            grant = deps.store.get_request(grant.id)
    raise ConflictError(f"could not revoke {grant.id}, which the new role policy no longer allows; sync the role")


def _put_back(deps: Dependencies, role_arn: str, owner: str, intent: _Intent, reason: str) -> None:
    """A policy change's trust policy is in IAM but the policy could not be stored: audit that write (it
    happened, whatever IAM shows later), then put back what IAM held, under an intent and audited as well."""
    try:
        written, held = intent.trust_after, intent.trust_before
        _audit(
            deps,
            intent.actor,
            role_arn,
            "role.synced",
            held,
            written,
            f"{reason} (not stored)",
            event_id=intent.trust_id,
        )
        now = deps.clock.now()
        back = replace(
            intent,
            trust_id=new_id(now),
            trust_before=written,
            trust_after=held,
            guard_after=intent.guard_before,  # the guard was not written
            reason=f"put back: {reason} could not be stored",
        )
        deps.store.record_intent(role_arn, owner, back.as_record())
        _fenced(deps, role_arn, owner, deps.roles.write_trust_policy, held)
        _audit(deps, back.actor, role_arn, "role.synced", written, held, back.reason, event_id=back.trust_id)
        deps.store.clear_intent(role_arn, owner)
    except Exception:  # the next sync renders the stored policy again (and audits what the intent shows)
        logger.exception("could not put back the trust policy after a failed policy change", extra={"role": role_arn})


def _with_activation(
    deps: Dependencies,
    role_arn: str,
    live: LiveRole,
    grants: Sequence[AccessRequest],
    activation: Activation,
    now: datetime,
    target: Target | None = None,
    before: Plan | None = None,
) -> tuple[Plan, AccessRequest, Coverage | None]:
    """The plan with one more grant in it, the grant, and the person's coverage before it (`before`: the
    plan of `grants`, when the caller has it already).

    Refuses (409, nothing written) when the role cannot hold it.
    """
    before = before or plan_role(deps, role_arn, live, grants, target)
    current = before.coverages.of(activation.request.requester.key)
    candidate = activation.as_grant(current, now)
    plan = plan_role(deps, role_arn, live, [*grants, candidate], target)
    # The newcomer must fit without displacing anyone who already holds their session name.
    displaced = {g.id for g in plan.refused} - {g.id for g in before.refused} - {candidate.id}
    if plan.guard_full is not None:
        raise plan.guard_full
    if candidate.id not in {g.id for g in plan.grants} or displaced:
        raise _not_rendered(plan, candidate)
    return plan, candidate, current


def preview_activation(deps: Dependencies, request: AccessRequest, effective: EffectivePolicy) -> Coverage | None:
    """Would the role hold this request if it were granted now? Returns the person's current coverage.

    Raises what the grant would raise (trust policy or session guard full, session name taken), so a
    request that cannot be granted is refused when it is made, not after people approved it.
    """
    now = deps.clock.now()
    live = deps.roles.read(request.role_arn)
    grants = grants_shaping(deps, request.role_arn)
    activation = Activation(request, effective.max_duration, effective.policy.require_mfa)
    # The record of hand-written statements is left out: this only asks whether the grant would fit.
    _, _, current = _with_activation(deps, request.role_arn, live, grants, activation, now, Target(effective))
    return current


def _record_departures(deps: Dependencies, grants: Sequence[AccessRequest], departures: dict[str, datetime]) -> None:
    """Note on each ended grant until when the trust policy let its person in past its end (see `Plan`)."""
    by_id = {g.id: g for g in grants}
    for grant_id, until in departures.items():
        grant = by_id[grant_id]
        for _ in range(3):
            try:
                commit_change(deps, grant, {"left_trust_at": until}, "trustgate", "grant.left_trust_policy")
                break
            except ConflictError:  # changed meanwhile (e.g. a notification step): read it again
                grant = deps.store.get_request(grant_id)
        else:
            raise ConflictError(f"could not record when the trust policy let go of {grant.principal_arn}; retry")


def end_now(
    deps: Dependencies,
    grant: AccessRequest,
    status: RequestStatus,
    reason: str,
    actor: str = "trustgate",
    at: datetime | None = None,
) -> AccessRequest:
    """End a grant before its time (revoked, failed) with its real end recorded: the session guard keeps
    enforcing exactly that moment (`at`: one moment for every grant one change ends). An expiry keeps the approved
    end; see `workflow_steps.expire`."""
    now = at or deps.clock.now()
    ends = min(grant.expires_at, now) if grant.expires_at else now
    return transition(deps, grant, status, actor, reason=reason, expires_at=ends)


def _not_rendered(plan: Plan, candidate: AccessRequest) -> ConflictError:
    person = candidate.requester
    holder = pin_holder(plan.coverages, person)
    if holder is not None:
        return SessionNameConflictError(
            f"{holder.person.label} already uses the session name {person.session_name!r} on {candidate.role_arn} "
            f"(covered until {holder.ends_at:%Y-%m-%dT%H:%M:%SZ}); two persons may not share it, because the role "
            f"sees both as the same aws:userid and the session guard would end both. {person.label} can be granted "
            "once that person's session guard has lapsed (their end plus the role's maximum session duration)"
        )
    return ConflictError(f"{candidate.principal_arn} could not be put in the trust policy")


def _same_document(live: Document | None, desired: Document | None) -> bool:
    if live is None or desired is None:
        return live is None and desired is None
    return same_policy(live, desired)


def _audit(
    deps: Dependencies,
    actor: str,
    role_arn: str,
    action: str,
    before: Document | None,
    after: Document | None,
    reason: str,
    detail: dict[str, Any] | None = None,
    *,
    event_id: str | None = None,
) -> None:
    now = deps.clock.now()
    event = AuditEvent(
        id=event_id or new_id(now),
        at=now,
        actor=actor,
        action=action,
        role_arn=role_arn,
        before=before,
        after=after,
        detail={"reason": reason, **(detail or {})},
    )
    deps.store.put_audit(event)
    _publish(deps, event)


def _publish(deps: Dependencies, event: AuditEvent) -> None:
    publish_quietly(deps.events, event)  # the audit record is committed; a lost bus event must not fail the sync


def _verify(
    deps: Dependencies,
    role_arn: str,
    desired: Document | None,
    read: Callable[[], Document | None],
    what: str,
) -> None:
    """Re-read until IAM shows what was written (it is eventually consistent)."""
    for attempt in range(VERIFY_ATTEMPTS):
        if _same_document(read(), desired):
            return
        deps.sleep(0.2 * 2**attempt)
    raise SyncVerificationError(
        f"the {what} of {role_arn} read back differs from what was written; another tool may be editing it"
    )
