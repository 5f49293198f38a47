"""Property: the trust policy and session guard the engine renders decide in IAM as the coverage model says.

Random grant schedules on one role (IAM users and Identity Center users, extensions, revokes, re-grants,
expiries, expiry syncs that come late) go through every sync in time order as `sync.sync_role` runs it: each
renders exactly as `sync.plan_role` does, against the trust policy the previous sync wrote, and records when
that policy let an ended grant's person go (`left_trust_at`). The documents of `now`, the last sync, are
checked: the independent IAM evaluator (tests/support/iam_eval.py) decides requests at times T >= `now`, with
the documents still those of `now` (the next sync has not happened). The expectations come from a model of
coverages computed here from the grants, never from the rendered documents:

* AssumeRole at T (caller's ARN, `sts:RoleSessionName` = name) is allowed iff the person's newest coverage is
  live at `now`, the caller's ARN is that of one of its grants still in force at `now` (started, neither ended
  nor revoked, its expiry not yet synced), T is before the statement's end (the person's own end; for IAM
  users, who share one statement, the latest end among the live IAM users) and name is the pin.
* A session of the role named `name`, issued at T0 and acting at T: when `name` is a person's pin, allowed iff
  T < E and T0 >= S, [S, E] the person's newest coverage; a session of any other name is untouched.

Only sessions that could exist are asked about: issued (T0) while the trust policy of that time — the one
rendered at the latest sync before T0 — let the person in, and still alive at T (T - T0 < keep_for, the role's
MaxSessionDuration). With every expiry synced the moment it is due, that is: T0 inside one of the person's
coverages, or after `now` under the documents of `now`.

Every case of a batch of schedules goes to one node process; on a mismatch the schedule, both documents,
the model's coverages and the case are printed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.iam_eval import ALLOWED, EXPLICITLY_DENIED, IMPLICITLY_DENIED, IamCase, assume_role, evaluate
from trustgate.app.sync import DEPARTURE_MARGIN
from trustgate.core.coverage import Coverages, GrantSpan, coverages_of
from trustgate.core.identity import person_of
from trustgate.core.session_guard import SESSION_LIFETIME_MAX, GuardSpec, render_session_guard
from trustgate.core.trust_policy import Document, RenderSpec, departed_principals, render_trust_policy

pytestmark = pytest.mark.unit

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
SECOND: Final = timedelta(seconds=1)
ACCOUNT: Final = "111111111111"
OTHER_ACCOUNT: Final = "222222222222"
ROLE_ARN: Final = f"arn:aws:iam::{ACCOUNT}:role/Target"
ROLE_ID: Final = "AROAQTARGETEXAMPLE0001"
SESSIONS: Final = f"arn:aws:sts::{ACCOUNT}:assumed-role/Target/"
PERMISSION_SETS: Final = ("AWSReservedSSO_Admin_0123456789abcdef", "AWSReservedSSO_ReadOnly_fedcba9876543210")
NAMES: Final = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
# Callers no grant ever names: an IAM user and an Identity Center user (their names are nobody's pin).
OUTSIDERS: Final = (
    f"arn:aws:iam::{ACCOUNT}:user/mallory",
    f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/{PERMISSION_SETS[0]}/oscar",
)
OTHER_SESSION_NAMES: Final = ("mallory", "oscar", "Target", "ci-deploy")
# A hand-written statement TrustGate keeps as it is (and which lets none of our callers in).
LIVE_DOCUMENT: Final[Document] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "VendorSupport",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::333333333333:role/VendorSupport"},
            "Action": "sts:AssumeRole",
        }
    ],
}
# The role's permissions: everything, so any denial of a session's call is the guard's.
ADMIN: Final = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
BASE: Final = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LOOK_AHEAD: Final = timedelta(minutes=90)
MAX_DURATION: Final = timedelta(hours=4)
DURATIONS: Final = tuple(timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 90, 120))
# The role's MaxSessionDuration. The guard remembers a coverage SESSION_LIFETIME_MAX (12 h) past the moment
# the trust policy let the person go, so only a role whose sessions live that long reaches that edge.
KEEP_FORS: Final = (timedelta(hours=1), timedelta(hours=2), SESSION_LIFETIME_MAX)
QUOTA: Final = 4096
# How late an expiry's sync may run: EventBridge Scheduler's delivery, else the reconciler (every 5 minutes).
EXPIRY_SYNC_LAG: Final = timedelta(minutes=5)
CASES_PER_SCHEDULE: Final = 20
MISMATCHES_SHOWN: Final = 3

type Kind = Literal["iam_user", "identity_center"]
type Seconds = int  # whole seconds since the epoch: the precision policies and tokens carry


def floor_s(moment: datetime) -> Seconds:
    return (moment - EPOCH) // SECOND


def ceil_s(moment: datetime) -> Seconds:
    return -((EPOCH - moment) // SECOND)


def moment_of(seconds: Seconds) -> datetime:
    return EPOCH + seconds * SECOND


def iso(seconds: Seconds) -> str:
    return moment_of(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- schedules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    pin: str
    kind: Kind
    arns: tuple[str, ...]  # an IAM user's ARN; an Identity Center user's session ARNs (permission set x account)

    @property
    def key(self) -> str:
        return person_of(self.arns[0]).key


@dataclass
class Grant:
    id: str
    arn: str
    pin: str
    starts_at: datetime
    expires_at: datetime  # as activated
    expiry_sync: datetime  # when the expiry's sync runs (its whole second, or later when it lags)
    revoked_at: datetime | None = None

    @property
    def syncs_late(self) -> bool:
        """Does its expiry's sync come after its end (whole second)?"""
        return self.revoked_at is None and self.expiry_sync > moment_of(floor_s(self.expires_at))

    def ends_as_of(self, moment: datetime) -> datetime:
        """The span's end as the store holds it at `moment` (a revoke moves it to the revoke's time)."""
        if self.revoked_at is not None and self.revoked_at <= moment:
            return min(self.expires_at, self.revoked_at)
        return self.expires_at

    def is_live(self, moment: datetime) -> bool:
        """`AccessRequest.is_grant_live` at `moment`: started, still active (neither revoked nor ended by its
        expiry's sync) and not past its end."""
        revoked = self.revoked_at is not None and self.revoked_at <= moment
        return self.starts_at <= moment < self.expires_at and not revoked and moment < self.expiry_sync


@dataclass
class Schedule:
    label: str
    persons: tuple[Person, ...]
    keep_for: timedelta
    grants: list[Grant] = field(default_factory=list)
    syncs: list[datetime] = field(default_factory=list)  # every sync, in order; the last one is `now`
    events: list[str] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        return self.syncs[-1]

    @property
    def keep_s(self) -> Seconds:
        return self.keep_for // SECOND

    def spans(self, at: datetime, left_trust: Mapping[str, datetime]) -> list[GrantSpan]:
        """The spans `plan_role` hands the engine at `at`: every grant so far, ended ones with their real end
        and, by grant id, when a sync took their person out of the trust policy after it (`left_trust_at`)."""
        return [
            GrantSpan(g.arn, g.starts_at, g.ends_as_of(at), g.id, left_trust.get(g.id))
            for g in self.grants
            if g.starts_at <= at
        ]

    def person_with_pin(self, name: str) -> Person | None:
        return next((p for p in self.persons if p.pin == name), None)

    def person_with_arn(self, arn: str) -> Person | None:
        return next((p for p in self.persons if arn in p.arns), None)

    def describe(self) -> str:
        lines = [f"schedule {self.label}: keep_for={self.keep_for}, now={self.now.isoformat()}"]
        lines += [f"  person {p.pin} ({p.kind}): {', '.join(p.arns)}" for p in self.persons]
        left_trust = run_syncs(self)[1]
        for g in self.grants:
            revoked = f", revoked {g.revoked_at.isoformat()}" if g.revoked_at else ""
            left = f", left trust {left_trust[g.id].isoformat()}" if g.id in left_trust else ""
            lines.append(
                f"  grant {g.id} {g.arn}: {g.starts_at.isoformat()} -> {g.expires_at.isoformat()}{revoked}"
                f" (expiry sync {g.expiry_sync.isoformat()}){left}"
            )
        lines += [f"  event {event}" for event in self.events]
        lines.append("  syncs " + ", ".join(s.isoformat() for s in self.syncs))
        for person in self.persons:
            shown = [f"[{iso(c.start)}, {iso(c.end)}) {sorted(c.arns)}" for c in coverages_at(self, person, self.now)]
            lines.append(f"  model coverages of {person.pin}: {shown}")
        return "\n".join(lines)


def build_schedule(
    rng: random.Random, label: str, max_lag: timedelta = timedelta(0), keep_for: timedelta | None = None
) -> Schedule:
    """2-6 persons of both kinds and 3-12 events (grant/extension, revoke, reconcile) a random time apart, on a
    role whose sessions live `keep_for` (by default one of KEEP_FORS)."""
    count = rng.randint(2, 6)
    kinds: list[Kind] = ["iam_user", "identity_center"]
    kinds += [rng.choice(kinds) for _ in range(count - 2)]
    rng.shuffle(kinds)
    user_accounts = (ACCOUNT, OTHER_ACCOUNT) if rng.random() < 0.5 else (ACCOUNT,)
    sso_accounts = (ACCOUNT, OTHER_ACCOUNT) if rng.random() < 0.5 else (ACCOUNT,)
    places = [(permission_set, account) for permission_set in PERMISSION_SETS for account in sso_accounts]
    persons: list[Person] = []
    for name, kind in zip(rng.sample(NAMES, count), kinds, strict=True):  # distinct pins: no pin conflicts
        if kind == "iam_user":
            arns: tuple[str, ...] = (f"arn:aws:iam::{rng.choice(user_accounts)}:user/{name}",)
        else:
            arns = tuple(
                f"arn:aws:sts::{a}:assumed-role/{ps}/{name}" for ps, a in rng.sample(places, rng.randint(1, 2))
            )
        persons.append(Person(name, kind, arns))
    schedule = Schedule(label, tuple(persons), keep_for or rng.choice(KEEP_FORS))
    moment = BASE + timedelta(microseconds=rng.choice((0, rng.randrange(1_000_000))))
    for number in range(rng.randint(3, 12)):
        if number:
            moment = _next_moment(rng, schedule, moment)
        person = rng.choice(persons)
        roll = rng.random()
        active = [g for g in schedule.grants if g.pin == person.pin and g.revoked_at is None and moment < g.expiry_sync]
        if roll < 0.25 and active:  # revoke_person: every active grant of the person ends now
            for grant in active:
                grant.revoked_at = moment
            schedule.events.append(f"{moment.isoformat()} revoke {person.pin}")
        elif roll < 0.9 or number == 0:  # a request activated now: a first grant, a re-grant or an extension
            schedule.grants.append(_activate(rng, schedule, person, moment, f"g{number}", max_lag))
            schedule.events.append(f"{moment.isoformat()} activate g{number}")
        else:
            schedule.events.append(f"{moment.isoformat()} reconcile")
        schedule.syncs.append(moment)
    stop = moment + rng.choice((timedelta(0), rng.randint(0, 3 * 3600) * SECOND))
    late = [m for g in schedule.grants if _outlasted(schedule, g) for m in _late_marks(g, schedule) if m > moment]
    if late and rng.random() < 0.5:  # a last sync while sessions from a late expiry's gap may still live
        stop = rng.choice(late)
        schedule.syncs.append(stop)
        schedule.events.append(f"{stop.isoformat()} reconcile")
    expiries = [g.expiry_sync for g in schedule.grants if g.revoked_at is None and g.expiry_sync <= stop]
    schedule.syncs = sorted(schedule.syncs + expiries)
    return schedule


def _activate(
    rng: random.Random, schedule: Schedule, person: Person, moment: datetime, grant_id: str, max_lag: timedelta
) -> Grant:
    """`sync.activation_window`: from now to the live coverage's end (else now) plus the duration, capped."""
    duration = rng.choice(DURATIONS)
    current = newest_at(schedule, person, moment)
    base = moment_of(current.end) if current is not None and current.end > floor_s(moment) else moment
    expires = min(base + duration, moment + MAX_DURATION)
    lag = timedelta(0)
    if max_lag and rng.random() < 0.7:
        lag = rng.choice((SECOND, rng.randint(1, max_lag // SECOND) * SECOND))
    # The expiry schedule's at() holds whole seconds: it fires at the end rounded down, the policies' end.
    return Grant(grant_id, rng.choice(person.arns), person.pin, moment, expires, moment_of(floor_s(expires)) + lag)


def _next_moment(rng: random.Random, schedule: Schedule, moment: datetime) -> datetime:
    roll = rng.random()
    if roll < 0.1:  # within the same second: e.g. a revoke in a grant's first second
        return moment + timedelta(milliseconds=rng.randrange(0, 1500))
    if roll < 0.4:  # at a boundary: an end (re-grant touching it), an end plus keep_for (the start rule's edge)
        marks = sorted(m for m in _marks(schedule, moment) if m > moment)
        if marks:
            return rng.choice(marks)
    if roll < 0.75:
        return moment + rng.randint(1, 30 * 60) * SECOND
    return moment + rng.randint(30 * 60, 3 * 3600) * SECOND


def _marks(schedule: Schedule, moment: datetime) -> Iterable[datetime]:
    for grant in schedule.grants:
        end = grant.ends_as_of(moment)
        for at in (end, moment_of(floor_s(end)), grant.expiry_sync):
            for shift in (-SECOND, timedelta(0), SECOND):
                yield at + shift
                yield at + schedule.keep_for + shift
        if grant.syncs_late:
            yield from _late_marks(grant, schedule)


def _outlasted(schedule: Schedule, grant: Grant) -> bool:
    """Is it an IAM user's grant whose expiry syncs late while another IAM user's grant outlasts it? The users
    statement then still names the user after their end, until that sync."""
    users = {p.pin for p in schedule.persons if p.kind == "iam_user"}
    return (
        grant.syncs_late
        and grant.pin in users
        and any(
            other.pin in users - {grant.pin}
            and other.starts_at <= grant.expires_at < other.ends_as_of(grant.expires_at)
            for other in schedule.grants
        )
    )


def _late_marks(grant: Grant, schedule: Schedule) -> list[datetime]:
    """keep_for after the moments between a grant's end and its late expiry sync."""
    end = moment_of(floor_s(grant.expires_at))
    return [end + (grant.expiry_sync - end) * share + schedule.keep_for for share in (0.25, 0.5, 0.75)]


# -- the product's syncs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What `sync.plan_role` renders at one sync, and the departures it records (`left_trust_at` by grant id)."""

    trust: Document
    guard: Document | None
    coverages: Coverages
    departures: dict[str, datetime]


def plan_at(schedule: Schedule, at: datetime, left_trust: Mapping[str, datetime], before: Document) -> Plan:
    """`sync.plan_role` at `at`, the live trust policy being `before`: the trust policy from the grants live
    then; `sync._departures`: an ARN `before` named and the new one does not left at
    `departed_principals(before, new, at + DEPARTURE_MARGIN)`, noted on that ARN's latest ended span when
    later than its end (and than what it already holds); the guard from every recent span, departures in."""
    spans = schedule.spans(at, left_trust)
    coverages = coverages_of(spans, at, SESSION_LIFETIME_MAX)
    refused = {grant_id for coverage in coverages.refused for grant_id in coverage.grant_ids}
    active = {g.id for g in schedule.grants if g.is_live(at)} - refused
    granted = coverages_of([span for span in spans if span.grant_id in active], at, timedelta(0))
    trust = render_trust_policy(LIVE_DOCUMENT, RenderSpec(coverages=granted.kept, quota=QUOTA), at)
    departures: dict[str, datetime] = {}
    for arn, until in departed_principals(before, trust, at + DEPARTURE_MARGIN).items():
        ended = [span for span in spans if span.principal_arn == arn and span.ends_at <= at]
        latest = max(ended, key=lambda span: span.ends_at, default=None)
        if latest is not None and until > max(latest.ends_at, latest.left_trust_at or latest.ends_at):
            departures[latest.grant_id] = until
    if departures:
        spans = [replace(s, left_trust_at=departures.get(s.grant_id, s.left_trust_at)) for s in spans]
        coverages = coverages_of(spans, at, SESSION_LIFETIME_MAX)
    guard = render_session_guard(coverages.kept, GuardSpec(ROLE_ID, SESSION_LIFETIME_MAX), at)
    return Plan(trust, guard, coverages, departures)


def run_syncs(schedule: Schedule) -> tuple[Plan, dict[str, datetime]]:
    """Every sync in time order, as `sync.sync_role` runs it: plan against the trust policy the previous sync
    wrote, record the plan's departures, write. Returns the last sync's plan (`now`) and every `left_trust_at`
    recorded by then."""
    left_trust: dict[str, datetime] = {}
    before = LIVE_DOCUMENT
    plan = None
    for at in schedule.syncs:
        plan = plan_at(schedule, at, left_trust, before)
        left_trust.update(plan.departures)
        before = plan.trust
    assert plan is not None, "a schedule has at least one sync"
    return plan, left_trust


# -- the model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCoverage:
    start: Seconds
    end: Seconds
    arns: frozenset[str]
    grant_ids: frozenset[str]


def coverages_at(schedule: Schedule, person: Person, at: datetime) -> list[ModelCoverage]:
    """The person's coverages as of `at`, oldest first: their grants in whole seconds (rounded down), a grant
    that starts before the current coverage's end joins it, one that starts at or after it opens the next."""
    spans = sorted(
        (floor_s(g.starts_at), floor_s(g.ends_as_of(at)), g.arn, g.id)
        for g in schedule.grants
        if g.pin == person.pin and g.starts_at <= at and g.ends_as_of(at) >= g.starts_at
    )
    found: list[ModelCoverage] = []
    for start, end, arn, grant_id in spans:
        if found and start < found[-1].end:
            last = found[-1]
            found[-1] = ModelCoverage(last.start, max(last.end, end), last.arns | {arn}, last.grant_ids | {grant_id})
        else:
            found.append(ModelCoverage(start, end, frozenset({arn}), frozenset({grant_id})))
    return found


def newest_at(schedule: Schedule, person: Person, at: datetime) -> ModelCoverage | None:
    coverages = coverages_at(schedule, person, at)
    return coverages[-1] if coverages else None


@dataclass(frozen=True)
class Named:
    """How the trust policy rendered at some sync names a person: these ARNs, until `until` (exclusive)."""

    arns: frozenset[str]
    until: Seconds


def named_at(schedule: Schedule, person: Person, at: datetime) -> Named | None:
    """Only a live coverage is named, and only through the ARNs of its grants still in force at `at`: a grant
    that ended (its end passed, or a revoke) no longer lets its ARN in, though the coverage goes on."""
    newest = newest_at(schedule, person, at)
    if newest is None or newest.end <= floor_s(at):
        return None
    arns = frozenset(g.arn for g in schedule.grants if g.id in newest.grant_ids and g.is_live(at))
    if person.kind == "identity_center":
        return Named(arns, newest.end)
    live_user_ends = [
        c.end
        for p in schedule.persons
        if p.kind == "iam_user"
        for c in [newest_at(schedule, p, at)]
        if c is not None and c.end > floor_s(at)
    ]
    return Named(arns, max(live_user_ends))


def issuable(schedule: Schedule, person: Person) -> list[tuple[Seconds, Seconds]]:
    """Half-open ranges of T0 at which a session with the person's pin could have been issued: between a sync
    and the next, while the trust policy that sync rendered named them (after `now`: the documents of `now`)."""
    ranges: list[tuple[Seconds, Seconds]] = []
    for index, sync in enumerate(schedule.syncs):
        named = named_at(schedule, person, sync)
        if named is None:
            continue
        until = named.until
        if index + 1 < len(schedule.syncs):
            until = min(until, ceil_s(schedule.syncs[index + 1]))
        if ceil_s(sync) < until:
            ranges.append((ceil_s(sync), until))
    return ranges


def check_engine_coverages(schedule: Schedule, coverages: Coverages) -> None:
    """The engine keeps each person's newest coverage, exactly as the model computes it, while it matters.

    It must keep it while it ended less than keep_for ago, or while a session with the person's pin issued
    under it (at or after its start, while a trust policy named them: see `issuable`) may still be alive:
    a token carries whole seconds, and one issued in second T0 lives while T - T0 < keep_for, so it is alive
    at some T >= now iff T0 + keep_for > ceil(now). It may keep it longer only by its deliberate margins: a
    session may have been issued under a longer MaxSessionDuration (SESSION_LIFETIME_MAX), and the write that
    let the person go may land up to DEPARTURE_MARGIN after the sync.
    """
    now_s, first = floor_s(schedule.now), ceil_s(schedule.now)
    longest, margin = SESSION_LIFETIME_MAX // SECOND, DEPARTURE_MARGIN // SECOND
    required: set[str] = set()
    allowed: dict[str, tuple[Seconds, Seconds, frozenset[str]]] = {}  # by person: the coverage, if kept
    for person in schedule.persons:
        c = newest_at(schedule, person, schedule.now)
        if c is None:
            continue
        last = max((hi - 1 for _, hi in issuable(schedule, person) if hi - 1 >= c.start), default=None)
        if c.end + schedule.keep_s > now_s or (last is not None and last + schedule.keep_s > first):
            required.add(person.key)
        # The sync that ended the coverage (a revoke): its write may land up to `margin` later, even when no whole
        # second of issuing lay between their last sync and it (a grant revoked within its first second).
        leaving = next((ceil_s(s) for s in schedule.syncs if floor_s(s) == c.end), None)
        if (
            c.end + longest > now_s
            or (last is not None and last + 1 + margin + longest > now_s)
            or (leaving is not None and leaving + margin + longest > now_s)
        ):
            allowed[person.key] = (c.start, c.end, c.arns)
    actual = {
        c.person.key: (floor_s(c.starts_at), floor_s(c.ends_at), frozenset(c.principal_arns)) for c in coverages.kept
    }
    assert not coverages.refused, f"no pin conflicts were generated\n{schedule.describe()}"
    assert required <= actual.keys(), f"coverages_of drops coverages that still matter\n{schedule.describe()}"
    assert all(allowed.get(key) == found for key, found in actual.items()), (
        f"coverages_of disagrees with the model\n{schedule.describe()}"
    )


# -- cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """Both documents rendered at `now`, and what the model says of each person then (computed once)."""

    schedule: Schedule
    trust: Document
    guard: Document | None
    named: dict[str, Named | None]  # by pin: how the trust policy of `now` names the person
    newest: dict[str, ModelCoverage | None]  # by pin: the person's newest coverage as of `now`
    issuable: dict[str, list[tuple[Seconds, Seconds]]]  # by pin: when a session with the pin could be issued
    marks: tuple[Seconds, ...]  # boundaries worth asking about: ends, ends + keep_for, starts + keep_for


@dataclass(frozen=True)
class Check:
    rendered: Rendered
    case: IamCase
    expected: frozenset[str]  # the decisions the model accepts
    why: str


def render(schedule: Schedule) -> Rendered:
    """Both documents as the last sync (`now`) renders them, after every earlier sync recorded its departures."""
    now = schedule.now
    plan = run_syncs(schedule)[0]
    check_engine_coverages(schedule, plan.coverages)
    trust, guard = plan.trust, plan.guard
    marks: list[Seconds] = []
    named: dict[str, Named | None] = {}
    for person in schedule.persons:
        for c in coverages_at(schedule, person, now):
            marks += [c.end, c.end + schedule.keep_s, c.start + schedule.keep_s]
        named[person.pin] = named_at(schedule, person, now)
        if (found := named[person.pin]) is not None:
            marks.append(found.until)
    ranges = {p.pin: issuable(schedule, p) for p in schedule.persons}
    for lo, hi in (r for person_ranges in ranges.values() for r in person_ranges):
        marks += [lo + schedule.keep_s - 1, hi + schedule.keep_s - 2]  # the last second such a session lives
    return Rendered(
        schedule,
        trust,
        guard,
        named=named,
        newest={p.pin: newest_at(schedule, p, now) for p in schedule.persons},
        issuable=ranges,
        marks=tuple(sorted(set(marks))),
    )


def principal_arn_of(caller: str) -> str:
    """aws:PrincipalArn: an IAM user's ARN; for a role session, its role's ARN (Identity Center roles' path)."""
    if ":user/" in caller:
        return caller
    account, role = caller.split(":")[4], caller.split("/")[1]
    return f"arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{role}"


def userid_of(caller: str) -> str:
    name = caller.rsplit("/", 1)[1]
    return f"AIDAQEXAMPLE{name.upper()}" if ":user/" in caller else f"AROAQSSOEXAMPLE0001:{name}"


def assume_case(case_id: str, caller: str, name: str, at: Seconds, trust: Document) -> IamCase:
    context = {
        "aws:CurrentTime": iso(at),
        "aws:PrincipalArn": principal_arn_of(caller),
        "aws:userid": userid_of(caller),
        "sts:RoleSessionName": name,
    }
    if ":user/" in caller:
        context["aws:username"] = caller.rsplit("/", 1)[1]  # IAM users only
    return assume_role(case_id, caller, ROLE_ARN, trust, context)


def session_case(case_id: str, name: str, at: Seconds, issued: Seconds, guard: Document | None) -> IamCase:
    return IamCase(
        id=case_id,
        principal=SESSIONS + name,
        action="s3:ListAllMyBuckets",
        resource="*",
        identity_policies=[ADMIN] if guard is None else [ADMIN, guard],
        context={
            "aws:userid": f"{ROLE_ID}:{name}",
            "aws:CurrentTime": iso(at),
            "aws:TokenIssueTime": iso(issued),
            "aws:PrincipalArn": ROLE_ARN,
        },
    )


ALLOWS: Final = frozenset({ALLOWED})
REFUSES: Final = frozenset({IMPLICITLY_DENIED, EXPLICITLY_DENIED})
DENIES: Final = frozenset({EXPLICITLY_DENIED})  # the role allows everything: only the guard can deny


def _evaluation_time(rng: random.Random, rendered: Rendered) -> Seconds:
    """T in [now, now + LOOK_AHEAD], often on a boundary (an end, an end plus keep_for, a start plus keep_for)."""
    first, last = ceil_s(rendered.schedule.now), floor_s(rendered.schedule.now + LOOK_AHEAD)
    if rng.random() < 0.5:
        near = [m + d for m in (first, *rendered.marks) for d in (-1, 0, 1) if first <= m + d <= last]
        if near:
            return rng.choice(near)
    return rng.randint(first, last)


def _assume_check(rng: random.Random, rendered: Rendered, case_id: str) -> Check:
    schedule = rendered.schedule
    callers = [arn for p in schedule.persons for arn in p.arns] + list(OUTSIDERS)
    named_now = [arn for p in schedule.persons if (n := rendered.named[p.pin]) is not None for arn in n.arns]
    caller = rng.choice(named_now if named_now and rng.random() < 0.6 else callers)
    person = schedule.person_with_arn(caller)
    own_name = caller.rsplit("/", 1)[1]
    others = [p.pin for p in schedule.persons if p.pin != own_name]
    roll = rng.random()
    name = own_name if roll < 0.65 else own_name.capitalize() if roll < 0.75 else rng.choice(others)
    at = _evaluation_time(rng, rendered)
    named = rendered.named[person.pin] if person is not None else None
    allowed = (
        person is not None and named is not None and caller in named.arns and at < named.until and name == person.pin
    )
    why = (
        f"{caller} as {name!r} at {iso(at)}: named at now = "
        f"{None if named is None else (sorted(named.arns), iso(named.until))}"
    )
    case = assume_case(case_id, caller, name, at, rendered.trust)
    return Check(rendered, case, ALLOWS if allowed else REFUSES, why)


def _pin_session_check(rendered: Rendered, case_id: str, person: Person, issued: Seconds, at: Seconds) -> Check:
    """A session with the person's pin issued at `issued`, acting at `at`: allowed iff inside their newest coverage."""
    newest = rendered.newest[person.pin]
    assert newest is not None
    allowed = at < newest.end and issued >= newest.start
    ranges = rendered.issuable[person.pin]
    why = (
        f"session {person.pin} issued {iso(issued)} acting {iso(at)}; newest coverage "
        f"[{iso(newest.start)}, {iso(newest.end)}); issuable {[(iso(a), iso(b)) for a, b in ranges]}"
    )
    case = session_case(case_id, person.pin, at, issued, rendered.guard)
    return Check(rendered, case, ALLOWS if allowed else DENIES, why)


def _oldest_alive(rng: random.Random, rendered: Rendered) -> tuple[Person, Seconds, Seconds] | None:
    """A session in its last seconds of life (T0 + keep_for - 1 - a little), among those T >= now can see: where
    a guard that forgets a person too early, or a start rule left out, lets one through."""
    schedule = rendered.schedule
    keep = schedule.keep_s
    first, last = ceil_s(schedule.now), floor_s(schedule.now + LOOK_AHEAD)
    found = [
        (person, lo, hi)
        for person in schedule.persons
        for a, b in rendered.issuable[person.pin]
        for lo, hi in [(max(a, first - keep + 1), min(b, last - keep + 2))]  # T0 + keep - 1 in [first, last]
        if lo < hi
    ]
    if not found:
        return None
    person, lo, hi = rng.choice(found)
    issued = rng.choice((lo, hi - 1, rng.randrange(lo, hi)))
    at = max(first, issued + keep - 1 - rng.choice((0, 0, 1, rng.randrange(120))))
    return person, issued, at


def _session_check(rng: random.Random, rendered: Rendered, case_id: str) -> Check:
    schedule = rendered.schedule
    keep = schedule.keep_s
    roll = rng.random()
    if roll < 0.25 and (oldest := _oldest_alive(rng, rendered)) is not None:
        return _pin_session_check(rendered, case_id, *oldest)
    if roll < 0.8:
        for person in rng.sample(schedule.persons, len(schedule.persons)):
            ranges = rendered.issuable[person.pin]
            for _ in range(4):
                at = _evaluation_time(rng, rendered)
                alive = [(max(lo, at - keep + 1), min(hi, at + 1)) for lo, hi in ranges]  # T - keep < T0 <= T
                alive = [(lo, hi) for lo, hi in alive if lo < hi]
                if not alive:
                    continue
                lo, hi = rng.choice(alive)
                issued = rng.choice((lo, hi - 1, rng.randrange(lo, hi)))
                return _pin_session_check(rendered, case_id, person, issued, at)
    # a session whose name is no person's pin (an outsider, or a pin in other case): nobody else is touched
    name = rng.choice([*OTHER_SESSION_NAMES, *(p.pin.capitalize() for p in schedule.persons)])
    at = _evaluation_time(rng, rendered)
    issued = rng.randint(at - keep + 1, at)
    why = f"session {name!r} (no pin) issued {iso(issued)} acting {iso(at)}"
    return Check(rendered, session_case(case_id, name, at, issued, rendered.guard), ALLOWS, why)


def checks_for(rng: random.Random, schedule: Schedule, count: int = CASES_PER_SCHEDULE) -> list[Check]:
    rendered = render(schedule)
    return [
        (_assume_check if number % 2 == 0 else _session_check)(rng, rendered, f"{schedule.label}/{number}")
        for number in range(count)
    ]


def evaluate_checks(checks: Sequence[Check]) -> None:
    """One node process for all of them; fail with the schedule, documents and case of the first mismatches."""
    decisions = evaluate([check.case for check in checks])
    wrong = [(check, got) for check, got in zip(checks, decisions, strict=True) if got not in check.expected]
    if not wrong:
        return
    shown = []
    for check, got in wrong[:MISMATCHES_SHOWN]:
        shown.append(
            f"case {check.case.id}: evaluator {got}, model {sorted(check.expected)}: {check.why}\n"
            f"{check.rendered.schedule.describe()}\n"
            f"trust policy: {json.dumps(check.rendered.trust)}\n"
            f"session guard: {json.dumps(check.rendered.guard)}\n"
            f"case: {json.dumps(check.case.to_json())}"
        )
    ids = ", ".join(check.case.id for check, _ in wrong[:50])
    pytest.fail(f"{len(wrong)} of {len(checks)} decisions differ from the model ({ids})\n\n" + "\n\n".join(shown))


def seeded_checks(seed: int, schedules: int, max_lag: timedelta = timedelta(0)) -> list[Check]:
    rng = random.Random(seed)
    return [check for n in range(schedules) for check in checks_for(rng, build_schedule(rng, f"s{n}", max_lag))]


# -- tests ----------------------------------------------------------------------------------------


def test_rendered_documents_with_200_seeded_schedules_decide_as_the_coverage_model() -> None:
    evaluate_checks(seeded_checks(seed=20261201, schedules=200))


@settings(max_examples=20, deadline=None)
@given(st.randoms(use_true_random=False))
def test_rendered_documents_with_any_schedule_decide_as_the_coverage_model(rng: random.Random) -> None:
    evaluate_checks(checks_for(rng, build_schedule(rng, "h")))


def test_model_with_expiries_synced_on_time_issues_sessions_only_inside_coverages() -> None:
    # The model's own premise (see the module doc): with no expiry lag, a session with a person's pin can be
    # issued before `now` only inside one of their coverages, or in the second a revoke ended it (the end is
    # rounded down to that second; the revoke's sync comes later in it).
    rng = random.Random(7)
    for n in range(200):
        schedule = build_schedule(rng, f"s{n}")
        now_s = floor_s(schedule.now)
        for person in schedule.persons:
            inside = [(c.start, c.end) for c in coverages_at(schedule, person, schedule.now)]
            for lo, hi in issuable(schedule, person):
                before_now = (lo, min(hi, now_s))
                if before_now[0] < before_now[1]:
                    assert any(a <= before_now[0] and before_now[1] <= b + 1 for a, b in inside), schedule.describe()


# -- expiry syncs that come late --------------------------------------------------------------------
#
# IAM users share one trust statement whose end is the latest end among them, so until the sync that follows
# a user's end takes them out, they can still assume the role (the guard refuses every call such a session
# makes while it names them). That sync comes late whenever the expiry schedule's delivery or the expire
# function is slow, fails and is retried, or waits for the role lock, and at worst when the reconciler
# (every 5 minutes) ends the grant. A session issued in that gap lives on for up to keep_for. Regression
# guarded here: a guard that forgot the user at their end + keep_for, or a re-grant from end + keep_for on
# without a start rule, let such a session through after the user's access ended, or though it was issued
# outside any coverage. The sync now records when the trust policy let the user go (`left_trust_at`), and
# the guard and the start rule count keep_for from then (`Coverage.issuable_until`, `earlier_until`).


def test_rendered_documents_with_expiry_syncs_up_to_5_minutes_late_decide_as_the_coverage_model() -> None:
    evaluate_checks(seeded_checks(seed=20261202, schedules=200, max_lag=EXPIRY_SYNC_LAG))


@settings(max_examples=20, deadline=None)
@given(st.randoms(use_true_random=False))
def test_rendered_documents_with_any_schedule_and_late_expiry_syncs_decide_as_the_coverage_model(
    rng: random.Random,
) -> None:
    evaluate_checks(checks_for(rng, build_schedule(rng, "h", EXPIRY_SYNC_LAG)))


def test_engine_keeps_what_sessions_from_late_expiry_gaps_need_in_500_seeded_schedules() -> None:
    # Rendering only, no IAM evaluation: `check_engine_coverages` (in `render`) fails when the guard forgets a
    # person, or renders a coverage wrong, while a session the model says could exist may still be alive. Only
    # a role whose sessions live as long as the guard remembers (12 h) can reach that edge.
    rng = random.Random(20261203)
    for n in range(500):
        render(build_schedule(rng, f"s{n}", EXPIRY_SYNC_LAG, SESSION_LIFETIME_MAX))


def late_sync_schedule(regrant: bool) -> Schedule:
    """alice and bob (IAM users) on a role whose sessions live 12 h (the guard's memory), from 08:00; alice to
    09:00 with her expiry synced 30 s late, bob to 11:00; then a reconcile just after alice's end + 12 h, or
    alice granted again at exactly that moment."""
    alice = Person("alice", "iam_user", (f"arn:aws:iam::{ACCOUNT}:user/alice",))
    bob = Person("bob", "iam_user", (f"arn:aws:iam::{ACCOUNT}:user/bob",))
    schedule = Schedule("late", (alice, bob), SESSION_LIFETIME_MAX)
    at = BASE.replace(hour=8)
    schedule.grants += [
        Grant("a1", alice.arns[0], "alice", at, at.replace(hour=9), at.replace(hour=9, second=30)),
        Grant("b1", bob.arns[0], "bob", at, at.replace(hour=11), at.replace(hour=11)),
    ]
    schedule.syncs += [at, at.replace(hour=9, second=30)]
    if regrant:
        regranted = at.replace(hour=21)  # her end + 12 h: counted from her end, she would get no start rule
        schedule.grants.append(Grant("a2", alice.arns[0], "alice", regranted, regranted.replace(hour=22), regranted))
        schedule.syncs.append(regranted)
    else:
        schedule.syncs.append(at.replace(hour=21, second=5))  # a reconcile: counted from her end, she is forgotten
    return schedule


@pytest.mark.parametrize("regrant", [False, True], ids=["guard-pruned", "regrant-without-start-rule"])
def test_session_issued_in_a_late_expiry_sync_gap_is_refused_after_the_guard_moves_on(regrant: bool) -> None:
    schedule = late_sync_schedule(regrant)
    # the late expiry sync (09:00:30) took alice out of the users statement: noted on her ended grant, with the
    # margin the trust policy's write may take
    assert run_syncs(schedule)[1] == {"a1": BASE.replace(hour=9, second=30) + DEPARTURE_MARGIN}
    rendered = render(schedule)
    alice = schedule.persons[0]
    issued = floor_s(BASE.replace(hour=9, second=10))  # after her end (09:00), before its sync (09:00:30)
    acting = floor_s(schedule.now) + 3
    assert any(lo <= issued < hi for lo, hi in rendered.issuable["alice"]), rendered.issuable
    # GIVEN the trust policy of 08:00 lets alice in at 09:00:10 (bob's end is the users statement's end)
    then = plan_at(schedule, BASE, {}, LIVE_DOCUMENT).trust
    assert evaluate([assume_case("gap", alice.arns[0], "alice", issued, then)]) == [ALLOWED]
    # THEN a session issued then, still alive 12 hours later, is refused: her coverage ended, or it predates her
    # new one
    assert acting - issued < schedule.keep_s
    newest = newest_at(schedule, alice, schedule.now)
    assert newest is not None
    assert not (acting < newest.end and issued >= newest.start)
    why = f"alice's session issued {iso(issued)} acting {iso(acting)}"
    evaluate_checks([Check(rendered, session_case("late", "alice", acting, issued, rendered.guard), DENIES, why)])
