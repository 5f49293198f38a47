"""Measure 4: how many concurrent grants a role holds: its trust policy, and its session guard.

Everything goes through the engine as `sync` (`plan_role`) calls it: grant spans →
`coverages_of(spans, NOW, SESSION_LIFETIME_MAX).kept` for the session guard, the live grants' own
`coverages_of(live spans, NOW, timedelta(0)).kept` for the trust policy → `render_trust_policy(LIVE,
RenderSpec(coverages=...), NOW)` and `render_session_guard(kept, GuardSpec(role id, SESSION_LIFETIME_MAX), NOW)`.
A count fits when it renders without `TrustPolicyFullError` (or `SessionGuardFullError`); the most that fit is
found by rendering (exponential then binary search; a person more never shrinks either document).

The starting trust policy is the vendor's organization statement alone (`LIVE`, the one the bench has always
used), kept byte for byte by the engine. Persons:

* IAM users: 60-character ARNs `arn:aws:iam::123456789012:user/<29-character name>`. They share one statement
  pinned with `sts:RoleSessionName` `${aws:username}`, whose `DateLessThan` is the latest end among them.
* Identity Center persons: `arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_<set>_<16 hex>/<email>`,
  with common permission-set names; one statement each.

Expiry patterns: *spread* (every grant starts and ends at a different minute, over hours) and *clustered*
(every grant ends within the same minute, one activation after another, so the seconds differ). The baseline
is the vendor statement plus one statement naming every IAM-user ARN with no condition at all: the most
principals that fit, with no expiry and no session pinning.

What a person costs the session guard depends on their access (see `trustgate.core.session_guard`):

* *first access* (live, no earlier coverage of the role): one rule, their end (`aws:CurrentTime >= end`);
* *renewed access* (live, after an earlier coverage that ended less than SESSION_LIFETIME_MAX before this one
  started, so its sessions could still be alive): two rules, their end and their start
  (`aws:TokenIssueTime < start`);
* *ended* (their access ended less than SESSION_LIFETIME_MAX ago): their `aws:userid` in the one shared
  `TrustGateEnded` rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from bench.results import Section
from trustgate.core.coverage import Coverage, GrantSpan, coverages_of
from trustgate.core.errors import SessionGuardFullError, TrustPolicyFullError
from trustgate.core.session_guard import (
    ENDED_SID,
    INLINE_POLICIES_QUOTA,
    SESSION_LIFETIME_MAX,
    GuardSpec,
    render_session_guard,
)
from trustgate.core.trust_policy import Document, RenderSpec, policy_size, render_trust_policy

ORG_ID = "o-exampleorg12"
ACCOUNT = "123456789012"
ARN_LENGTH = 60
GOAL_GRANTS = 25
QUOTAS = (2048, 4096)
NOW = datetime(2026, 11, 26, 9, 7, 13, tzinfo=UTC)
ROLE_ID = "AROA5ZBJQK2EXAMPLE7XW"  # a role's unique id as GetRole returns it (AROA + 17)
CEILING = 1000  # no search looks further than this
ALL = CEILING  # `Crowd.renewed` for every live person on a renewed access
ENDED_OFFSET = 500  # ended persons' indexes, so they never share a name with the live ones
LIVE_BESIDE_ENDED = (0, 10, 20, 25, 30, 40)  # live first-time persons next to whom the ended ones are counted
# The vendor's default statement (DESIGN.md's worked example), kept byte for byte by the engine.
VENDOR_STATEMENT = {
    "Sid": "PumpOrganizationAccess",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": "sts:AssumeRole",
    "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}},
}
LIVE = {"Version": "2012-10-17", "Statement": [VENDOR_STATEMENT]}
LIVE_LABEL = "starting from the vendor's organization statement"

FIRST_NAMES = ("alice", "bob", "carol", "dmitri", "emeka", "fatima", "guillermo", "hana", "ingrid", "jun")
LAST_NAMES = ("nakamura", "okafor", "petrov", "quintero", "rasmussen", "santos", "tanaka", "usman", "vogel", "weiss")
PERMISSION_SETS = ("AdministratorAccess", "PowerUserAccess", "DatabaseAdministrator", "ReadOnlyAccess")


def _padded_user_arn(prefix: str, index: int) -> str:
    """An IAM user ARN of exactly ARN_LENGTH characters, distinct per index (so a distinct pinned name)."""
    name = f"engineer-{index:04d}-"
    arn = prefix + name + "x" * (ARN_LENGTH - len(prefix) - len(name))
    assert len(arn) == ARN_LENGTH
    return arn


def iam_user(index: int) -> str:
    """A realistic 60-character IAM user ARN in one account."""
    return _padded_user_arn(f"arn:aws:iam::{ACCOUNT}:user/", index)


def identity_center_person(index: int) -> str:
    """An Identity Center session: a common permission set, its role's hash, and the user's email as session name."""
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    last = LAST_NAMES[(index // len(FIRST_NAMES)) % len(LAST_NAMES)]
    suffix = "" if index < len(FIRST_NAMES) * len(LAST_NAMES) else str(index)
    permission_set = PERMISSION_SETS[index % len(PERMISSION_SETS)]
    role_hash = hashlib.sha256(permission_set.encode()).hexdigest()[:16]
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_{permission_set}_{role_hash}/{first}.{last}{suffix}@example.com"


def principal(index: int) -> str:
    """The 60-character IAM user ARN `bench/reconcile_scaling.py` seeds its grants with (several accounts, a path)."""
    return _padded_user_arn(f"arn:aws:iam::{222222222222 + index % 7}:user/engineering/", index)


PRINCIPALS: dict[str, Callable[[int], str]] = {
    "IAM-user grants": iam_user,
    "Identity Center persons": identity_center_person,
}


@dataclass(frozen=True)
class Window:
    starts_at: datetime
    ends_at: datetime


def spread(index: int) -> Window:
    """Asked at different times for different durations: starts 1 min to 7 h ago, ends 15 min to 12 h from now.

    Steps coprime to the ranges keep every start and every end a distinct minute (the bench never needs more
    than 420 live grants), with seconds and microseconds as activations have them.
    """
    started = timedelta(minutes=1 + (index * 37) % 420, seconds=(index * 13) % 60, microseconds=index * 7919 % 10**6)
    ends = timedelta(minutes=15 + (index * 97) % 705, seconds=(index * 29) % 60)
    return Window(NOW - started, NOW + ends)


def clustered(index: int) -> Window:
    """A team granted together for an incident: 2-hour grants activated one after another within one minute.

    Every end falls within the same minute (a second apart while there are at most 60), and so does every start.
    """
    minute = NOW.replace(second=0, microsecond=0) + timedelta(hours=1)
    ends = minute + timedelta(seconds=(index * 7) % 60, microseconds=index * 7919 % 10**6)
    return Window(ends - timedelta(hours=2), ends)


PATTERNS: dict[str, Callable[[int], Window]] = {"spread": spread, "clustered": clustered}


def earlier(window: Window, index: int) -> Window:
    """The person's previous access to the role: one hour, ended 5 min to 2 h before this one started.

    Its sessions could still be alive when the new access starts (a session lives up to 12 hours), so the
    guard needs the person's start rule too.
    """
    until = window.starts_at - timedelta(minutes=5 + (index * 11) % 115, seconds=(index * 17) % 60)
    return Window(until - timedelta(hours=1), until)


def ended(index: int) -> Window:
    """Access that ended 1 min to 11 h 40 min ago (within the 12 hours the guard remembers it), 30 min to 3.5 h long."""
    ends = NOW - timedelta(minutes=1 + (index * 37) % 700, seconds=(index * 29) % 60, microseconds=index * 7919 % 10**6)
    return Window(ends - timedelta(minutes=30 + (index * 53) % 180), ends)


@dataclass(frozen=True)
class Crowd:
    """Who holds the role at NOW: `count` live persons, the first `renewed` of them on a renewed access and the
    others on their first, and `ended` persons whose access ended (all within the 12 hours the guard remembers)."""

    principal: Callable[[int], str]
    window: Callable[[int], Window]
    renewed: int = 0
    ended: int = 0

    def spans(self, count: int) -> list[GrantSpan]:
        spans = []
        for i in range(count):
            arn, window = self.principal(i), self.window(i)
            spans.append(GrantSpan(arn, window.starts_at, window.ends_at, f"grant-{i:04d}"))
            if i < self.renewed:
                before = earlier(window, i)
                spans.append(GrantSpan(arn, before.starts_at, before.ends_at, f"grant-{i:04d}-earlier"))
        for i in range(ENDED_OFFSET, ENDED_OFFSET + self.ended):
            window = ended(i)
            spans.append(GrantSpan(self.principal(i), window.starts_at, window.ends_at, f"grant-{i:04d}"))
        return spans


def coverages(crowd: Crowd, count: int) -> tuple[Sequence[Coverage], Sequence[Coverage]]:
    """What `sync` renders from: (every coverage the guard remembers, the live grants' coverages)."""
    spans = crowd.spans(count)
    remembered = coverages_of(spans, NOW, SESSION_LIFETIME_MAX)
    granted = coverages_of([span for span in spans if span.ends_at > NOW], NOW, timedelta(0))
    # A refused person (a session name another holds) would silently not count: the principals never collide.
    renewed = [c for c in remembered.live(NOW) if c.earlier_until is not None]
    if (
        remembered.refused
        or len(remembered.live(NOW)) != count
        or len(remembered.kept) != count + crowd.ended
        or len(renewed) != min(count, crowd.renewed)
        or len(granted.kept) != count
    ):
        raise RuntimeError(f"{crowd} should make {count} live and {crowd.ended} ended persons: {remembered}")
    return remembered.kept, granted.kept


def trust_policy(granted: Sequence[Coverage], quota: int) -> Document:
    return render_trust_policy(LIVE, RenderSpec(coverages=granted, quota=quota), NOW)


def session_guard(remembered: Sequence[Coverage]) -> Document | None:
    return render_session_guard(remembered, GuardSpec(ROLE_ID, SESSION_LIFETIME_MAX, other_inline_size=0), NOW)


def fits_trust(count: int, quota: int, crowd: Crowd) -> bool:
    try:
        trust_policy(coverages(crowd, count)[1], quota)
    except TrustPolicyFullError:
        return False
    return True


def fits_guard(count: int, crowd: Crowd) -> bool:
    try:
        session_guard(coverages(crowd, count)[0])
    except SessionGuardFullError:
        return False
    return True


def fits_role(count: int, quota: int, crowd: Crowd) -> bool:
    """What `sync` needs before it activates a grant: both documents render."""
    return fits_trust(count, quota, crowd) and fits_guard(count, crowd)


def fits_ended(count: int, crowd: Crowd, live: int) -> bool:
    """`count` ended persons beside `live` live ones (`crowd.ended` is replaced)."""
    return fits_guard(live, Crowd(crowd.principal, crowd.window, crowd.renewed, ended=count))


def _fits_role_renewing(renewed: int, count: int, quota: int, crowd: Crowd) -> bool:
    """`count` live persons, `renewed` of them on a renewed access (`crowd.renewed` is replaced)."""
    return fits_role(count, quota, Crowd(crowd.principal, crowd.window, renewed, crowd.ended))


def fits_bare(count: int, quota: int) -> bool:
    bare: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [
            VENDOR_STATEMENT,
            {"Effect": "Allow", "Principal": {"AWS": [iam_user(i) for i in range(count)]}, "Action": "sts:AssumeRole"},
        ],
    }
    return bool(policy_size(bare) <= quota)


def most(fits: Callable[[int], bool], ceiling: int = CEILING) -> int:
    """The largest count that fits, by rendering: double until one does not fit, then bisect (fitting is monotonic)."""
    low, high = 0, 1  # fits(low) holds (nothing always fits); fits(high) is unknown
    while high <= ceiling and fits(high):
        low, high = high, high * 2
    high = min(high, ceiling + 1)  # the first count known (or assumed, past the ceiling) not to fit
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def run(quick: bool) -> Section:
    """Pure computation (a few thousand renders, about a second), so quick mode runs it in full."""
    section = Section("capacity")
    bare = {quota: most(partial(fits_bare, quota=quota)) for quota in QUOTAS}
    section.details["bare_principal_list"] = bare
    section.details["live_trust_policy"] = LIVE_LABEL
    section.details["keep_for_seconds"] = SESSION_LIFETIME_MAX.total_seconds()  # as sync passes it, 12 h
    section.details["example_principals"] = {kind: principal(0) for kind, principal in PRINCIPALS.items()}
    for kind, principal in PRINCIPALS.items():
        for quota in QUOTAS:
            for pattern, window in PATTERNS.items():
                first, again = Crowd(principal, window), Crowd(principal, window, renewed=ALL)
                held = most(partial(fits_trust, quota=quota, crowd=first))
                role_first = most(partial(fits_role, quota=quota, crowd=first))
                role_renewed = most(partial(fits_role, quota=quota, crowd=again))
                # How many of the persons the role takes on their first access may be back on a renewed one instead.
                mixed = most(partial(_fits_role_renewing, count=role_first, quota=quota, crowd=first), role_first)
                section.details[f"{kind} at {quota}, {pattern}"] = {
                    "trust_policy": held,
                    "with_session_guard": role_first,
                    "with_session_guard_all_renewed": role_renewed,
                    "renewed_among_with_session_guard": mixed,
                }
                goal = f">= {GOAL_GRANTS}" if (kind, quota) == ("IAM-user grants", 2048) else ""
                section.add(
                    f"{kind} at {quota} chars, expiries {pattern}",
                    held,
                    "grants",
                    baseline=bare[quota],
                    baseline_label="bare list of 60-char IAM-user ARNs",
                    goal=goal,
                    met=held >= GOAL_GRANTS if goal else None,
                    note=(
                        f"{LIVE_LABEL}; the role as a whole (its session guard must render too): {role_first} "
                        f"with every person on a first access, {role_renewed} with every person on a renewed access"
                        + (f" ({role_first} while at most {mixed} are renewed)" if 0 < mixed < role_first else "")
                    ),
                )
    one_end = {kind: most(partial(fits_guard, crowd=Crowd(p, _same_second))) for kind, p in PRINCIPALS.items()}
    one_end_renewed = {
        kind: most(partial(fits_guard, crowd=Crowd(p, _same_second, renewed=ALL))) for kind, p in PRINCIPALS.items()
    }
    section.details["session guard, first access, every end in the same second"] = one_end
    section.details["session guard, renewed access, every start and end in the same second"] = one_end_renewed
    renewed_by_pattern: dict[str, dict[str, int]] = {}
    for pattern, window in PATTERNS.items():
        persons = {kind: most(partial(fits_guard, crowd=Crowd(p, window))) for kind, p in PRINCIPALS.items()}
        renewed_by_pattern[pattern] = {
            kind: most(partial(fits_guard, crowd=Crowd(p, window, renewed=ALL))) for kind, p in PRINCIPALS.items()
        }
        section.details[f"session guard, {pattern}"] = persons
        section.details[f"session guard, renewed access, {pattern}"] = renewed_by_pattern[pattern]
        section.add(
            f"session guard persons at {INLINE_POLICIES_QUOTA} chars, ends {pattern}",
            persons["IAM-user grants"],
            "persons",
            note=(
                f"IAM users on their first access (one rule each: their own end second); Identity Center "
                f"persons: {persons['Identity Center persons']}; if all shared one end second: "
                f"{one_end['IAM-user grants']}; on a renewed access: {renewed_by_pattern[pattern]['IAM-user grants']}; "
                f"the role has no other inline policy"
            ),
        )
    renewed = renewed_by_pattern["spread"]
    section.add(
        f"session guard persons at {INLINE_POLICIES_QUOTA} chars, renewed access",
        renewed["IAM-user grants"],
        "persons",
        note=(
            f"IAM users back after an earlier access that ended 5 min to 2 h before (two rules each: their own end "
            f"and start second), spread; clustered: {renewed_by_pattern['clustered']['IAM-user grants']}; Identity "
            f"Center persons: {renewed['Identity Center persons']}; if all shared one start and one end second: "
            f"{one_end_renewed['IAM-user grants']}; the role has no other inline policy"
        ),
    )
    beside = {
        kind: {live: most(partial(fits_ended, crowd=Crowd(p, spread), live=live)) for live in LIVE_BESIDE_ENDED}
        for kind, p in PRINCIPALS.items()
    }
    section.details["session guard, ended persons beside live first-time persons (spread), by live count"] = beside
    sizes = _statement_sizes()
    section.details["statement_chars"] = sizes
    section.add(
        f"session guard ended persons at {INLINE_POLICIES_QUOTA} chars",
        beside["IAM-user grants"][0],
        "persons",
        note=(
            f"IAM users whose access ended in the last 12 hours (SESSION_LIFETIME_MAX), all in the one shared "
            f"{ENDED_SID} rule, {sizes['guard_each_more_ended_person']} characters each, no live person; "
            f"Identity Center persons: {beside['Identity Center persons'][0]}; beside 25 live IAM users on their "
            f"first access: {beside['IAM-user grants'][25]}; the role has no other inline policy"
        ),
    )
    return section


def _same_second(index: int) -> Window:
    """The guard's best case: persons sharing an end (and a start) share its statements."""
    return Window(NOW - timedelta(hours=1), NOW + timedelta(hours=1))


def _size_of(count: int, crowd: Crowd) -> tuple[int, int]:
    remembered, granted = coverages(crowd, count)
    guard = session_guard(remembered)
    return policy_size(trust_policy(granted, 10**6)), 0 if guard is None else policy_size(guard)


def _statement_sizes() -> dict[str, int]:
    """Where the characters go: what the first person, and each one more (the third), costs in either document."""
    vendor = policy_size(LIVE)
    users = [_size_of(n, Crowd(iam_user, spread)) for n in (1, 2, 3)]
    idc = [_size_of(n, Crowd(identity_center_person, spread)) for n in (1, 2, 3)]
    renewed = [_size_of(n, Crowd(iam_user, spread, renewed=ALL)) for n in (1, 2, 3)]
    shared = [_size_of(n, Crowd(iam_user, _same_second)) for n in (2, 3)]
    shared_renewed = [_size_of(n, Crowd(iam_user, _same_second, renewed=ALL)) for n in (2, 3)]
    gone = [_size_of(0, Crowd(iam_user, spread, ended=n)) for n in (1, 2, 3)]
    gone_idc = [_size_of(0, Crowd(identity_center_person, spread, ended=n)) for n in (2, 3)]
    return {
        "vendor_policy": vendor,
        "iam_users_statement_with_one_user": users[0][0] - vendor - 1,  # minus the comma between statements
        "each_more_iam_user": users[2][0] - users[1][0],
        "identity_center_statement_first": idc[0][0] - vendor - 1,
        "each_more_identity_center_person": idc[2][0] - idc[1][0],
        "guard_with_one_person_first_access": users[0][1],
        "guard_each_more_person_first_access": users[2][1] - users[1][1],
        "guard_each_more_person_first_access_sharing_end": shared[1][1] - shared[0][1],
        "guard_with_one_person_renewed": renewed[0][1],
        "guard_each_more_person_renewed": renewed[2][1] - renewed[1][1],
        "guard_each_more_person_renewed_sharing_end_and_start": shared_renewed[1][1] - shared_renewed[0][1],
        "guard_with_one_ended_person": gone[0][1],
        "guard_each_more_ended_person": gone[2][1] - gone[1][1],
        "guard_each_more_ended_identity_center_person": gone_idc[1][1] - gone_idc[0][1],
    }
